//! Turns a run's samples into the report: per-leg percentiles (nearest rank over all
//! samples, so exact), payments per second, failures grouped by leg, CPU use; printed as a
//! table or as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::CpuSnapshot;
use crate::driver::{Outcome, LEGS};

/// Percentiles of one leg, in milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegStats {
    /// The leg's name.
    pub leg: String,
    /// What it measures.
    pub description: String,
    /// Samples (completed payments).
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// Failures of one leg.
#[derive(Debug, Clone, Serialize)]
pub struct FailureStats {
    /// The leg that failed.
    pub leg: String,
    /// How many payments failed there.
    pub count: usize,
    /// The first error message.
    pub example: String,
}

/// CPU seconds spent during the measured phase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// CPUs available to the process.
    pub cpus: usize,
    /// 1-minute load average when the run started (other processes included).
    pub load_before: Option<f64>,
    /// 1-minute load average when it ended.
    pub load_after: Option<f64>,
    /// Process CPU seconds (user + system).
    pub process_secs: f64,
    /// Process CPU seconds per wall second (2.0 = both cores of a 2-core machine busy).
    pub cores_used: f64,
    /// Seconds per part: gateway+merchants, wallet core, load driver, others.
    pub by_part: Vec<(String, f64)>,
}

/// The gateway process's CPU during the measured phase (process mode only).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayCpu {
    /// The gateway's process id.
    pub pid: u32,
    /// Its CPU seconds (user + system, every thread) during the measured phase.
    pub cpu_secs: f64,
    /// Its CPU seconds per wall second.
    pub cores_used: f64,
    /// Its CPU milliseconds per completed payment (`None` when none completed).
    pub ms_per_payment: Option<f64>,
}

impl GatewayCpu {
    /// The figures of `cpu_secs` spent by process `pid` over `elapsed` for `completed`
    /// payments.
    pub fn new(pid: u32, cpu_secs: f64, elapsed: Duration, completed: usize) -> GatewayCpu {
        GatewayCpu {
            pid,
            cpu_secs: round3(cpu_secs),
            cores_used: round3(cpu_secs / elapsed.as_secs_f64().max(1e-9)),
            ms_per_payment: (completed > 0).then(|| round3(1000.0 * cpu_secs / completed as f64)),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The run's settings.
    pub config: serde_json::Value,
    /// Measured payments that completed every leg.
    pub completed: usize,
    /// Measured payments that failed.
    pub failed: usize,
    /// Warm-up payments that completed (not in the statistics).
    pub warmup_completed: usize,
    /// Warm-up payments that failed.
    pub warmup_failed: usize,
    /// Wall time of the measured phase, seconds.
    pub elapsed_secs: f64,
    /// Completed measured payments per second.
    pub payments_per_sec: f64,
    /// Per-leg percentiles.
    pub legs: Vec<LegStats>,
    /// Failures per leg (warm-up included).
    pub failures: Vec<FailureStats>,
    /// Where the CPU went during the measured phase.
    pub cpu: Option<CpuStats>,
    /// The gateway process's CPU during the measured phase (`--gateway-bin` only).
    pub gateway_cpu: Option<GatewayCpu>,
    /// Requests each gateway instance got through the round-robin front over the whole run
    /// (warm-up and setup included), in instance order (`--instances` above 1 only).
    pub instance_requests: Option<Vec<usize>>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentiles of every leg.
pub fn leg_stats(outcome: &Outcome) -> Vec<LegStats> {
    LEGS.iter()
        .enumerate()
        .map(|(i, (name, description))| {
            let mut values: Vec<Duration> = outcome.samples.iter().map(|s| s[i]).collect();
            values.sort_unstable();
            let sum: Duration = values.iter().sum();
            let mean = if values.is_empty() {
                Duration::ZERO
            } else {
                sum / values.len() as u32
            };
            LegStats {
                leg: (*name).to_string(),
                description: (*description).to_string(),
                count: values.len(),
                p50_ms: ms(percentile(&values, 50.0)),
                p90_ms: ms(percentile(&values, 90.0)),
                p99_ms: ms(percentile(&values, 99.0)),
                max_ms: ms(values.last().copied().unwrap_or_default()),
                mean_ms: ms(mean),
            }
        })
        .collect()
}

/// Failures grouped by leg, first example kept.
pub fn failure_stats<'a>(
    failures: impl Iterator<Item = &'a (String, String)>,
) -> Vec<FailureStats> {
    let mut out: Vec<FailureStats> = Vec::new();
    for (leg, error) in failures {
        match out.iter_mut().find(|f| &f.leg == leg) {
            Some(f) => f.count += 1,
            None => out.push(FailureStats {
                leg: leg.clone(),
                count: 1,
                example: error.clone(),
            }),
        }
    }
    out
}

/// CPU figures from two snapshots around the measured phase.
pub fn cpu_stats(
    spent: &CpuSnapshot,
    elapsed: Duration,
    load_before: Option<f64>,
    load_after: Option<f64>,
    cpus: usize,
) -> CpuStats {
    let wall = elapsed.as_secs_f64().max(1e-9);
    CpuStats {
        cpus,
        load_before,
        load_after,
        process_secs: round3(spent.total),
        cores_used: round3(spent.total / wall),
        by_part: spent
            .groups
            .iter()
            .map(|(name, secs)| (name.clone(), round3(*secs)))
            .collect(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(backend) = self.config["backend"].as_str() {
            let instances = self.config["instances"].as_u64().unwrap_or(1);
            let _ = writeln!(
                out,
                "gateway {} on {backend}, {instances} instance{}",
                self.config["gateway"].as_str().unwrap_or("?"),
                if instances == 1 { "" } else { "s" }
            );
        }
        let _ = writeln!(
            out,
            "{} payments completed, {} failed in {:.2} s: {:.1} payments/s ({} warm-up payments not counted)",
            self.completed, self.failed, self.elapsed_secs, self.payments_per_sec, self.warmup_completed
        );
        let _ = writeln!(
            out,
            "\n{:<20} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "leg (ms)", "count", "p50", "p90", "p99", "max", "mean"
        );
        for leg in &self.legs {
            let _ = writeln!(
                out,
                "{:<20} {:>7} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                leg.leg, leg.count, leg.p50_ms, leg.p90_ms, leg.p99_ms, leg.max_ms, leg.mean_ms
            );
        }
        if let Some(cpu) = &self.cpu {
            let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
            let _ = writeln!(
                out,
                "\nCPU: {:.2} s of process time = {:.2} of {} cores busy (load average {} before, {} after, other processes included)",
                cpu.process_secs, cpu.cores_used, cpu.cpus, load(cpu.load_before), load(cpu.load_after)
            );
            for (part, secs) in &cpu.by_part {
                let share = if cpu.process_secs > 0.0 {
                    100.0 * secs / cpu.process_secs
                } else {
                    0.0
                };
                let _ = writeln!(out, "  {part:<20} {secs:>8.2} s  {share:>5.1} %");
            }
        }
        if let Some(gateway) = &self.gateway_cpu {
            let per_payment = gateway
                .ms_per_payment
                .map_or("?".to_string(), |ms| format!("{ms:.3}"));
            let _ = writeln!(
                out,
                "\nGateway process (pid {}): {:.2} s of CPU = {:.2} cores busy, {per_payment} ms of CPU per completed payment",
                gateway.pid, gateway.cpu_secs, gateway.cores_used
            );
        }
        if let Some(requests) = &self.instance_requests {
            let listed: Vec<String> = requests.iter().map(usize::to_string).collect();
            let _ = writeln!(
                out,
                "\nRequests per gateway instance through the round-robin front: {}",
                listed.join(", ")
            );
        }
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "\nFAILED at {}: {} payment(s), e.g.: {}",
                failure.leg, failure.count, failure.example
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn failures_are_grouped_by_leg_with_the_first_example() {
        let failures = [
            ("confirm".to_string(), "402".to_string()),
            ("session".to_string(), "timeout".to_string()),
            ("confirm".to_string(), "409".to_string()),
        ];
        let stats = failure_stats(failures.iter());
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].leg.as_str(), stats[0].count), ("confirm", 2));
        assert_eq!(stats[0].example, "402");
    }

    #[test]
    fn gateway_cpu_per_payment() {
        let cpu = GatewayCpu::new(7, 1.5, Duration::from_secs(3), 1000);
        assert_eq!(cpu.ms_per_payment, Some(1.5));
        assert_eq!(cpu.cores_used, 0.5);
        assert_eq!(
            GatewayCpu::new(7, 1.5, Duration::from_secs(3), 0).ms_per_payment,
            None
        );
    }

    #[test]
    fn every_leg_gets_stats() {
        let sample = [Duration::from_millis(2); LEGS.len()];
        let outcome = Outcome {
            samples: vec![sample, sample],
            ..Outcome::default()
        };
        let stats = leg_stats(&outcome);
        assert_eq!(stats.len(), LEGS.len());
        assert!(stats.iter().all(|s| s.count == 2 && s.p99_ms == 2.0));
    }
}
