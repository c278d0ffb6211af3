//! Where the CPU went: on-CPU time of this process's threads, grouped by thread name, and
//! the whole machine's busy share, read from /proc (Linux only; elsewhere all zero).
//!
//! The server runtime's threads are named `eg-server`, the load clients' `eg-client`, and
//! the store runs every statement on its own thread, `eg-store`. A thread that exits inside a window is not counted.

use std::collections::HashMap;

/// On-CPU nanoseconds by thread id, with each thread's group.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    threads: HashMap<u32, (usize, u64)>,
    machine_busy: u64,
    machine_total: u64,
}

/// CPU use between two snapshots.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Seconds of CPU by group, in the order server, sqlite, client, other.
    pub seconds: [f64; 4],
    /// Busy share of all cores, 0 to 1.
    pub machine_busy: f64,
}

/// Reads the current counters.
pub fn snapshot() -> Snapshot {
    let mut threads = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let path = entry.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            threads.insert(tid, (group(comm.trim()), ns));
        }
    }
    let (machine_busy, machine_total) = machine();
    Snapshot {
        threads,
        machine_busy,
        machine_total,
    }
}

impl Snapshot {
    /// What was used from `self` until `later`.
    pub fn until(&self, later: &Self) -> Usage {
        let mut seconds = [0.0; 4];
        for (tid, (g, ns)) in &later.threads {
            let before = self.threads.get(tid).map_or(0, |(_, b)| *b);
            seconds[*g] += ns.saturating_sub(before) as f64 / 1e9;
        }
        let total = later.machine_total.saturating_sub(self.machine_total);
        let busy = later.machine_busy.saturating_sub(self.machine_busy);
        Usage {
            seconds,
            machine_busy: if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64
            },
        }
    }
}

fn group(comm: &str) -> usize {
    if comm.starts_with("eg-server") {
        0
    } else if comm.starts_with("eg-store") {
        1
    } else if comm.starts_with("eg-client") {
        2
    } else {
        3
    }
}

/// Busy and total jiffies of all cores from /proc/stat's first line.
fn machine() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are the fourth and fifth fields.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}
