//! Facts about the machine a result was measured on, and the process's own resource use
//! (CPU seconds, bytes read from storage) over a run.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Cores, kernel, filesystem of the data dir, the cfa build, and machine-limits' JSON
/// when it was run (`null` otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub filesystem: String,
    pub memory_bytes: u64,
    #[serde(rename = "machine-limits")]
    pub machine_limits: Option<serde_json::Value>,
}

impl Machine {
    pub fn probe(data_dir: &Path, machine_limits: Option<serde_json::Value>) -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            filesystem: filesystem_of(data_dir).unwrap_or_else(|| "unknown".into()),
            memory_bytes: memory_bytes().unwrap_or(0),
            machine_limits,
        }
    }
}

/// The cfa version and the git commit the binary runs from (`-dirty` with local edits).
#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub cfa_version: &'static str,
    pub commit: String,
}

impl Build {
    pub fn probe() -> Build {
        let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Build {
            cfa_version: env!("CARGO_PKG_VERSION"),
            commit: if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            },
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The type of the filesystem holding `dir`: the mount in /proc/mounts with the longest
/// prefix of its canonical path.
pub fn filesystem_of(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, mount, fs) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(mount).then(|| (mount.len(), fs.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

/// This process's CPU time (user + system) and bytes its threads had read from storage
/// (/proc/self/io `read_bytes`: direct I/O included, page-cache hits not).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_s: f64,
    pub storage_read_bytes: Option<u64>,
}

impl Usage {
    pub fn now() -> Usage {
        Usage {
            cpu_s: cpu_s(),
            storage_read_bytes: storage_read_bytes(),
        }
    }
}

fn cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn storage_read_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = text.lines().find(|l| l.starts_with("read_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads machine-limits.sh's output (a file holding its report) and returns the JSON of
/// its `JSON: {...}` line.
pub fn parse_machine_limits(text: &str) -> Option<serde_json::Value> {
    let line = text.lines().rev().find(|l| l.starts_with("JSON: "))?;
    serde_json::from_str(line.trim_start_matches("JSON: ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_facts_are_found_here() {
        let m = Machine::probe(Path::new("."), None);
        assert!(m.cores >= 1);
        assert_ne!(m.kernel, "unknown");
        assert_ne!(m.filesystem, "unknown");
        assert!(m.memory_bytes > 0);
    }

    #[test]
    fn usage_grows_with_work() {
        let before = Usage::now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(Usage::now().cpu_s > before.cpu_s);
    }

    #[test]
    fn machine_limits_json_line_is_read() {
        let text = "| table |\n\nJSON: {\"cores\":2,\"seq_write_direct_1m_qd32_mbps\":1989.1}\n";
        let v = parse_machine_limits(text).expect("json line");
        assert_eq!(v["seq_write_direct_1m_qd32_mbps"], 1989.1);
        assert!(parse_machine_limits("no json here").is_none());
    }
}
