//! `cinediff eval`: the outputs of a tiny matrix (metrics.csv rows and columns, summary.json
//! against the rows, the report's inline images), resumability (a second run skips every cell,
//! a deleted cell and only it runs again, changed settings re-run only the affected cells), bad
//! input, and — when chromium is installed — the report rendering in headless Chromium with
//! every image loaded.
//!
//! The diffusion cells use the shipped prior with 4–5 steps: the point is the machinery, not the
//! image quality.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[macro_use]
mod common;

use common::*;

const PRIOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/cine64-small");

/// One complex phantom cine of `frames` frames, `size`×`size` ([1, T, H, W]).
fn phantom(dir: &TempDir, frames: usize, size: usize) -> PathBuf {
    let out = dir.join("data.npy");
    let (f, s) = (frames.to_string(), size.to_string());
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        f,
        "--size",
        s,
        "--count",
        "1",
        "--seed",
        "5",
        "--out",
        out
    ]);
    out
}

/// The tiny matrix: classic methods, ddim-dc (4 steps) and seqdiff (4-step grid, 2 warm steps,
/// 2 particles) on MRI 4×.
fn tiny_eval(data: &Path, out: &Path, steps: &str) -> String {
    let a: Vec<&std::ffi::OsStr> = args![
        "eval",
        "--data",
        data,
        "--out",
        out,
        "--methods",
        "zero-filled,tv,tv-t,ddim-dc,seqdiff",
        "--accels",
        "4",
        "--model",
        PRIOR,
        "--steps",
        steps,
        "--dc-steps",
        "2",
        "--sequence-steps",
        "4",
        "--warm-start",
        "2",
        "--particles",
        "2"
    ]
    .to_vec();
    String::from_utf8_lossy(&ok(&a).stderr).into_owned()
}

fn read(path: &Path) -> String {
    String::from_utf8(bytes(path)).unwrap()
}

/// metrics.csv as (header, rows of fields).
fn csv(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = read(path);
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The rows without the seconds column (which differs between runs).
fn without_seconds(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r[..10].to_vec()).collect()
}

#[test]
fn eval_writes_metrics_summary_report_and_resumes() {
    let dir = TempDir::new("eval-tiny");
    let data = phantom(&dir, 4, 64);
    let out = dir.join("rep");
    let first = tiny_eval(&data, &out, "4");
    assert!(first.contains("ran 5 cell(s), skipped 0"), "{first}");

    // metrics.csv: one row per method × frame (1 item, 1 operator, 1 acceleration, 1 seed).
    let (header, rows) = csv(&out.join("metrics.csv"));
    assert_eq!(
        header,
        "item,operator,acceleration,seed,method,frame,psnr,ssim,nrmse,nfe,seconds"
    );
    assert_eq!(rows.len(), 5 * 4);
    let num = |r: &Vec<String>, k: usize| r[k].parse::<f64>().unwrap();
    for r in &rows {
        assert_eq!(r.len(), 11, "{r:?}");
        assert_eq!(
            (&r[0][..], &r[1][..], &r[2][..], &r[3][..]),
            ("item0", "mri", "4", "0")
        );
        let (psnr, ssim, nrmse, secs) = (num(r, 6), num(r, 7), num(r, 8), num(r, 10));
        assert!(psnr.is_finite() && psnr > 5.0, "{r:?}");
        assert!(
            ssim > 0.0 && ssim <= 1.0 && nrmse > 0.0 && secs >= 0.0,
            "{r:?}"
        );
    }
    let method_rows =
        |m: &str| -> Vec<&Vec<String>> { rows.iter().filter(|r| r[4] == m).collect() };
    // NFEs by definition: classic 0; ddim-dc 4 steps × 1 evaluation; seqdiff frame 0 the whole
    // 4-step grid, later frames the 2 warm steps, each × 2 particles.
    assert!(method_rows("tv").iter().all(|r| r[9] == "0"));
    assert!(method_rows("ddim-dc").iter().all(|r| r[9] == "4"));
    let seq: Vec<&str> = method_rows("seqdiff").iter().map(|r| &r[9][..]).collect();
    assert_eq!(seq, ["8", "4", "4", "4"]);
    let mean = |m: &str, k: usize| {
        let v = method_rows(m);
        v.iter().map(|r| num(r, k)).sum::<f64>() / v.len() as f64
    };
    // TV beats zero-filling at 4× (BENCHMARKS.md: 18.3 vs 29.2 dB on another phantom seed).
    assert!(mean("tv", 6) > mean("zero-filled", 6) + 3.0);

    // summary.json: the means of the rows, in the requested method order.
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["cells_finished"], 5);
    assert_eq!(summary["cells_planned"], 5);
    let groups = summary["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["method"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zero-filled", "tv", "tv-t", "ddim-dc", "seqdiff"]);
    for g in groups {
        let m = g["method"].as_str().unwrap();
        assert_eq!(g["frames"], 4);
        let psnr = g["psnr"]["mean"].as_f64().unwrap();
        // metrics.csv rounds PSNR to 4 decimals.
        assert!(
            (psnr - mean(m, 6)).abs() < 1e-3,
            "{m}: {psnr} vs {}",
            mean(m, 6)
        );
        assert!(g["psnr"]["std"].as_f64().unwrap() >= 0.0);
        assert!((g["nfe_per_frame"]["mean"].as_f64().unwrap() - mean(m, 9)).abs() < 1e-9);
    }

    // report.html: self-contained, every image inline, charts as SVG, std maps from seqdiff's particles.
    let html = read(&out.join("report.html"));
    let imgs = html.matches("<img ").count();
    // Stills: truth + 5 methods, 5 error maps; 2 cine GIFs (images, errors); seqdiff's
    // uncertainty row (mean, error, std).
    assert_eq!(imgs, 6 + 5 + 2 + 3, "images in the report");
    assert_eq!(
        html.matches("src=\"data:image/").count(),
        imgs,
        "every image must be a data: URI"
    );
    assert!(html.contains("data:image/gif;base64,") && html.contains("data:image/png;base64,"));
    assert!(
        html.matches("<svg").count() >= 3,
        "per-frame and trade-off charts"
    );
    assert!(html.contains("posterior std"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(html.contains("5 of 5 cells finished"));

    // Second run: every cell is skipped and the outputs keep their numbers.
    let again = tiny_eval(&data, &out, "4");
    assert!(again.contains("ran 0 cell(s), skipped 5"), "{again}");
    let (_, rows2) = csv(&out.join("metrics.csv"));
    assert_eq!(rows2, rows);

    // A deleted cell and only it runs again, with the same (deterministic) metrics.
    let cells = out.join("cells");
    let tv_id = "item0_mri-4x_s0_tv";
    let seq_record = bytes(&cells.join("item0_mri-4x_s0_seqdiff/cell.json"));
    std::fs::remove_dir_all(cells.join(tv_id)).unwrap();
    let third = tiny_eval(&data, &out, "4");
    assert!(third.contains("ran 1 cell(s), skipped 4"), "{third}");
    assert!(third.contains(&format!("cell {tv_id} done")), "{third}");
    assert_eq!(
        bytes(&cells.join("item0_mri-4x_s0_seqdiff/cell.json")),
        seq_record
    );
    let (_, rows3) = csv(&out.join("metrics.csv"));
    assert_eq!(without_seconds(&rows3), without_seconds(&rows));

    // Changed settings re-run exactly the cells they affect: --steps is ddim-dc's only.
    let fourth = tiny_eval(&data, &out, "5");
    assert!(fourth.contains("ran 1 cell(s), skipped 4"), "{fourth}");
    assert!(
        fourth.contains("cell item0_mri-4x_s0_ddim-dc done"),
        "{fourth}"
    );
}

#[test]
fn eval_bad_input_fails_with_one_line_errors() {
    let dir = TempDir::new("eval-bad");
    let out = dir.join("rep");
    let missing = dir.join("missing.npy");
    fails(
        args!["eval", "--data", missing, "--out", out],
        &["missing.npy"],
    );

    let flat = dir.join("flat.npy");
    std::fs::write(&flat, npy_bytes("<f4", &[16], &f32_payload(&[1.0; 16]))).unwrap();
    fails(
        args!["eval", "--data", flat, "--out", out, "--methods", "tv"],
        &["flat.npy", "[N, H, W]", "[16]"],
    );

    // 32×32 images [2, 32, 32].
    let small = dir.join("small.npy");
    let values: Vec<f32> = (0..2 * 32 * 32)
        .map(|i| (i % 7) as f32 / 7.0 + 0.1)
        .collect();
    std::fs::write(
        &small,
        npy_bytes("<f4", &[2, 32, 32], &f32_payload(&values)),
    )
    .unwrap();
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "tv,nope"
        ],
        &["unknown method 'nope'", "zero-filled"],
    );
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "ddim-dc",
            "--model",
            PRIOR
        ],
        &["32x32", "does not match the prior", "64x64"],
    );
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "tv",
            "--accels",
            "4,0.5"
        ],
        &["--accels", "0.5"],
    );
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "tv",
            "--limit-frames",
            "0"
        ],
        &["--limit-frames", "at least 1"],
    );
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "tv",
            "--steps",
            "0"
        ],
        &["diffusion steps", "at least 1"],
    );
    fails(
        args![
            "eval",
            "--data",
            small,
            "--out",
            out,
            "--methods",
            "seqdiff",
            "--model",
            PRIOR
        ],
        &["no cell to run"],
    );
    let busy = dir.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    fails(
        args!["eval", "--data", small, "--out", busy, "--methods", "tv"],
        &["busy", "no earlier eval"],
    );

    // A bundle without truth cannot be scored.
    let truth = dir.join("truth.npy");
    std::fs::write(
        &truth,
        npy_bytes("<f4", &[2, 32, 32], &f32_payload(&values)),
    )
    .unwrap();
    let bundle = dir.join("bundle");
    ok(args![
        "simulate",
        "--truth",
        truth,
        "--operator",
        "mri",
        "--accel",
        "2",
        "--out",
        bundle
    ]);
    std::fs::remove_file(bundle.join("truth.npy")).unwrap();
    fails(
        args!["eval", "--data", bundle, "--out", out, "--methods", "tv"],
        &["bundle", "truth"],
    );
    assert!(!out.join("metrics.csv").exists());
}

#[test]
fn eval_reads_a_folder_of_bundles_as_measured() {
    let dir = TempDir::new("eval-bundles");
    let truth = phantom(&dir, 4, 32);
    let folder = dir.join("bundles");
    for (name, accel, op) in [("a-mri", "4", "mri"), ("b-lines", "2", "us-lines")] {
        let b = folder.join(name);
        ok(args![
            "simulate",
            "--truth",
            truth,
            "--operator",
            op,
            "--accel",
            accel,
            "--seed",
            "3",
            "--out",
            b
        ]);
    }
    let out = dir.join("rep");
    let stderr = String::from_utf8_lossy(
        &ok(args![
            "eval",
            "--data",
            folder,
            "--out",
            out,
            "--methods",
            "zero-filled,interp",
            "--limit-frames",
            "3",
            "--seeds",
            "0,1"
        ])
        .stderr,
    )
    .into_owned();
    // interp applies to the scan-line bundle only: (1 + 2 methods) × 2 seeds.
    assert!(stderr.contains("ran 6 cell(s)"), "{stderr}");
    let (_, rows) = csv(&out.join("metrics.csv"));
    assert_eq!(rows.len(), 6 * 3, "3 frames per cell");
    let conditions: std::collections::BTreeSet<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[4].clone()))
        .collect();
    let expected: std::collections::BTreeSet<(String, String, String, String)> = [
        ("a-mri", "mri", "4", "zero-filled"),
        ("b-lines", "us-lines", "2", "zero-filled"),
        ("b-lines", "us-lines", "2", "interp"),
    ]
    .iter()
    .map(|&(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
    .collect();
    assert_eq!(conditions, expected);
    // The measurement is the bundle's own whatever the seed, and classic methods use no
    // randomness: both seeds give the same metrics.
    let seed = |k: &str| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| r[3] == k)
            .map(|r| {
                let mut v = r[..9].to_vec();
                v.remove(3);
                v
            })
            .collect()
    };
    assert_eq!(seed("0"), seed("1"));
}

/// `eval --baseline bart` adds the bart-pics cell (BART's pics, λ swept): on an 8-frame 4× cine it
/// beats zero-filled, its cell records the sweep and the winning weights, and a re-run skips it.
/// Skipped with a message when `bart` is not on the PATH (scripts/test.sh installs it as root).
#[test]
fn eval_baseline_bart_sweeps_pics_and_keeps_the_best() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("bart").is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!(
            "skipping eval_baseline_bart_sweeps_pics_and_keeps_the_best: bart is not on the PATH"
        );
        return;
    }
    let dir = TempDir::new("eval-bart");
    let data = phantom(&dir, 8, 32);
    let out = dir.join("rep");
    let run_it = || {
        String::from_utf8_lossy(
            &ok(args![
                "eval",
                "--data",
                data,
                "--out",
                out,
                "--methods",
                "zero-filled",
                "--baseline",
                "bart",
                "--accels",
                "4"
            ])
            .stderr,
        )
        .into_owned()
    };
    let first = run_it();
    assert!(first.contains("ran 2 cell(s)"), "{first}");
    let (_, rows) = csv(&out.join("metrics.csv"));
    let mean = |m: &str| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r[4] == m)
            .map(|r| r[6].parse().unwrap())
            .collect();
        assert_eq!(v.len(), 8, "{m}: one row per frame");
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (zf, pics) = (mean("zero-filled"), mean("bart-pics"));
    assert!(
        pics > zf + 3.0,
        "bart-pics {pics:.2} dB vs zero-filled {zf:.2} dB"
    );
    let cell = json(&out.join("cells/item0_mri-4x_s0_bart-pics/cell.json"));
    let settings = &cell["settings"];
    for key in [
        "lambda",
        "lambda_t",
        "iterations",
        "program",
        "sweep_mean_psnr",
    ] {
        assert!(settings.get(key).is_some(), "{key} missing in {settings}");
    }
    // Every grid point was run: 3 wavelet weights × 3 temporal weights.
    let sweep = settings["sweep_mean_psnr"].as_str().unwrap();
    assert_eq!(sweep.matches("lambda=").count(), 9, "{sweep}");
    assert!(read(&out.join("report.html")).contains("bart-pics"));
    let second = run_it();
    assert!(second.contains("ran 0 cell(s), skipped 2"), "{second}");
}

/// The chromium binary, or None (the browser test is then skipped with a message).
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
            (found.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// Runs headless chromium on `page` with `extra` flags; returns stdout. Killed after 180 s.
fn run_chromium(bin: &Path, profile: &Path, page: &Path, extra: &[String]) -> String {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn chromium");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut { stdout }, &mut s).ok();
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The value of attribute `name` of the element with id `image-check` in `dom`.
fn check_attribute(dom: &str, name: &str) -> Option<i64> {
    let at = dom.find("id=\"image-check\"")?;
    let tag_start = dom[..at].rfind('<')?;
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>')?];
    let key = format!("{name}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    v[..v.find('"')?].parse().ok()
}

#[test]
fn eval_report_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        eprintln!("SKIPPED eval_report_renders_in_headless_chromium: chromium is not installed (scripts/test.sh installs it with apt-get as root)");
        return;
    };
    let dir = TempDir::new("eval-browser");
    let data = phantom(&dir, 3, 64);
    let out = dir.join("rep");
    ok(args![
        "eval",
        "--data",
        data,
        "--out",
        out,
        "--methods",
        "zero-filled,cg,tv-t,ddim-dc",
        "--accels",
        "4,8",
        "--model",
        PRIOR,
        "--steps",
        "4",
        "--dc-steps",
        "2",
        "--samples",
        "2"
    ]);
    let page = out.join("report.html");
    let html = read(&page);
    let images = html.matches("<img ").count() as i64;
    assert!(images > 0);

    let profile = TempDir::new("eval-chromium-profile");
    let dom = run_chromium(
        &bin,
        &profile.0,
        &page,
        &["--virtual-time-budget=15000".into(), "--dump-dom".into()],
    );
    let total = check_attribute(&dom, "data-total");
    let loaded = check_attribute(&dom, "data-loaded");
    assert_eq!(
        total,
        Some(images),
        "the page's own count of <img> elements"
    );
    assert_eq!(
        loaded,
        Some(images),
        "images that decoded (complete, naturalWidth > 0)"
    );

    let shot = dir.join("report.png");
    let profile = TempDir::new("eval-chromium-profile");
    run_chromium(
        &bin,
        &profile.0,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400".into(),
            "--hide-scrollbars".into(),
        ],
    );
    let png = bytes(&shot);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    assert!(
        png.len() > 20_000,
        "screenshot of {} bytes looks blank",
        png.len()
    );
}
