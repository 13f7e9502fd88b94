//! Progress reporting: a bar with ETA on a terminal, plain log lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display for `total` units of work.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    /// Units already done when the display started (a resumed run), excluded from the rate.
    first: u64,
    start: Instant,
    last_log: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, otherwise a log line at most every 10 s.
    pub fn new(label: &str, total: u64) -> Self {
        Self::resumed(label, 0, total)
    }

    /// As [`new`](Self::new) for work of which `first` units were done before (a resumed run).
    pub fn resumed(label: &str, first: u64, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_position(first);
            bar.reset_eta();
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (ETA {eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Self {
            bar,
            label: label.to_string(),
            total,
            first,
            start: Instant::now(),
            last_log: Instant::now(),
        }
    }

    /// Marks `done` units finished, with a status message.
    pub fn update(&mut self, done: u64, msg: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(msg.to_string());
            }
            None => {
                if self.last_log.elapsed().as_secs_f64() >= 10.0 || done == self.total {
                    self.last_log = Instant::now();
                    let elapsed = self.start.elapsed().as_secs_f64();
                    let fresh = done.saturating_sub(self.first);
                    let eta = if fresh > 0 {
                        elapsed / fresh as f64 * (self.total - done.min(self.total)) as f64
                    } else {
                        0.0
                    };
                    eprintln!(
                        "{} {done}/{} {msg} elapsed {elapsed:.0}s eta {eta:.0}s",
                        self.label, self.total
                    );
                }
            }
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
