//! Helpers shared by the integration tests that drive the `cinediff` binary: temporary
//! directories, running the binary, and asserting one-line errors.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_cinediff");

/// A fresh directory under the system temp dir, deleted on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "cinediff-cli-{test}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args` (stdin closed, no terminal, so no progress bar).
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn cinediff")
}

pub fn describe(args: &[&OsStr], out: &Output) -> String {
    format!(
        "cinediff {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `args` and asserts success.
pub fn ok(args: &[&OsStr]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "expected success:\n{}",
        describe(args, &out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "panic output:\n{}",
        describe(args, &out)
    );
    out
}

/// Runs `args` and asserts a clean failure: non-zero exit, stderr exactly one line starting with
/// "error:", mentioning every string of `needles` (case-insensitive), no panic message, and no
/// cause printed twice in a row. Returns the error line.
pub fn fails(args: &[&OsStr], needles: &[&str]) -> String {
    let out = run(args);
    let info = describe(args, &out);
    assert!(!out.status.success(), "expected failure:\n{info}");
    assert!(out.status.code().is_some(), "killed by a signal:\n{info}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic instead of an error:\n{info}"
    );
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    assert!(!line.contains('\n'), "stderr is not a single line:\n{info}");
    assert!(
        line.starts_with("error: "),
        "stderr does not start with \"error: \":\n{info}"
    );
    let lower = line.to_lowercase();
    for needle in needles {
        assert!(
            lower.contains(&needle.to_lowercase()),
            "error does not mention {needle:?}:\n{info}"
        );
    }
    let parts: Vec<&str> = line.split(": ").collect();
    assert!(
        parts.windows(2).all(|w| w[0] != w[1]),
        "error repeats a cause:\n{info}"
    );
    line.to_string()
}

/// `&str`s and paths as one argument list.
#[allow(unused_macros)]
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        &[$(AsRef::<std::ffi::OsStr>::as_ref(&$a)),*][..]
    };
}

pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&bytes(path))
        .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

/// A version-1.0 `.npy` file as numpy writes it (header padded so the data is 64-byte aligned).
pub fn npy_bytes(descr: &str, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn f32_payload(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
