//! The replay's progress: a bar on a terminal (events read / total, events/s, ETA), a log
//! line every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if terminal {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Self {
            bar,
            terminal,
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// `count` more events read.
    pub fn read(&self, count: u64) {
        self.bar.inc(count);
        if self.terminal {
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let done = self.bar.position();
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let left = self.bar.length().unwrap_or(done).saturating_sub(done);
            tracing::info!(
                done,
                total = self.bar.length().unwrap_or(0),
                per_second = rate as u64,
                eta_seconds = (left as f64 / rate.max(1e-9)) as u64,
                "replaying"
            );
        }
    }

    /// What the replay is doing now (writing, swapping).
    pub fn stage(&self, message: &str) {
        self.bar.set_message(message.to_owned());
        if !self.terminal {
            tracing::info!(stage = message, "replaying");
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
