//! Writes the ultrasound phantom's contact sheet: frames of one sequence in the beam domain
//! (top row, depth down, scan lines across) and scan-converted to the sector (second row); given
//! a `.npy` of samples from a prior (`[N, depth, lines]` float32, e.g. from `cinediff sample`), two
//! more rows show the first samples the same way.
//!
//! ```text
//! cargo run --release --example echo_contact_sheet -- docs/echo_phantom.png [samples.npy]
//! ```

use std::path::PathBuf;

use cinediff::data::echo::{echo_phantom, scan_convert, EchoConfig};
use cinediff::io::png::{write_grid, Window};
use cinediff::rng::substream;

/// Display magnification (beam frames are repeated, sector frames are scan-converted this large).
const SCALE: usize = 3;
/// Frames shown, and the gap between them.
const SHOWN: usize = 6;
const EVERY: usize = 4;
const SEED: u64 = 2026;

fn main() -> cinediff::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "docs/echo_phantom.png".into());
    let config = EchoConfig {
        frames: SHOWN * EVERY,
        ..EchoConfig::default()
    };
    let seq = echo_phantom(&config, &mut substream(SEED, 0))?;
    let (d, l) = (seq.depth, seq.lines);
    let picked: Vec<usize> = (0..SHOWN).map(|k| k * EVERY).collect();
    let mut beam: Vec<f32> = picked
        .iter()
        .flat_map(|&k| seq.data[k * d * l..(k + 1) * d * l].iter().copied())
        .collect();
    let mut rows = 1;
    if let Some(samples) = std::env::args_os().nth(2).map(PathBuf::from) {
        let array = cinediff::io::npy::read_npy(&samples)?;
        let cinediff::io::npy::NpyArray::Real { data, .. } = &array else {
            return Err(cinediff::Error::invalid(
                "samples dtype",
                "float32",
                array.dtype(),
            ));
        };
        if array.shape().len() != 3 || array.shape()[1..] != [d, l] || array.shape()[0] < SHOWN {
            return Err(cinediff::Error::invalid(
                "samples shape",
                format!("[≥ {SHOWN}, {d}, {l}]"),
                format!("{:?}", array.shape()),
            ));
        }
        beam.extend_from_slice(&data[..SHOWN * d * l]);
        rows = 2;
    }
    // Sector frames SCALE× as tall as the beam frames have depth samples, square pixels.
    let geometry = config.geometry();
    let h = SCALE * d;
    let w = geometry.image_width(h);
    let sector: Vec<f32> = scan_convert(&beam, [rows * SHOWN, d, l], &geometry, [h, w])?
        .into_iter()
        .map(|x| 0.5 * (x + 1.0))
        .collect();
    let mut tiles = Vec::with_capacity(2 * rows * SHOWN);
    // Beam frames, each sample a SCALE × SCALE block, centred in a tile as wide as the sector.
    let pad = (w - SCALE * l) / 2;
    for r in 0..rows {
        for f in beam[r * SHOWN * d * l..(r + 1) * SHOWN * d * l].chunks_exact(d * l) {
            let mut tile = vec![0.0f32; h * w];
            for i in 0..h {
                for j in 0..SCALE * l {
                    tile[i * w + pad + j] = 0.5 * (f[(i / SCALE) * l + j / SCALE] + 1.0);
                }
            }
            tiles.push(tile);
        }
        tiles.extend(
            sector[r * SHOWN * h * w..(r + 1) * SHOWN * h * w]
                .chunks_exact(h * w)
                .map(|c| c.to_vec()),
        );
    }
    write_grid(&out, &tiles, h, w, SHOWN, Window::up_to(1.0))?;
    eprintln!(
        "wrote {} (frames {picked:?} of seed {SEED}: beam domain, then sector; then {} sample rows)",
        out.display(),
        rows - 1
    );
    Ok(())
}
