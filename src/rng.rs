//! Seeded random streams. Every random draw in cinediff comes from a [`SeededRng`] passed down
//! explicitly; sub-streams (per frame, per sample) are derived with [`substream`], never from a global.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// The RNG used everywhere: ChaCha with 20 rounds (counter-based, portable, reproducible).
pub type SeededRng = rand_chacha::ChaCha20Rng;

/// A fresh RNG from a user seed.
pub fn seeded(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// An independent stream `stream` of the generator seeded by `seed` (ChaCha stream id), so that
/// e.g. frame k's noise does not depend on how many draws frame k-1 made.
pub fn substream(seed: u64, stream: u64) -> SeededRng {
    let mut rng = SeededRng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Fills `out` with i.i.d. standard normal draws.
pub fn fill_standard_normal(rng: &mut SeededRng, out: &mut [f32]) {
    for v in out.iter_mut() {
        *v = StandardNormal.sample(rng);
    }
}

/// `n` i.i.d. standard normal draws.
pub fn standard_normal(rng: &mut SeededRng, n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    fill_standard_normal(rng, &mut v);
    v
}
