//! BART's `pics` (parallel-imaging compressed sensing) as an external reconstruction: the
//! measurement goes to `.cfl` files in a private temporary directory, `bart pics` runs on them,
//! and the result is read back. BART's centred unitary FFT is ours (`tests/interop.rs` checks
//! `bart fft -u -i` against our zero-filled image), so the k-space, coil maps and mask go over
//! unchanged: k-space `[T, C, H, W]` as BART dims (10, 3, 0, 1), maps `[C, H, W]` as (3, 0, 1),
//! the sampling pattern `[T, H, W]` as (10, 0, 1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use num_complex::Complex32;

use crate::bundle::{Bundle, OperatorKind};
use crate::error::{Error, Result};
use crate::eval::external::ExternalMethod;
use crate::io::cfl::{read_cfl, write_cfl, Cfl};
use crate::io::layout::{Axis, Layout};
use crate::method_settings::{Resolved, SettingValue};

/// `bart pics` with ℓ1-wavelet regularisation λ (and, on sequences, total variation along time
/// λ_t), ADMM, swept over a grid of weights.
#[derive(Clone, Debug)]
pub struct BartPics {
    program: PathBuf,
    version: String,
    /// ADMM iterations (`-i`; BART's default of 30 stops far from convergence on cines).
    pub iterations: usize,
    /// Wavelet weights swept (BART's units: the data are scaled by `pics` itself).
    pub lambdas: Vec<f64>,
    /// Temporal-TV weights swept on sequences (every pair with `lambdas`).
    pub lambdas_t: Vec<f64>,
}

impl BartPics {
    /// `bart` from the `PATH` with the default grid, or `None` when it is not installed.
    pub fn from_path() -> Result<Option<Self>> {
        let Some(paths) = std::env::var_os("PATH") else {
            return Ok(None);
        };
        match std::env::split_paths(&paths)
            .map(|d| d.join("bart"))
            .find(|p| p.is_file())
        {
            Some(program) => Self::new(program).map(Some),
            None => Ok(None),
        }
    }

    /// The program at `program` (its version is asked for, so a broken install fails here) with
    /// the default grid: λ ∈ {0.001, 0.003, 0.01} × λ_t ∈ {0.01, 0.03, 0.1}, 300 iterations.
    /// The grid brackets the best weights measured on 8× phantom cines (λ 0.001, λ_t 0.03).
    pub fn new(program: PathBuf) -> Result<Self> {
        let out = Command::new(&program)
            .arg("version")
            .output()
            .map_err(|e| Error::io(&program, e))?;
        if !out.status.success() {
            return Err(Error::invalid(
                format!("{} version", program.display()),
                "a working BART",
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        Ok(Self {
            program,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            iterations: 300,
            lambdas: vec![0.001, 0.003, 0.01],
            lambdas_t: vec![0.01, 0.03, 0.1],
        })
    }

    /// The (λ, λ_t) pairs swept for `frames` frames (λ_t = 0 for a single frame).
    fn grid(&self, frames: usize) -> Vec<(f64, f64)> {
        let temporal: Vec<f64> = if frames >= 2 {
            self.lambdas_t.clone()
        } else {
            vec![0.0]
        };
        self.lambdas
            .iter()
            .flat_map(|&l| temporal.iter().map(move |&lt| (l, lt)))
            .collect()
    }

    /// Runs `bart args…` in `dir`, failing with BART's message.
    fn run(&self, dir: &Path, args: &[String]) -> Result<()> {
        let out = Command::new(&self.program)
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| Error::io(&self.program, e))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        Err(Error::invalid(
            format!("bart {}", args.join(" ")),
            "success",
            format!("{} ({tail})", out.status),
        ))
    }
}

/// A directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cinediff-bart-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn layout(axes: &[Axis]) -> Layout {
    Layout::new(axes.to_vec()).unwrap_or_else(|_| unreachable!("distinct axes"))
}

impl ExternalMethod for BartPics {
    fn identity(&self) -> String {
        format!(
            "bart {} pics ADMM {} iterations, λ {:?}, λ_t {:?}",
            self.version, self.iterations, self.lambdas, self.lambdas_t
        )
    }

    fn candidates(&self, bundle: &Bundle) -> Result<Vec<Resolved>> {
        if bundle.spec().operator != OperatorKind::Mri {
            return Err(Error::invalid(
                "bart pics measurement",
                "Cartesian MRI k-space",
                bundle.spec().operator.name(),
            ));
        }
        Ok(self
            .grid(bundle.spec().frames())
            .into_iter()
            .map(|(l, lt)| {
                let mut r: Resolved = vec![("lambda", SettingValue::Float(l))];
                if lt > 0.0 {
                    r.push(("lambda_t", SettingValue::Float(lt)));
                }
                r.push(("iterations", SettingValue::Int(self.iterations as i64)));
                r
            })
            .collect())
    }

    fn reconstruct(&self, bundle: &Bundle, k: usize) -> Result<Vec<Complex32>> {
        let spec = bundle.spec();
        let [t, h, w] = spec.shape;
        let grid = self.grid(t);
        let &(lambda, lambda_t) = grid
            .get(k)
            .ok_or_else(|| Error::invalid("bart pics candidate", format!("< {}", grid.len()), k))?;
        let dir = ScratchDir::new()?;
        let coils = spec.coils.max(1);
        write_cfl(
            &dir.0.join("k"),
            &Cfl::from_row_major(
                &[t, coils, h, w],
                &layout(&[Axis::Time, Axis::Coil, Axis::Row, Axis::Column]),
                bundle.y(),
            )?,
        )?;
        let ones;
        let maps: &[Complex32] = match bundle.coil_maps() {
            Some(m) => m.data(),
            None => {
                ones = vec![Complex32::new(1.0, 0.0); coils * h * w];
                &ones
            }
        };
        write_cfl(
            &dir.0.join("s"),
            &Cfl::from_row_major(
                &[coils, h, w],
                &layout(&[Axis::Coil, Axis::Row, Axis::Column]),
                maps,
            )?,
        )?;
        let mut pattern = Vec::with_capacity(t * h * w);
        for f in 0..t {
            match bundle.mask() {
                Some(m) => pattern.extend(
                    m.frame_pixels(f, h)?
                        .data()
                        .iter()
                        .map(|&b| Complex32::new(if b { 1.0 } else { 0.0 }, 0.0)),
                ),
                None => pattern.extend(std::iter::repeat_n(Complex32::new(1.0, 0.0), h * w)),
            }
        }
        write_cfl(
            &dir.0.join("p"),
            &Cfl::from_row_major(
                &[t, h, w],
                &layout(&[Axis::Time, Axis::Row, Axis::Column]),
                &pattern,
            )?,
        )?;
        // -S: undo pics' own data scaling, so the image is in the k-space's units; -m: ADMM
        // (the solver pics picks for two regularisers, used for one as well so both compare).
        let mut args: Vec<String> = vec![
            "pics".into(),
            "-S".into(),
            "-m".into(),
            "-d".into(),
            "0".into(),
            "-i".into(),
            self.iterations.to_string(),
            "-p".into(),
            "p".into(),
            "-R".into(),
            format!("W:3:0:{lambda}"),
        ];
        if lambda_t > 0.0 {
            args.extend(["-R".into(), format!("T:1024:0:{lambda_t}")]);
        }
        if !spec.complex {
            args.push("-c".into());
        }
        args.extend(["k".into(), "s".into(), "x".into()]);
        self.run(&dir.0, &args)?;
        let x = read_cfl(&dir.0.join("x"))?;
        let (shape, _, values) = x.to_row_major();
        let count: usize = shape.iter().product();
        if count != t * h * w {
            return Err(Error::Shape {
                what: "bart pics output".into(),
                expected: vec![t, h, w],
                got: shape,
            });
        }
        Ok(if spec.complex {
            values
        } else {
            values
                .into_iter()
                .map(|v| Complex32::new(v.re, 0.0))
                .collect()
        })
    }
}
