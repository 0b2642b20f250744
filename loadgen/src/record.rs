//! Latencies per (endpoint, status) in HDR histograms (microseconds, 3 significant
//! digits), plus named histograms such as the end-to-end WebSocket latency.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

#[derive(Clone, Default)]
pub struct Recorder {
    histograms: Arc<Mutex<BTreeMap<String, Histogram<u64>>>>,
}

impl Recorder {
    pub fn latency(&self, endpoint: &str, status: u16, elapsed: Duration) {
        self.record(&format!("{endpoint} → {status}"), elapsed);
    }

    pub fn record(&self, name: &str, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = histograms.entry(name.to_owned()).or_insert_with(|| {
            // 1 µs .. 10 min; the constructor only fails on impossible bounds.
            Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| {
                Histogram::new(3).unwrap_or_else(|_| unreachable!("valid sigfig"))
            })
        });
        histogram.saturating_record(micros);
    }

    /// The p99 of a named histogram, if it has samples.
    pub fn p99(&self, name: &str) -> Option<Duration> {
        self.histograms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .filter(|h| !h.is_empty())
            .map(|h| Duration::from_micros(h.value_at_quantile(0.99)))
    }

    /// Samples in a named histogram.
    pub fn count(&self, name: &str) -> u64 {
        self.histograms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or(0, Histogram::len)
    }

    /// One line per histogram: count, p50, p90, p99, max in milliseconds.
    pub fn print(&self) {
        let histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "{:<52} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "p50", "p90", "p99", "max"
        );
        for (name, h) in histograms.iter() {
            let ms = |v: u64| v as f64 / 1000.0;
            println!(
                "{:<52} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                h.len(),
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.90)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
    }
}
