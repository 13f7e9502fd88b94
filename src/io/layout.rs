//! What the axes of a cinediff array mean, and how they map onto the dimension slots of the
//! column-major formats (BART `.cfl`, NIfTI-1).
//!
//! cinediff arrays are row-major (C order, last axis fastest) with the image axes last: `[H, W]`,
//! `[T, H, W]`, `[C, H, W]`, `[T, C, H, W]`, `[Z, H, W]`. Rows (H) are the readout, columns (W) the
//! phase encodes. BART and NIfTI store column-major (first dimension fastest), with the readout
//! first. The mapping keeps every element at the same *index*: cinediff `x[t, c, h, w]` is BART
//! `x[h, w, 0, c, …, t, …]` (dims 0, 1, 3, 10) and numpy `readcfl(...)[h, w, 0, c, ..., t]`,
//! so BART tools see readout along dim 0 and phase encoding along dim 1, as they expect.

use crate::error::{Error, Result};

/// BART's number of dimensions (`DIMS` in `src/misc/mri.h`).
pub const BART_DIMS: usize = 16;

/// What one axis of a cinediff array is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Frames of a sequence (`t`; BART dim 10 TIME, NIfTI dim 4).
    Time,
    /// Receive coils (`c`; BART dim 3 COIL; NIfTI has no coil axis).
    Coil,
    /// Slices of a volume (`z`; BART dim 2 PHS2, NIfTI dim 3).
    Slice,
    /// Image rows, the readout (`h`; BART dim 0 READ, NIfTI dim 1).
    Row,
    /// Image columns, the phase encodes (`w`; BART dim 1 PHS1, NIfTI dim 2).
    Column,
    /// Any other BART dimension (echoes, maps, …), by index (`b<N>`).
    Bart(usize),
}

impl Axis {
    /// The BART dimension index of this axis.
    pub fn bart_dim(self) -> usize {
        match self {
            Axis::Row => 0,
            Axis::Column => 1,
            Axis::Slice => 2,
            Axis::Coil => 3,
            Axis::Time => 10,
            Axis::Bart(d) => d,
        }
    }

    /// The axis stored in BART dimension `dim`.
    pub fn from_bart_dim(dim: usize) -> Axis {
        match dim {
            0 => Axis::Row,
            1 => Axis::Column,
            2 => Axis::Slice,
            3 => Axis::Coil,
            10 => Axis::Time,
            d => Axis::Bart(d),
        }
    }

    /// The NIfTI-1 `dim[]` index (1-based) of this axis, if NIfTI has one.
    pub fn nifti_dim(self) -> Option<usize> {
        match self {
            Axis::Row => Some(1),
            Axis::Column => Some(2),
            Axis::Slice => Some(3),
            Axis::Time => Some(4),
            Axis::Coil | Axis::Bart(_) => None,
        }
    }

    /// The letter used by `--axes` (`t c z h w`, or `b<N>` for another BART dimension).
    pub fn name(self) -> String {
        match self {
            Axis::Time => "t".into(),
            Axis::Coil => "c".into(),
            Axis::Slice => "z".into(),
            Axis::Row => "h".into(),
            Axis::Column => "w".into(),
            Axis::Bart(d) => format!("b{d}"),
        }
    }
}

/// The meaning of every axis of a row-major array, outermost first (e.g. `t,c,h,w`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout(Vec<Axis>);

impl Layout {
    /// A layout from its axes; they must map to distinct BART dimensions below 16.
    pub fn new(axes: Vec<Axis>) -> Result<Self> {
        for (k, a) in axes.iter().enumerate() {
            if a.bart_dim() >= BART_DIMS {
                return Err(Error::invalid(
                    "axes",
                    format!("BART dimensions 0..{BART_DIMS}"),
                    a.name(),
                ));
            }
            if axes[..k].iter().any(|b| b.bart_dim() == a.bart_dim()) {
                return Err(Error::invalid(
                    "axes",
                    "each axis at most once",
                    format!("{} twice", a.name()),
                ));
            }
        }
        Ok(Layout(axes))
    }

    /// Parses `--axes` text: comma-separated `t c z h w` or `b<N>` (e.g. `t,c,h,w`).
    pub fn parse(text: &str) -> Result<Self> {
        let axes = text
            .split(',')
            .map(|s| match s.trim() {
                "t" => Ok(Axis::Time),
                "c" => Ok(Axis::Coil),
                "z" => Ok(Axis::Slice),
                "h" => Ok(Axis::Row),
                "w" => Ok(Axis::Column),
                other => other
                    .strip_prefix('b')
                    .and_then(|d| d.parse::<usize>().ok())
                    .map(Axis::Bart)
                    .ok_or_else(|| {
                        Error::invalid(
                            "axes",
                            "comma-separated t, c, z, h, w or b<N> (a BART dimension)",
                            format!("{other:?} in {text:?}"),
                        )
                    }),
            })
            .collect::<Result<Vec<_>>>()?;
        Layout::new(axes)
    }

    /// cinediff's default meaning of a rank: `h,w`; `t,h,w` (a sequence); `t,c,h,w` (k-space of
    /// a bundle, `y.npy`).
    pub fn default_for_rank(rank: usize) -> Result<Self> {
        match rank {
            2 => Ok(Layout(vec![Axis::Row, Axis::Column])),
            3 => Ok(Layout(vec![Axis::Time, Axis::Row, Axis::Column])),
            4 => Ok(Layout(vec![
                Axis::Time,
                Axis::Coil,
                Axis::Row,
                Axis::Column,
            ])),
            r => Err(Error::invalid(
                "array rank",
                "2 ([H, W]), 3 ([T, H, W]) or 4 ([T, C, H, W]); pass --axes for others",
                r,
            )),
        }
    }

    /// The axes, outermost first.
    pub fn axes(&self) -> &[Axis] {
        &self.0
    }

    /// `t,c,h,w` form.
    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Fails unless the layout has one axis per entry of `shape`.
    pub fn check_rank(&self, shape: &[usize]) -> Result<()> {
        if self.0.len() != shape.len() {
            return Err(Error::invalid(
                "axes",
                format!("one axis per array dimension (shape {shape:?})"),
                self.names(),
            ));
        }
        Ok(())
    }
}

impl Layout {
    /// Reorders row-major `data` of `shape` (axes `self`) into the axis order `target`: axes of
    /// `target` missing here get size 1; an axis here that `target` lacks must have size 1.
    /// Returns the new shape (one entry per `target` axis) and the values.
    pub fn arrange<T: Copy>(
        &self,
        shape: &[usize],
        data: &[T],
        target: &[Axis],
    ) -> Result<(Vec<usize>, Vec<T>)> {
        self.check_rank(shape)?;
        if let Some((a, &n)) = self
            .0
            .iter()
            .zip(shape)
            .find(|(a, &n)| n > 1 && !target.contains(a))
        {
            return Err(Error::invalid(
                "array axes",
                format!(
                    "axes {} only",
                    target
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                format!(
                    "axis {} of size {n} (axes {}, shape {shape:?})",
                    a.name(),
                    self.names()
                ),
            ));
        }
        // Row-major strides of the source, looked up by axis.
        let mut stride = vec![0usize; shape.len()];
        let mut s = 1usize;
        for k in (0..shape.len()).rev() {
            stride[k] = s;
            s *= shape[k];
        }
        let lookup = |a: &Axis| self.0.iter().position(|b| b == a);
        let new_shape: Vec<usize> = target
            .iter()
            .map(|a| lookup(a).map_or(1, |k| shape[k]))
            .collect();
        let steps: Vec<usize> = target
            .iter()
            .map(|a| lookup(a).map_or(0, |k| stride[k]))
            .collect();
        let slot_sizes: Vec<usize> = new_shape.clone();
        // Visit the target in row-major order; the source offset follows the matching strides.
        let count: usize = new_shape.iter().product();
        let mut out = Vec::with_capacity(count);
        let mut index = vec![0usize; target.len()];
        let mut offset = 0usize;
        for _ in 0..count {
            out.push(data[offset]);
            for k in (0..target.len()).rev() {
                index[k] += 1;
                offset += steps[k];
                if index[k] < slot_sizes[k] {
                    break;
                }
                offset -= steps[k] * slot_sizes[k];
                index[k] = 0;
            }
        }
        Ok((new_shape, out))
    }
}

/// Column-major strides of `sizes` (first slot fastest).
fn column_major_strides(sizes: &[usize]) -> Vec<usize> {
    let mut strides = Vec::with_capacity(sizes.len());
    let mut s = 1usize;
    for &n in sizes {
        strides.push(s);
        s = s.saturating_mul(n);
    }
    strides
}

/// Visits a row-major array of `shape` in order, yielding the matching offset in a column-major
/// array with `slot_sizes`, where axis k of the row-major array is slot `slots[k]`.
fn for_each_offset(
    shape: &[usize],
    slots: &[usize],
    slot_sizes: &[usize],
    mut f: impl FnMut(usize),
) {
    let count: usize = shape.iter().product();
    if count == 0 {
        return;
    }
    let strides = column_major_strides(slot_sizes);
    let step: Vec<usize> = slots.iter().map(|&s| strides[s]).collect();
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..count {
        f(offset);
        // Odometer over the row-major index, last axis fastest.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            offset += step[k];
            if index[k] < shape[k] {
                break;
            }
            offset -= step[k] * shape[k];
            index[k] = 0;
        }
    }
}

/// Reorders row-major `data` of `shape` into column-major slots (`slots[k]` holds axis k;
/// `slot_sizes[slots[k]] == shape[k]`, every other slot size 1).
pub fn row_major_to_slots<T: Copy + Default>(
    shape: &[usize],
    slots: &[usize],
    slot_sizes: &[usize],
    data: &[T],
) -> Vec<T> {
    let mut out = vec![T::default(); data.len()];
    let mut values = data.iter();
    for_each_offset(shape, slots, slot_sizes, |o| {
        if let Some(&v) = values.next() {
            out[o] = v;
        }
    });
    out
}

/// The inverse of [`row_major_to_slots`]: column-major `data` to row-major `shape`.
pub fn slots_to_row_major<T: Copy>(
    shape: &[usize],
    slots: &[usize],
    slot_sizes: &[usize],
    data: &[T],
) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for_each_offset(shape, slots, slot_sizes, |o| out.push(data[o]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_an_image_and_back() {
        // Row-major [2, 3] = [[0, 1, 2], [3, 4, 5]]; column-major (h fastest) is 0 3 1 4 2 5.
        let data = [0, 1, 2, 3, 4, 5];
        let col = row_major_to_slots(&[2, 3], &[0, 1], &[2, 3], &data);
        assert_eq!(col, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(slots_to_row_major(&[2, 3], &[0, 1], &[2, 3], &col), data);
    }

    #[test]
    fn time_axis_goes_to_slot_ten() {
        // [T=2, H=1, W=2]: t is slowest in both orders, so frames stay contiguous.
        let mut sizes = [1usize; BART_DIMS];
        sizes[1] = 2;
        sizes[10] = 2;
        let col = row_major_to_slots(&[2, 1, 2], &[10, 0, 1], &sizes, &[1, 2, 3, 4]);
        assert_eq!(col, vec![1, 2, 3, 4]);
    }

    #[test]
    fn parses_and_refuses_axes() {
        assert_eq!(
            Layout::parse("t,c,h,w").unwrap(),
            Layout::default_for_rank(4).unwrap()
        );
        assert_eq!(
            Layout::parse("b5,h,w").unwrap().axes()[0].bart_dim(),
            5,
            "b<N> names BART dim N"
        );
        assert!(Layout::parse("t,t,h").is_err());
        assert!(Layout::parse("h,b0").is_err(), "b0 is h");
        assert!(Layout::parse("x,h").is_err());
        assert!(Layout::parse("b16,h,w").is_err());
    }

    #[test]
    fn arranges_axes() {
        // [C=2, T=3] with values 10c + t, rearranged to [T, C, Z] (Z missing → size 1).
        let data: Vec<usize> = (0..2)
            .flat_map(|c| (0..3).map(move |t| 10 * c + t))
            .collect();
        let layout = Layout::parse("c,t").unwrap();
        let (shape, out) = layout
            .arrange(&[2, 3], &data, &[Axis::Time, Axis::Coil, Axis::Slice])
            .unwrap();
        assert_eq!(shape, vec![3, 2, 1]);
        assert_eq!(out, vec![0, 10, 1, 11, 2, 12]);
        // An axis of size > 1 the target lacks is refused; of size 1 it is dropped.
        assert!(layout.arrange(&[2, 3], &data, &[Axis::Time]).is_err());
        let (shape, _) = layout.arrange(&[1, 3], &data[..3], &[Axis::Time]).unwrap();
        assert_eq!(shape, vec![3]);
    }
}
