//! The evaluation report: one self-contained HTML page (images as `data:` URIs, charts as inline
//! SVG drawn by [`crate::plot`]) — the summary table, PSNR per frame, quality against time and
//! network evaluations, image and error panels, cine loops and uncertainty maps. Pure: returns the
//! page as a `String`.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::eval::table::{FrameRow, GroupSummary};
use crate::io::gif::{encode_cine, Panel, GAP};
use crate::io::png::{encode_png, Window};
use crate::plot::{LabeledPoint, LineChart, ScatterChart, ScatterSeries, Series};

/// One method's images in a [`Showcase`].
#[derive(Clone, Debug)]
pub struct ShowMethod {
    /// Method name.
    pub name: String,
    /// Displayed values `[T, H, W]` (magnitudes for complex data).
    pub image: Vec<f32>,
    /// |x̂ − x| `[T, H, W]`.
    pub error: Vec<f32>,
    /// Posterior spread `[T, H, W]`, when the method drew several samples / particles.
    pub std: Option<Vec<f32>>,
    /// Mean PSNR over the frames (dB).
    pub psnr: f64,
}

/// Images of every method on one measurement.
#[derive(Clone, Debug)]
pub struct Showcase {
    /// Heading, e.g. `item0 · mri 4× · seed 0`.
    pub title: String,
    /// `[T, H, W]`.
    pub shape: [usize; 3],
    /// Displayed truth `[T, H, W]`.
    pub truth: Vec<f32>,
    /// Display window (lo shown black, hi white) of images; errors use [0, (hi − lo)/4].
    pub window: (f32, f32),
    /// The frame shown in the still panels.
    pub frame: usize,
    /// The methods, in table order.
    pub methods: Vec<ShowMethod>,
}

/// Everything on the page.
pub struct ReportInput<'a> {
    /// Page title.
    pub title: String,
    /// Paragraphs under the title (plain text).
    pub overview: Vec<String>,
    /// Settings table (name, value).
    pub settings: Vec<(String, String)>,
    /// Methods shown (name, one-line description).
    pub methods: Vec<(String, String)>,
    /// Every metrics row.
    pub rows: &'a [FrameRow],
    /// The summary groups.
    pub summary: &'a [GroupSummary],
    /// Image panels.
    pub showcases: &'a [Showcase],
    /// Cells finished and planned.
    pub cells: (usize, usize),
    /// Notes (skipped methods, …).
    pub notes: Vec<String>,
}

/// The page. Fails when an image or chart cannot be drawn (e.g. mismatched shapes).
pub fn build_report(input: &ReportInput<'_>) -> Result<String> {
    let mut h = String::with_capacity(1 << 20);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(h, "<title>{}</title>", esc(&input.title));
    h.push_str(STYLE);
    h.push_str("</head>\n<body>\n");
    let _ = writeln!(h, "<h1>{}</h1>", esc(&input.title));
    for p in &input.overview {
        let _ = writeln!(h, "<p>{}</p>", esc(p));
    }
    let (done, planned) = input.cells;
    let _ = writeln!(
        h,
        "<p class=\"{}\">{done} of {planned} cells finished{}.</p>",
        if done == planned { "ok" } else { "warn" },
        if done == planned {
            ""
        } else {
            " — a partial report; re-run the same command to continue"
        }
    );
    for n in &input.notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
    }
    h.push_str("<nav>Sections: <a href=\"#table\">summary</a> · <a href=\"#frames\">PSNR per frame</a> · <a href=\"#tradeoff\">quality vs cost</a> · <a href=\"#images\">images</a> · <a href=\"#cines\">cines</a> · <a href=\"#uncertainty\">uncertainty</a> · <a href=\"#settings\">settings</a></nav>\n");

    summary_tables(&mut h, input.summary);
    frame_charts(&mut h, input.rows, input.summary)?;
    tradeoff_charts(&mut h, input.summary)?;
    image_panels(&mut h, input.showcases)?;
    cine_panels(&mut h, input.showcases)?;
    uncertainty_panels(&mut h, input.showcases)?;

    h.push_str("<h2 id=\"settings\">Methods and settings</h2>\n<table class=\"plain\">\n");
    for (name, d) in &input.methods {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(name), esc(d));
    }
    h.push_str("</table>\n<table class=\"plain\">\n");
    for (k, v) in &input.settings {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table>\n");
    h.push_str(
        "<p class=\"small\">Metrics on magnitudes for complex data: PSNR and SSIM (7×7 uniform \
window, K1 0.01, K2 0.03) with data range max(truth frame), NRMSE ‖x̂ − x‖/‖x‖; ± is the sample \
standard deviation over frames. Seconds are wall-clock on this machine; NFEs count network \
evaluations per frame (a vector–Jacobian product counts one).</p>\n",
    );
    h.push_str(CHECK_SCRIPT);
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

const STYLE: &str = "<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#222}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}td.m,th.m{text-align:left}table.plain th{text-align:left}table.plain td{text-align:left}
.best{font-weight:bold;color:#0b5}.warn{color:#a40}.ok{color:#070}.note{color:#555;font-style:italic}.small{font-size:.85em;color:#555}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{max-width:100%;height:auto;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:8px}figure{margin:0;text-align:center}
figcaption{font-size:.8em;color:#333}img.px{image-rendering:pixelated}
.label{display:flex;align-items:center;justify-content:center;text-align:center;font-size:.85em;color:#555;background:#f6f6f6}
.strip{display:flex;font-size:.75em;color:#333}.strip span{display:inline-block;text-align:center;overflow:hidden;white-space:nowrap}
</style>
";

/// Records, once the page has loaded, how many images decoded (read by the browser test).
const CHECK_SCRIPT: &str = "<p id=\"image-check\" class=\"small\" data-total=\"-1\" data-loaded=\"-1\">image check pending</p>
<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  var el = document.getElementById('image-check');
  el.setAttribute('data-total', String(imgs.length));
  el.setAttribute('data-loaded', String(ok));
  el.textContent = ok + ' of ' + imgs.length + ' images loaded';
});
</script>
";

/// Text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// (operator, acceleration) pairs in order of first appearance.
fn conditions(summary: &[GroupSummary]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for g in summary {
        let c = (g.operator.clone(), g.acceleration.clone());
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn condition_label(operator: &str, acceleration: &str) -> String {
    if acceleration == "1" {
        operator.to_string()
    } else {
        format!("{operator} {acceleration}×")
    }
}

fn pm(v: f64, s: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$} ± {s:.digits$}")
    } else {
        format!("{v}")
    }
}

fn summary_tables(h: &mut String, summary: &[GroupSummary]) {
    h.push_str("<h2 id=\"table\">Summary: mean ± std over frames</h2>\n");
    if summary.is_empty() {
        h.push_str("<p class=\"warn\">No finished cells yet.</p>\n");
        return;
    }
    for (op, acc) in conditions(summary) {
        let groups: Vec<&GroupSummary> = summary
            .iter()
            .filter(|g| g.operator == op && g.acceleration == acc)
            .collect();
        let best_psnr = groups
            .iter()
            .map(|g| g.psnr.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        let best_ssim = groups
            .iter()
            .map(|g| g.ssim.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(h, "<h3>{}</h3>", esc(&condition_label(&op, &acc)));
        h.push_str("<table>\n<tr><th class=\"m\">method</th><th>PSNR (dB)</th><th>PSNR over sequences</th><th>SSIM</th><th>NRMSE</th><th>s / frame</th><th>NFE / frame</th><th>frames</th><th>sequences</th></tr>\n");
        for g in groups {
            let cls = |best: bool| if best { " class=\"best\"" } else { "" };
            let _ = writeln!(
                h,
                "<tr><td class=\"m\">{}</td><td{}>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{:.3}</td><td>{:.0}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.method),
                cls(g.psnr.mean == best_psnr),
                pm(g.psnr.mean, g.psnr.std, 2),
                pm(g.psnr_over_sequences.mean, g.psnr_over_sequences.std, 2),
                cls(g.ssim.mean == best_ssim),
                pm(g.ssim.mean, g.ssim.std, 3),
                pm(g.nrmse.mean, g.nrmse.std, 3),
                g.seconds_per_frame.mean,
                g.nfe_per_frame.mean,
                g.frames,
                g.sequences
            );
        }
        h.push_str("</table>\n");
    }
}

fn frame_charts(h: &mut String, rows: &[FrameRow], summary: &[GroupSummary]) -> Result<()> {
    h.push_str("<h2 id=\"frames\">PSNR per frame (mean over items and seeds)</h2>\n<div class=\"charts\">\n");
    let mut drawn = 0;
    for (op, acc) in conditions(summary) {
        let mut series = Vec::new();
        for g in summary
            .iter()
            .filter(|g| g.operator == op && g.acceleration == acc)
        {
            let mut by_frame: Vec<(f64, usize)> = Vec::new();
            for r in rows.iter().filter(|r| {
                r.operator == op
                    && r.acceleration == acc
                    && r.method == g.method
                    && r.psnr.is_finite()
            }) {
                if by_frame.len() <= r.frame {
                    by_frame.resize(r.frame + 1, (0.0, 0));
                }
                by_frame[r.frame].0 += r.psnr;
                by_frame[r.frame].1 += 1;
            }
            let points: Vec<(f64, f64)> = by_frame
                .iter()
                .enumerate()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(t, (s, n))| (t as f64, s / *n as f64))
                .collect();
            if points.len() >= 2 {
                series.push(Series {
                    name: g.method.clone(),
                    points,
                });
            }
        }
        if series.is_empty() {
            continue;
        }
        let chart = LineChart {
            title: format!("PSNR per frame, {}", condition_label(&op, &acc)),
            x_label: "frame".into(),
            y_label: "PSNR (dB)".into(),
            log_x: false,
            series,
        };
        h.push_str(&chart.to_svg(660, 420)?);
        h.push('\n');
        drawn += 1;
    }
    h.push_str("</div>\n");
    if drawn == 0 {
        h.push_str("<p class=\"note\">Single images only (or no finished cells): no per-frame curves.</p>\n");
    }
    Ok(())
}

fn tradeoff_charts(h: &mut String, summary: &[GroupSummary]) -> Result<()> {
    h.push_str("<h2 id=\"tradeoff\">Quality against cost</h2>\n<p class=\"small\">One point per method and acceleration (mean PSNR over frames); the line joins each acceleration's Pareto front — the best PSNR reached at a given cost.</p>\n<div class=\"charts\">\n");
    let mut operators: Vec<String> = Vec::new();
    for g in summary {
        if !operators.contains(&g.operator) {
            operators.push(g.operator.clone());
        }
    }
    for op in &operators {
        for (cost, label, only_networks) in [
            ("seconds", "seconds per frame (log)", false),
            ("nfe", "network evaluations per frame (log)", true),
        ] {
            let mut series: Vec<ScatterSeries> = Vec::new();
            for (o, acc) in conditions(summary).into_iter().filter(|(o, _)| o == op) {
                let points: Vec<LabeledPoint> = summary
                    .iter()
                    .filter(|g| g.operator == o && g.acceleration == acc && g.psnr.mean.is_finite())
                    .filter(|g| !only_networks || g.nfe_per_frame.mean > 0.0)
                    .map(|g| LabeledPoint {
                        x: if cost == "seconds" {
                            g.seconds_per_frame.mean.max(1e-5)
                        } else {
                            g.nfe_per_frame.mean
                        },
                        y: g.psnr.mean,
                        label: g.method.clone(),
                    })
                    .collect();
                if !points.is_empty() {
                    series.push(ScatterSeries {
                        name: condition_label(&o, &acc),
                        points,
                    });
                }
            }
            if series.is_empty() {
                continue;
            }
            let chart = ScatterChart {
                title: format!(
                    "{op}: PSNR against {}",
                    if cost == "seconds" { "time" } else { "NFEs" }
                ),
                x_label: label.into(),
                y_label: "PSNR (dB)".into(),
                log_x: true,
                series,
            };
            h.push_str(&chart.to_svg(660, 440)?);
            h.push('\n');
        }
    }
    h.push_str("</div>\n");
    Ok(())
}

/// Frame `t` of `[T, H, W]` values.
fn frame_of(values: &[f32], [_, hh, ww]: [usize; 3], t: usize) -> &[f32] {
    &values[t * hh * ww..(t + 1) * hh * ww]
}

fn png_uri(values: &[f32], [h, w]: [usize; 2], lo: f32, hi: f32) -> Result<String> {
    let window = Window::new(lo, if hi > lo { hi } else { lo + 1.0 })?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64(&encode_png([h, w], values, &window)?)
    ))
}

fn figure(h: &mut String, uri: &str, caption: &str, [hh, ww]: [usize; 2]) {
    let scale = if ww <= 128 { 2 } else { 1 };
    let _ = writeln!(
        h,
        "<figure><img class=\"px\" src=\"{uri}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
        ww * scale,
        hh * scale,
        esc(caption),
        esc(caption)
    );
}

fn check_showcase(s: &Showcase) -> Result<()> {
    let n: usize = s.shape.iter().product();
    let bad = s.truth.len() != n
        || s.methods.iter().any(|m| {
            m.image.len() != n || m.error.len() != n || m.std.as_ref().is_some_and(|v| v.len() != n)
        });
    if bad || s.frame >= s.shape[0] {
        return Err(Error::invalid(
            format!("report showcase {}", s.title),
            format!(
                "images of shape {:?} and a frame below {}",
                s.shape, s.shape[0]
            ),
            "mismatched sizes",
        ));
    }
    Ok(())
}

fn image_panels(h: &mut String, showcases: &[Showcase]) -> Result<()> {
    h.push_str("<h2 id=\"images\">Images and errors</h2>\n");
    for s in showcases {
        check_showcase(s)?;
        let [_, hh, ww] = s.shape;
        let (lo, hi) = s.window;
        let _ = writeln!(
            h,
            "<h3>{} — frame {}</h3>\n<div class=\"grid\">",
            esc(&s.title),
            s.frame
        );
        let uri = png_uri(frame_of(&s.truth, s.shape, s.frame), [hh, ww], lo, hi)?;
        figure(h, &uri, "truth", [hh, ww]);
        for m in &s.methods {
            let uri = png_uri(frame_of(&m.image, s.shape, s.frame), [hh, ww], lo, hi)?;
            figure(h, &uri, &format!("{} ({:.2} dB)", m.name, m.psnr), [hh, ww]);
        }
        h.push_str("</div>\n<div class=\"grid\">");
        let scale = if ww <= 128 { 2 } else { 1 };
        let _ = writeln!(
            h,
            "<figure><div class=\"label\" style=\"width:{}px;height:{}px\">|x̂ − x|, ×4<br>(white = {:.3})</div></figure>",
            ww * scale,
            hh * scale,
            (hi - lo) / 4.0
        );
        for m in &s.methods {
            let uri = png_uri(
                frame_of(&m.error, s.shape, s.frame),
                [hh, ww],
                0.0,
                (hi - lo) / 4.0,
            )?;
            figure(h, &uri, &format!("{} error", m.name), [hh, ww]);
        }
        h.push_str("</div>\n");
    }
    Ok(())
}

/// A row of labels over the panels of a cine GIF shown at `scale`.
fn strip(h: &mut String, labels: &[String], w: usize, scale: usize) {
    let _ = write!(
        h,
        "<div class=\"strip\" style=\"padding-left:{}px\">",
        GAP * scale
    );
    for l in labels {
        let _ = write!(
            h,
            "<span style=\"width:{}px\">{}</span>",
            (w + GAP) * scale,
            esc(l)
        );
    }
    h.push_str("</div>\n");
}

fn gif_uri(panels: &[Panel], shape: [usize; 3]) -> Result<String> {
    Ok(format!(
        "data:image/gif;base64,{}",
        base64(&encode_cine(panels, shape, 10.0)?)
    ))
}

fn cine_panels(h: &mut String, showcases: &[Showcase]) -> Result<()> {
    h.push_str("<h2 id=\"cines\">Cine comparisons (10 frames/s)</h2>\n");
    let mut any = false;
    for s in showcases.iter().filter(|s| s.shape[0] >= 2) {
        any = true;
        let [_, hh, ww] = s.shape;
        let (lo, hi) = s.window;
        let shift = |v: &[f32]| v.iter().map(|x| x - lo).collect::<Vec<f32>>();
        let mut panels = vec![Panel {
            values: shift(&s.truth),
            white: hi - lo,
        }];
        let mut labels = vec!["truth".to_string()];
        for m in &s.methods {
            panels.push(Panel {
                values: shift(&m.image),
                white: hi - lo,
            });
            labels.push(m.name.clone());
        }
        let width = panels.len() * (ww + GAP) + GAP;
        let scale = if width * 2 <= 1400 { 2 } else { 1 };
        let _ = writeln!(h, "<h3>{}</h3>", esc(&s.title));
        strip(h, &labels, ww, scale);
        let _ = writeln!(
            h,
            "<img class=\"px\" src=\"{}\" width=\"{}\" height=\"{}\" alt=\"cine {}\">",
            gif_uri(&panels, s.shape)?,
            width * scale,
            (hh + 2 * GAP) * scale,
            esc(&s.title)
        );
        let errors: Vec<Panel> = s
            .methods
            .iter()
            .map(|m| Panel {
                values: m.error.clone(),
                white: (hi - lo) / 4.0,
            })
            .collect();
        if !errors.is_empty() {
            let labels: Vec<String> = s
                .methods
                .iter()
                .map(|m| format!("{} |err|×4", m.name))
                .collect();
            let width = errors.len() * (ww + GAP) + GAP;
            strip(h, &labels, ww, scale);
            let _ = writeln!(
                h,
                "<img class=\"px\" src=\"{}\" width=\"{}\" height=\"{}\" alt=\"errors {}\">",
                gif_uri(&errors, s.shape)?,
                width * scale,
                (hh + 2 * GAP) * scale,
                esc(&s.title)
            );
        }
    }
    if !any {
        h.push_str("<p class=\"note\">Single images only: no cines.</p>\n");
    }
    Ok(())
}

fn uncertainty_panels(h: &mut String, showcases: &[Showcase]) -> Result<()> {
    h.push_str("<h2 id=\"uncertainty\">Uncertainty maps</h2>\n<p class=\"small\">Per-pixel standard deviation of the posterior draws (samples or particles) next to the actual error of their mean; where the spread is high the method is unsure, and a calibrated method's spread follows its error.</p>\n");
    let mut any = false;
    for s in showcases {
        let with_std: Vec<&ShowMethod> = s.methods.iter().filter(|m| m.std.is_some()).collect();
        if with_std.is_empty() {
            continue;
        }
        any = true;
        let [_, hh, ww] = s.shape;
        let (lo, hi) = s.window;
        let _ = writeln!(h, "<h3>{} — frame {}</h3>", esc(&s.title), s.frame);
        for m in with_std {
            let std = m.std.as_deref().unwrap_or(&[]);
            let frame_std = frame_of(std, s.shape, s.frame);
            let frame_err = frame_of(&m.error, s.shape, s.frame);
            let rms = |v: &[f32]| {
                (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
            };
            let white = (hi - lo) / 4.0;
            h.push_str("<div class=\"grid\">");
            let uri = png_uri(frame_of(&m.image, s.shape, s.frame), [hh, ww], lo, hi)?;
            figure(h, &uri, &format!("{} (mean of draws)", m.name), [hh, ww]);
            let uri = png_uri(frame_err, [hh, ww], 0.0, white)?;
            figure(
                h,
                &uri,
                &format!("|error| ×4, RMS {:.4}", rms(frame_err)),
                [hh, ww],
            );
            let uri = png_uri(frame_std, [hh, ww], 0.0, white)?;
            figure(
                h,
                &uri,
                &format!("posterior std ×4, RMS {:.4}", rms(frame_std)),
                [hh, ww],
            );
            h.push_str("</div>\n");
        }
    }
    if !any {
        h.push_str("<p class=\"note\">No method was run with several draws (pass --samples or --particles ≥ 2).</p>\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10 test vectors.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn escapes_text() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
