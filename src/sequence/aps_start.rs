//! APS as SeqDiff's initialiser: wherever a strategy would start a frame from noise (frame 0, a
//! cold restart, every frame of [`super::Independent`]), start it instead from APS posterior draws
//! of that frame, noised to the warm-start level — one flow evaluation per particle in place of
//! the full reverse trajectory.

use std::sync::Arc;

use crate::aps::ApsSampler;
use crate::bundle::Bundle;
use crate::data::Normalization;
use crate::diffusion::Denoiser;
use crate::error::Result;
use crate::image::ImageBatch;
use crate::physics::operator::LinearOperator;
use crate::rng::substream;
use crate::sequence::SequenceStrategy;

/// `inner`, with APS draws where it would start from noise.
pub struct ApsStart<'a> {
    inner: Box<dyn SequenceStrategy + 'a>,
    aps: &'a ApsSampler,
    bundle: &'a Bundle,
    /// The bundle's per-frame operators, built once.
    operators: Vec<Arc<dyn LinearOperator>>,
    normalization: Normalization,
    seed: u64,
}

impl<'a> ApsStart<'a> {
    /// Wraps `inner`; draws of frame t come from `substream(seed, t)` and are expressed with
    /// `normalization` (the run's, so they are in the prior's network units). Fails when the
    /// APS model cannot take `bundle`'s measurements.
    pub fn new(
        inner: Box<dyn SequenceStrategy + 'a>,
        aps: &'a ApsSampler,
        bundle: &'a Bundle,
        normalization: Normalization,
        seed: u64,
    ) -> Result<Self> {
        aps.check_bundle(bundle)?;
        Ok(Self {
            inner,
            aps,
            bundle,
            operators: bundle.frame_operators()?,
            normalization,
            seed,
        })
    }
}

impl SequenceStrategy for ApsStart<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn warm_image(&mut self, t: usize, history: &[ImageBatch]) -> Result<Option<ImageBatch>> {
        self.inner.warm_image(t, history)
    }

    fn fallback_start(&mut self, t: usize, particles: usize) -> Result<Option<ImageBatch>> {
        // The draws' stream is apart from the samplers' (substream(seed, t·P + p)).
        let mut rng = substream(self.seed ^ 0xA95_57A87, t as u64);
        let op = self.operators.get(t).ok_or_else(|| {
            crate::error::Error::invalid(
                "APS start frame",
                format!("< {}", self.operators.len()),
                t,
            )
        })?;
        self.aps
            .frame_draws(
                self.bundle,
                t,
                op.as_ref(),
                particles,
                self.normalization,
                &mut rng,
            )
            .map(Some)
    }

    fn history_frames(&self) -> usize {
        self.inner.history_frames()
    }

    fn frame_denoiser<'s>(
        &'s self,
        t: usize,
        history: &[ImageBatch],
    ) -> Result<Option<Box<dyn Denoiser + 's>>> {
        self.inner.frame_denoiser(t, history)
    }
}
