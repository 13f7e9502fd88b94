//! Golden numbers for the noise schedules and timestep grids, computed with numpy (float64) from the
//! formulas of diffusers' `DDPMScheduler`/`DDIMScheduler` (`beta_schedule="linear"` and
//! `"squaredcos_cap_v2"`, `DDIMScheduler.set_timesteps`). Each expected array is preceded by the exact
//! one-line python command that printed it. diffusers itself stores β and ᾱ in float32; these
//! references are the same formulas in float64, which cinediff uses.

use cinediff::diffusion::{NoiseSchedule, ScheduleKind, TimestepSpacing};

/// The timesteps at which the schedules are checked.
const TS: [usize; 6] = [0, 1, 10, 250, 500, 999];

/// Relative tolerance for f64 schedule values.
const RTOL: f64 = 1e-9;

fn assert_close(what: &str, got: &[f64], expected: &[f64]) {
    assert_eq!(got.len(), expected.len());
    for ((&g, &e), &t) in got.iter().zip(expected).zip(&TS) {
        let rel = (g - e).abs() / e.abs();
        assert!(
            rel <= RTOL,
            "{what} at t = {t}: got {g:e}, numpy {e:e} (rel. error {rel:e})"
        );
    }
}

fn values(schedule: &NoiseSchedule, f: impl Fn(&NoiseSchedule, usize) -> f64) -> Vec<f64> {
    TS.iter().map(|&t| f(schedule, t)).collect()
}

#[test]
fn linear_schedule_matches_numpy() {
    let s = NoiseSchedule::new(ScheduleKind::LINEAR, 1000).unwrap();
    assert_eq!(s, NoiseSchedule::linear_default());
    // python3 -c "import numpy as np; b=np.linspace(1e-4,0.02,1000); ab=np.cumprod(1-b); print(repr((ab)[[0,1,10,250,500,999]].tolist()))"
    let alpha_bar = [
        0.9999,
        0.9997800920720721,
        0.997806572507846,
        0.5214230306185275,
        0.07779665836502389,
        4.035829765375676e-05,
    ];
    // python3 -c "import numpy as np; b=np.linspace(1e-4,0.02,1000); ab=np.cumprod(1-b); print(repr((np.sqrt(ab))[[0,1,10,250,500,999]].tolist()))"
    let alpha = [
        0.9999499987499375,
        0.9998900399904342,
        0.9989026842029438,
        0.722096275172866,
        0.2789205233843933,
        0.006352818087570016,
    ];
    // python3 -c "import numpy as np; b=np.linspace(1e-4,0.02,1000); ab=np.cumprod(1-b); print(repr((np.sqrt(1-ab))[[0,1,10,250,500,999]].tolist()))"
    let sigma = [
        0.009999999999999449,
        0.014829292900469677,
        0.04683404202237951,
        0.6917925768476216,
        0.9603141890209558,
        0.99997982064757,
    ];
    // python3 -c "import numpy as np; b=np.linspace(1e-4,0.02,1000); ab=np.cumprod(1-b); print(repr((np.log(np.sqrt(ab))-np.log(np.sqrt(1-ab)))[[0,1,10,250,500,999]].tolist()))"
    let lambda = [
        4.60512018348798,
        4.211040838259372,
        3.0600470285516588,
        0.042872308872456744,
        -1.2363336323287222,
        -5.058836591650517,
    ];
    assert_close(
        "linear alpha_bar",
        &values(&s, NoiseSchedule::alpha_bar),
        &alpha_bar,
    );
    assert_close("linear alpha", &values(&s, NoiseSchedule::alpha), &alpha);
    assert_close("linear sigma", &values(&s, NoiseSchedule::sigma), &sigma);
    assert_close("linear lambda", &values(&s, NoiseSchedule::lambda), &lambda);
}

#[test]
fn cosine_schedule_matches_numpy() {
    let s = NoiseSchedule::new(ScheduleKind::COSINE, 1000).unwrap();
    // python3 -c "import numpy as np; f=lambda u: np.cos((u+0.008)/1.008*np.pi/2)**2; b=np.array([min(1-f((i+1)/1000)/f(i/1000),0.999) for i in range(1000)]); ab=np.cumprod(1-b); print(repr((ab)[[0,1,10,250,500,999]].tolist()))"
    let alpha_bar = [
        0.999958715775178,
        0.9999125759273678,
        0.9992789037733427,
        0.8458879864968832,
        0.49228517244880304,
        2.4287669070348567e-09,
    ];
    // python3 -c "import numpy as np; f=lambda u: np.cos((u+0.008)/1.008*np.pi/2)**2; b=np.array([min(1-f((i+1)/1000)/f(i/1000),0.999) for i in range(1000)]); ab=np.cumprod(1-b); print(repr((np.sqrt(ab))[[0,1,10,250,500,999]].tolist()))"
    let alpha = [
        0.9999793576745362,
        0.9999562870082711,
        0.999639386865755,
        0.9197216896957923,
        0.7016303673935465,
        4.9282521313695554e-05,
    ];
    // python3 -c "import numpy as np; f=lambda u: np.cos((u+0.008)/1.008*np.pi/2)**2; b=np.array([min(1-f((i+1)/1000)/f(i/1000),0.999) for i in range(1000)]); ab=np.cumprod(1-b); print(repr((np.sqrt(1-ab))[[0,1,10,250,500,999]].tolist()))"
    let sigma = [
        0.0064252801356804,
        0.009350084097599371,
        0.026853234938406967,
        0.3925710298826402,
        0.7125411058677225,
        0.9999999987856165,
    ];
    // python3 -c "import numpy as np; f=lambda u: np.cos((u+0.008)/1.008*np.pi/2)**2; b=np.array([min(1-f((i+1)/1000)/f(i/1000),0.999) for i in range(1000)]); ab=np.cumprod(1-b); print(repr((np.log(np.sqrt(ab))-np.log(np.sqrt(1-ab)))[[0,1,10,250,500,999]].tolist()))"
    let lambda = [
        5.047494405728716,
        4.672326227379166,
        3.6170083052364705,
        0.8513536243735005,
        -0.015430879745221449,
        -9.91794107581199,
    ];
    assert_close(
        "cosine alpha_bar",
        &values(&s, NoiseSchedule::alpha_bar),
        &alpha_bar,
    );
    assert_close("cosine alpha", &values(&s, NoiseSchedule::alpha), &alpha);
    assert_close("cosine sigma", &values(&s, NoiseSchedule::sigma), &sigma);
    assert_close("cosine lambda", &values(&s, NoiseSchedule::lambda), &lambda);
}

#[test]
fn clean_level_is_alpha_bar_one() {
    let s = NoiseSchedule::linear_default();
    assert_eq!(s.alpha_bar_or_clean(None), 1.0);
    assert_eq!(s.alpha_bar_or_clean(Some(250)), s.alpha_bar(250));
}

fn steps(n: usize, spacing: TimestepSpacing) -> Vec<usize> {
    NoiseSchedule::linear_default()
        .timesteps(n, spacing)
        .unwrap()
}

#[test]
fn timesteps_10_match_diffusers_ddim() {
    // python3 -c "import numpy as np; print((np.linspace(0,999,10).round()[::-1]).astype(int).tolist())"
    assert_eq!(
        steps(10, TimestepSpacing::Linspace),
        [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
    );
    // python3 -c "import numpy as np; print(((np.arange(0,10)*(1000//10)).round()[::-1]).astype(int).tolist())"
    assert_eq!(
        steps(10, TimestepSpacing::Leading),
        [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    );
    // python3 -c "import numpy as np; print((np.round(np.arange(1000,0,-1000/10)).astype(int)-1).astype(int).tolist())"
    assert_eq!(
        steps(10, TimestepSpacing::Trailing),
        [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    );
}

#[test]
fn timesteps_7_match_diffusers_ddim() {
    // linspace(0, 999, 7) = 0, 166.5, 333, 499.5, …: np.round rounds half to even (166.5 → 166, 499.5 → 500).
    // python3 -c "import numpy as np; print((np.linspace(0,999,7).round()[::-1]).astype(int).tolist())"
    assert_eq!(
        steps(7, TimestepSpacing::Linspace),
        [999, 832, 666, 500, 333, 166, 0]
    );
    // python3 -c "import numpy as np; print(((np.arange(0,7)*(1000//7)).round()[::-1]).astype(int).tolist())"
    assert_eq!(
        steps(7, TimestepSpacing::Leading),
        [852, 710, 568, 426, 284, 142, 0]
    );
    // python3 -c "import numpy as np; print((np.round(np.arange(1000,0,-1000/7)).astype(int)-1).astype(int).tolist())"
    assert_eq!(
        steps(7, TimestepSpacing::Trailing),
        [999, 856, 713, 570, 428, 285, 142]
    );
}

#[test]
fn trailing_ties_round_half_to_even() {
    // 1000/16 = 62.5: 937.5 → 938, 812.5 → 812 (half to even), then − 1.
    // python3 -c "import numpy as np; print((np.round(np.arange(1000,0,-1000/16)).astype(int)-1).tolist())"
    assert_eq!(
        steps(16, TimestepSpacing::Trailing),
        [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]
    );
}

#[test]
fn timestep_count_is_validated() {
    let s = NoiseSchedule::linear_default();
    assert!(s.timesteps(0, TimestepSpacing::Linspace).is_err());
    assert!(s.timesteps(1001, TimestepSpacing::Trailing).is_err());
    assert_eq!(
        s.timesteps(1000, TimestepSpacing::Linspace).unwrap().len(),
        1000
    );
}
