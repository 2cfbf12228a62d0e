//! Facts about the machine a result was measured on, and the process's own resource use
//! (CPU seconds, bytes read from storage) over a run.

use std::collections::BTreeMap;
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

/// This process's CPU time (user + system), the same per live thread, and bytes its
/// threads had read from storage (/proc/self/io `read_bytes`: direct I/O included,
/// page-cache hits not).
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub cpu_s: f64,
    /// CPU seconds of each live thread by thread id, with its group (`thread_group`).
    pub threads: BTreeMap<u32, (String, f64)>,
    pub storage_read_bytes: Option<u64>,
}

impl Usage {
    pub fn now() -> Usage {
        Usage {
            cpu_s: cpu_s(),
            threads: thread_cpu_s(),
            storage_read_bytes: storage_read_bytes(),
        }
    }

    /// Cores each thread group used between `start` and this reading, over `window_s`:
    /// where a run's CPU went (the bench's producer threads, the client's sender
    /// threads, the broker's shards, the kernel's io_uring workers). A thread that ended
    /// inside the window is missing here (its time is in `cpu_s`); one that started
    /// inside it counts from zero.
    pub fn cores_by_thread_group(&self, start: &Usage, window_s: f64) -> BTreeMap<String, f64> {
        let mut groups = BTreeMap::new();
        for (tid, (group, cpu_s)) in &self.threads {
            let before = start.threads.get(tid).map_or(0.0, |(_, s)| *s);
            *groups.entry(group.clone()).or_insert(0.0) += (cpu_s - before).max(0.0) / window_s;
        }
        groups
    }
}

/// A thread's group: its name up to the first digit, without trailing separators, so
/// that `cfa-shard-0-1` and `cfa-shard-1-2` are both `cfa-shard`, and the kernel's
/// `iou-wrk-3775` is `iou-wrk`. Names are cut at 15 bytes by the kernel.
pub fn thread_group(name: &str) -> String {
    let cut = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    let group = name[..cut].trim_end_matches(['-', '_', '.', ' ', ':']);
    if group.is_empty() { name } else { group }.to_owned()
}

/// Every live thread of this process: (group, user + system CPU seconds), from
/// /proc/self/task/*/stat (clock ticks). Empty where /proc is missing.
fn thread_cpu_s() -> BTreeMap<u32, (String, f64)> {
    // SAFETY: sysconf has no memory operands; _SC_CLK_TCK is a valid name.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let ticks = stat_cpu_ticks(&stat)?;
            Some((
                tid,
                (thread_group(name.trim_end()), ticks as f64 / ticks_per_s),
            ))
        })
        .collect()
}

/// utime + stime (fields 14 and 15) of a /proc stat line. The name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so fields are counted from
/// the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
    fn threads_are_grouped_by_name_and_their_cpu_read() {
        assert_eq!(thread_group("cfa-shard-0-1"), "cfa-shard");
        assert_eq!(thread_group("iou-wrk-3775"), "iou-wrk");
        assert_eq!(thread_group("cfa-producer-cf"), "cfa-producer-cf");
        assert_eq!(thread_group("cfa-conn-127.0."), "cfa-conn");
        assert_eq!(thread_group("42"), "42");
        let stat = "1234 (a (b) 7) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1 0";
        assert_eq!(stat_cpu_ticks(stat), Some(280));
        assert_eq!(stat_cpu_ticks("garbage"), None);

        let start = Usage::now();
        let (spun_tx, spun_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::Builder::new()
            .name("spin-test-7".into())
            .spawn(move || {
                // Spins until this thread has used 0.1 s of CPU (bounded: a busy test
                // machine may give it little), then stays alive for the reading.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while own_cpu_s() < 0.1 && std::time::Instant::now() < deadline {
                    std::hint::black_box(0u64);
                }
                spun_tx.send(()).ok();
                done_rx.recv().ok();
            })
            .expect("thread");
        spun_rx.recv().expect("spun");
        let end = Usage::now();
        done_tx.send(()).expect("send");
        spinner.join().expect("join");
        let cpu_s = end.cores_by_thread_group(&start, 1.0);
        let spin = cpu_s.get("spin-test").copied().unwrap_or(0.0);
        // 0.1 s of CPU, read in clock ticks (10 ms here).
        assert!((0.05..0.5).contains(&spin), "{cpu_s:?}");
        assert!(
            spin <= end.cpu_s - start.cpu_s + 0.02,
            "a part of the whole"
        );
    }

    fn own_cpu_s() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    }

    #[test]
    fn machine_limits_json_line_is_read() {
        let text = "| table |\n\nJSON: {\"cores\":2,\"seq_write_direct_1m_qd32_mbps\":1989.1}\n";
        let v = parse_machine_limits(text).expect("json line");
        assert_eq!(v["seq_write_direct_1m_qd32_mbps"], 1989.1);
        assert!(parse_machine_limits("no json here").is_none());
    }
}
