//! File-format interoperability through the `cinediff` binary: npy ↔ BART cfl ↔ NIfTI round trips
//! (bitwise), files written by independent implementations (nibabel NIfTI, spec-written PNG/APNG),
//! BART itself (k-space from `bart phantom -k` reconstructs; `bart fft -u -i` of our k-space is our
//! zero-filled image; our cfl opens in `bart show` / `bart toimg` the right way round), and
//! malformed inputs failing with one-line errors.
//!
//! Run with `cargo test --release --test interop`. Tests that need `bart` print a message and
//! pass when it is not on the PATH (`scripts/test.sh` installs it with apt-get when it can).

use std::path::{Path, PathBuf};

use cinediff::io::cfl::{read_cfl, write_cfl, Cfl};
use cinediff::io::nifti::read_nifti;
use cinediff::io::npy::{read_npy, write_npy_c64, write_npy_f32, NpyArray};
use cinediff::io::png::read_png;
use num_complex::Complex32;

#[macro_use]
mod common;

use common::*;

/// `bart` on the PATH, or `None` after printing why the calling test is skipped.
fn bart(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("bart"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("skipping {test}: bart is not on the PATH (scripts/test.sh installs it with apt-get as root)");
    }
    found
}

/// Runs `bart args…` in `dir`, asserting success; returns stdout.
fn run_bart(bart: &Path, dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bart)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn bart");
    assert!(
        out.status.success(),
        "bart {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn complex(path: &Path) -> (Vec<usize>, Vec<Complex32>) {
    match read_npy(path).unwrap_or_else(|e| panic!("{e}")) {
        NpyArray::Complex { shape, data } => (shape, data),
        other => panic!(
            "{}: expected complex64, got {}",
            path.display(),
            other.dtype()
        ),
    }
}

fn real(path: &Path) -> (Vec<usize>, Vec<f32>) {
    match read_npy(path).unwrap_or_else(|e| panic!("{e}")) {
        NpyArray::Real { shape, data } => (shape, data),
        other => panic!(
            "{}: expected float32, got {}",
            path.display(),
            other.dtype()
        ),
    }
}

/// max |a − b| / max |b|.
fn rel_err(a: &[Complex32], b: &[Complex32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let peak = b.iter().map(|v| v.norm()).fold(0.0f32, f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).norm())
        .fold(0.0f32, f32::max)
        / peak
}

/// Deterministic test values with awkward bit patterns: −0.0, a subnormal, a NaN payload, extremes.
fn awkward(n: usize) -> Vec<Complex32> {
    let mut v: Vec<Complex32> = (0..n)
        .map(|k| {
            let x = (k as f32 * 0.618_034).sin() * 10f32.powi(k as i32 % 7 - 3);
            Complex32::new(x, -x * 1.5 + k as f32)
        })
        .collect();
    v[0] = Complex32::new(-0.0, 0.0);
    v[1] = Complex32::new(f32::from_bits(1), -f32::MAX);
    v[2] = Complex32::new(f32::from_bits(0x7fc0_1234), f32::MIN_POSITIVE);
    v
}

#[test]
fn npy_cfl_nifti_round_trips_are_bitwise() {
    let dir = TempDir::new("roundtrip");
    // complex64 [T=3, H=6, W=5]: npy → cfl → nii → cfl → npy, every file compared bit for bit.
    let values = awkward(90);
    let a = dir.join("a.npy");
    write_npy_c64(&a, &[3, 6, 5], &values).unwrap();
    ok(args!["convert", a, dir.join("b.cfl")]);
    ok(args!["convert", dir.join("b.cfl"), dir.join("c.nii")]);
    ok(args!["convert", dir.join("c.nii"), dir.join("d.cfl")]);
    ok(args!["convert", dir.join("d.cfl"), dir.join("e.npy")]);
    assert_eq!(
        bytes(&a),
        bytes(&dir.join("e.npy")),
        "npy → cfl → nii → cfl → npy"
    );
    assert_eq!(bytes(&dir.join("b.cfl")), bytes(&dir.join("d.cfl")));
    // The cfl data is column-major with h fastest: x[t, h, w] at h + 6w + 30t (BART dims 0, 1, 10),
    // each value little-endian re, im.
    let cfl = bytes(&dir.join("b.cfl"));
    for (t, h, w) in [(0, 1, 0), (1, 2, 3), (2, 5, 4)] {
        let k = h + 6 * w + 30 * t;
        let v = values[(t * 6 + h) * 5 + w];
        let mut expected = v.re.to_le_bytes().to_vec();
        expected.extend(v.im.to_le_bytes());
        assert_eq!(&cfl[8 * k..8 * k + 8], &expected[..], "x[{t}, {h}, {w}]");
    }
    let hdr = String::from_utf8(bytes(&dir.join("b.hdr"))).unwrap();
    assert!(
        hdr.starts_with("# Dimensions\n6 5 1 1 1 1 1 1 1 1 3 1 1 1 1 1 \n"),
        "{hdr}"
    );
    // NIfTI keeps i fastest too: dim = [4, 6, 5, 1, 3], datatype 32 (complex64), data at 352.
    let nii = bytes(&dir.join("c.nii"));
    let i16_at = |o: usize| i16::from_le_bytes([nii[o], nii[o + 1]]);
    assert_eq!(
        (0..5).map(|k| i16_at(40 + 2 * k)).collect::<Vec<_>>(),
        vec![4, 6, 5, 1, 3]
    );
    assert_eq!(i16_at(70), 32);
    assert_eq!(&nii[352..360], &cfl[..8]);

    // float32 [Z=2, H=3, W=4] as a slice stack (--axes z,h,w): npy → nii → npy is bitwise; via cfl
    // (complex-only) the real parts are bitwise and the imaginary parts exactly 0.
    let re: Vec<f32> = awkward(24).iter().map(|v| v.re).collect();
    let f = dir.join("f.npy");
    write_npy_f32(&f, &[2, 3, 4], &re).unwrap();
    ok(args!["convert", f, dir.join("f.nii"), "--axes", "z,h,w"]);
    ok(args!["convert", dir.join("f.nii"), dir.join("g.npy")]);
    assert_eq!(bytes(&f), bytes(&dir.join("g.npy")));
    let nii = bytes(&dir.join("f.nii"));
    assert_eq!(
        i16::from_le_bytes([nii[40], nii[41]]),
        3,
        "a slice stack is 3-D"
    );
    ok(args!["convert", f, dir.join("f.cfl"), "--axes", "z,h,w"]);
    let cfl = read_cfl(&dir.join("f.cfl")).unwrap();
    assert_eq!(&cfl.dims[..3], &[3, 4, 2], "z is BART dim 2");
    ok(args!["convert", dir.join("f.cfl"), dir.join("h.npy")]);
    let (shape, back) = complex(&dir.join("h.npy"));
    assert_eq!(shape, vec![2, 3, 4]);
    assert!(back
        .iter()
        .zip(&re)
        .all(|(b, r)| b.re.to_bits() == r.to_bits() && b.im.to_bits() == 0));

    // [T, C, H, W] k-space keeps its coil axis in BART (dim 3) and is refused by NIfTI.
    let k = dir.join("k.npy");
    write_npy_c64(&k, &[2, 3, 4, 4], &awkward(96)).unwrap();
    ok(args!["convert", k, dir.join("k.cfl")]);
    let cfl = read_cfl(&dir.join("k.cfl")).unwrap();
    assert_eq!(
        (cfl.dims[0], cfl.dims[1], cfl.dims[3], cfl.dims[10]),
        (4, 4, 3, 2)
    );
    ok(args!["convert", dir.join("k.cfl"), dir.join("k2.npy")]);
    assert_eq!(bytes(&k), bytes(&dir.join("k2.npy")));
    fails(args!["convert", k, dir.join("k.nii")], &["coil", "k.nii"]);
}

#[test]
fn nifti_files_written_by_nibabel_read_as_nibabel_reads_them() {
    // tests/golden/nifti_golden.py: nibabel 5.4.2 wrote each .nii (scaled int16 in both byte
    // orders, uint8, big-endian int32, float64, a big-endian 4-D series with one slice, a 4-D
    // volume, complex64) and saved its own scaled reading as .npy in cinediff's axis order.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nifti");
    let cases = [
        ("int16_le_scaled", vec![3, 5, 4], "z,h,w"),
        ("int16_be_scaled", vec![3, 5, 4], "z,h,w"),
        ("uint8_2d", vec![5, 4], "h,w"),
        ("int32_be", vec![3, 5, 4], "z,h,w"),
        ("float64_le", vec![3, 5, 4], "z,h,w"),
        ("float32_be_series", vec![3, 5, 4], "t,h,w"),
        ("float32_4d", vec![2, 3, 5, 4], "t,z,h,w"),
        ("complex64_le", vec![3, 5, 4], "z,h,w"),
    ];
    for (name, shape, axes) in cases {
        let image = read_nifti(&data.join(format!("{name}.nii"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(image.array.shape(), &shape[..], "{name}");
        assert_eq!(image.layout.names(), axes, "{name}");
        match (
            image.array,
            read_npy(&data.join(format!("{name}.npy"))).unwrap(),
        ) {
            (NpyArray::Real { data: got, .. }, NpyArray::Real { data: want, .. }) => {
                // Scaling is computed in float64 then rounded to float32 by both: equal values.
                assert_eq!(got, want, "{name}");
            }
            (NpyArray::Complex { data: got, .. }, NpyArray::Complex { data: want, .. }) => {
                assert_eq!(got, want, "{name}");
            }
            (got, want) => panic!("{name}: got {}, expected {}", got.dtype(), want.dtype()),
        }
    }
    // The scaled int16 values are those of the generator's formula: voxel (i, j, k) stores
    // 100i + 10j + k − 200, read as stored·2 + 1 (big-endian file): x[k=1, i=0, j=0] = −397.
    let image = read_nifti(&data.join("int16_be_scaled.nii")).unwrap();
    let NpyArray::Real { data: v, .. } = image.array else {
        unreachable!()
    };
    assert_eq!(v[20], -397.0);
    assert_eq!(image.header.scaling, Some((2.0, 1.0)));
    assert!(image.header.big_endian);
}

#[test]
fn png_files_written_from_the_spec_decode_to_their_levels() {
    // tests/golden/png_golden.py writes these with Python's zlib from the PNG/APNG specs.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/png");
    for (name, depth) in [("grey16", 16), ("grey8", 8), ("grey4", 8), ("apng8", 8)] {
        let image = read_png(&data.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("{e}"));
        let (shape, want) = real(&data.join(format!("{name}.npy")));
        assert_eq!(image.shape, shape, "{name}");
        assert_eq!(image.bit_depth, depth, "{name}");
        assert_eq!(image.data, want, "{name}");
    }
}

#[test]
fn png16_and_apng_round_trip_through_the_binary() {
    let dir = TempDir::new("png");
    // Integer levels with the window 0:65535 are stored exactly in 16 bits and read back as they are.
    let levels: Vec<f32> = (0..35).map(|k| ((k * 1927) % 65536) as f32).collect();
    let a = dir.join("a.npy");
    write_npy_f32(&a, &[5, 7], &levels).unwrap();
    ok(args![
        "convert",
        a,
        dir.join("a.png"),
        "--bit-depth",
        "16",
        "--window",
        "0:65535"
    ]);
    ok(args!["convert", dir.join("a.png"), dir.join("b.npy")]);
    assert_eq!(real(&dir.join("b.npy")), (vec![5, 7], levels.clone()));
    // 8 bits: the window [0, 2] maps v to round(255·v/2); values outside clamp.
    let v = [0.0f32, 0.5, 1.0, 2.0, 3.0, -1.0];
    let c = dir.join("c.npy");
    write_npy_f32(&c, &[2, 3], &v).unwrap();
    ok(args!["convert", c, dir.join("c.png"), "--window", "0:2"]);
    let image = read_png(&dir.join("c.png")).unwrap();
    assert_eq!(image.data, vec![0.0, 64.0, 128.0, 255.0, 255.0, 0.0]);

    // A complex cine [T=4, H=5, W=6] as APNG: four full frames of |x|, the default window
    // [0, max |x|]; the file carries acTL (4 frames, looping) and one fcTL per frame.
    let cine: Vec<Complex32> = (0..120)
        .map(|k| Complex32::new(0.0, k as f32 / 119.0 * 3.0))
        .collect();
    let d = dir.join("d.npy");
    write_npy_c64(&d, &[4, 5, 6], &cine).unwrap();
    ok(args!["convert", d, dir.join("d.apng"), "--fps", "20"]);
    let image = read_png(&dir.join("d.apng")).unwrap();
    assert_eq!(image.shape, vec![4, 5, 6]);
    let want: Vec<f32> = (0..120)
        .map(|k| (k as f32 / 119.0 * 255.0).round())
        .collect();
    assert_eq!(image.data, want);
    let file = bytes(&dir.join("d.apng"));
    let chunks = png_chunks(&file);
    let actl = chunks
        .iter()
        .find(|(k, _)| k == b"acTL")
        .expect("acTL chunk");
    assert_eq!(&actl.1[..], &[0, 0, 0, 4, 0, 0, 0, 0]);
    let fctl: Vec<_> = chunks.iter().filter(|(k, _)| k == b"fcTL").collect();
    assert_eq!(fctl.len(), 4);
    // delay 5/100 s at 20 frames per second (fcTL bytes 20..24: delay_num, delay_den).
    assert_eq!(&fctl[0].1[20..24], &[0, 5, 0, 100]);

    // A sequence cannot be one still PNG; GIF writes it.
    fails(args!["convert", d, dir.join("d.png")], &["d.png", "apng"]);
    ok(args!["convert", d, dir.join("d.gif")]);
    assert!(bytes(&dir.join("d.gif")).starts_with(b"GIF89a"));
}

/// CRC-32 (ISO 3309, as PNG chunks use), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// (type, data) of every chunk of a PNG file, walking the length-prefixed chunk list.
fn png_chunks(file: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= file.len() {
        let len = u32::from_be_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let kind = [file[at + 4], file[at + 5], file[at + 6], file[at + 7]];
        out.push((kind, file[at + 8..at + 8 + len].to_vec()));
        at += 12 + len;
    }
    out
}

#[test]
fn cinediff_cfl_opens_in_bart_the_right_way_round() {
    let Some(bart) = bart("cinediff_cfl_opens_in_bart_the_right_way_round") else {
        return;
    };
    let dir = TempDir::new("bartshow");
    // x[t, h, w] = 5h + w + 20t + i(…): H = 4 rows (readout), W = 5 columns, T = 3 frames.
    let values: Vec<Complex32> = (0..60)
        .map(|k| Complex32::new(k as f32, 0.5 * k as f32))
        .collect();
    let a = dir.join("a.npy");
    write_npy_c64(&a, &[3, 4, 5], &values).unwrap();
    ok(args!["convert", a, dir.join("a.cfl")]);
    let dims = run_bart(&bart, &dir.0, &["show", "-m", "a"]);
    assert!(
        dims.contains("AoD:\t4\t5\t1\t1\t1\t1\t1\t1\t1\t1\t3\t1"),
        "bart show -m: {dims}"
    );
    // Frame t = 1 (BART dim 10): `bart show` prints one line per dim-1 index (w), listing dim 0 (h).
    run_bart(&bart, &dir.0, &["slice", "10", "1", "a", "a1"]);
    let text = run_bart(&bart, &dir.0, &["show", "a1"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    for (w, line) in lines.iter().enumerate() {
        let entries: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(entries.len(), 4);
        for (h, e) in entries.iter().enumerate() {
            let re: f32 = e[..13].parse().unwrap_or_else(|_| panic!("{e}"));
            assert_eq!(
                re,
                values[20 + 5 * h + w].re,
                "x[1, {h}, {w}] in `bart show`: {e}"
            );
        }
    }
    // `bart toimg` writes one PNG per frame, H rows × W columns (the orientation of ours), levels
    // ⌊255·|x|/max|x|⌋ over the whole array (measured with bart 0.8.00: truncation, global max).
    run_bart(&bart, &dir.0, &["toimg", "a", "img"]);
    let peak = values.iter().map(|v| v.norm()).fold(0.0f32, f32::max);
    for t in 0..3 {
        let image = read_png(&dir.join(&format!("img-000{t}.png"))).unwrap();
        assert_eq!(image.shape, vec![4, 5], "frame {t}");
        for (k, &level) in image.data.iter().enumerate() {
            let want = 255.0 * values[20 * t + k].norm() / peak;
            assert!(
                level <= want + 1e-3 && want < level + 1.0 + 1e-3,
                "frame {t} pixel {k}: bart level {level}, 255|x|/max = {want}"
            );
        }
    }
    // And back: BART's own file reads with the same layout.
    let back = read_cfl(&dir.join("a1")).unwrap();
    let (shape, _, data) = back.to_row_major();
    assert_eq!(shape, vec![4, 5]);
    assert_eq!(data, values[20..40].to_vec());
}

#[test]
fn bart_phantom_kspace_imports_and_reconstructs() {
    let Some(bart) = bart("bart_phantom_kspace_imports_and_reconstructs") else {
        return;
    };
    let dir = TempDir::new("bartphantom");
    let d = &dir.0;
    // Single coil, fully sampled: the zero-filled image is BART's unitary inverse FFT, and BART's
    // plain inverse (not unitary) divided by √(H·W) (bart fft: plain forward = √N × unitary).
    run_bart(&bart, d, &["phantom", "-k", "-x", "32", "k"]);
    run_bart(&bart, d, &["fft", "-u", "-i", "3", "k", "ref_u"]);
    run_bart(&bart, d, &["fft", "-i", "3", "k", "ref"]);
    ok(args![
        "convert",
        dir.join("k.cfl"),
        dir.join("b1"),
        "--kspace"
    ]);
    ok(args![
        "reconstruct",
        "--bundle",
        dir.join("b1"),
        "--method",
        "zero-filled",
        "--out",
        dir.join("r1")
    ]);
    let (shape, recon) = complex(&dir.join("r1/recon.npy"));
    assert_eq!(shape, vec![1, 32, 32]);
    let (_, _, ref_u) = read_cfl(&dir.join("ref_u")).unwrap().to_row_major();
    let (_, _, plain) = read_cfl(&dir.join("ref")).unwrap().to_row_major();
    let e = rel_err(&recon, &ref_u);
    assert!(e < 1e-5, "zero-filled vs bart fft -u -i: {e}");
    let scaled: Vec<Complex32> = plain.iter().map(|v| v / 32.0).collect();
    let e = rel_err(&recon, &scaled);
    assert!(e < 1e-5, "zero-filled vs bart fft -i / 32: {e}");

    // Retrospective 2× undersampling with a mask: the bundle zeroes unsampled columns, and the
    // zero-filled image is BART's unitary inverse FFT of k-space multiplied by the same mask.
    let mask: Vec<f32> = (0..32)
        .map(|w| ((w % 2 == 0) || (12..20).contains(&w)) as u8 as f32)
        .collect();
    write_npy_f32(&dir.join("m.npy"), &[32], &mask).unwrap();
    let mut mask_cfl = vec![Complex32::new(0.0, 0.0); 32 * 32];
    for h in 0..32 {
        for w in 0..32 {
            mask_cfl[h + 32 * w].re = mask[w];
        }
    }
    let mut dims = [1usize; 16];
    dims[0] = 32;
    dims[1] = 32;
    write_cfl(
        &dir.join("mask"),
        &Cfl {
            dims,
            data: mask_cfl,
        },
    )
    .unwrap();
    run_bart(&bart, d, &["fmac", "k", "mask", "ku"]);
    run_bart(&bart, d, &["fft", "-u", "-i", "3", "ku", "ref_m"]);
    ok(args![
        "convert",
        dir.join("k.cfl"),
        dir.join("b2"),
        "--kspace",
        "--mask",
        dir.join("m.npy")
    ]);
    let (mshape, _) = match read_npy(&dir.join("b2/mask.npy")).unwrap() {
        NpyArray::U8 { shape, data } => (shape, data),
        other => panic!("mask dtype {}", other.dtype()),
    };
    assert_eq!(mshape, vec![1, 32]);
    ok(args![
        "reconstruct",
        "--bundle",
        dir.join("b2"),
        "--method",
        "zero-filled",
        "--out",
        dir.join("r2")
    ]);
    let (_, recon) = complex(&dir.join("r2/recon.npy"));
    let (_, _, ref_m) = read_cfl(&dir.join("ref_m")).unwrap().to_row_major();
    let e = rel_err(&recon, &ref_m);
    assert!(e < 1e-5, "masked zero-filled vs bart: {e}");
    // Importing the already-undersampled k-space infers the same mask from its non-zero columns.
    ok(args![
        "convert",
        dir.join("ku.cfl"),
        dir.join("b3"),
        "--kspace"
    ]);
    assert_eq!(
        bytes(&dir.join("b3/mask.npy")),
        bytes(&dir.join("b2/mask.npy"))
    );

    // Four coils (bart phantom -s 4): the maps are estimated from the fully sampled centre.
    // Against BART's root-sum-of-squares of the fully sampled coil images (|x| for maps with
    // Σ|S|² = 1), measured NRMSEs: fully sampled zero-filled 0.076 (the maps come from 8 centre
    // lines only, so they are smooth), 2× undersampled zero-filled 0.258, CG-SENSE 0.253, TV 0.143.
    run_bart(&bart, d, &["phantom", "-k", "-s", "4", "-x", "32", "k4"]);
    run_bart(&bart, d, &["fft", "-u", "-i", "3", "k4", "coils"]);
    run_bart(&bart, d, &["rss", "8", "coils", "rss"]);
    let (_, _, rss) = read_cfl(&dir.join("rss")).unwrap().to_row_major();
    let rss: Vec<f32> = rss.iter().map(|v| v.re).collect();
    let nrmse = |recon: &Path| {
        let (shape, x) = complex(&recon.join("recon.npy"));
        assert_eq!(shape, vec![1, 32, 32]);
        let num: f32 = x
            .iter()
            .zip(&rss)
            .map(|(x, r)| (x.norm() - r).powi(2))
            .sum();
        let den: f32 = rss.iter().map(|r| r * r).sum();
        (num / den).sqrt()
    };
    ok(args![
        "convert",
        dir.join("k4.cfl"),
        dir.join("b4full"),
        "--kspace"
    ]);
    ok(args![
        "reconstruct",
        "--bundle",
        dir.join("b4full"),
        "--method",
        "zero-filled",
        "--out",
        dir.join("r4full")
    ]);
    let full = nrmse(&dir.join("r4full"));
    assert!(
        full < 0.1,
        "fully sampled 4-coil zero-filled vs bart rss: {full}"
    );
    ok(args![
        "convert",
        dir.join("k4.cfl"),
        dir.join("b4"),
        "--kspace",
        "--mask",
        dir.join("m.npy")
    ]);
    let spec = std::fs::read_to_string(dir.join("b4/measurement.toml")).unwrap();
    assert!(
        spec.contains("coils = 4") && spec.contains("shape = [1, 32, 32]"),
        "{spec}"
    );
    let mut errors = Vec::new();
    for method in ["zero-filled", "cg", "tv"] {
        let out = dir.join(&format!("r4{method}"));
        ok(args![
            "reconstruct",
            "--bundle",
            dir.join("b4"),
            "--method",
            method,
            "--out",
            out
        ]);
        errors.push(nrmse(&out));
    }
    assert!(
        errors[1] < errors[0] && errors[2] < errors[0],
        "NRMSE vs bart rss: zero-filled {}, cg {}, tv {}",
        errors[0],
        errors[1],
        errors[2]
    );
}

#[test]
fn bart_inverse_fft_of_our_kspace_is_our_zero_filled_image() {
    let Some(bart) = bart("bart_inverse_fft_of_our_kspace_is_our_zero_filled_image") else {
        return;
    };
    // Our k-space is fftshift(fft2(ifftshift(x), norm="ortho")); BART centres with fftmod, a
    // chequerboard (−1)^n times a constant phase, before and after an unshifted FFT. For sizes
    // divisible by 4 the chequerboard alone equals the shifts; for other even and odd sizes the
    // two differ by that constant phase, which BART's fftmod folds in (its factors for N = 6 are
    // ±i, not ±1), so `bart fft -u` also matches ours there: measured with bart 0.8.00 for N = 5,
    // 6, 7, 8, 10, 12. The sizes divisible by 4 are the contract; 10×7 documents the rest (at
    // least 7×7: reconstruct's SSIM needs its window).
    let dir = TempDir::new("bartfft");
    for (t, h, w) in [(2usize, 12usize, 20usize), (2, 32, 32), (1, 10, 7)] {
        let name = format!("{t}x{h}x{w}");
        let truth: Vec<Complex32> = (0..t * h * w)
            .map(|k| Complex32::new((k as f32 * 0.37).sin() + 1.0, (k as f32 * 0.11).cos()))
            .collect();
        let truth_path = dir.join(&format!("{name}.npy"));
        write_npy_c64(&truth_path, &[t, h, w], &truth).unwrap();
        let bundle = dir.join(&format!("{name}_b"));
        ok(args![
            "simulate",
            "--truth",
            truth_path,
            "--operator",
            "mri",
            "--coils",
            "1",
            "--accel",
            "2",
            "--acs",
            "2",
            "--noise",
            "0",
            "--seed",
            "3",
            "--out",
            bundle
        ]);
        let recon_dir = dir.join(&format!("{name}_r"));
        ok(args![
            "reconstruct",
            "--bundle",
            bundle,
            "--method",
            "zero-filled",
            "--out",
            recon_dir
        ]);
        let (_, recon) = complex(&recon_dir.join("recon.npy"));
        // y.npy [T, 1, H, W] → BART dims (H, W, 1, 1, …, T); bart fft -u -i over dims 0 and 1.
        ok(args![
            "convert",
            bundle.join("y.npy"),
            dir.join(&format!("{name}_y.cfl"))
        ]);
        run_bart(
            &bart,
            &dir.0,
            &[
                "fft",
                "-u",
                "-i",
                "3",
                &format!("{name}_y"),
                &format!("{name}_x"),
            ],
        );
        let (shape, _, image) = read_cfl(&dir.join(&format!("{name}_x")))
            .unwrap()
            .to_row_major();
        let expected_shape = if t > 1 { vec![t, h, w] } else { vec![h, w] };
        assert_eq!(shape, expected_shape);
        let e = rel_err(&recon, &image);
        assert!(e < 1e-5, "{name}: zero-filled vs bart fft -u -i: {e}");
    }
}

#[test]
fn malformed_inputs_fail_with_one_line_errors() {
    let dir = TempDir::new("malformed");
    let out = dir.join("out.npy");
    let write = |name: &str, content: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    // BART: truncated data, huge dims, product overflow, zero and garbage sizes, no header.
    write("t.hdr", b"# Dimensions\n4 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 \n");
    let t = write("t.cfl", &[0u8; 100]);
    fails(
        args!["convert", t, out],
        &["t.cfl", "100 bytes", "128 bytes"],
    );
    write("huge.hdr", b"# Dimensions\n65536 65536 65536 1\n");
    let huge = write("huge.cfl", &[0u8; 8]);
    fails(args!["info", huge], &["huge.hdr", "more than"]);
    write(
        "over.hdr",
        b"# Dimensions\n4294967296 4294967296 4294967296\n",
    );
    let over = write("over.cfl", &[]);
    fails(args!["info", over], &["over.hdr", "more than"]);
    write("zero.hdr", b"# Dimensions\n4 0\n");
    let zero = write("zero.cfl", &[]);
    fails(args!["info", zero], &["zero.hdr", "dimension 1", "\"0\""]);
    write("junk.hdr", b"not a header\n");
    let junk = write("junk.cfl", &[]);
    fails(args!["info", junk], &["junk.hdr", "# dimensions"]);
    let lonely = write("lonely.cfl", &[0u8; 8]);
    fails(args!["info", lonely], &["lonely.hdr"]);
    // NIfTI: truncated data, bad magic, negative and huge dims, gzip, unknown datatype.
    let good = {
        let p = dir.join("good.nii");
        let layout = cinediff::io::layout::Layout::parse("h,w").unwrap();
        cinediff::io::nifti::write_nifti(
            &p,
            &[4, 4],
            &layout,
            cinediff::io::nifti::NiftiValues::F32(&[1.0; 16]),
        )
        .unwrap();
        bytes(&p)
    };
    let edit = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        write(name, &b)
    };
    let p = edit("short.nii", &|b| b.truncate(380));
    fails(args!["info", p], &["short.nii", "truncated", "416"]);
    let p = edit("magic.nii", &|b| b[344..348].copy_from_slice(b"abcd"));
    fails(args!["info", p], &["magic.nii", "magic"]);
    let p = edit("neg.nii", &|b| {
        b[44..46].copy_from_slice(&(-4i16).to_le_bytes())
    });
    fails(args!["info", p], &["neg.nii", "dim[2]"]);
    let p = edit("big.nii", &|b| {
        for k in 1..=4 {
            b[40 + 2 * k..42 + 2 * k].copy_from_slice(&32767i16.to_le_bytes());
        }
        b[40..42].copy_from_slice(&4i16.to_le_bytes());
    });
    fails(args!["info", p], &["big.nii", "more than"]);
    let p = edit("dtype.nii", &|b| {
        b[70..72].copy_from_slice(&128i16.to_le_bytes())
    });
    fails(args!["info", p], &["dtype.nii", "datatype 128"]);
    let p = write("gz.nii", &[0x1f, 0x8b, 8, 0, 0, 0]);
    fails(args!["info", p], &["gz.nii", "gzip"]);
    // PNG garbage, and a 60000×60000 16-bit RGB header with no pixels (a 21.6 GB frame).
    let p = write("bad.png", b"\x89PNG\r\n\x1a\nnonsense");
    fails(args!["info", p], &["bad.png", "png"]);
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(60000u32.to_be_bytes());
    ihdr.extend(60000u32.to_be_bytes());
    ihdr.extend([16, 2, 0, 0, 0]);
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend(13u32.to_be_bytes());
    bomb.extend(&ihdr);
    bomb.extend(crc32(&ihdr).to_be_bytes());
    // An IDAT chunk (zlib of nothing) so the header is read to the image data.
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    bomb.extend(8u32.to_be_bytes());
    bomb.extend(idat);
    bomb.extend(crc32(idat).to_be_bytes());
    let p = write("bomb.png", &bomb);
    fails(args!["info", p], &["bomb.png", "60000×60000", "at most"]);
    let p = write("bad.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'");
    fails(args!["info", p], &["bad.npy"]);
    // Unknown formats, GIF input, existing outputs, a bundle written to a file name, bad masks.
    let p = write("x.txt", b"1 2 3");
    fails(args!["info", p], &["x.txt", ".npy"]);
    let gif = write("x.gif", b"GIF89a");
    fails(args!["info", gif], &["x.gif", "written only"]);
    let a = dir.join("a.npy");
    write_npy_c64(&a, &[4, 4], &awkward(16)).unwrap();
    ok(args!["convert", a, dir.join("a.cfl")]);
    fails(
        args!["convert", a, dir.join("a.cfl")],
        &["a.cfl", "--force"],
    );
    ok(args!["convert", a, dir.join("a.cfl"), "--force"]);
    fails(args!["convert", a, dir.join("a.xyz")], &["a.xyz", ".cfl"]);
    fails(
        args!["convert", a, dir.join("k.npy"), "--kspace"],
        &["bundle directory", "k.npy"],
    );
    write_npy_f32(&dir.join("m.npy"), &[3], &[1.0, 0.0, 1.0]).unwrap();
    fails(
        args![
            "convert",
            a,
            dir.join("b"),
            "--kspace",
            "--mask",
            dir.join("m.npy")
        ],
        &["mask", "[3]"],
    );
    fails(
        args!["convert", a, dir.join("c.npy"), "--axes", "t,h,w"],
        &["axes", "[4, 4]"],
    );
    fails(
        args!["convert", a, dir.join("c.png"), "--window", "2:1"],
        &["window"],
    );
}

#[test]
fn info_prints_shape_dtype_and_magnitude_statistics() {
    let dir = TempDir::new("info");
    // |x| = 0, 5, 10 (3-4-5 triangles): min 0, max 10, mean 5.
    let a = dir.join("a.npy");
    write_npy_c64(
        &a,
        &[1, 3],
        &[
            Complex32::new(0.0, 0.0),
            Complex32::new(3.0, 4.0),
            Complex32::new(-6.0, 8.0),
        ],
    )
    .unwrap();
    ok(args!["convert", a, dir.join("a.cfl")]);
    for (file, format) in [(a.clone(), "npy"), (dir.join("a.cfl"), "BART cfl")] {
        let text = String::from_utf8(ok(args!["info", file]).stdout).unwrap();
        assert!(text.contains(&format!("format: {format}")), "{text}");
        assert!(text.contains("shape:  [1, 3] (axes h,w)"), "{text}");
        assert!(text.contains("dtype:  complex64"), "{text}");
        assert!(
            text.contains("min 0.000000e0  max 1.000000e1  mean 5.000000e0"),
            "{text}"
        );
    }
    // A phantom file [1, T, H, W] is read as [T, H, W] (the leading axis of length 1 dropped).
    let p = dir.join("p.npy");
    write_npy_f32(&p, &[1, 2, 3, 3], &[f32::NAN; 18]).unwrap();
    let text = String::from_utf8(ok(args!["info", p]).stdout).unwrap();
    assert!(text.contains("read as [2, 3, 3], axes t,h,w"), "{text}");
    assert!(text.contains("non-finite values: 18"), "{text}");
}

#[test]
fn a_bundles_own_kspace_mask_and_maps_import_to_the_same_bundle() {
    // simulate → y.npy [T, C, H, W], mask.npy [T, W], csm.npy [C, H, W]; importing them with
    // convert --kspace gives the same y and mask bytes and the same zero-filled reconstruction.
    let dir = TempDir::new("reimport");
    let truth: Vec<Complex32> = (0..3 * 16 * 16)
        .map(|k| Complex32::new((k as f32 * 0.05).sin(), (k as f32 * 0.02).cos()))
        .collect();
    let t = dir.join("t.npy");
    write_npy_c64(&t, &[3, 16, 16], &truth).unwrap();
    let b = dir.join("b");
    ok(args![
        "simulate",
        "--truth",
        t,
        "--operator",
        "mri",
        "--coils",
        "2",
        "--accel",
        "2",
        "--acs",
        "4",
        "--seed",
        "5",
        "--out",
        b
    ]);
    let c = dir.join("c");
    ok(args![
        "convert",
        b.join("y.npy"),
        c,
        "--kspace",
        "--mask",
        b.join("mask.npy"),
        "--csm",
        b.join("csm.npy"),
        "--noise",
        "0.01"
    ]);
    for file in ["y.npy", "mask.npy", "csm.npy"] {
        assert_eq!(bytes(&b.join(file)), bytes(&c.join(file)), "{file}");
    }
    let spec = std::fs::read_to_string(c.join("measurement.toml")).unwrap();
    assert!(
        spec.contains("noise_sigma = 0.01") && spec.contains("coils = 2"),
        "{spec}"
    );
    for (bundle, out) in [(&b, dir.join("rb")), (&c, dir.join("rc"))] {
        ok(args![
            "reconstruct",
            "--bundle",
            bundle,
            "--method",
            "zero-filled",
            "--out",
            out
        ]);
    }
    assert_eq!(
        complex(&dir.join("rb/recon.npy")).1,
        complex(&dir.join("rc/recon.npy")).1
    );
}
