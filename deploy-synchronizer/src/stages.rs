//! How long each stage of a sync took: fetch, render, read (the live facts), plan, apply,
//! status. A sync marks each stage as it ends; the reconcile logs the list at debug level and
//! records it in `sluice_sync_stage_duration_seconds{stage}`, so an operator (and the bench)
//! sees where a slow sync spends its time.

use std::time::{Duration, Instant};

/// The stages of one sync, in the order they ran, each with how long it took.
#[derive(Debug)]
pub struct Stages {
    last: Instant,
    took: Vec<(&'static str, Duration)>,
}

impl Default for Stages {
    fn default() -> Self {
        Self::new()
    }
}

impl Stages {
    /// Starts timing the first stage now.
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
            took: Vec::new(),
        }
    }

    /// Ends `stage` now (it began when the previous one ended); the next begins.
    pub fn mark(&mut self, stage: &'static str) {
        let now = Instant::now();
        self.took.push((stage, now - self.last));
        self.last = now;
    }

    /// Each stage with how long it took, in order (a stage marked twice adds up).
    pub fn took(&self) -> Vec<(&'static str, Duration)> {
        let mut sums: Vec<(&'static str, Duration)> = Vec::new();
        for (stage, took) in &self.took {
            match sums.iter_mut().find(|(s, _)| s == stage) {
                Some((_, sum)) => *sum += *took,
                None => sums.push((stage, *took)),
            }
        }
        sums
    }

    /// `fetch=12.3ms render=40.1ms …`, for a log line.
    pub fn summary(&self) -> String {
        self.took()
            .iter()
            .map(|(stage, took)| format!("{stage}={:.1}ms", took.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_listed_in_order_and_a_repeated_one_adds_up() {
        let mut stages = Stages::new();
        stages.mark("fetch");
        stages.mark("render");
        stages.mark("fetch");
        let took = stages.took();
        assert_eq!(
            took.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            ["fetch", "render"]
        );
        let summary = stages.summary();
        assert!(summary.starts_with("fetch="), "{summary}");
        assert!(summary.contains(" render="), "{summary}");
        assert!(summary.ends_with("ms"), "{summary}");
    }
}
