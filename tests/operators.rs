//! Conformance of every measurement operator (adjointness, normal operator, operator norm, shape
//! errors) over every mask kind, the centred FFT against numpy, mask generators, and coil maps.

use std::sync::Arc;

use cinediff::physics::complex::{inner, norm};
use cinediff::physics::masks::centre_range;
use cinediff::physics::*;
use cinediff::rng::{seeded, standard_normal, SeededRng};
use num_complex::Complex32;

/// What power iteration must find for ‖A‖.
#[derive(Clone, Copy, Debug)]
enum Norm {
    /// Known exactly (to 1e-3).
    Exact(f32),
    /// An upper bound (plus 1e-3).
    AtMost(f32),
}

struct Case {
    name: String,
    op: Box<dyn LinearOperator>,
    norm: Norm,
}

fn case(name: impl Into<String>, op: impl LinearOperator + 'static, norm: Norm) -> Case {
    Case {
        name: name.into(),
        op: Box::new(op),
        norm,
    }
}

fn random_complex(rng: &mut SeededRng, n: usize) -> Vec<Complex32> {
    standard_normal(rng, 2 * n)
        .chunks_exact(2)
        .map(|p| Complex32::new(p[0], p[1]))
        .collect()
}

/// The mask kinds every MRI operator is run with, for a `[h, w]` grid.
fn mri_masks(shape: [usize; 2], rng: &mut SeededRng) -> Vec<(String, Mask)> {
    let [h, w] = shape;
    let mut masks = vec![("full".to_string(), Mask::full(shape).unwrap())];
    for (name, pattern) in patterns() {
        let lines = line_mask(w, 3.0, 2, pattern, rng).unwrap();
        masks.push((name.to_string(), lines.to_mask(h).unwrap()));
    }
    masks.push((
        "poisson-disc".to_string(),
        poisson_disc_mask(shape, 3.0, 2, rng).unwrap(),
    ));
    masks
}

fn patterns() -> [(&'static str, LinePattern); 3] {
    [
        ("equispaced", LinePattern::Equispaced),
        ("random", LinePattern::Random),
        ("gaussian", LinePattern::Gaussian { std_fraction: 0.25 }),
    ]
}

/// Every operator, with every mask kind, on odd and even sizes.
fn all_operators() -> Vec<Case> {
    let mut rng = seeded(7);
    let mut cases = vec![
        case(
            "identity",
            Identity::new(&[3, 5, 6]).unwrap(),
            Norm::Exact(1.0),
        ),
        case(
            "pixel mask (random pixels)",
            PixelMask::new(Mask::random_pixels([9, 10], 0.5, &mut rng).unwrap()),
            Norm::Exact(1.0),
        ),
        case(
            "pixel mask (box)",
            PixelMask::new(Mask::box_hole([9, 10], [2, 3], [4, 5]).unwrap()),
            Norm::Exact(1.0),
        ),
        // AAᴴ = I/s² (each output pixel is a mean of s² inputs), so ‖A‖ = 1/s exactly.
        case(
            "avg pool x2",
            AvgPool::new([8, 12], 2).unwrap(),
            Norm::Exact(0.5),
        ),
        case(
            "avg pool x4",
            AvgPool::new([8, 12], 4).unwrap(),
            Norm::Exact(0.25),
        ),
        // ‖A‖ = K̂(0) = 1, but power iteration approaches it slowly (small spectral gap).
        case(
            "gaussian blur",
            GaussianBlur::new([9, 10], 1.5).unwrap(),
            Norm::AtMost(1.0),
        ),
        case(
            "centred fft (5x6)",
            CenteredFft::new([5, 6]).unwrap(),
            Norm::Exact(1.0),
        ),
        case(
            "inpaint ∘ blur",
            Compose::new(
                PixelMask::new(Mask::random_pixels([9, 10], 0.3, &mut rng).unwrap()),
                GaussianBlur::new([9, 10], 1.0).unwrap(),
            )
            .unwrap(),
            Norm::AtMost(1.0),
        ),
        case(
            "avg pool x2 ∘ blur",
            Compose::new(
                AvgPool::new([8, 12], 2).unwrap(),
                GaussianBlur::new([8, 12], 0.8).unwrap(),
            )
            .unwrap(),
            Norm::AtMost(0.5),
        ),
        case(
            "blur repeated over 2 frames",
            FrameSequence::repeat(GaussianBlur::new([6, 7], 1.0).unwrap(), 2).unwrap(),
            Norm::AtMost(1.0),
        ),
    ];
    for shape in [[10, 12], [9, 11]] {
        let maps = Arc::new(CoilMaps::synthetic(4, shape).unwrap());
        for (name, mask) in mri_masks(shape, &mut rng) {
            // A projection (mask) after a unitary map: ‖A‖ = 1 whenever one sample is kept.
            cases.push(case(
                format!("single-coil mri {shape:?} {name}"),
                CartesianMri::new(mask.clone()).unwrap(),
                Norm::Exact(1.0),
            ));
            // Σ|S_c|² = 1: ‖A‖ ≤ 1, with equality when fully sampled (AᴴA = I).
            let bound = if name == "full" {
                Norm::Exact(1.0)
            } else {
                Norm::AtMost(1.0)
            };
            cases.push(case(
                format!("sense {shape:?} {name}"),
                SenseMri::new(maps.clone(), mask).unwrap(),
                bound,
            ));
        }
    }
    let shape = [8, 10];
    let maps = Arc::new(CoilMaps::synthetic(3, shape).unwrap());
    for (name, pattern) in patterns() {
        let lines = kt_line_masks(3, shape[1], 2.5, 2, pattern, &mut rng).unwrap();
        let masks: Vec<Mask> = lines.iter().map(|l| l.to_mask(shape[0]).unwrap()).collect();
        cases.push(case(
            format!("dynamic mri kt-{name}"),
            DynamicMri::from_masks(masks.clone()).unwrap(),
            Norm::Exact(1.0),
        ));
        cases.push(case(
            format!("dynamic sense kt-{name}"),
            DynamicSense::from_masks(maps.clone(), masks).unwrap(),
            Norm::AtMost(1.0),
        ));
    }
    let lines = kt_line_masks(3, 10, 2.0, 0, LinePattern::Equispaced, &mut rng).unwrap();
    cases.push(case(
        "ultrasound scan lines",
        UltrasoundSequence::from_lines(12, lines).unwrap(),
        Norm::Exact(1.0),
    ));
    // Estimated maps are smoothly masked to zero outside the object: Σ|S_c|² ≤ 1.
    let (estimated, _) = estimation_problem([16, 14]);
    let mask = line_mask(14, 2.0, 4, LinePattern::Random, &mut rng)
        .unwrap()
        .to_mask(16)
        .unwrap();
    cases.push(case(
        "sense with estimated maps",
        SenseMri::new(Arc::new(estimated), mask).unwrap(),
        Norm::AtMost(1.0),
    ));
    cases
}

#[test]
fn every_operator_is_adjoint_consistent() {
    let mut rng = seeded(11);
    for Case { name, op, .. } in all_operators() {
        let x = random_complex(&mut rng, op.input_len());
        let y = random_complex(&mut rng, op.output_len());
        let ax = op.forward(&x).unwrap();
        let ahy = op.adjoint(&y).unwrap();
        let (lhs, rhs) = (inner(&ax, &y), inner(&x, &ahy));
        let rel = (lhs - rhs).norm() / lhs.norm();
        assert!(
            rel <= 1e-4,
            "{name}: <Ax,y> = {lhs}, <x,Aᴴy> = {rhs} (relative difference {rel:e})"
        );
        // Guards against a vacuous pass when ⟨Ax, y⟩ is accidentally tiny.
        assert!(
            lhs.norm() > 1e-3 * norm(&ax) * norm(&y),
            "{name}: degenerate test vector"
        );
    }
}

#[test]
fn every_normal_operator_is_adjoint_of_forward() {
    let mut rng = seeded(12);
    for Case { name, op, .. } in all_operators() {
        let x = random_complex(&mut rng, op.input_len());
        let composed = op.adjoint(&op.forward(&x).unwrap()).unwrap();
        let normal = op.normal(&x).unwrap();
        let diff: Vec<Complex32> = normal.iter().zip(&composed).map(|(a, b)| a - b).collect();
        let rel = norm(&diff) / norm(&composed);
        assert!(rel <= 1e-5, "{name}: ‖normal − AᴴA‖/‖AᴴA‖ = {rel:e}");
    }
}

#[test]
fn every_operator_norm_matches_theory() {
    let mut rng = seeded(13);
    for Case { name, op, norm } in all_operators() {
        let estimate = operator_norm(op.as_ref(), 60, &mut rng).unwrap();
        match norm {
            Norm::Exact(v) => assert!(
                (estimate - v).abs() <= 1e-3,
                "{name}: ‖A‖ ≈ {estimate}, expected {v}"
            ),
            Norm::AtMost(v) => assert!(
                estimate <= v + 1e-3 && estimate > 0.0,
                "{name}: ‖A‖ ≈ {estimate}, expected ≤ {v}"
            ),
        }
    }
}

#[test]
fn every_operator_rejects_wrong_buffer_sizes() {
    for Case { name, op, .. } in all_operators() {
        let (n, m) = (op.input_len(), op.output_len());
        let zeros = |k: usize| vec![Complex32::default(); k];
        assert!(
            op.forward_into(&zeros(n + 1), &mut zeros(m)).is_err(),
            "{name}"
        );
        assert!(
            op.forward_into(&zeros(n), &mut zeros(m + 1)).is_err(),
            "{name}"
        );
        assert!(
            op.adjoint_into(&zeros(m + 1), &mut zeros(n)).is_err(),
            "{name}"
        );
        assert!(
            op.adjoint_into(&zeros(m), &mut zeros(n - 1)).is_err(),
            "{name}"
        );
        assert!(
            op.normal_into(&zeros(n), &mut zeros(n + 1)).is_err(),
            "{name}"
        );
        assert!(op.forward(&zeros(n.saturating_sub(1))).is_err(), "{name}");
    }
}

/// x[k] = 0.25k − 1 + i((k² mod 5) − 2) for k = 0..h·w, row-major; the input of the numpy goldens.
fn golden_input(n: usize) -> Vec<Complex32> {
    (0..n)
        .map(|k| Complex32::new(k as f32 * 0.25 - 1.0, ((k * k) % 5) as f32 - 2.0))
        .collect()
}

fn assert_matches(what: &str, got: &[Complex32], interleaved: &[f64]) {
    assert_eq!(got.len() * 2, interleaved.len(), "{what}");
    for (k, (g, e)) in got.iter().zip(interleaved.chunks_exact(2)).enumerate() {
        let err = ((g.re as f64 - e[0]).powi(2) + (g.im as f64 - e[1]).powi(2)).sqrt();
        assert!(
            err <= 2e-5,
            "{what} at {k}: got {g}, numpy {} + {}i",
            e[0],
            e[1]
        );
    }
}

#[test]
// numpy's output happens to contain 1/√2; the digits are kept exactly as printed.
#[allow(clippy::approx_constant)]
fn centred_fft_matches_numpy() {
    // Values interleaved (re, im), row-major.
    // python3 -c "import numpy as np; k=np.arange(20.); x=(k*0.25-1+1j*((k*k)%5-2)).reshape(5,4); y=np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x),norm='ortho')).ravel(); print(repr(np.stack([y.real,y.imag],1).ravel().tolist()))"
    let forward_5x4 = [
        -0.18163563200134022,
        0.5590169943749475,
        0.18163563200134022,
        -0.09254797703968735,
        -0.18163563200134042,
        -2.4101580035448396,
        0.18163563200134022,
        0.3564799995398978,
        -0.7694208842938133,
        0.5590169943749475,
        0.7694208842938133,
        0.1218642961328854,
        -0.7694208842938133,
        2.745209070805667,
        0.7694208842938133,
        -4.857932273632675,
        -0.5590169943749475,
        0.0,
        0.5590169943749475,
        0.5590169943749475,
        6.149186938124421,
        0.0,
        0.5590169943749475,
        -0.5590169943749475,
        0.7694208842938133,
        0.5590169943749475,
        -0.7694208842938133,
        -4.857932273632675,
        0.7694208842938133,
        -4.863243059555562,
        -0.7694208842938133,
        0.1218642961328854,
        0.18163563200134022,
        0.5590169943749475,
        -0.18163563200134022,
        0.3564799995398978,
        0.18163563200134003,
        2.292124014794945,
        -0.18163563200134022,
        -0.09254797703968735,
    ];
    // python3 -c "import numpy as np; k=np.arange(24.); x=(k*0.25-1+1j*((k*k)%5-2)).reshape(4,6); y=np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x),norm='ortho')).ravel(); print(repr(np.stack([y.real,y.imag],1).ravel().tolist()))"
    let forward_4x6 = [
        0.0,
        0.6123724356957948,
        0.3535533905932738,
        0.40824829046386313,
        0.7071067811865475,
        0.6123724356957945,
        -3.6742346141747677,
        -0.20412414523193154,
        -0.7071067811865476,
        0.6123724356957944,
        -0.3535533905932738,
        0.4082482904638631,
        0.6123724356957946,
        0.40824829046386296,
        -0.9659258262890684,
        -0.7618016810571369,
        -0.09473434549075288,
        -5.128487622168027,
        3.061862178478973,
        4.490731195102494,
        1.3194792168823422,
        -0.1787401538621931,
        -0.25881904510252096,
        -0.05469489987058923,
        0.6123724356957946,
        0.2041241452319316,
        -0.2588190451025208,
        -0.7618016810571369,
        1.3194792168823422,
        0.040039445620163816,
        9.185586535436919,
        0.20412414523193154,
        -0.09473434549075288,
        -2.0812808979394792,
        -0.9659258262890684,
        -0.05469489987058934,
        -0.6123724356957946,
        0.40824829046386296,
        0.2588190451025208,
        -0.05469489987058923,
        -1.3194792168823422,
        -0.17874015386219355,
        4.286607049870562,
        -2.857738033247042,
        0.09473434549075299,
        -5.128487622168027,
        0.9659258262890684,
        -0.7618016810571369,
    ];
    // python3 -c "import numpy as np; k=np.arange(20.); x=(k*0.25-1+1j*((k*k)%5-2)).reshape(5,4); y=np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x),norm='ortho')).ravel(); print(repr(np.stack([y.real,y.imag],1).ravel().tolist()))"
    let inverse_5x4 = [
        0.18163563200134022,
        0.5590169943749475,
        -0.18163563200134022,
        -0.09254797703968735,
        0.18163563200134003,
        2.292124014794945,
        -0.18163563200134022,
        0.3564799995398978,
        0.7694208842938133,
        0.5590169943749475,
        -0.7694208842938133,
        0.1218642961328854,
        0.7694208842938133,
        -4.863243059555562,
        -0.7694208842938133,
        -4.857932273632675,
        -0.5590169943749475,
        0.0,
        0.5590169943749475,
        -0.5590169943749475,
        6.149186938124421,
        0.0,
        0.5590169943749475,
        0.5590169943749475,
        -0.7694208842938133,
        0.5590169943749475,
        0.7694208842938133,
        -4.857932273632675,
        -0.7694208842938133,
        2.745209070805667,
        0.7694208842938133,
        0.1218642961328854,
        -0.18163563200134022,
        0.5590169943749475,
        0.18163563200134022,
        0.3564799995398978,
        -0.18163563200134042,
        -2.4101580035448396,
        0.18163563200134022,
        -0.09254797703968735,
    ];
    let op = CenteredFft::new([5, 4]).unwrap();
    assert_matches(
        "forward 5x4",
        &op.forward(&golden_input(20)).unwrap(),
        &forward_5x4,
    );
    assert_matches(
        "inverse 5x4",
        &op.adjoint(&golden_input(20)).unwrap(),
        &inverse_5x4,
    );
    let op = CenteredFft::new([4, 6]).unwrap();
    assert_matches(
        "forward 4x6",
        &op.forward(&golden_input(24)).unwrap(),
        &forward_4x6,
    );
}

#[test]
fn fft_is_unitary_and_invertible() {
    let mut rng = seeded(3);
    // 17 × 40 exercises an odd prime size and more columns than one gather block.
    for shape in [[17, 40], [8, 8], [1, 5]] {
        let fft = Fft2::new(shape).unwrap();
        let mut scratch = fft.make_scratch();
        let x = random_complex(&mut rng, shape[0] * shape[1]);
        for centred in [false, true] {
            let mut y = x.clone();
            if centred {
                fft.forward_centered(&mut y, &mut scratch).unwrap();
            } else {
                fft.forward(&mut y, &mut scratch).unwrap();
            }
            assert!(
                (norm(&y) / norm(&x) - 1.0).abs() < 1e-5,
                "{shape:?} Parseval"
            );
            if centred {
                fft.inverse_centered(&mut y, &mut scratch).unwrap();
            } else {
                fft.inverse(&mut y, &mut scratch).unwrap();
            }
            let diff: Vec<Complex32> = y.iter().zip(&x).map(|(a, b)| a - b).collect();
            assert!(norm(&diff) / norm(&x) < 1e-5, "{shape:?} round trip");
        }
        let mut short = vec![Complex32::default(); 1];
        assert!(fft.forward(&mut x.clone(), &mut short).is_err() || fft.scratch_len() <= 1);
        assert!(fft.forward(&mut x[1..].to_vec(), &mut scratch).is_err());
    }
}

#[test]
fn blur_of_an_impulse_is_the_wrapped_gaussian() {
    let (h, w, sigma) = (9usize, 10usize, 1.3f64);
    let blur = GaussianBlur::new([h, w], sigma).unwrap();
    let mut delta = vec![Complex32::default(); h * w];
    delta[0] = Complex32::new(1.0, 0.0);
    let out = blur.forward(&delta).unwrap();
    let g = |i: usize, n: usize| (-((i.min(n - i)) as f64).powi(2) / (2.0 * sigma * sigma)).exp();
    let total: f64 = (0..h).map(|i| g(i, h)).sum::<f64>() * (0..w).map(|j| g(j, w)).sum::<f64>();
    for i in 0..h {
        for j in 0..w {
            let expected = g(i, h) * g(j, w) / total;
            let got = out[i * w + j];
            assert!(
                (got.re as f64 - expected).abs() < 1e-6 && got.im.abs() < 1e-6,
                "({i},{j})"
            );
        }
    }
    // Σk = 1: a constant image is unchanged.
    let ones = vec![Complex32::new(1.0, -2.0); h * w];
    for v in blur.forward(&ones).unwrap() {
        assert!((v - Complex32::new(1.0, -2.0)).norm() < 1e-5);
    }
}

#[test]
fn line_masks_hit_acceleration_and_keep_the_centre() {
    for width in [64usize, 65] {
        for r in [2.0, 4.0, 6.0] {
            for (name, pattern) in patterns() {
                let acs = 8;
                let mask = line_mask(width, r, acs, pattern, &mut seeded(1)).unwrap();
                let expected = (width as f64 / r).round() as usize;
                assert_eq!(mask.sampled(), expected, "{name} w={width} R={r}");
                let centre = centre_range(width, acs);
                assert!(centre.contains(&(width / 2)));
                assert!(mask.lines()[centre].iter().all(|&s| s), "{name} ACS");
                let again = line_mask(width, r, acs, pattern, &mut seeded(1)).unwrap();
                assert_eq!(mask, again, "{name}: same seed, same mask");
            }
        }
    }
    // Without ACS and R dividing the width, equispaced lines are exactly R apart.
    let mask = line_mask(64, 4.0, 0, LinePattern::Equispaced, &mut seeded(5)).unwrap();
    let idx: Vec<usize> = (0..64).filter(|&k| mask.lines()[k]).collect();
    assert_eq!(idx.len(), 16);
    assert!(idx.windows(2).all(|p| p[1] - p[0] == 4), "{idx:?}");
    // Random masks change with the seed.
    let a = line_mask(64, 4.0, 8, LinePattern::Random, &mut seeded(1)).unwrap();
    let b = line_mask(64, 4.0, 8, LinePattern::Random, &mut seeded(2)).unwrap();
    assert_ne!(a, b);
    // The Gaussian density favours low frequencies.
    let mut inner_lines = [0usize; 2];
    for seed in 0..20 {
        let g = LinePattern::Gaussian { std_fraction: 0.15 };
        let m = line_mask(64, 4.0, 4, g, &mut seeded(seed)).unwrap();
        inner_lines[0] += (16..48).filter(|&k| m.lines()[k]).count();
        inner_lines[1] += (0..16).chain(48..64).filter(|&k| m.lines()[k]).count();
    }
    assert!(inner_lines[0] > 2 * inner_lines[1], "{inner_lines:?}");
}

#[test]
fn kt_masks_change_every_frame() {
    for (name, pattern) in patterns() {
        let masks = kt_line_masks(6, 64, 4.0, 8, pattern, &mut seeded(9)).unwrap();
        assert_eq!(masks.len(), 6);
        for m in &masks {
            assert_eq!(m.sampled(), 16, "{name}");
            assert!(m.lines()[centre_range(64, 8)].iter().all(|&s| s), "{name}");
        }
        assert!(
            masks.windows(2).all(|p| p[0] != p[1]),
            "{name}: consecutive frames equal"
        );
        let again = kt_line_masks(6, 64, 4.0, 8, pattern, &mut seeded(9)).unwrap();
        assert_eq!(masks, again, "{name}: deterministic by seed");
    }
}

#[test]
fn poisson_disc_mask_hits_acceleration_and_spreads_points() {
    let shape = [32, 40];
    let acs = 6;
    for r in [3.0, 4.0, 8.0] {
        let mask = poisson_disc_mask(shape, r, acs, &mut seeded(4)).unwrap();
        assert_eq!(mask.sampled(), (1280.0 / r).round() as usize, "R={r}");
        let (rows, cols) = (centre_range(32, acs), centre_range(40, acs));
        let outer: Vec<(usize, usize)> = (0..32)
            .flat_map(|i| (0..40).map(move |j| (i, j)))
            .filter(|&(i, j)| mask.data()[i * 40 + j] && !(rows.contains(&i) && cols.contains(&j)))
            .collect();
        for &(i, j) in rows
            .clone()
            .flat_map(|i| cols.clone().map(move |j| (i, j)))
            .collect::<Vec<_>>()
            .iter()
        {
            assert!(mask.data()[i * 40 + j], "ACS block");
        }
        // A disc radius above one grid step: no two non-ACS points are neighbours.
        for (a, p) in outer.iter().enumerate() {
            for q in &outer[a + 1..] {
                let d2 = (p.0 as f64 - q.0 as f64).powi(2) + (p.1 as f64 - q.1 as f64).powi(2);
                assert!(d2 > 1.0, "R={r}: points {p:?} and {q:?} adjacent");
            }
        }
        assert_eq!(
            mask,
            poisson_disc_mask(shape, r, acs, &mut seeded(4)).unwrap()
        );
    }
}

#[test]
fn inpainting_masks_keep_the_requested_pixels() {
    let m = Mask::random_pixels([10, 10], 0.37, &mut seeded(0)).unwrap();
    assert_eq!(m.sampled(), 37);
    let b = Mask::box_hole([10, 12], [2, 3], [4, 5]).unwrap();
    assert_eq!(b.sampled(), 120 - 20);
    assert!(!b.data()[2 * 12 + 3] && !b.data()[5 * 12 + 7] && b.data()[6 * 12 + 7]);
}

#[test]
fn synthetic_coil_maps_have_unit_rss() {
    for (coils, shape) in [(1, [8, 8]), (4, [9, 12]), (8, [32, 31])] {
        let maps = CoilMaps::synthetic(coils, shape).unwrap();
        assert_eq!(maps.shape(), [coils, shape[0], shape[1]]);
        for r in maps.rss() {
            assert!((r - 1.0).abs() < 1e-5, "{coils} coils: rss {r}");
        }
    }
}

/// Maps estimated from simulated k-space of a smooth object with a global phase, plus the object
/// magnitude, for `shape` images and 8 synthetic coils.
fn estimation_problem(shape: [usize; 2]) -> (CoilMaps, Vec<f32>) {
    let [h, w] = shape;
    let truth = CoilMaps::synthetic(8, shape).unwrap();
    let object: Vec<f32> = (0..h * w)
        .map(|k| {
            let y = ((k / w) as f32 + 0.5) / h as f32 * 2.0 - 1.0;
            let x = ((k % w) as f32 + 0.5) / w as f32 * 2.0 - 1.0;
            let r2 = (x / 0.7).powi(2) + (y / 0.6).powi(2);
            (-(r2 * r2)).exp() * (1.0 + 0.2 * x)
        })
        .collect();
    let phase = Complex32::from_polar(1.0, 0.7);
    let x: Vec<Complex32> = object.iter().map(|&v| phase * v).collect();
    let full = SenseMri::new(Arc::new(truth), Mask::full(shape).unwrap()).unwrap();
    let kspace = full.forward(&x).unwrap();
    let calib = [h.min(24) * 3 / 8 * 2, w.min(24) * 3 / 8 * 2];
    let estimated = CoilMaps::estimate(&kspace, [8, h, w], calib, 0.05).unwrap();
    (estimated, object)
}

#[test]
fn coil_map_estimation_recovers_true_maps_up_to_global_phase() {
    let shape = [64, 64];
    let truth = CoilMaps::synthetic(8, shape).unwrap();
    let (estimated, object) = estimation_problem(shape);
    let peak = object.iter().cloned().fold(0.0, f32::max);
    let inside: Vec<usize> = (0..object.len())
        .filter(|&k| object[k] > 0.3 * peak)
        .collect();
    let pick = |maps: &CoilMaps| -> Vec<Complex32> {
        maps.coil_images()
            .flat_map(|s| inside.iter().map(move |&k| s[k]))
            .collect()
    };
    let (t, e) = (pick(&truth), pick(&estimated));
    // The best global phase aligning the estimate with the truth.
    let c = inner(&e, &t);
    let rotation = Complex32::new((c.re / c.norm()) as f32, (c.im / c.norm()) as f32);
    let diff: Vec<Complex32> = e.iter().zip(&t).map(|(a, b)| a * rotation - b).collect();
    let rel = norm(&diff) / norm(&t);
    assert!(rel < 0.05, "relative map error inside the object {rel}");
    let rss = estimated.rss();
    for &k in &inside {
        assert!(
            (rss[k] - 1.0).abs() < 1e-4,
            "estimated RSS inside the object {}",
            rss[k]
        );
    }
    eprintln!("coil-map estimation: relative error inside the object {rel:.4}");
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    let mut rng = seeded(0);
    let p = LinePattern::Random;
    assert!(
        line_mask(64, 0.0, 8, p, &mut rng).is_err(),
        "zero acceleration"
    );
    assert!(line_mask(64, 0.5, 8, p, &mut rng).is_err(), "R < 1");
    assert!(
        line_mask(64, f64::NAN, 8, p, &mut rng).is_err(),
        "NaN acceleration"
    );
    assert!(
        line_mask(64, 1000.0, 0, p, &mut rng).is_err(),
        "no line left"
    );
    assert!(line_mask(64, 2.0, 65, p, &mut rng).is_err(), "acs > width");
    assert!(
        line_mask(64, 16.0, 8, p, &mut rng).is_err(),
        "acs beyond the line budget"
    );
    assert!(line_mask(0, 2.0, 0, p, &mut rng).is_err(), "zero width");
    let bad_gauss = LinePattern::Gaussian { std_fraction: 0.0 };
    assert!(
        line_mask(64, 2.0, 8, bad_gauss, &mut rng).is_err(),
        "zero density width"
    );
    assert!(
        kt_line_masks(0, 64, 2.0, 8, p, &mut rng).is_err(),
        "zero frames"
    );
    assert!(poisson_disc_mask([16, 16], 0.0, 4, &mut rng).is_err());
    assert!(
        poisson_disc_mask([16, 8], 2.0, 9, &mut rng).is_err(),
        "acs > width"
    );
    assert!(poisson_disc_mask([0, 8], 2.0, 0, &mut rng).is_err());
    assert!(Mask::new([4, 4], vec![true; 15]).is_err());
    assert!(Mask::random_pixels([4, 4], 0.0, &mut rng).is_err());
    assert!(Mask::box_hole([4, 4], [2, 2], [3, 1]).is_err());
    assert!(LineMask::new(vec![]).is_err());
    assert!(LineMask::full(4).unwrap().to_mask(0).is_err());

    let mask_8x9 = Mask::full([8, 9]).unwrap();
    let fft_8x8 = Arc::new(Fft2::new([8, 8]).unwrap());
    assert!(
        CartesianMri::with_plan(fft_8x8, mask_8x9.clone()).is_err(),
        "mask of wrong size"
    );
    let maps = Arc::new(CoilMaps::synthetic(4, [8, 8]).unwrap());
    assert!(
        SenseMri::new(maps.clone(), mask_8x9.clone()).is_err(),
        "mask vs maps"
    );
    let masks = vec![Mask::full([8, 8]).unwrap(), mask_8x9];
    assert!(
        DynamicMri::from_masks(masks.clone()).is_err(),
        "frame masks differ"
    );
    assert!(DynamicSense::from_masks(maps.clone(), masks).is_err());
    assert!(DynamicMri::from_masks(vec![]).is_err());
    assert!(FrameSequence::<Identity>::new(vec![]).is_err());
    assert!(UltrasoundSequence::from_lines(8, vec![]).is_err());
    assert!(UltrasoundSequence::from_lines(0, vec![LineMask::full(4).unwrap()]).is_err());
    assert!(Compose::new(
        AvgPool::new([8, 8], 2).unwrap(),
        Identity::new(&[4, 4]).unwrap()
    )
    .is_err());
    assert!(AvgPool::new([9, 8], 2).is_err());
    assert!(AvgPool::new([8, 8], 0).is_err());
    assert!(GaussianBlur::new([8, 8], 0.0).is_err());
    assert!(GaussianBlur::new([8, 8], f64::NAN).is_err());
    assert!(Fft2::new([0, 4]).is_err());
    assert!(Fft2::new([usize::MAX, 2]).is_err());
    assert!(Identity::new(&[]).is_err());
    assert!(CoilMaps::synthetic(0, [8, 8]).is_err());
    assert!(CoilMaps::new([2, 4, 4], vec![Complex32::default(); 31]).is_err());

    let ksp = vec![Complex32::new(1.0, 0.0); 2 * 8 * 8];
    assert!(
        CoilMaps::estimate(&ksp, [2, 8, 8], [9, 4], 0.05).is_err(),
        "calib too large"
    );
    assert!(
        CoilMaps::estimate(&ksp, [2, 8, 8], [4, 4], 1.5).is_err(),
        "threshold"
    );
    assert!(
        CoilMaps::estimate(&ksp[1..], [2, 8, 8], [4, 4], 0.05).is_err(),
        "k-space size"
    );
    let zeros = vec![Complex32::default(); 2 * 8 * 8];
    assert!(
        CoilMaps::estimate(&zeros, [2, 8, 8], [4, 4], 0.05).is_err(),
        "no signal"
    );
    let mut nan = ksp.clone();
    nan[3].im = f32::NAN;
    assert!(
        CoilMaps::estimate(&nan, [2, 8, 8], [4, 4], 0.05).is_err(),
        "NaN k-space"
    );
    let id = Identity::new(&[4]).unwrap();
    assert!(operator_norm(&id, 0, &mut rng).is_err());

    let batch = cinediff::ImageBatch::zeros([1, 3, 2, 2]).unwrap();
    assert!(cinediff::physics::complex::image_to_complex(&batch, 0).is_err());
    assert!(cinediff::physics::complex::image_to_complex(&batch, 1).is_err());
}

#[test]
fn image_batch_round_trip() {
    let data: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let batch = cinediff::ImageBatch::new([1, 2, 2, 2], data.clone()).unwrap();
    let c = cinediff::physics::complex::image_to_complex(&batch, 0).unwrap();
    assert_eq!(c[1], Complex32::new(1.0, 5.0));
    assert_eq!(cinediff::physics::complex::complex_to_channels(&c), data);
}
