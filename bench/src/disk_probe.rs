//! The disk's own floor for the engine's durable write pattern, measured in the same run as
//! the engine: a 64 KiB O_DIRECT write linked to an fdatasync (IOSQE_IO_LINK, one
//! io_uring submission, queue depth 1) appended into a freshly fallocated file, exactly
//! what a lone acks=all producer asks of a new segment. Nothing sits between the program
//! and the ring (no executor, no engine), so the engine's fsync-per-batch latency can be
//! read as a ratio to it. machine-limits.sh measures the fdatasync alone after overwrites
//! of a pre-written file, which a log that appends into new segments never gets.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use io_uring::{opcode, squeue, types, IoUring};
use serde::Serialize;

use crate::constants::{
    PROBE_DURATION, PROBE_LOADED_STREAMS_MAX, PROBE_WRITES_MAX, PROBE_WRITE_BYTES,
};
use crate::report::{latency_histogram, Percentiles};

/// What the probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub pattern: String,
    pub write_bytes: usize,
    pub cycles: u64,
    /// Submit of the linked write + fdatasync to the completion of both, in us.
    pub write_fdatasync_cycle_us: Percentiles,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("disk probe in {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("disk probe: {0}")]
    Failed(String),
}

/// Runs the probe on a new file in `dir` and removes the file.
pub fn fresh_append_write_fdatasync(dir: &Path) -> Result<ProbeResult, ProbeError> {
    let hist = stream_on_new_file(dir, "cfa-disk-probe.dat", None, PROBE_DURATION)?;
    Ok(ProbeResult {
        pattern: "fresh fallocated file, 64 KiB O_DIRECT write linked to fdatasync, qd1".into(),
        write_bytes: PROBE_WRITE_BYTES,
        cycles: hist.len(),
        write_fdatasync_cycle_us: Percentiles::from_histogram(&hist),
    })
}

/// The same cycle under a durable workload's own load: `streams` threads, each appending
/// to its own fresh file (as partitions do to their segments), paced so that together
/// they write `bytes_per_s`, for `duration`. What the disk alone gives an fsync-per-batch
/// log at that rate: a broker's publish latency cannot be lower than this cycle.
pub fn loaded_append_write_fdatasync(
    dir: &Path,
    streams: usize,
    bytes_per_s: f64,
    duration: Duration,
) -> Result<ProbeResult, ProbeError> {
    if !(1..=PROBE_LOADED_STREAMS_MAX).contains(&streams)
        || bytes_per_s.is_nan()
        || bytes_per_s <= 0.0
    {
        return Err(ProbeError::Failed(format!(
            "streams must be 1..={PROBE_LOADED_STREAMS_MAX} and the rate positive (got {streams}, {bytes_per_s} B/s)"
        )));
    }
    // A write every `interval` per stream makes bytes_per_s over all streams.
    let interval = Duration::from_secs_f64(streams as f64 * PROBE_WRITE_BYTES as f64 / bytes_per_s);
    let handles: Vec<_> = (0..streams)
        .map(|i| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || {
                stream_on_new_file(
                    &dir,
                    &format!("cfa-disk-probe-{i}.dat"),
                    Some(interval),
                    duration,
                )
            })
        })
        .collect();
    let mut all: Histogram<u64> = latency_histogram();
    for h in handles {
        let hist = h
            .join()
            .map_err(|_| ProbeError::Failed("a probe thread panicked".into()))??;
        all.add(&hist)
            .map_err(|e| ProbeError::Failed(format!("merging histograms: {e}")))?;
    }
    Ok(ProbeResult {
        pattern: format!(
            "{streams} fresh fallocated files, one thread each, 64 KiB O_DIRECT write linked to fdatasync, qd1 per file, {:.1} MB/s in all",
            bytes_per_s / 1e6
        ),
        write_bytes: PROBE_WRITE_BYTES,
        cycles: all.len(),
        write_fdatasync_cycle_us: Percentiles::from_histogram(&all),
    })
}

/// Runs one stream of cycles on a new file `name` in `dir` and removes the file.
fn stream_on_new_file(
    dir: &Path,
    name: &str,
    interval: Option<Duration>,
    duration: Duration,
) -> Result<Histogram<u64>, ProbeError> {
    let io = |source| ProbeError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(io)?;
    let result = cycles(&file, interval, duration).map_err(io);
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?
}

/// Write + fdatasync cycles at queue depth 1, back to back, or, with `interval`, cycle k
/// starting at `k * interval`: open loop, so a stream that fell behind runs its late
/// cycles back to back until it is on time again and the load keeps its MB/s.
fn cycles(
    file: &std::fs::File,
    interval: Option<Duration>,
    duration: Duration,
) -> std::io::Result<Result<Histogram<u64>, ProbeError>> {
    let fd = file.as_raw_fd();
    let total = (PROBE_WRITE_BYTES * PROBE_WRITES_MAX) as i64;
    // SAFETY: fallocate reads no memory of ours; fd is open for writing.
    if unsafe { libc::fallocate(fd, 0, 0, total) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut ring = IoUring::new(4)?;
    let buf = AlignedBuf::new(PROBE_WRITE_BYTES);
    let mut hist: Histogram<u64> = latency_histogram();
    let start = Instant::now();
    let mut cycles = 0u64;
    while (cycles as usize) < PROBE_WRITES_MAX && start.elapsed() < duration {
        if let Some(every) = interval {
            let due = every * cycles as u32;
            if due >= duration {
                break;
            }
            std::thread::sleep((start + due).saturating_duration_since(Instant::now()));
        }
        let pos = cycles * PROBE_WRITE_BYTES as u64;
        let write = opcode::Write::new(types::Fd(fd), buf.ptr, PROBE_WRITE_BYTES as u32)
            .offset(pos)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(1);
        let sync = opcode::Fsync::new(types::Fd(fd))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(2);
        let t0 = Instant::now();
        // SAFETY: the buffer and the fd outlive the operations: we wait for both
        // completions below before touching either again.
        unsafe {
            let mut sq = ring.submission();
            if sq.push(&write).is_err() || sq.push(&sync).is_err() {
                return Ok(Err(ProbeError::Failed("submission queue full".into())));
            }
        }
        ring.submit_and_wait(2)?;
        let us = t0.elapsed().as_micros().max(1) as u64;
        for cqe in ring.completion() {
            if cqe.result() < 0 {
                let e = std::io::Error::from_raw_os_error(-cqe.result());
                return Ok(Err(ProbeError::Failed(format!(
                    "op {}: {e}",
                    cqe.user_data()
                ))));
            }
        }
        hist.saturating_record(us);
        cycles += 1;
    }
    Ok(Ok(hist))
}

/// A page-aligned heap buffer for O_DIRECT, freed on drop.
struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout = std::alloc::Layout::from_size_align(len, 4096).expect("valid layout");
        // SAFETY: layout has a non-zero size; alloc_zeroed returns memory of that layout.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "allocating the probe buffer");
        AlignedBuf { ptr, layout }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: ptr was allocated with this layout in `new` and is freed once.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// O_DIRECT needs a real filesystem, not tmpfs: the test writes under target/.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/disk-probe-tests")
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the scratch dir");
        dir
    }

    #[test]
    fn the_loaded_probe_keeps_its_pace_and_removes_its_files() {
        let dir = scratch("pace");
        let streams = 2;
        let bytes_per_s = 20e6;
        let duration = Duration::from_millis(500);
        let r = loaded_append_write_fdatasync(&dir, streams, bytes_per_s, duration)
            .expect("the probe runs");
        // A cycle every streams * 64 KiB / rate = 6.6 ms per stream: about 76 per stream.
        let paced = (duration.as_secs_f64() * bytes_per_s / PROBE_WRITE_BYTES as f64).ceil();
        assert!(r.cycles >= streams as u64, "every stream ran: {}", r.cycles);
        assert!(
            r.cycles <= paced as u64 + streams as u64,
            "the pace held: {} cycles, at most {paced} + {streams} expected",
            r.cycles
        );
        assert!(r.write_fdatasync_cycle_us.p50 > 0);
        assert!(
            r.pattern.starts_with("2 fresh fallocated files"),
            "{}",
            r.pattern
        );
        let left = std::fs::read_dir(&dir)
            .expect("listing the scratch dir")
            .count();
        assert_eq!(left, 0, "files removed");
    }

    #[test]
    fn the_loaded_probe_rejects_bad_streams_and_rates() {
        let dir = scratch("bad");
        let d = Duration::from_millis(10);
        for (streams, rate) in [
            (0, 1e6),
            (PROBE_LOADED_STREAMS_MAX + 1, 1e6),
            (1, 0.0),
            (1, f64::NAN),
        ] {
            let e = loaded_append_write_fdatasync(&dir, streams, rate, d)
                .expect_err("a bad input is refused");
            assert!(e.to_string().contains("streams must be"), "{e}");
        }
    }
}
