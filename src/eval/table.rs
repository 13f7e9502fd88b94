//! The rows of `metrics.csv` (one per item × frame × method × operator × acceleration × seed) and
//! their summary (mean ± standard deviation per method, operator and acceleration).

use serde::Serialize;

use crate::error::{Error, Result};

/// One frame of one cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameRow {
    /// Item name.
    pub item: String,
    /// Operator name (`mri`, `us-lines`, …).
    pub operator: String,
    /// Acceleration label (`4`, `8`, `1` for operators without a mask).
    pub acceleration: String,
    /// Seed of the measurement and the reconstruction.
    pub seed: u64,
    /// Method name.
    pub method: String,
    /// Frame index.
    pub frame: usize,
    /// PSNR in dB (data range max(truth frame); `inf` for an exact result).
    pub psnr: f64,
    /// SSIM (7×7 uniform window).
    pub ssim: f64,
    /// ‖x̂ − x‖/‖x‖.
    pub nrmse: f64,
    /// Network evaluations spent on the frame (VJPs count one; 0 for classic methods).
    pub nfe: u64,
    /// Wall-clock seconds spent on the frame.
    pub seconds: f64,
}

/// The header of `metrics.csv`.
pub const CSV_HEADER: &str =
    "item,operator,acceleration,seed,method,frame,psnr,ssim,nrmse,nfe,seconds";

/// `rows` as CSV text with [`CSV_HEADER`].
pub fn rows_to_csv(rows: &[FrameRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{:.4},{:.6},{:.6},{},{:.6}\n",
            r.item,
            r.operator,
            r.acceleration,
            r.seed,
            r.method,
            r.frame,
            r.psnr,
            r.ssim,
            r.nrmse,
            r.nfe,
            r.seconds
        ));
    }
    out
}

/// Parses CSV text written by [`rows_to_csv`]; `what` names the source in errors.
pub fn rows_from_csv(text: &str, what: &str) -> Result<Vec<FrameRow>> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim_end() == CSV_HEADER => {}
        other => {
            return Err(Error::invalid(
                format!("{what} header"),
                CSV_HEADER,
                other.unwrap_or("an empty file"),
            ))
        }
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        let bad = |field: &str, v: &str| {
            Error::invalid(
                format!("{what} line {} field {field}", i + 2),
                "a number",
                v.to_string(),
            )
        };
        if f.len() != 11 {
            return Err(Error::invalid(
                format!("{what} line {}", i + 2),
                "11 comma-separated fields",
                f.len(),
            ));
        }
        let num = |k: usize, name: &str| f[k].parse::<f64>().map_err(|_| bad(name, f[k]));
        rows.push(FrameRow {
            item: f[0].into(),
            operator: f[1].into(),
            acceleration: f[2].into(),
            seed: f[3].parse().map_err(|_| bad("seed", f[3]))?,
            method: f[4].into(),
            frame: f[5].parse().map_err(|_| bad("frame", f[5]))?,
            psnr: num(6, "psnr")?,
            ssim: num(7, "ssim")?,
            nrmse: num(8, "nrmse")?,
            nfe: f[9].parse().map_err(|_| bad("nfe", f[9]))?,
            seconds: num(10, "seconds")?,
        });
    }
    Ok(rows)
}

/// Mean and sample standard deviation (0 for one value).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// Arithmetic mean.
    pub mean: f64,
    /// √(Σ(v − mean)²/(n − 1)).
    pub std: f64,
}

impl Stat {
    /// Of `values` (which must not be empty).
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat { mean, std }
    }
}

/// The summary of one method under one operator and acceleration, over every item, seed and frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummary {
    /// Method name.
    pub method: String,
    /// Operator name.
    pub operator: String,
    /// Acceleration label.
    pub acceleration: String,
    /// Frames scored.
    pub frames: usize,
    /// Item × seed sequences scored.
    pub sequences: usize,
    /// PSNR (dB) over frames.
    pub psnr: Stat,
    /// SSIM over frames.
    pub ssim: Stat,
    /// NRMSE over frames.
    pub nrmse: Stat,
    /// Mean PSNR of each sequence, then mean ± std over sequences.
    pub psnr_over_sequences: Stat,
    /// Seconds per frame.
    pub seconds_per_frame: Stat,
    /// Network evaluations per frame.
    pub nfe_per_frame: Stat,
}

/// Groups `rows` by operator, acceleration and method; groups come in the order their operator
/// and acceleration first appear, methods in `method_order` (others after, by first appearance).
pub fn summarize(rows: &[FrameRow], method_order: &[&str]) -> Vec<GroupSummary> {
    let mut conditions: Vec<(String, String)> = Vec::new();
    let mut methods: Vec<String> = method_order.iter().map(|m| m.to_string()).collect();
    for r in rows {
        let c = (r.operator.clone(), r.acceleration.clone());
        if !conditions.contains(&c) {
            conditions.push(c);
        }
        if !methods.contains(&r.method) {
            methods.push(r.method.clone());
        }
    }
    let mut out = Vec::new();
    for (operator, acceleration) in &conditions {
        for method in &methods {
            let group: Vec<&FrameRow> = rows
                .iter()
                .filter(|r| {
                    &r.operator == operator
                        && &r.acceleration == acceleration
                        && &r.method == method
                })
                .collect();
            if group.is_empty() {
                continue;
            }
            let col =
                |f: &dyn Fn(&FrameRow) -> f64| -> Vec<f64> { group.iter().map(|r| f(r)).collect() };
            let mut sequences: Vec<(String, u64)> = Vec::new();
            for r in &group {
                let key = (r.item.clone(), r.seed);
                if !sequences.contains(&key) {
                    sequences.push(key);
                }
            }
            let per_sequence: Vec<f64> = sequences
                .iter()
                .map(|(item, seed)| {
                    let v: Vec<f64> = group
                        .iter()
                        .filter(|r| &r.item == item && r.seed == *seed)
                        .map(|r| r.psnr)
                        .collect();
                    v.iter().sum::<f64>() / v.len() as f64
                })
                .collect();
            out.push(GroupSummary {
                method: method.clone(),
                operator: operator.clone(),
                acceleration: acceleration.clone(),
                frames: group.len(),
                sequences: sequences.len(),
                psnr: Stat::of(&col(&|r| r.psnr)),
                ssim: Stat::of(&col(&|r| r.ssim)),
                nrmse: Stat::of(&col(&|r| r.nrmse)),
                psnr_over_sequences: Stat::of(&per_sequence),
                seconds_per_frame: Stat::of(&col(&|r| r.seconds)),
                nfe_per_frame: Stat::of(&col(&|r| r.nfe as f64)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, item: &str, frame: usize, psnr: f64) -> FrameRow {
        FrameRow {
            item: item.into(),
            operator: "mri".into(),
            acceleration: "4".into(),
            seed: 0,
            method: method.into(),
            frame,
            psnr,
            ssim: 0.5,
            nrmse: 0.1,
            nfe: 10,
            seconds: 0.25,
        }
    }

    #[test]
    fn csv_round_trip() {
        let mut rows = vec![
            row("tv", "item0", 0, 28.5),
            row("dps", "item0", 1, f64::INFINITY),
        ];
        rows[1].seconds = 1.5;
        let text = rows_to_csv(&rows);
        assert!(text.starts_with(CSV_HEADER));
        assert_eq!(rows_from_csv(&text, "t").unwrap(), rows);
        assert!(rows_from_csv("a,b\n", "t").is_err());
        let broken = text.replace("28.5000", "x");
        let e = rows_from_csv(&broken, "rows.csv").unwrap_err().to_string();
        assert!(e.contains("psnr") && e.contains("rows.csv"), "{e}");
    }

    #[test]
    fn summary_statistics() {
        // Values chosen by hand: PSNR 20, 22, 30 → mean 24, sample std √28 = 5.2915.
        let rows = vec![
            row("tv", "item0", 0, 20.0),
            row("tv", "item0", 1, 22.0),
            row("tv", "item1", 0, 30.0),
            row("zero-filled", "item0", 0, 10.0),
        ];
        let s = summarize(&rows, &["zero-filled", "tv"]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].method, "zero-filled");
        let tv = &s[1];
        assert_eq!((tv.frames, tv.sequences), (3, 2));
        assert!((tv.psnr.mean - 24.0).abs() < 1e-12);
        assert!((tv.psnr.std - 28f64.sqrt()).abs() < 1e-12);
        // Per sequence: item0 21, item1 30 → mean 25.5, std √40.5.
        assert!((tv.psnr_over_sequences.mean - 25.5).abs() < 1e-12);
        assert!((tv.psnr_over_sequences.std - 40.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[0].psnr.std, 0.0);
    }
}
