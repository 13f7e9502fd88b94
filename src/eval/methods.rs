//! The method registry of the evaluation matrix: every reconstruction method `cinediff eval` can
//! run, one entry each. A new method is a new entry here (built through
//! [`crate::method_settings`] for classic methods and posterior samplers).

use crate::bundle::OperatorKind;
use crate::method_settings::{ClassicKind, SamplerKind};

/// How a sequence strategy starts each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    /// Every frame from noise.
    Independent,
    /// Warm start from the previous frame's sample.
    SeqDiff,
    /// Warm start from a transition model's prediction.
    SeqDiffPlus,
    /// Every frame from noise with AID's autoregressive denoiser.
    Aid,
}

/// What kind of computation a method is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A classic reconstruction; `temporal` adds the temporal TV weight (one problem over the
    /// whole sequence).
    Classic {
        /// The method.
        kind: ClassicKind,
        /// Use the temporal weight.
        temporal: bool,
    },
    /// A posterior sampler run on every frame independently (frames batched), the mean of
    /// `samples` draws.
    Posterior(SamplerKind),
    /// A sequence strategy driving the sequence sampler frame after frame (`particles` chains).
    Sequence(StrategyKind),
    /// APS: draws from a trained conditional flow (one network evaluation each), their mean.
    Aps,
    /// Another program's reconstruction, its settings swept and the best kept
    /// ([`crate::eval::external`]); run only when asked for (`cinediff eval --baseline bart`).
    External,
}

/// One method of the registry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodEntry {
    /// Name on the command line, in files and in the report.
    pub name: &'static str,
    /// One line for the report.
    pub description: &'static str,
    /// How it is run.
    pub family: Family,
    /// The only operators it applies to (`None`: every operator).
    pub operators: Option<&'static [OperatorKind]>,
    /// It needs at least two frames (temporal methods).
    pub sequences_only: bool,
}

impl MethodEntry {
    /// Needs a diffusion prior.
    pub fn needs_prior(&self) -> bool {
        !matches!(
            self.family,
            Family::Classic { .. } | Family::External | Family::Aps
        )
    }

    /// Needs an AID model.
    pub fn needs_aid(&self) -> bool {
        self.family == Family::Sequence(StrategyKind::Aid)
    }

    /// Needs an APS model.
    pub fn needs_aps(&self) -> bool {
        self.family == Family::Aps
    }

    /// Needs an outside program (not part of the default matrix).
    pub fn needs_external(&self) -> bool {
        self.family == Family::External
    }

    /// Needs a transition model (SeqDiff+).
    pub fn needs_transition(&self) -> bool {
        self.family == Family::Sequence(StrategyKind::SeqDiffPlus)
    }

    /// Whether the method runs on a measurement of `operator` with `frames` frames.
    pub fn applies_to(&self, operator: OperatorKind, frames: usize) -> bool {
        self.operators.is_none_or(|ops| ops.contains(&operator))
            && (!self.sequences_only || frames >= 2)
    }
}

/// Every method, classic first, in the order of the report.
pub const METHODS: &[MethodEntry] = &[
    MethodEntry {
        name: "zero-filled",
        description: "Aᴴy (coil-combined inverse FFT of the zero-filled k-space)",
        family: Family::Classic {
            kind: ClassicKind::ZeroFilled,
            temporal: false,
        },
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "cg",
        description: "least squares by conjugate gradients (CG-SENSE)",
        family: Family::Classic {
            kind: ClassicKind::Cg,
            temporal: false,
        },
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "tv",
        description: "spatial total variation per frame (PDHG)",
        family: Family::Classic {
            kind: ClassicKind::Tv,
            temporal: false,
        },
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "tv-t",
        description: "spatial + temporal total variation, jointly over the sequence",
        family: Family::Classic {
            kind: ClassicKind::Tv,
            temporal: true,
        },
        operators: None,
        sequences_only: true,
    },
    MethodEntry {
        name: "wavelet",
        description: "db4 wavelet ℓ1 per frame (FISTA)",
        family: Family::Classic {
            kind: ClassicKind::Wavelet,
            temporal: false,
        },
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "interp",
        description: "linear interpolation between acquired scan lines",
        family: Family::Classic {
            kind: ClassicKind::Interp,
            temporal: false,
        },
        operators: Some(&[OperatorKind::UsLines]),
        sequences_only: false,
    },
    MethodEntry {
        name: "dps",
        description: "diffusion posterior sampling (DDPM steps, gradient through the network)",
        family: Family::Posterior(SamplerKind::Dps),
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "ddim-dc",
        description: "DDIM + data consistency (AID Alg. 1), frames independent",
        family: Family::Posterior(SamplerKind::DdimDc),
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "dds",
        description: "decomposed diffusion sampling (CG on x̂₀), frames independent",
        family: Family::Posterior(SamplerKind::Dds),
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "diffpir",
        description: "DiffPIR (proximal data step, partial re-noise), frames independent",
        family: Family::Posterior(SamplerKind::DiffPir),
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "independent",
        description: "sequence strategy: every frame from noise, particle chains",
        family: Family::Sequence(StrategyKind::Independent),
        operators: None,
        sequences_only: true,
    },
    MethodEntry {
        name: "seqdiff",
        description: "SeqDiff: frame t+1 warm-starts from frame t, a few steps per frame",
        family: Family::Sequence(StrategyKind::SeqDiff),
        operators: None,
        sequences_only: true,
    },
    MethodEntry {
        name: "seqdiff+",
        description: "SeqDiff+: warm start from a transition model's prediction",
        family: Family::Sequence(StrategyKind::SeqDiffPlus),
        operators: None,
        sequences_only: true,
    },
    MethodEntry {
        name: "aid",
        description: "AID: every frame with the autoregressive prior, conditioned on the previous reconstructions",
        family: Family::Sequence(StrategyKind::Aid),
        operators: None,
        sequences_only: true,
    },
    MethodEntry {
        name: "aps",
        description: "APS: mean of draws from a conditional flow distilled from the prior (one network evaluation each)",
        family: Family::Aps,
        operators: None,
        sequences_only: false,
    },
    MethodEntry {
        name: "bart-pics",
        description: "BART pics: ℓ1-wavelet (+ TV along time for cines), ADMM; λ swept, best PSNR kept (oracle-tuned)",
        family: Family::External,
        operators: Some(&[OperatorKind::Mri]),
        sequences_only: false,
    },
];

/// The entry called `name`.
pub fn method(name: &str) -> Option<&'static MethodEntry> {
    METHODS.iter().find(|m| m.name == name)
}

/// Every method name, in registry order.
pub fn method_names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let names = method_names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
            assert_eq!(method(n).map(|m| m.name), Some(*n));
        }
        assert!(method("nope").is_none());
    }

    #[test]
    fn applicability() {
        let interp = method("interp").unwrap();
        assert!(!interp.applies_to(OperatorKind::Mri, 8));
        assert!(interp.applies_to(OperatorKind::UsLines, 8));
        let seq = method("seqdiff").unwrap();
        assert!(!seq.applies_to(OperatorKind::Mri, 1));
        assert!(seq.applies_to(OperatorKind::Mri, 2));
        assert!(seq.needs_prior() && !seq.needs_transition());
        assert!(method("seqdiff+").unwrap().needs_transition());
        assert!(!method("tv").unwrap().needs_prior());
        let bart = method("bart-pics").unwrap();
        assert!(bart.needs_external() && !bart.needs_prior());
        assert!(
            bart.applies_to(OperatorKind::Mri, 1) && !bart.applies_to(OperatorKind::UsLines, 8)
        );
    }
}
