//! Every frame a full reverse trajectory from noise: the quality reference the warm-started
//! strategies are measured against.

use crate::error::Result;
use crate::image::ImageBatch;
use crate::sequence::SequenceStrategy;

/// Cold start for every frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Independent;

impl SequenceStrategy for Independent {
    fn name(&self) -> &'static str {
        "independent"
    }

    fn warm_image(&mut self, _t: usize, _history: &[ImageBatch]) -> Result<Option<ImageBatch>> {
        Ok(None)
    }
}
