//! SeqDiff (Stevens et al., ICASSP 2025): frame t+1 starts from frame t's posterior sample, noised
//! to the warm-start level, x_{t+1,τ′} = α_{τ′} x_{t,0} + σ_{τ′} z, because consecutive frames of a
//! cine differ little and the remaining steps only have to add the change.

use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::sequence::SequenceStrategy;

/// Warm start from the previous frame's posterior sample (each particle from its own).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeqDiff;

impl SequenceStrategy for SeqDiff {
    fn name(&self) -> &'static str {
        "seqdiff"
    }

    fn warm_image(&mut self, t: usize, history: &[ImageBatch]) -> Result<Option<ImageBatch>> {
        history.last().cloned().map(Some).ok_or_else(|| {
            Error::invalid(
                "SeqDiff history",
                format!("frame {} before frame {t}", t.saturating_sub(1)),
                "none",
            )
        })
    }
}
