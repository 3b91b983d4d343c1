//! Where the CPU time of a run went, from Linux's per-thread counters in `/proc/self/task`:
//! the server runtime (gateway and merchants, their SQLite threads included), the wallet
//! core's runtime, and the load driver. Elsewhere the figures are simply absent.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc` CPU counters (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Thread-name prefixes and the part of the run they belong to. Linux keeps 15 bytes of a
/// thread name.
const GROUPS: [(&str, &str); 3] = [
    ("oc-server", "gateway+merchants"),
    ("opencharge-wall", "wallet core"),
    ("oc-driver", "load driver"),
];

/// CPU seconds per group, and the whole process (threads that exited included).
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    /// Seconds of user+system time per group name.
    pub groups: BTreeMap<String, f64>,
    /// The process total.
    pub total: f64,
}

impl CpuSnapshot {
    /// Reads the counters now; empty where `/proc` is not available.
    pub fn take() -> CpuSnapshot {
        let mut snapshot = CpuSnapshot {
            total: read_stat("/proc/self/stat").map_or(0.0, |(_, secs)| secs),
            ..CpuSnapshot::default()
        };
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return snapshot;
        };
        for task in tasks.flatten() {
            let Some((name, secs)) = read_stat(&format!("{}/stat", task.path().display())) else {
                continue;
            };
            let group = GROUPS
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix))
                .map_or("other threads", |(_, group)| group);
            *snapshot.groups.entry(group.to_string()).or_default() += secs;
        }
        snapshot
    }

    /// What was spent between `earlier` and `self`. Threads that exited in between are in
    /// the total but in no group: their share is reported as "exited threads".
    pub fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        let mut groups = BTreeMap::new();
        for (name, secs) in &self.groups {
            let before = earlier.groups.get(name).copied().unwrap_or(0.0);
            groups.insert(name.clone(), (secs - before).max(0.0));
        }
        let total = (self.total - earlier.total).max(0.0);
        let grouped: f64 = groups.values().sum();
        if total - grouped > 0.01 {
            groups.insert("exited threads".into(), total - grouped);
        }
        CpuSnapshot { groups, total }
    }
}

/// `(thread or process name, user+system seconds)` from a `stat` file.
pub(crate) fn read_stat(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / TICKS_PER_SEC))
}

/// The 1-minute load average and the number of CPUs, for the report's context line.
pub fn load_context() -> (Option<f64>, usize) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (load, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(
            &path,
            "42 (oc server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 1 1",
        )
        .unwrap();
        let (name, secs) = read_stat(path.to_str().unwrap()).unwrap();
        assert_eq!(name, "oc server");
        assert!((secs - 3.0).abs() < 1e-9, "{secs}");
    }

    #[test]
    fn differences_keep_exited_threads_apart() {
        let earlier = CpuSnapshot {
            groups: [("wallet core".to_string(), 1.0)].into(),
            total: 1.0,
        };
        let later = CpuSnapshot {
            groups: [("wallet core".to_string(), 3.0)].into(),
            total: 4.0,
        };
        let diff = later.since(&earlier);
        assert_eq!(diff.groups["wallet core"], 2.0);
        assert_eq!(diff.groups["exited threads"], 1.0);
        assert_eq!(diff.total, 3.0);
    }
}
