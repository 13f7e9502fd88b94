//! The one error type of the library: what went wrong, what was expected, what was found.

use std::path::PathBuf;

/// Every fallible library call returns this error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value the caller gave is out of range or inconsistent (`what`: which parameter).
    #[error("invalid {what}: expected {expected}, got {got}")]
    InvalidArgument {
        what: String,
        expected: String,
        got: String,
    },
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch in {what}: expected {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite { what: String, index: usize },
    /// A file could not be parsed as the format it claims to be.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The neural-network runtime or the weight store failed.
    #[error("model: {0}")]
    Model(String),
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl ToString,
    ) -> Self {
        Error::InvalidArgument {
            what: what.into(),
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Fails with [`Error::NonFinite`] at the first NaN or infinity in `values`.
pub fn ensure_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

/// Fails with [`Error::NonFinite`] at the first complex value with a NaN or infinite part.
pub fn ensure_finite_complex(what: &str, values: &[num_complex::Complex32]) -> Result<()> {
    match values
        .iter()
        .position(|v| !(v.re.is_finite() && v.im.is_finite()))
    {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}
