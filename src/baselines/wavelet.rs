//! Wavelet-sparsity (ℓ1) regularised reconstruction,
//! x̂ = argmin_x ½‖Ax − y‖² + λs·Σ_{detail i}|(W x)_i|, by FISTA (Beck and Teboulle 2009), with
//! W a periodised orthogonal 2-D discrete wavelet transform ([`WaveletTransform`]).
//!
//! **Transform.** Separable, periodic boundary, on the last two axes (each `[h, w]` frame of
//! `[…, h, w]` separately). One 1-D level maps a length-N line to
//! `a[k] = Σ_j h[j]·x[(2k + L/2 − j) mod N]`, `d[k] = Σ_j g[j]·x[(2k + L/2 − j) mod N]`, k < N/2,
//! with h = PyWavelets' `dec_lo`, `g[j] = (−1)^(j+1)·h[L−1−j]` (`dec_hi`) and L taps: exactly PyWavelets'
//! `dwt(x, wavelet, mode='periodization')`. A 2-D level transforms every row, then every column of
//! the current approximation block, and stores the four bands in PyWavelets' `coeffs_to_array`
//! layout: `[[aa, ad], [da, dd]]` (top-left the approximation, bottom-left cH = 'da', detail along
//! axis 0; top-right cV = 'ad', detail along axis 1). Further levels recurse into the top-left
//! block. The matrix is orthogonal, so the inverse is the adjoint and ‖W x‖ = ‖x‖.
//!
//! A level needs even sides of at least L at that level ([`Wavelet::max_levels`]).
//!
//! **Solver.** FISTA with step 1/‖A‖² (power-iteration estimate with a 2 % margin):
//! z = v − (AᴴA v − Aᴴy)/‖A‖², x⁺ = Wᴴ S_{λs/‖A‖²}(W z) with complex soft-thresholding
//! S_t(c) = c·max(0, 1 − t/|c|) of the detail coefficients only (the coarsest approximation band
//! is not penalised), t⁺ = (1 + √(1 + 4t²))/2, v = x⁺ + ((t − 1)/t⁺)(x⁺ − x); from x₀ = v₀ = Aᴴy.
//! For real images z is projected on real values before the prox (the exact prox of ℓ1 plus the
//! real constraint, because W is real), so every iterate is real.

use num_complex::{Complex32, Complex64};

use crate::baselines::{
    adjoint_of_measurement, check_iterations, check_non_negative, data_term, distance, finish,
    frames_of, operator_norm_bound, project_real, relative_scale, IterationReport, Reconstructor,
};
use crate::error::{Error, Result};
use crate::physics::complex::norm;
use crate::physics::operator::LinearOperator;

/// Decomposition low-pass filters, copied from PyWavelets 1.8.0 `pywt.Wavelet(name).dec_lo`
/// (the Daubechies filters of Daubechies, *Ten Lectures on Wavelets*, 1992, Table 6.1, in
/// PyWavelets' order); tests/golden/wavelet_golden.py prints them and checks the
/// quadrature-mirror high-pass used here against PyWavelets' `dec_hi`.
const HAAR: [f64; 2] = [
    std::f64::consts::FRAC_1_SQRT_2,
    std::f64::consts::FRAC_1_SQRT_2,
];
const DB2: [f64; 4] = [
    -0.12940952255126037,
    0.2241438680420134,
    0.8365163037378079,
    0.48296291314453416,
];
const DB4: [f64; 8] = [
    -0.010597401785069032,
    0.0328830116668852,
    0.030841381835560764,
    -0.18703481171909309,
    -0.027983769416859854,
    0.6308807679298589,
    0.7148465705529157,
    0.2303778133088965,
];

/// An orthogonal wavelet family (PyWavelets names and filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wavelet {
    /// Haar (`haar`, = db1): 2 taps, 1 vanishing moment.
    Haar,
    /// Daubechies with 2 vanishing moments (`db2`): 4 taps.
    Db2,
    /// Daubechies with 4 vanishing moments (`db4`): 8 taps.
    Db4,
}

impl Wavelet {
    /// PyWavelets' name (`haar`, `db2`, `db4`).
    pub fn name(self) -> &'static str {
        match self {
            Wavelet::Haar => "haar",
            Wavelet::Db2 => "db2",
            Wavelet::Db4 => "db4",
        }
    }

    /// The decomposition low-pass filter h (PyWavelets' `dec_lo`).
    pub fn low_pass(self) -> &'static [f64] {
        match self {
            Wavelet::Haar => &HAAR,
            Wavelet::Db2 => &DB2,
            Wavelet::Db4 => &DB4,
        }
    }

    /// The decomposition high-pass filter `g[j] = (−1)^(j+1)·h[L−1−j]` (PyWavelets' `dec_hi`).
    pub fn high_pass(self) -> Vec<f64> {
        let h = self.low_pass();
        let len = h.len();
        (0..len)
            .map(|j| {
                let sign = if j % 2 == 0 { -1.0 } else { 1.0 };
                sign * h[len - 1 - j]
            })
            .collect()
    }

    /// Number of taps L.
    pub fn filter_len(self) -> usize {
        self.low_pass().len()
    }

    /// How many 2-D levels an `[h, w]` image allows: each level needs both sides even and ≥ L.
    pub fn max_levels(self, shape: [usize; 2]) -> usize {
        let len = self.filter_len();
        let [mut h, mut w] = shape;
        let mut levels = 0;
        while h % 2 == 0 && w % 2 == 0 && h >= len && w >= len {
            levels += 1;
            h /= 2;
            w /= 2;
        }
        levels
    }
}

/// The periodised orthogonal 2-D DWT W of `[h, w]` frames with `levels` levels (see the
/// [module docs](self) for the convention, which is PyWavelets' `mode='periodization'`).
#[derive(Clone, Debug, PartialEq)]
pub struct WaveletTransform {
    wavelet: Wavelet,
    shape: [usize; 2],
    levels: usize,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl WaveletTransform {
    /// W for `[h, w]` frames; fails unless 1 ≤ `levels` ≤ [`Wavelet::max_levels`].
    pub fn new(wavelet: Wavelet, shape: [usize; 2], levels: usize) -> Result<Self> {
        let max = wavelet.max_levels(shape);
        if max == 0 {
            return Err(too_small(wavelet, shape));
        }
        if levels == 0 || levels > max {
            return Err(Error::invalid(
                format!(
                    "{} wavelet levels for a {}×{} image",
                    wavelet.name(),
                    shape[0],
                    shape[1]
                ),
                format!(
                    "1 ..= {max} (each level needs even sides ≥ {})",
                    wavelet.filter_len()
                ),
                levels,
            ));
        }
        Ok(Self {
            wavelet,
            shape,
            levels,
            low: wavelet.low_pass().to_vec(),
            high: wavelet.high_pass(),
        })
    }

    /// The wavelet.
    pub fn wavelet(&self) -> Wavelet {
        self.wavelet
    }

    /// `[h, w]` of one frame.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// `[h, w] / 2^levels`, the coarsest approximation block at the top left of each frame.
    pub fn approximation_shape(&self) -> [usize; 2] {
        [self.shape[0] >> self.levels, self.shape[1] >> self.levels]
    }

    /// True when flat index `index` of a frame is a detail coefficient (not in the approximation).
    pub fn is_detail(&self, index: usize) -> bool {
        let [ah, aw] = self.approximation_shape();
        let w = self.shape[1];
        index / w >= ah || index % w >= aw
    }

    fn frame_len(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    fn check_frames(&self, what: &str, len: usize) -> Result<()> {
        let frame = self.frame_len();
        if len == 0 || !len.is_multiple_of(frame) {
            return Err(Error::invalid(
                what,
                format!(
                    "a whole number (≥ 1) of {}×{} frames",
                    self.shape[0], self.shape[1]
                ),
                format!("{len} elements"),
            ));
        }
        Ok(())
    }

    /// In place: each `[h, w]` frame of `data` (a whole number of frames) ← W·frame.
    pub fn forward_in_place(&self, data: &mut [Complex32]) -> Result<()> {
        self.check_frames("wavelet transform input", data.len())?;
        let mut lines = Lines::new(self.shape, self.low.len());
        let analyse = |src: &[Complex64], dst: &mut [Complex64], ext: &mut [Complex64]| {
            self.analyse(src, dst, ext)
        };
        for frame in data.chunks_exact_mut(self.frame_len()) {
            for level in 0..self.levels {
                let block = [self.shape[0] >> level, self.shape[1] >> level];
                lines.rows(frame, block, &analyse);
                lines.columns(frame, block, &analyse);
            }
        }
        Ok(())
    }

    /// In place: each frame of coefficients ← Wᴴ·frame = W⁻¹·frame.
    pub fn inverse_in_place(&self, data: &mut [Complex32]) -> Result<()> {
        self.check_frames("inverse wavelet transform input", data.len())?;
        let mut lines = Lines::new(self.shape, self.low.len());
        let synthesise = |src: &[Complex64], dst: &mut [Complex64], ext: &mut [Complex64]| {
            self.synthesise(src, dst, ext)
        };
        for frame in data.chunks_exact_mut(self.frame_len()) {
            for level in (0..self.levels).rev() {
                let block = [self.shape[0] >> level, self.shape[1] >> level];
                lines.columns(frame, block, &synthesise);
                lines.rows(frame, block, &synthesise);
            }
        }
        Ok(())
    }

    /// W x as a new buffer.
    pub fn forward(&self, x: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut out = x.to_vec();
        self.forward_in_place(&mut out)?;
        Ok(out)
    }

    /// Wᴴ c as a new buffer.
    pub fn inverse(&self, coefficients: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut out = coefficients.to_vec();
        self.inverse_in_place(&mut out)?;
        Ok(out)
    }

    /// One 1-D analysis level: `dst[..N/2]` = approximation, `dst[N/2..]` = detail. `ext` (length
    /// ≥ N + 2L) holds the periodic extension, so the inner loop indexes without wrapping.
    fn analyse(&self, src: &[Complex64], dst: &mut [Complex64], ext: &mut [Complex64]) {
        let n = src.len();
        let taps = self.low.len();
        let shift = taps / 2;
        // ext[i] = src[(i − L) mod N]; 2k + L/2 − j + L then lies in 1..N + 2L for j < L.
        let ext = &mut ext[..n + 2 * taps];
        for (i, e) in ext.iter_mut().enumerate() {
            *e = src[(i + n * taps - taps) % n];
        }
        let (approx, detail) = dst.split_at_mut(n / 2);
        for (k, (a, d)) in approx.iter_mut().zip(detail.iter_mut()).enumerate() {
            let base = 2 * k + shift + taps;
            let (mut sa, mut sd) = (Complex64::default(), Complex64::default());
            for (j, (&hj, &gj)) in self.low.iter().zip(&self.high).enumerate() {
                let v = ext[base - j];
                sa += hj * v;
                sd += gj * v;
            }
            *a = sa;
            *d = sd;
        }
    }

    /// The adjoint (= inverse) of [`analyse`](Self::analyse): scatter into the extension, then
    /// fold it back periodically.
    fn synthesise(&self, src: &[Complex64], dst: &mut [Complex64], ext: &mut [Complex64]) {
        let n = src.len();
        let taps = self.low.len();
        let shift = taps / 2;
        let ext = &mut ext[..n + 2 * taps];
        ext.fill(Complex64::default());
        let half = n / 2;
        for (k, (&a, &d)) in src[..half].iter().zip(&src[half..]).enumerate() {
            let base = 2 * k + shift + taps;
            for (j, (&hj, &gj)) in self.low.iter().zip(&self.high).enumerate() {
                ext[base - j] += hj * a + gj * d;
            }
        }
        dst.fill(Complex64::default());
        for (i, &e) in ext.iter().enumerate() {
            dst[(i + n * taps - taps) % n] += e;
        }
    }
}

/// A 1-D transform step on one line: (input, output, periodic-extension scratch).
type LineFn<'a> = dyn Fn(&[Complex64], &mut [Complex64], &mut [Complex64]) + 'a;

/// f64 scratch lines for the separable transform of one frame.
struct Lines {
    src: Vec<Complex64>,
    dst: Vec<Complex64>,
    ext: Vec<Complex64>,
    width: usize,
}

impl Lines {
    fn new(shape: [usize; 2], taps: usize) -> Self {
        let longest = shape[0].max(shape[1]);
        Self {
            src: vec![Complex64::default(); longest],
            dst: vec![Complex64::default(); longest],
            ext: vec![Complex64::default(); longest + 2 * taps],
            width: shape[1],
        }
    }

    /// Applies `f` to each row of the top-left `block` of `frame` (lines along axis 1).
    fn rows(&mut self, frame: &mut [Complex32], block: [usize; 2], f: &LineFn<'_>) {
        let [bh, bw] = block;
        let (src, dst) = (&mut self.src[..bw], &mut self.dst[..bw]);
        for row in frame.chunks_exact_mut(self.width).take(bh) {
            let line = &mut row[..bw];
            src.iter_mut()
                .zip(line.iter())
                .for_each(|(s, v)| *s = widen(*v));
            f(src, dst, &mut self.ext);
            line.iter_mut()
                .zip(dst.iter())
                .for_each(|(v, d)| *v = narrow(*d));
        }
    }

    /// Applies `f` to each column of the top-left `block` of `frame` (lines along axis 0).
    fn columns(&mut self, frame: &mut [Complex32], block: [usize; 2], f: &LineFn<'_>) {
        let [bh, bw] = block;
        let width = self.width;
        let (src, dst) = (&mut self.src[..bh], &mut self.dst[..bh]);
        for j in 0..bw {
            src.iter_mut()
                .enumerate()
                .for_each(|(i, s)| *s = widen(frame[i * width + j]));
            f(src, dst, &mut self.ext);
            dst.iter()
                .enumerate()
                .for_each(|(i, d)| frame[i * width + j] = narrow(*d));
        }
    }
}

fn widen(v: Complex32) -> Complex64 {
    Complex64::new(v.re as f64, v.im as f64)
}

fn narrow(v: Complex64) -> Complex32 {
    Complex32::new(v.re as f32, v.im as f32)
}

fn too_small(wavelet: Wavelet, shape: [usize; 2]) -> Error {
    Error::invalid(
        format!("image size for the {} wavelet", wavelet.name()),
        format!(
            "both sides even and ≥ {} (the filter length) for at least one level",
            wavelet.filter_len()
        ),
        format!("{}×{}", shape[0], shape[1]),
    )
}

/// min_x ½‖Ax − y‖² + λs·‖W x‖₁ over the detail coefficients, by FISTA, with s = max|Aᴴy| so
/// that λ is unitless: the same λ works for data of any intensity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaveletL1 {
    /// λ ≥ 0, the ℓ1 weight relative to s = max|Aᴴy|.
    pub lambda: f64,
    /// The wavelet family.
    pub wavelet: Wavelet,
    /// Requested levels (≥ 1), reduced to what the image size allows ([`Wavelet::max_levels`]).
    pub levels: usize,
    /// Most FISTA iterations (≥ 1; each applies AᴴA once).
    pub iterations: usize,
    /// Stop once ‖x_{k+1} − x_k‖ ≤ `tolerance`·‖x_k‖ (≥ 0; 0 runs every iteration).
    pub tolerance: f64,
}

impl Default for WaveletL1 {
    fn default() -> Self {
        Self {
            lambda: 0.005,
            wavelet: Wavelet::Db4,
            levels: 3,
            iterations: 200,
            tolerance: 1e-5,
        }
    }
}

/// The validated problem: the transform, the threshold weight and Aᴴy.
struct Problem {
    transform: WaveletTransform,
    /// λs.
    weight: f64,
    adjoint_y: Vec<Complex32>,
}

impl WaveletL1 {
    /// Fails unless λ and the tolerance are finite and ≥ 0 and levels, iterations ≥ 1.
    pub fn validate(&self) -> Result<()> {
        check_non_negative("wavelet weight λ", self.lambda)?;
        check_iterations("wavelet levels", self.levels)?;
        check_iterations("wavelet iterations", self.iterations)?;
        check_non_negative("wavelet tolerance", self.tolerance)
    }

    /// The transform used for images of A's input shape `[…, h, w]`: `levels` reduced to what
    /// `[h, w]` allows; fails if not even one level fits.
    pub fn transform_for(&self, input_shape: &[usize]) -> Result<WaveletTransform> {
        self.validate()?;
        let [_, h, w] = frames_of("wavelet", input_shape)?;
        let max = self.wavelet.max_levels([h, w]);
        if max == 0 {
            return Err(too_small(self.wavelet, [h, w]));
        }
        WaveletTransform::new(self.wavelet, [h, w], self.levels.min(max))
    }

    fn problem(&self, operator: &dyn LinearOperator, y: &[Complex32]) -> Result<Problem> {
        let transform = self.transform_for(operator.input_shape())?;
        let adjoint_y = adjoint_of_measurement(operator, y, false)?;
        Ok(Problem {
            transform,
            weight: self.lambda * relative_scale(&adjoint_y),
            adjoint_y,
        })
    }

    /// ½‖Ax − y‖² + λs·Σ_detail|(W x)_i| at `x` (s = max|Aᴴy|), the quantity
    /// [`solve`](Self::solve) minimises.
    pub fn objective(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        x: &[Complex32],
    ) -> Result<f64> {
        let problem = self.problem(operator, y)?;
        // The data term checks x's length against A's input shape first.
        let data = data_term(operator, x, y)?;
        let coefficients = problem.transform.forward(x)?;
        let l1: f64 = coefficients
            .chunks_exact(problem.transform.frame_len())
            .flat_map(|c| c.iter().enumerate())
            .filter(|(i, _)| problem.transform.is_detail(*i))
            .map(|(_, v)| (v.re as f64).hypot(v.im as f64))
            .sum();
        Ok(data + problem.weight * l1)
    }

    /// x̂ and how FISTA ended.
    pub fn solve(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<(Vec<Complex32>, IterationReport)> {
        let Problem {
            transform,
            weight,
            adjoint_y,
        } = self.problem(operator, y)?;
        let mut report = IterationReport {
            iterations: 0,
            relative_change: 0.0,
            converged: false,
        };
        let mut x = adjoint_y.clone();
        if real {
            project_real(&mut x);
        }
        let lipschitz = operator_norm_bound(operator)?.powi(2);
        if lipschitz == 0.0 {
            // A = 0: every x fits equally well and Aᴴy = 0 is the penalty's minimiser.
            report.converged = true;
            return Ok((finish(self.name(), x)?, report));
        }
        let step = (1.0 / lipschitz) as f32;
        let threshold = weight / lipschitz;
        let n = x.len();
        let mut v = x.clone();
        let mut z = vec![Complex32::default(); n];
        let mut t = 1.0f64;
        while report.iterations < self.iterations {
            // Gradient step on the data term at the extrapolated point v.
            operator.normal_into(&v, &mut z)?;
            for ((zi, &vi), &b) in z.iter_mut().zip(&v).zip(&adjoint_y) {
                *zi = vi - step * (*zi - b);
            }
            if real {
                project_real(&mut z);
            }
            // Prox of the weighted ℓ1 norm of the detail coefficients (W orthogonal).
            transform.forward_in_place(&mut z)?;
            for frame in z.chunks_exact_mut(transform.frame_len()) {
                for (i, c) in frame.iter_mut().enumerate() {
                    if transform.is_detail(i) {
                        *c = soft_threshold(*c, threshold);
                    }
                }
            }
            transform.inverse_in_place(&mut z)?;
            if real {
                // Already real up to rounding of the real transform; make it exact.
                project_real(&mut z);
            }
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            let momentum = ((t - 1.0) / t_next) as f32;
            let change = distance(&z, &x);
            let size = norm(&x);
            for ((vi, &zi), &xi) in v.iter_mut().zip(&z).zip(&x) {
                *vi = zi + momentum * (zi - xi);
            }
            std::mem::swap(&mut x, &mut z);
            t = t_next;
            report.iterations += 1;
            report.relative_change = if size > 0.0 { change / size } else { change };
            if !report.relative_change.is_finite() {
                break;
            }
            if change <= self.tolerance * size {
                report.converged = true;
                break;
            }
        }
        Ok((finish(self.name(), x)?, report))
    }
}

/// c·max(0, 1 − t/|c|): the prox of t|·| on complex numbers (shrinks the magnitude, keeps the phase).
fn soft_threshold(c: Complex32, t: f64) -> Complex32 {
    let magnitude = (c.re as f64).hypot(c.im as f64);
    if magnitude <= t {
        Complex32::default()
    } else {
        c * (1.0 - t / magnitude) as f32
    }
}

impl Reconstructor for WaveletL1 {
    fn name(&self) -> &'static str {
        "wavelet"
    }

    fn reconstruct(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<Vec<Complex32>> {
        self.solve(operator, y, real).map(|(x, _)| x)
    }
}
