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

use crate::report::{latency_histogram, Percentiles};

/// Bytes per write: the lone producer's batch.
pub const PROBE_WRITE_BYTES: usize = 64 << 10;
/// Writes per probe (at most 128 MiB of disk) ...
pub const PROBE_WRITES_MAX: usize = 2048;
/// ... or this long, whichever ends first.
pub const PROBE_DURATION: Duration = Duration::from_secs(3);

/// What the probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub pattern: &'static str,
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
    let io = |source| ProbeError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let path = dir.join("cfa-disk-probe.dat");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(io)?;
    let result = probe(&file).map_err(io);
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?
}

fn probe(file: &std::fs::File) -> std::io::Result<Result<ProbeResult, ProbeError>> {
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
    while (cycles as usize) < PROBE_WRITES_MAX && start.elapsed() < PROBE_DURATION {
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
    Ok(Ok(ProbeResult {
        pattern: "fresh fallocated file, 64 KiB O_DIRECT write linked to fdatasync, qd1",
        write_bytes: PROBE_WRITE_BYTES,
        cycles,
        write_fdatasync_cycle_us: Percentiles::from_histogram(&hist),
    }))
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
