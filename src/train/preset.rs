//! Named network + optimisation presets: `tiny` (tests, seconds), `small` (the 64×64 default), `base`.

use serde::{Deserialize, Serialize};

use crate::nn::unet::UNetConfig;
use crate::train::{Flips, TrainConfig};

/// A named starting point for `cinediff train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// About 70 k parameters; trains in seconds. For tests only.
    Tiny,
    /// The default for 64×64 images (about 1.1 M parameters): thin at full resolution, wide at
    /// coarse ones, so a training step costs about half of `base` on 2 CPU cores (see the model card).
    Small,
    /// The DDPM-style layout of framework.md (base 32, multipliers 1-2-2, 2 blocks per level).
    Base,
}

impl Preset {
    /// The network for images of `channels × size × size`.
    pub fn unet(self, channels: usize, size: usize) -> UNetConfig {
        // Attention at 16×16 (as in DDPM) when the network reaches it, else at its coarsest level.
        // None when even the coarsest level is too large for attention to fit in memory.
        let attention_at = |levels: usize| -> Vec<usize> {
            let coarsest = size >> (levels - 1);
            let r = if coarsest <= 16 && size >= 16 {
                16
            } else {
                coarsest
            };
            if r * r <= crate::nn::unet::MAX_ATTENTION_TOKENS {
                vec![r]
            } else {
                Vec::new()
            }
        };
        match self {
            Preset::Tiny => UNetConfig {
                in_channels: channels,
                image_size: size,
                base_channels: 8,
                channel_mults: vec![1, 2, 2],
                blocks_per_level: 1,
                attention_resolutions: attention_at(3),
                dropout: 0.0,
                groups: 4,
            },
            Preset::Small => UNetConfig {
                in_channels: channels,
                image_size: size,
                base_channels: 16,
                channel_mults: vec![1, 2, 4, 4],
                blocks_per_level: 1,
                attention_resolutions: attention_at(4),
                dropout: 0.0,
                groups: 4,
            },
            Preset::Base => UNetConfig {
                in_channels: channels,
                image_size: size,
                base_channels: 32,
                channel_mults: vec![1, 2, 2],
                blocks_per_level: 2,
                attention_resolutions: attention_at(3),
                dropout: 0.1,
                groups: 8,
            },
        }
    }

    /// Default optimisation settings for this preset.
    pub fn train_config(self) -> TrainConfig {
        let (steps, batch_size, learning_rate, warmup_steps) = match self {
            Preset::Tiny => (30, 8, 2e-3, 5),
            Preset::Small => (2800, 16, 1e-3, 200),
            Preset::Base => (50_000, 16, 2e-4, 1000),
        };
        TrainConfig {
            steps,
            batch_size,
            learning_rate,
            warmup_steps,
            min_lr_ratio: 0.05,
            weight_decay: 0.0,
            grad_clip_norm: 1.0,
            ema_decay: 0.999,
            flips: Flips::Horizontal,
            seed: 0,
            lr_restarts: Vec::new(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "small" => Ok(Preset::Small),
            "base" => Ok(Preset::Base),
            other => Err(crate::Error::invalid(
                "preset",
                "tiny, small or base",
                other,
            )),
        }
    }
}
