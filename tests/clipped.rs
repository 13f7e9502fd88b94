//! x̂₀ clipping wrapper, checked on the Gaussian oracle.

use cinediff::diffusion::{ClippedDenoiser, Denoiser, GaussianDenoiser, NoiseSchedule};
use cinediff::rng::{seeded, standard_normal};
use cinediff::ImageBatch;

fn oracle() -> (NoiseSchedule, GaussianDenoiser) {
    let schedule = NoiseSchedule::linear_default();
    let n = 16;
    // Means spread over [−2, 2] so some x̂₀ land outside the clip range [−1, 1].
    let mean: Vec<f32> = (0..n)
        .map(|i| -2.0 + 4.0 * i as f32 / (n - 1) as f32)
        .collect();
    let std = vec![0.3; n];
    let den = GaussianDenoiser::new(schedule.clone(), [1, 4, 4], mean, std).unwrap();
    (schedule, den)
}

#[test]
fn clipped_estimate_stays_in_range_and_is_unchanged_inside() {
    let (schedule, den) = oracle();
    let clipped = ClippedDenoiser::new(&den, &schedule, 1.0).unwrap();
    let x = ImageBatch::new([4, 1, 4, 4], standard_normal(&mut seeded(1), 64)).unwrap();
    for t in [10, 300, 999] {
        let (a, s) = (schedule.alpha(t) as f32, schedule.sigma(t) as f32);
        let raw = den.predict_noise(&x, t).unwrap();
        let eps = clipped.predict_noise(&x, t).unwrap();
        let mut n_clipped = 0;
        for ((&xi, &e_raw), &e) in x.data().iter().zip(raw.data()).zip(eps.data()) {
            let x0_raw = (xi - s * e_raw) / a;
            let x0 = (xi - s * e) / a;
            assert!(x0.abs() <= 1.0 + 1e-3, "t={t}: clipped x̂₀ = {x0}");
            if x0_raw.abs() <= 1.0 {
                assert_eq!(
                    e, e_raw,
                    "t={t}: ε̂ changed although x̂₀ = {x0_raw} was inside"
                );
            } else {
                n_clipped += 1;
            }
        }
        assert!(n_clipped > 0, "t={t}: the test should exercise the clip");
    }
    assert!(ClippedDenoiser::new(&den, &schedule, 0.0).is_err());
    assert!(ClippedDenoiser::new(&den, &schedule, f32::NAN).is_err());
}

#[test]
fn clipped_vjp_matches_finite_differences() {
    let (schedule, den) = oracle();
    let clipped = ClippedDenoiser::new(&den, &schedule, 1.0).unwrap();
    let x = ImageBatch::new([2, 1, 4, 4], standard_normal(&mut seeded(2), 32)).unwrap();
    let v = ImageBatch::new([2, 1, 4, 4], standard_normal(&mut seeded(3), 32)).unwrap();
    let t = 300;
    let (_, vjp) = clipped.predict_noise_vjp(&x, t, &v).unwrap();
    // Per coordinate (the map is elementwise), away from the clip kink: h small enough not to cross it.
    let h = 1e-3f32;
    for i in 0..32 {
        let bump = |sign: f32| {
            let mut d = x.data().to_vec();
            d[i] += sign * h;
            clipped
                .predict_noise(&ImageBatch::new([2, 1, 4, 4], d).unwrap(), t)
                .unwrap()
                .data()[i]
        };
        let fd = (bump(1.0) - bump(-1.0)) / (2.0 * h) * v.data()[i];
        let rel = (fd - vjp.data()[i]).abs() / vjp.data()[i].abs().max(1e-2);
        assert!(
            rel < 1e-2,
            "coordinate {i}: finite difference {fd} vs VJP {}",
            vjp.data()[i]
        );
    }
}

/// Counts the inner network's forward passes (ε̂ alone and inside a VJP).
struct Counting<'a> {
    inner: &'a GaussianDenoiser,
    forwards: std::cell::Cell<usize>,
}

impl Denoiser for Counting<'_> {
    fn image_shape(&self) -> Option<[usize; 3]> {
        self.inner.image_shape()
    }
    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> cinediff::Result<ImageBatch> {
        self.forwards.set(self.forwards.get() + 1);
        self.inner.predict_noise(x_t, t)
    }
    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> cinediff::Result<(ImageBatch, ImageBatch)> {
        self.forwards.set(self.forwards.get() + 1);
        self.inner.predict_noise_vjp(x_t, t, v)
    }
}

#[test]
fn clipped_vjp_after_the_same_forward_reuses_it_and_gives_the_same_bits() {
    let (schedule, den) = oracle();
    let x = ImageBatch::new([2, 1, 4, 4], standard_normal(&mut seeded(4), 32)).unwrap();
    let v = ImageBatch::new([2, 1, 4, 4], standard_normal(&mut seeded(5), 32)).unwrap();
    let t = 600;
    // Reference: a VJP with no forward before it (the clip mask from its own inner forward).
    let fresh = Counting {
        inner: &den,
        forwards: 0.into(),
    };
    let reference = ClippedDenoiser::new(&fresh, &schedule, 1.0)
        .unwrap()
        .predict_noise_vjp(&x, t, &v)
        .unwrap();
    assert_eq!(fresh.forwards.get(), 2, "mask forward + VJP");

    // DPS's order: ε̂ at x_t, then the VJP at the same x_t.
    let counted = Counting {
        inner: &den,
        forwards: 0.into(),
    };
    let clipped = ClippedDenoiser::new(&counted, &schedule, 1.0).unwrap();
    let eps = clipped.predict_noise(&x, t).unwrap();
    let (eps_vjp, vjp) = clipped.predict_noise_vjp(&x, t, &v).unwrap();
    assert_eq!(
        counted.forwards.get(),
        2,
        "the VJP should reuse the forward pass at the same x_t"
    );
    assert_eq!(eps_vjp, eps);
    assert_eq!((eps_vjp, vjp), reference);

    // Another timestep or another input is a fresh forward pass.
    clipped.predict_noise_vjp(&x, t + 1, &v).unwrap();
    assert_eq!(counted.forwards.get(), 4);
    let mut moved = x.data().to_vec();
    moved[0] += 1e-3;
    let moved = ImageBatch::new(x.shape(), moved).unwrap();
    let (_, vjp_moved) = clipped.predict_noise_vjp(&moved, t, &v).unwrap();
    assert_eq!(counted.forwards.get(), 6);
    let fresh2 = Counting {
        inner: &den,
        forwards: 0.into(),
    };
    let (_, reference_moved) = ClippedDenoiser::new(&fresh2, &schedule, 1.0)
        .unwrap()
        .predict_noise_vjp(&moved, t, &v)
        .unwrap();
    assert_eq!(vjp_moved, reference_moved);
}
