//! The pipeline floor: what this machine's cores can carry for a max-rate workload when
//! they do only the work any broker and client must do for it, and nothing else.
//!
//! machine-limits.sh measures the disk and loopback TCP one at a time, each with the
//! whole machine to itself. A max-rate run on 2 cores needs both at once, plus the
//! client's work, on the same cores, so neither figure is the bound such a run can reach.
//! This measures that bound: per producer, one thread frames records into batches (one
//! copy of each value, a 4-byte length before it), takes a CRC32 of each batch and writes
//! it to a loopback TCP connection; one thread at the other end reads each batch straight
//! into an aligned buffer, checks the CRC, writes it to a file with direct I/O (fallocated
//! ahead, rolled and deleted like a segment) and acknowledges it. There is a file per
//! partition of the workload, as a broker keeps a log per partition; each receiver writes
//! its share of them in turn, a batch each. No broker logic, no
//! protocol, no per-record reports: `cfa bench` runs are compared with it as the share of
//! what the machine allows (`x floor`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::constants::{
    FLOOR_ALIGN_BYTES, FLOOR_BATCH_BYTES_MAX, FLOOR_FALLOCATE_BYTES, FLOOR_FILES_MAX,
    FLOOR_FILE_BYTES_MAX, FLOOR_IN_FLIGHT_MAX, FLOOR_PREWRITE_CHUNK_BYTES, FLOOR_STREAMS_MAX,
    FLOOR_STREAM_BYTES_MAX, FLOOR_WRITES_IN_FLIGHT, FLOOR_WRITTEN_FILE_BYTES, RECORD_BYTES_MAX,
};
use crate::machine::Usage;
use crate::workload::Workload;

#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error("floor: {0}")]
    Config(String),
    #[error("floor: {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("floor: batch {batch} failed its CRC check on the receiving side")]
    Crc { batch: u64 },
    #[error("floor: a receiving thread panicked")]
    Panicked,
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> FloorError {
    move |source| FloorError::Io { what, source }
}

/// Which disk blocks the floor writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Blocks {
    /// Never-written blocks of new, fallocated files: what a log appending new segments
    /// writes, and so the bound for cfa as built.
    Fresh,
    /// Blocks written once before the run (overwritten in a circle): what machine-limits'
    /// overwrite figure measures, and what a log that reused its deleted segments' files
    /// would write. On this VM (virtio, thin-provisioned, ext4 mounted with `discard`)
    /// fresh blocks cost up to 2x.
    Written,
}

impl Blocks {
    /// The name used in the JSON, the summary line and the comparison table.
    pub fn name(self) -> &'static str {
        match self {
            Blocks::Fresh => "fresh",
            Blocks::Written => "written",
        }
    }
}

/// What to move: the workload's record size, producer count and batch size.
#[derive(Clone, Debug, Serialize)]
pub struct FloorConfig {
    pub blocks: Blocks,
    pub streams: u32,
    /// Files written side by side, spread over the streams (at least one each): the
    /// workload's partitions, up to `FLOOR_FILES_MAX`. Measured on this VM, 2 streams,
    /// fresh blocks, 3 interleaved pairs: six files 1.19-1.64M records/s (mean 1.41M),
    /// two files 1.52-1.61M (mean 1.58M). A floor of two files was a lighter job than
    /// the six-partition workload it bounds.
    pub files: u32,
    pub record_bytes: usize,
    pub batch_bytes: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
}

impl FloorConfig {
    /// The floor of a max-rate workload: its producers, its largest record, the batch
    /// size of its producer tuning (the client's default when it names none).
    pub fn for_workload(w: &Workload, blocks: Blocks) -> FloorConfig {
        FloorConfig {
            blocks,
            streams: w.producers,
            files: w.total_partitions().clamp(1, u64::from(FLOOR_FILES_MAX)) as u32,
            record_bytes: w.size_max_bytes,
            batch_bytes: w
                .producer
                .batch_size_bytes
                .unwrap_or(cfa_net::constants::BATCH_SIZE_BYTES_DEFAULT),
            warmup_s: w.warmup_s,
            duration_s: w.duration_s,
        }
    }

    fn validate(&self) -> Result<(), FloorError> {
        let bad = |m: String| Err(FloorError::Config(m));
        if self.streams == 0 || self.streams > FLOOR_STREAMS_MAX {
            return bad(format!(
                "streams {} not in 1..={FLOOR_STREAMS_MAX}",
                self.streams
            ));
        }
        if self.files == 0 || self.files > FLOOR_FILES_MAX {
            return bad(format!("files {} not in 1..={FLOOR_FILES_MAX}", self.files));
        }
        if self.record_bytes == 0 || self.record_bytes > RECORD_BYTES_MAX {
            return bad(format!(
                "record_bytes {} not in 1..={RECORD_BYTES_MAX}",
                self.record_bytes
            ));
        }
        if self.batch_bytes < self.record_bytes + 4 || self.batch_bytes > FLOOR_BATCH_BYTES_MAX {
            return bad(format!(
                "batch_bytes {} must hold one record and be at most {FLOOR_BATCH_BYTES_MAX}",
                self.batch_bytes
            ));
        }
        if !(self.duration_s > 0.0 && self.warmup_s >= 0.0) {
            return bad("duration_s must be positive and warmup_s not negative".into());
        }
        Ok(())
    }

    fn records_per_batch(&self) -> usize {
        self.batch_bytes / (self.record_bytes + 4)
    }

    /// How many of the files stream `index` writes: the files `f` with `f % streams ==
    /// index`, and one when there are fewer files than streams.
    fn files_of_stream(&self, index: u32) -> u32 {
        assert!(index < self.streams);
        let n = self.files / self.streams + u32::from(index < self.files % self.streams);
        n.max(1)
    }
}

/// MB = 10^6 bytes of record values, as in `cfa bench`'s produce_mb_per_s.
#[derive(Clone, Debug, Serialize)]
pub struct FloorResult {
    pub config: FloorConfig,
    pub records: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub cpu_cores_used: f64,
    /// Device bytes written (batches padded to the direct-I/O alignment).
    pub written_bytes: u64,
}

/// Runs the floor for `config` in `dir` (which must support O_DIRECT) and removes its files.
pub fn run(dir: &Path, config: &FloorConfig) -> Result<FloorResult, FloorError> {
    config.validate()?;
    let dir = tempfile::Builder::new()
        .prefix("cfa-floor-")
        .tempdir_in(dir)
        .map_err(io_err("creating the floor's directory"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for i in 0..config.streams {
        let s = Stream::start(dir.path(), i, config, &stop, &acked);
        match s {
            Ok(s) => streams.push(s),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                finish(streams)?;
                return Err(e);
            }
        }
    }
    std::thread::sleep(Duration::from_secs_f64(config.warmup_s));
    let (start, usage_start) = (acked.load(Ordering::Relaxed), Usage::now());
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(config.duration_s));
    let (end, usage_end) = (acked.load(Ordering::Relaxed), Usage::now());
    let window_s = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let written_bytes = finish(streams)?;
    let records = end - start;
    Ok(FloorResult {
        config: config.clone(),
        records,
        records_per_s: records as f64 / window_s,
        mb_per_s: (records * config.record_bytes as u64) as f64 / window_s / 1e6,
        cpu_cores_used: (usage_end.cpu_s - usage_start.cpu_s) / window_s,
        written_bytes,
    })
}

/// Joins every stream; the first error wins. Returns the bytes written.
fn finish(streams: Vec<Stream>) -> Result<u64, FloorError> {
    let mut first = Ok(0);
    for s in streams {
        match (s.join(), &mut first) {
            (Ok(n), Ok(total)) => *total += n,
            (Err(e), Ok(_)) => first = Err(e),
            (_, Err(_)) => {}
        }
    }
    first
}

/// One producer thread and its receiving thread over one loopback connection.
struct Stream {
    producer: JoinHandle<Result<(), FloorError>>,
    receiver: JoinHandle<Result<u64, FloorError>>,
}

impl Stream {
    fn start(
        dir: &Path,
        index: u32,
        config: &FloorConfig,
        stop: &Arc<AtomicBool>,
        acked: &Arc<AtomicU64>,
    ) -> Result<Stream, FloorError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err("listening"))?;
        let addr = listener.local_addr().map_err(io_err("listening"))?;
        let out = TcpStream::connect(addr).map_err(io_err("connecting"))?;
        let (inbound, _) = listener.accept().map_err(io_err("accepting"))?;
        for s in [&out, &inbound] {
            s.set_nodelay(true).map_err(io_err("setting TCP_NODELAY"))?;
        }
        let n = config.files_of_stream(index);
        let limits = FileLimits::DEFAULT.split(n, config.batch_bytes);
        let sinks = (0..n).map(|k| Sink {
            dir: dir.to_owned(),
            stem: format!("stream-{index}-file-{k}"),
            blocks: config.blocks,
            limits,
        });
        // Before the measured window: written-blocks files are written in full here.
        let files = FileSet::create(sinks)?;
        let batch_bytes = config.batch_bytes;
        let receiver = std::thread::Builder::new()
            .name(format!("floor-recv-{index}"))
            .spawn(move || receive(inbound, files, batch_bytes))
            .map_err(io_err("starting a thread"))?;
        let (config, stop, acked) = (config.clone(), Arc::clone(stop), Arc::clone(acked));
        let producer = std::thread::Builder::new()
            .name(format!("floor-send-{index}"))
            .spawn(move || produce(out, &config, &stop, &acked))
            .map_err(io_err("starting a thread"))?;
        Ok(Stream { producer, receiver })
    }

    fn join(self) -> Result<u64, FloorError> {
        let sent = self.producer.join().map_err(|_| FloorError::Panicked)?;
        let written = self.receiver.join().map_err(|_| FloorError::Panicked)?;
        sent?;
        written
    }
}

/// Batch framing: `[u32 LE body length][u32 LE CRC32 of the body]`, then the body: per
/// record a u32 LE length and the value.
const FRAME_HEADER_BYTES: usize = 8;

/// Frames batches of records until `stop`, keeping at most `FLOOR_IN_FLIGHT_MAX` batches
/// unacknowledged; counts acknowledged records into `acked`.
fn produce(
    mut out: TcpStream,
    config: &FloorConfig,
    stop: &AtomicBool,
    acked: &AtomicU64,
) -> Result<(), FloorError> {
    // A printable payload, as the bench's values: the same bytes for every record, as
    // kafka-producer-perf-test and OMB send.
    let value: Vec<u8> = (0..config.record_bytes)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let per_batch = config.records_per_batch();
    let mut batch = Vec::with_capacity(FRAME_HEADER_BYTES + config.batch_bytes);
    let mut in_flight = VecDeque::with_capacity(FLOOR_IN_FLIGHT_MAX);
    while !stop.load(Ordering::Relaxed) {
        frame_batch(&mut batch, &value, per_batch);
        out.write_all(&batch).map_err(io_err("sending a batch"))?;
        in_flight.push_back(per_batch as u64);
        if in_flight.len() >= FLOOR_IN_FLIGHT_MAX {
            await_ack(&mut out, &mut in_flight, acked)?;
        }
    }
    out.shutdown(Shutdown::Write)
        .map_err(io_err("closing the send side"))?;
    while !in_flight.is_empty() {
        await_ack(&mut out, &mut in_flight, acked)?;
    }
    Ok(())
}

/// Writes one framed batch of `records` copies of `value` into `batch`.
fn frame_batch(batch: &mut Vec<u8>, value: &[u8], records: usize) {
    batch.clear();
    batch.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    for _ in 0..records {
        batch.extend_from_slice(&(value.len() as u32).to_le_bytes());
        batch.extend_from_slice(value);
    }
    let body_bytes = (batch.len() - FRAME_HEADER_BYTES) as u32;
    let crc = crc32fast::hash(&batch[FRAME_HEADER_BYTES..]);
    batch[..4].copy_from_slice(&body_bytes.to_le_bytes());
    batch[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn await_ack(
    out: &mut TcpStream,
    in_flight: &mut VecDeque<u64>,
    acked: &AtomicU64,
) -> Result<(), FloorError> {
    let mut ack = [0u8; 8];
    out.read_exact(&mut ack).map_err(io_err("reading an ack"))?;
    let records = in_flight
        .pop_front()
        .expect("an ack answers a batch in flight");
    acked.fetch_add(records, Ordering::Relaxed);
    Ok(())
}

/// Where a stream's receiver writes.
struct Sink {
    dir: PathBuf,
    stem: String,
    blocks: Blocks,
    limits: FileLimits,
}

/// Sizes of a stream's files (the constants, smaller in tests).
#[derive(Clone, Copy, Debug)]
struct FileLimits {
    file_bytes_max: u64,
    stream_bytes_max: u64,
    written_file_bytes: u64,
}

impl FileLimits {
    const DEFAULT: FileLimits = FileLimits {
        file_bytes_max: FLOOR_FILE_BYTES_MAX,
        stream_bytes_max: FLOOR_STREAM_BYTES_MAX,
        written_file_bytes: FLOOR_WRITTEN_FILE_BYTES,
    };

    /// Each of `n` files' share of a stream's limits (a written-blocks file still holds
    /// one batch), so that more files do not take more disk.
    fn split(self, n: u32, batch_bytes: usize) -> FileLimits {
        let n = u64::from(n.max(1));
        let batch = batch_bytes.next_multiple_of(FLOOR_ALIGN_BYTES) as u64;
        let share = |bytes: u64| {
            let s = bytes / n;
            (s - s % FLOOR_ALIGN_BYTES as u64).max(batch)
        };
        FileLimits {
            file_bytes_max: self.file_bytes_max.max(batch),
            stream_bytes_max: share(self.stream_bytes_max),
            written_file_bytes: share(self.written_file_bytes),
        }
    }
}

/// A stream's files, written in turn, a batch each (as a producer spreads keyless batches
/// over partitions).
struct FileSet {
    files: Vec<DirectFile>,
    next: usize,
}

impl FileSet {
    fn create(sinks: impl Iterator<Item = Sink>) -> Result<FileSet, FloorError> {
        let files = sinks
            .map(|s| DirectFile::create(&s))
            .collect::<Result<Vec<_>, _>>()?;
        assert!(!files.is_empty(), "a stream writes at least one file");
        Ok(FileSet { files, next: 0 })
    }

    /// Reserves `len_bytes` in the next file: that file and the offset to write at.
    fn place(&mut self, len_bytes: u64) -> Result<(Arc<File>, u64), FloorError> {
        let i = self.next;
        self.next = (i + 1) % self.files.len();
        let f = &mut self.files[i];
        let at = f.place(len_bytes)?;
        Ok((Arc::clone(&f.file), at))
    }

    fn written_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.written_bytes).sum()
    }
}

/// A batch read off the connection, on its way to the file.
struct PendingWrite {
    buffer: AlignedBuffer,
    len_bytes: usize,
    file: Arc<File>,
    offset_bytes: u64,
}

/// Reads batches into aligned buffers, checks each CRC and hands it to one of
/// `FLOOR_WRITES_IN_FLIGHT` writer threads, which write it with direct I/O and
/// acknowledge it: several writes in flight per stream, as a broker keeps them (a single
/// blocking write at a time left the floor bound by the disk's queue-depth-1 latency, with
/// the cores idle). Returns the device bytes written.
fn receive(inbound: TcpStream, files: FileSet, batch_bytes: usize) -> Result<u64, FloorError> {
    let capacity = batch_bytes.next_multiple_of(FLOOR_ALIGN_BYTES);
    let acks = Arc::new(Mutex::new(
        inbound
            .try_clone()
            .map_err(io_err("cloning the connection"))?,
    ));
    let (free_tx, free_rx) = mpsc::sync_channel(FLOOR_WRITES_IN_FLIGHT);
    for _ in 0..FLOOR_WRITES_IN_FLIGHT {
        free_tx
            .send(AlignedBuffer::new(capacity))
            .expect("the receiver holds free_rx");
    }
    let (work_tx, work_rx) = mpsc::sync_channel::<PendingWrite>(FLOOR_WRITES_IN_FLIGHT);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let writers: Vec<_> = (0..FLOOR_WRITES_IN_FLIGHT)
        .map(|_| {
            let (work_rx, free_tx, acks) =
                (Arc::clone(&work_rx), free_tx.clone(), Arc::clone(&acks));
            std::thread::spawn(move || write_batches(&work_rx, &free_tx, &acks))
        })
        .collect();
    drop(free_tx);
    let read = read_batches(inbound, files, &free_rx, work_tx);
    let mut written = Ok(());
    for w in writers {
        let r = w.join().map_err(|_| FloorError::Panicked)?;
        if written.is_ok() {
            written = r;
        }
    }
    let bytes = read?;
    written.map(|()| bytes)
}

/// The receiving half: frames off the connection into free buffers, CRC-checked, placed
/// in the stream's files in turn. Returns the bytes handed to the writers.
fn read_batches(
    mut inbound: TcpStream,
    mut files: FileSet,
    free: &mpsc::Receiver<AlignedBuffer>,
    work: mpsc::SyncSender<PendingWrite>,
) -> Result<u64, FloorError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut batch = 0u64;
    loop {
        match inbound.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err("reading a batch")(e)),
        }
        let body_bytes = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        // A writer that failed has dropped its end; its error is reported by `receive`.
        let Ok(mut buffer) = free.recv() else { break };
        let buf = buffer.as_mut_slice();
        assert!(
            body_bytes <= buf.len(),
            "the sender frames at most batch_bytes"
        );
        inbound
            .read_exact(&mut buf[..body_bytes])
            .map_err(io_err("reading a batch"))?;
        if crc32fast::hash(&buf[..body_bytes]) != crc {
            return Err(FloorError::Crc { batch });
        }
        let padded = body_bytes.next_multiple_of(FLOOR_ALIGN_BYTES);
        buf[body_bytes..padded].fill(0);
        let (file, offset_bytes) = files.place(padded as u64)?;
        let w = PendingWrite {
            buffer,
            len_bytes: padded,
            file,
            offset_bytes,
        };
        if work.send(w).is_err() {
            break;
        }
        batch += 1;
    }
    Ok(files.written_bytes())
}

/// A writer thread: writes batches, acknowledges each, returns its buffer.
fn write_batches(
    work: &Mutex<mpsc::Receiver<PendingWrite>>,
    free: &mpsc::SyncSender<AlignedBuffer>,
    acks: &Mutex<TcpStream>,
) -> Result<(), FloorError> {
    loop {
        let next = work
            .lock()
            .expect("no writer panics holding the lock")
            .recv();
        let Ok(w) = next else { return Ok(()) };
        w.file
            .write_all_at(&w.buffer.as_slice()[..w.len_bytes], w.offset_bytes)
            .map_err(io_err("writing with direct I/O"))?;
        acks.lock()
            .expect("no writer panics holding the lock")
            .write_all(&w.offset_bytes.to_le_bytes())
            .map_err(io_err("acknowledging"))?;
        // The receiver may have stopped; the buffer is then simply dropped.
        let _ = free.send(w.buffer);
    }
}

/// A heap buffer whose usable part starts on a `FLOOR_ALIGN_BYTES` boundary (found inside
/// a larger allocation, so no unsafe code is needed).
struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new(len: usize) -> AlignedBuffer {
        let storage = vec![0u8; len + FLOOR_ALIGN_BYTES];
        let start = storage.as_ptr().align_offset(FLOOR_ALIGN_BYTES);
        assert!(start + len <= storage.len());
        AlignedBuffer {
            storage,
            start,
            len,
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// A stream's files. `Blocks::Fresh`: appended in aligned writes, fallocated ahead and
/// rolled at `FLOOR_FILE_BYTES_MAX` like segments; the oldest is deleted only past
/// `FLOOR_STREAM_BYTES_MAX` (a delete on this machine's `discard` mount costs bandwidth,
/// and a broker deletes nothing in a run this short). `Blocks::Written`: one file of
/// `FLOOR_WRITTEN_FILE_BYTES`, written once before the run, then overwritten in a circle.
struct DirectFile {
    dir: PathBuf,
    stem: String,
    blocks: Blocks,
    limits: FileLimits,
    file: Arc<File>,
    /// Fresh: the files so far, oldest first, with their sizes.
    files: VecDeque<(PathBuf, u64)>,
    offset_bytes: u64,
    allocated_bytes: u64,
    written_bytes: u64,
}

impl DirectFile {
    fn create(sink: &Sink) -> Result<DirectFile, FloorError> {
        let path = sink.dir.join(format!("{}-0", sink.stem));
        let file = Arc::new(open_direct(&path)?);
        if sink.blocks == Blocks::Written {
            prewrite(&file, sink.limits.written_file_bytes)?;
        }
        Ok(DirectFile {
            dir: sink.dir.clone(),
            stem: sink.stem.clone(),
            blocks: sink.blocks,
            limits: sink.limits,
            file,
            files: VecDeque::from([(path, 0)]),
            offset_bytes: 0,
            allocated_bytes: 0,
            written_bytes: 0,
        })
    }

    /// Reserves `len_bytes` for the next write and returns their offset in `self.file`.
    fn place(&mut self, len_bytes: u64) -> Result<u64, FloorError> {
        debug_assert_eq!(len_bytes % FLOOR_ALIGN_BYTES as u64, 0);
        match self.blocks {
            Blocks::Written => {
                assert!(len_bytes <= self.limits.written_file_bytes);
                if self.offset_bytes + len_bytes > self.limits.written_file_bytes {
                    self.offset_bytes = 0;
                }
            }
            Blocks::Fresh => self.grow(len_bytes)?,
        }
        let at = self.offset_bytes;
        self.offset_bytes += len_bytes;
        self.written_bytes += len_bytes;
        Ok(at)
    }

    fn grow(&mut self, len_bytes: u64) -> Result<(), FloorError> {
        if self.offset_bytes + len_bytes > self.limits.file_bytes_max {
            self.roll()?;
        }
        while self.offset_bytes + len_bytes > self.allocated_bytes {
            fallocate(&self.file, self.allocated_bytes, FLOOR_FALLOCATE_BYTES)?;
            self.allocated_bytes += FLOOR_FALLOCATE_BYTES;
        }
        self.files.back_mut().expect("a stream has a file").1 = self.offset_bytes + len_bytes;
        Ok(())
    }

    /// Starts the next file; deletes the oldest while the stream holds too much.
    /// Writes still in flight to a deleted file finish on its unlinked inode.
    fn roll(&mut self) -> Result<(), FloorError> {
        let path = self
            .dir
            .join(format!("{}-{}", self.stem, self.written_bytes));
        self.file = Arc::new(open_direct(&path)?);
        self.files.push_back((path, 0));
        self.offset_bytes = 0;
        self.allocated_bytes = 0;
        while self.files.iter().map(|(_, b)| b).sum::<u64>() > self.limits.stream_bytes_max {
            let (old, _) = self.files.pop_front().expect("more than one file");
            std::fs::remove_file(&old).map_err(io_err("deleting a rolled file"))?;
        }
        Ok(())
    }
}

/// Writes `len_bytes` of zeros over `file` and syncs it, so later writes overwrite blocks
/// the disk has already allocated.
fn prewrite(file: &File, len_bytes: u64) -> Result<(), FloorError> {
    let mut chunk = AlignedBuffer::new(FLOOR_PREWRITE_CHUNK_BYTES);
    chunk.as_mut_slice().fill(0);
    let mut at = 0;
    while at < len_bytes {
        let n = (len_bytes - at).min(FLOOR_PREWRITE_CHUNK_BYTES as u64);
        file.write_all_at(&chunk.as_slice()[..n as usize], at)
            .map_err(io_err("writing the file once before the run"))?;
        at += n;
    }
    file.sync_data()
        .map_err(io_err("syncing the prewritten file"))
}

fn open_direct(path: &Path) -> Result<File, FloorError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(io_err(
            "opening a file with O_DIRECT (the data dir must not be tmpfs)",
        ))
}

fn fallocate(file: &File, offset_bytes: u64, len_bytes: u64) -> Result<(), FloorError> {
    // SAFETY: fallocate takes the open descriptor and plain integers; no memory is passed.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            0,
            offset_bytes as libc::off_t,
            len_bytes as libc::off_t,
        )
    };
    if rc != 0 {
        return Err(io_err("fallocate")(io::Error::last_os_error()));
    }
    Ok(())
}

/// One line for a terminal.
pub fn summary_line(r: &FloorResult) -> String {
    format!(
        "floor ({} blocks): {} streams, {} files, {} B records in {} B batches: {:.0} records/s, {:.1} MB/s (MB = 10^6 B), {:.2} cores",
        r.config.blocks.name(),
        r.config.streams,
        r.config.files,
        r.config.record_bytes,
        r.config.batch_bytes,
        r.records_per_s,
        r.mb_per_s,
        r.cpu_cores_used
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the repository's disk: O_DIRECT needs a real filesystem, and /tmp may be tmpfs.
    fn test_dir() -> tempfile::TempDir {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        tempfile::tempdir_in(target).expect("tempdir")
    }

    fn config() -> FloorConfig {
        FloorConfig {
            blocks: Blocks::Fresh,
            streams: 2,
            files: 3,
            record_bytes: 1024,
            batch_bytes: 64 * 1024,
            warmup_s: 0.0,
            duration_s: 0.3,
        }
    }

    #[test]
    fn a_framed_batch_carries_its_length_crc_and_records() {
        let mut batch = Vec::new();
        frame_batch(&mut batch, b"abc", 2);
        assert_eq!(&batch[..4], &14u32.to_le_bytes());
        assert_eq!(&batch[4..8], &crc32fast::hash(&batch[8..]).to_le_bytes());
        assert_eq!(&batch[8..], b"\x03\0\0\0abc\x03\0\0\0abc");
    }

    #[test]
    fn the_floor_moves_records_to_disk_and_counts_them() {
        let dir = test_dir();
        let r = run(dir.path(), &config()).expect("floor run");
        assert!(r.records > 0);
        // Every acknowledged record went to disk: at least its bytes were written.
        assert!(r.written_bytes >= r.records * 1028);
        assert!(r.mb_per_s > 0.0);
        // The floor's own directory is gone.
        assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
    }

    #[test]
    fn a_batch_with_a_bad_crc_is_refused() {
        let dir = test_dir();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let mut out = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (inbound, _) = listener.accept().expect("accept");
        let mut batch = Vec::new();
        frame_batch(&mut batch, b"value", 3);
        let last = batch.len() - 1;
        batch[last] ^= 1;
        out.write_all(&batch).expect("send");
        let sink = Sink {
            dir: dir.path().to_owned(),
            stem: "f".into(),
            blocks: Blocks::Fresh,
            limits: FileLimits::DEFAULT,
        };
        let files = FileSet::create(std::iter::once(sink)).expect("create");
        let r = receive(inbound, files, 4096);
        assert!(matches!(r, Err(FloorError::Crc { batch: 0 })), "{r:?}");
    }

    fn sink(dir: &Path, blocks: Blocks) -> Sink {
        Sink {
            dir: dir.to_owned(),
            stem: "s".into(),
            blocks,
            limits: FileLimits {
                file_bytes_max: 3 * 4096,
                stream_bytes_max: 5 * 4096,
                written_file_bytes: 2 * 4096,
            },
        }
    }

    fn files_in(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().expect("meta").len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn fresh_files_roll_at_their_size_and_the_oldest_goes_past_the_stream_bound() {
        let dir = test_dir();
        let mut f = DirectFile::create(&sink(dir.path(), Blocks::Fresh)).expect("create");
        let offsets: Vec<u64> = (0..7).map(|_| f.place(4096).expect("place")).collect();
        // Three writes per file, then a new file from offset 0.
        assert_eq!(offsets, [0, 4096, 8192, 0, 4096, 8192, 0]);
        // Files of 3 + 3 + 1 writes exceed the 5-write bound: the first is deleted.
        let names: Vec<String> = files_in(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["s-12288", "s-24576"]);
        assert_eq!(f.written_bytes, 7 * 4096);
    }

    #[test]
    fn written_blocks_are_written_once_then_overwritten_in_a_circle() {
        let dir = test_dir();
        let mut f = DirectFile::create(&sink(dir.path(), Blocks::Written)).expect("create");
        // The whole file exists before the first write.
        assert_eq!(files_in(dir.path()), [("s-0".to_owned(), 2 * 4096)]);
        let offsets: Vec<u64> = (0..5).map(|_| f.place(4096).expect("place")).collect();
        assert_eq!(offsets, [0, 4096, 0, 4096, 0]);
        assert_eq!(f.written_bytes, 5 * 4096);
    }

    #[test]
    fn the_files_are_shared_out_over_the_streams() {
        let c = |streams, files| FloorConfig {
            streams,
            files,
            ..config()
        };
        let shares = |c: FloorConfig| {
            (0..c.streams)
                .map(|i| c.files_of_stream(i))
                .collect::<Vec<_>>()
        };
        assert_eq!(shares(c(2, 6)), [3, 3]);
        assert_eq!(shares(c(2, 3)), [2, 1]);
        assert_eq!(shares(c(3, 1)), [1, 1, 1]);
    }

    #[test]
    fn a_stream_writes_its_files_in_turn_within_its_share_of_the_limits() {
        let dir = test_dir();
        let limits = FileLimits {
            file_bytes_max: 4 * 4096,
            stream_bytes_max: 8 * 4096,
            written_file_bytes: 4 * 4096,
        }
        .split(2, 4096);
        assert_eq!(limits.written_file_bytes, 2 * 4096);
        assert_eq!(limits.stream_bytes_max, 4 * 4096);
        let sinks = ["a", "b"].map(|stem| Sink {
            stem: stem.into(),
            limits,
            ..sink(dir.path(), Blocks::Written)
        });
        let mut set = FileSet::create(sinks.into_iter()).expect("create");
        let placed: Vec<(bool, u64)> = (0..5)
            .map(|_| {
                let (f, at) = set.place(4096).expect("place");
                (Arc::ptr_eq(&f, &set.files[0].file), at)
            })
            .collect();
        // a, b, a, b, a; each file circles within its 2-page share.
        assert_eq!(
            placed,
            [
                (true, 0),
                (false, 0),
                (true, 4096),
                (false, 4096),
                (true, 0)
            ]
        );
        assert_eq!(set.written_bytes(), 5 * 4096);
        assert_eq!(
            files_in(dir.path()),
            [("a-0".to_owned(), 2 * 4096), ("b-0".to_owned(), 2 * 4096)]
        );
    }

    #[test]
    fn the_written_blocks_floor_runs_too() {
        let dir = test_dir();
        let c = FloorConfig {
            blocks: Blocks::Written,
            ..config()
        };
        let r = run(dir.path(), &c).expect("floor run");
        assert!(r.records > 0 && r.written_bytes >= r.records * 1028);
    }

    #[test]
    fn bad_configs_are_refused() {
        let dir = test_dir();
        for c in [
            FloorConfig {
                streams: 0,
                ..config()
            },
            FloorConfig {
                batch_bytes: 100,
                ..config()
            },
            FloorConfig {
                duration_s: 0.0,
                ..config()
            },
            FloorConfig {
                record_bytes: 0,
                ..config()
            },
            FloorConfig {
                files: 0,
                ..config()
            },
            FloorConfig {
                files: FLOOR_FILES_MAX + 1,
                ..config()
            },
        ] {
            assert!(
                matches!(run(dir.path(), &c), Err(FloorError::Config(_))),
                "{c:?}"
            );
        }
    }
}
