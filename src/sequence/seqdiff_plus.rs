//! SeqDiff+ (Stevens et al., ICASSP 2025): as SeqDiff, but frame t+1 warm-starts from a learned
//! transition model's prediction x̃_{t+1,0} = f(x_{t−K+1,0}, …, x_{t,0}) of it, noised to the
//! warm-start level, x_{t+1,τ′} = α_{τ′} x̃_{t+1,0} + σ_{τ′} z. Under fast motion the previous frame
//! is a poor starting point and the few remaining steps cannot move structures far; the prediction
//! is closer.

use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::transition::TransitionPredictor;
use crate::sequence::SequenceStrategy;

/// Warm start from the transition model's prediction of the frame (each particle from its own chain).
pub struct SeqDiffPlus<'a> {
    predictor: &'a TransitionPredictor,
    prior: Normalization,
}

impl<'a> SeqDiffPlus<'a> {
    /// Uses `predictor` with a prior whose network space is `prior` applied to the units both
    /// models were trained in; their channel counts must agree.
    pub fn new(
        predictor: &'a TransitionPredictor,
        prior: Normalization,
        channels: usize,
    ) -> Result<Self> {
        let c = predictor.config().network.in_channels;
        if c != channels {
            return Err(Error::invalid(
                "transition model channels",
                format!("{channels} (the prior's)"),
                c,
            ));
        }
        Ok(Self { predictor, prior })
    }
}

impl SequenceStrategy for SeqDiffPlus<'_> {
    fn name(&self) -> &'static str {
        "seqdiff+"
    }

    fn warm_image(&mut self, t: usize, history: &[ImageBatch]) -> Result<Option<ImageBatch>> {
        if history.is_empty() {
            return Err(Error::invalid(
                "SeqDiff+ history",
                format!("frames before frame {t}"),
                "none",
            ));
        }
        let past: Vec<ImageBatch> = history
            .iter()
            .map(|x| {
                let mut user = x.clone();
                self.prior.denormalize(user.data_mut());
                user
            })
            .collect();
        let mut next = self.predictor.predict(&past)?;
        self.prior.normalize(next.data_mut());
        Ok(Some(next))
    }
}
