//! A partition log: an ordered, append-only sequence of record batches in segments.
//!
//! Owned by one shard; `&self` methods with interior mutability so that appends, group
//! commits and reads of the same partition interleave on that shard's executor.
//!
//! The appender contract (as in Redpanda's segment_appender): [`PartitionLog::append`] is
//! in memory (offsets assigned, batch cached); [`PartitionLog::wait_for`] with
//! [`Durability::Written`] or [`Durability::Durable`] drives the write (direct I/O) and the
//! fdatasync. One write and one fdatasync may be in flight at a time (a write may overlap
//! an fdatasync); everything written while an fdatasync runs is covered by the next one,
//! so one fdatasync serves many batches (group commit).
//!
//! Invariants (asserted where cheap):
//! - `log_start <= durable_offset <= written_offset <= next_offset`.
//! - segments are contiguous: each one's `next_offset` is the next one's base offset.
//! - only the last segment is active; sealed segments are fsynced, truncated to their size,
//!   and never written again.
//! - `staged` holds exactly the batches in `[staged_offset, next_offset)`, in order, as
//!   they go to disk; `written_offset <= staged_offset`, equal when no write is in flight
//!   (a write takes the staged bytes when it is planned).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use event_listener::Event;

use crate::batch::{check_crc, set_base_offset, validate_except_crc, BatchHeader};
use crate::batch_cache::{BatchCache, CachedBatch};
use crate::clock::ClockRef;
use crate::config::{FlushPolicy, LogConfig};
use crate::constants::*;
use crate::error::{LogError, LogResult};
use crate::index::SegmentIndex;
use crate::segment::{self, Segment};
use crate::staging::Staged;
use crate::storage::{Storage, StorageFile};

/// Fallocate grows the active segment by at least this much at a time (16 MiB), so the
/// file-size change is committed by one fdatasync per step, not one per batch.
const ALLOCATE_STEP_BYTES: u64 = 16 << 20;

/// What a waiter needs before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// Handed to the device (survives a process crash, not a power cut).
    Written,
    /// fdatasync'ed.
    Durable,
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: u64,
    pub last_offset: u64,
    /// The offset after the batch: wait for this with [`PartitionLog::wait_for`].
    pub next_offset: u64,
}

/// Offsets of a log at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start: u64,
    pub durable: u64,
    pub written: u64,
    /// Log end offset: the offset the next appended record gets.
    pub next: u64,
}

struct State<F: StorageFile> {
    segments: BTreeMap<u64, Segment<F>>,
    next_offset: u64,
    written_offset: u64,
    durable_offset: u64,
    /// Where `staged` starts: `written_offset`, or the end of the write in flight.
    staged_offset: u64,
    /// The batches not yet handed to a write, copied into write buffers of the active
    /// segment behind its partial last page (rewritten, with more data after it, by the
    /// next write).
    staged: Staged<<F as StorageFile>::Buf>,
    /// Bytes of the batches appended and not yet written (staged or in flight) ...
    pending_bytes: usize,
    /// ... and what they keep in memory (`Incoming::charge`): the backpressure bound.
    pending_charge: usize,
    unsynced_bytes: u64,
    oldest_unsynced_ms: Option<i64>,
    cache: BatchCache,
    poisoned: Option<String>,
    /// Set by `close()`: the segments were handed back.
    closed: bool,
}

impl<F: StorageFile> State<F> {
    fn active(&self) -> &Segment<F> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment<F> {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn log_start(&self) -> u64 {
        // A closed log has handed its segments back; its offsets stay readable.
        self.segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_offset)
    }

    fn check_invariants(&self) {
        assert!(self.log_start() <= self.durable_offset);
        assert!(self.durable_offset <= self.written_offset);
        assert!(self.written_offset <= self.staged_offset);
        assert!(self.staged_offset <= self.next_offset);
        assert_eq!(
            self.staged.is_empty(),
            self.staged_offset == self.next_offset
        );
    }
}

/// A batch on its way into `append_batch`.
enum Incoming {
    /// Owned memory: the base offset is written into it in place.
    Owned(BytesMut),
    /// A slice of a larger buffer, kept as it is, and the bytes that buffer holds.
    Shared(Bytes, usize),
}

impl Incoming {
    fn bytes(&self) -> &[u8] {
        match self {
            Incoming::Owned(b) => b,
            Incoming::Shared(b, _) => b,
        }
    }

    fn charge(&self) -> usize {
        match self {
            Incoming::Owned(b) => b.len(),
            Incoming::Shared(b, pinned) => b.len().max(*pinned),
        }
    }

    /// The bytes to keep, and whether they carry `base` in their header.
    fn with_base_offset(self, base: u64) -> (Bytes, bool) {
        match self {
            Incoming::Owned(mut b) => {
                set_base_offset(&mut b, base);
                (b.freeze(), true)
            }
            Incoming::Shared(b, _) => (b, false),
        }
    }
}

/// A planned flush: buffers to write and the state to commit when they are on disk.
struct FlushPlan<F: StorageFile> {
    file: Rc<F>,
    writes: Vec<(F::Buf, u64)>,
    /// File position after the last write.
    end: u64,
    bytes: usize,
    /// The batches' `Incoming::charge`, released when they are written.
    charge: usize,
    target_offset: u64,
    new_written_size: u64,
    new_zeroed_until: u64,
}

/// Resets an in-flight flag (write or fdatasync) and wakes waiters, also when the future
/// driving it is dropped half-way.
/// Tells maintenance tasks ([`PartitionLog::run_maintenance`]) to end.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopped: Cell<bool>,
    event: Event,
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        self.stopped.set(true);
        self.event.notify(usize::MAX);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    pub fn listen(&self) -> event_listener::EventListener {
        self.event.listen()
    }
}

/// `zeroing_from` when no zero-fill write is in flight.
const NOT_ZEROING: u64 = u64::MAX;

/// Marks a zero fill in flight from `start`; clears the mark and wakes waiters on drop,
/// also when the future driving it is dropped half-way.
struct ZeroGuard<'a> {
    from: &'a Cell<u64>,
    event: &'a Event,
}

impl<'a> ZeroGuard<'a> {
    fn start(from: &'a Cell<u64>, event: &'a Event, start: u64) -> Self {
        assert_eq!(from.get(), NOT_ZEROING, "one zero fill at a time");
        assert_ne!(start, NOT_ZEROING);
        from.set(start);
        ZeroGuard { from, event }
    }
}

impl Drop for ZeroGuard<'_> {
    fn drop(&mut self) {
        self.from.set(NOT_ZEROING);
        self.event.notify(usize::MAX);
    }
}

struct PhaseGuard<'a> {
    flag: &'a Cell<bool>,
    event: &'a Event,
}

impl Drop for PhaseGuard<'_> {
    fn drop(&mut self) {
        self.flag.set(false);
        self.event.notify(usize::MAX);
    }
}

pub struct PartitionLog<S: Storage> {
    dir: PathBuf,
    name: String,
    storage: S,
    config: LogConfig,
    clock: ClockRef,
    state: RefCell<State<S::File>>,
    append_lock: async_lock::Mutex<()>,
    /// A write is in flight.
    writing: Cell<bool>,
    /// An fdatasync is in flight.
    syncing: Cell<bool>,
    /// Start of the zero-fill write in flight (`u64::MAX`: none). Data bound for bytes at
    /// or past it waits until the zeros are on disk, so the zeros never land over data.
    zeroing_from: Cell<u64>,
    /// Fired when a write or an fdatasync ends.
    flushed: Event,
    /// Bases of the deleted segments whose files wait in the directory (as
    /// `segment::recycle_name`) to become the next new segments (zeroed first, see
    /// `reuse_segment`). At most `RECYCLE_POOL_FILES_MAX`, counting `pool_pending`.
    pool: RefCell<Vec<u64>>,
    /// Pool slots taken by deletions whose rename is under way.
    pool_pending: Cell<usize>,
}

/// A pool slot taken by a deletion: released when the deletion is done with it.
struct PoolSlot<'a>(&'a Cell<usize>);

impl Drop for PoolSlot<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

fn align_down(v: u64) -> u64 {
    v - v % PAGE_BYTES as u64
}

fn align_up(v: u64) -> u64 {
    v.div_ceil(PAGE_BYTES as u64) * PAGE_BYTES as u64
}

impl<S: Storage> PartitionLog<S> {
    /// Opens (or creates) the log in `dir`, recovering the active segment: a torn or
    /// corrupt tail is cut off, missing or stale indexes are rebuilt.
    pub async fn open(
        storage: S,
        dir: &Path,
        config: LogConfig,
        clock: ClockRef,
    ) -> LogResult<Self> {
        config.validate()?;
        let name = dir.display().to_string();
        storage
            .create_dir_all(dir)
            .await
            .map_err(io_at(&name, "creating the log directory"))?;
        let names = storage
            .list_dir(dir)
            .await
            .map_err(io_at(&name, "listing the log directory"))?;
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| segment::parse_log_name(n))
            .collect();
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let last = bases.last().copied();
        for &base in &bases {
            let seg = if Some(base) == last {
                match open_indexed(&storage, dir, base).await? {
                    Some(seg) => seg, // closed cleanly: nothing to scan
                    None => open_active(&storage, dir, base, &config).await?,
                }
            } else {
                open_sealed(&storage, dir, base, &config).await?
            };
            segments.insert(base, seg);
        }
        check_contiguous(&segments, &name)?;
        let mut pool = open_pool(&storage, dir, &names, &config).await;
        if segments.is_empty() {
            let seg = create_segment(&storage, dir, 0, &config, pool.pop()).await?;
            segments.insert(0, seg);
        }
        let active = segments.values().next_back().expect("just ensured");
        let next_offset = active.next_offset;
        let written_size = active.written_size;
        let tail_page = read_tail_page(active)
            .await
            .map_err(io_at(&name, "reading the tail page"))?;
        let state = State {
            segments,
            next_offset,
            written_offset: next_offset,
            durable_offset: next_offset,
            staged_offset: next_offset,
            staged: Staged::new(written_size, tail_page),
            pending_bytes: 0,
            pending_charge: 0,
            unsynced_bytes: 0,
            oldest_unsynced_ms: None,
            cache: BatchCache::new(config.batch_cache_bytes),
            poisoned: None,
            closed: false,
        };
        Ok(PartitionLog {
            dir: dir.to_owned(),
            name,
            storage,
            config,
            clock,
            state: RefCell::new(state),
            append_lock: async_lock::Mutex::new(()),
            writing: Cell::new(false),
            syncing: Cell::new(false),
            zeroing_from: Cell::new(NOT_ZEROING),
            flushed: Event::new(),
            pool: RefCell::new(pool),
            pool_pending: Cell::new(0),
        })
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn offsets(&self) -> LogOffsets {
        let st = self.state.borrow();
        LogOffsets {
            log_start: st.log_start(),
            durable: st.durable_offset,
            written: st.written_offset,
            next: st.next_offset,
        }
    }

    /// Bytes of all segments (logical sizes).
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.values().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<u64> {
        self.state.borrow().segments.keys().copied().collect()
    }

    /// The first offset the batch cache holds (reads from there on need no disk).
    pub fn cached_from(&self) -> Option<u64> {
        self.state.borrow().cache.first_offset()
    }

    /// Lowers (or restores, up to `config().batch_cache_bytes`) this partition's batch
    /// cache budget; the broker splits a per-shard budget among its partitions so that
    /// 1,000 partitions do not each hold their own full cache.
    pub fn set_batch_cache_bytes(&self, bytes_max: usize) {
        let bytes_max = bytes_max.min(self.config.batch_cache_bytes);
        self.state.borrow_mut().cache.set_bytes_max(bytes_max);
    }

    pub fn batch_cache_bytes_max(&self) -> usize {
        self.state.borrow().cache.bytes_max()
    }

    pub fn cached_bytes(&self) -> usize {
        self.state.borrow().cache.bytes()
    }

    /// Why the log stopped taking writes, if it did.
    pub fn poisoned(&self) -> Option<String> {
        self.state.borrow().poisoned.clone()
    }

    fn check_poisoned(&self) -> LogResult<()> {
        let st = self.state.borrow();
        if st.closed {
            return Err(LogError::Closed {
                dir: self.name.clone(),
            });
        }
        match &st.poisoned {
            Some(cause) => Err(LogError::Poisoned {
                dir: self.name.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_closed(&self) -> LogResult<()> {
        match self.state.borrow().closed {
            true => Err(LogError::Closed {
                dir: self.name.clone(),
            }),
            false => Ok(()),
        }
    }

    fn io_err(&self, context: &'static str) -> impl Fn(std::io::Error) -> LogError + '_ {
        move |e| LogError::io(&self.name, context, e)
    }

    /// Validates a batch, assigns its offsets (written into the batch in place) and adds it
    /// to the write buffer and the cache. Nothing is written to disk here; a batch that
    /// fails validation, or finds no disk space, leaves the log unchanged.
    pub async fn append(&self, batch: BytesMut) -> LogResult<AppendInfo> {
        self.append_batch(Incoming::Owned(batch)).await
    }

    /// [`Self::append`] for a batch that is a slice of a larger buffer (a request frame),
    /// kept as it is instead of copied: `pinned_bytes` is what the slice keeps in memory
    /// (its whole allocation), which it counts against the pending and cache budgets. The
    /// base offset goes into the write's copy, and into a copy made at the first read
    /// from the cache. One copy per batch instead of two. Measured: a prototype that kept
    /// every batch uncopied gave +9-16% records/s at max rate (max-throughput-1kb, 4
    /// interleaved pairs); this version (charged, exact receive allocations) gave no gain
    /// in 3 pairs (0.96-1.02x): where it goes is open.
    pub async fn append_shared(&self, batch: Bytes, pinned_bytes: usize) -> LogResult<AppendInfo> {
        self.append_batch(Incoming::Shared(batch, pinned_bytes))
            .await
    }

    /// Validates and appends a batch. The CRC is checked last, by the copy into the write
    /// buffers (see staging.rs), so a batch with a bad CRC may first wait for room or roll
    /// the segment; it is refused before it gets an offset, as any invalid batch.
    async fn append_batch(&self, batch: Incoming) -> LogResult<AppendInfo> {
        let _guard = self.append_lock.lock().await;
        self.check_poisoned()?;
        let header = *validate_except_crc(batch.bytes(), self.config.max_message_bytes)?;
        let len = batch.bytes().len();
        let charge = batch.charge();
        self.make_room(charge).await?;
        self.maybe_roll(len as u64).await?;
        self.ensure_allocated(len as u64).await?;
        self.check_poisoned()?;
        let now = self.clock.now_ms();
        let mut st = self.state.borrow_mut();
        let base = st.next_offset;
        let file = st.active().file.clone();
        let crc = st
            .staged
            .copy_in(batch.bytes(), base, |n| file.alloc_buf(n));
        check_crc(&header, crc)?;
        st.staged.commit(len);
        let count = u64::from(header.record_count());
        let (bytes, patched) = batch.with_base_offset(base);
        let interval = self.config.index_interval_bytes;
        let seg = st.active_mut();
        assert!(
            seg.size + len as u64 <= seg.allocated,
            "append stays inside the allocation"
        );
        let rel = u32::try_from(base - seg.base_offset).expect("segment offsets fit u32");
        seg.index.on_batch(
            rel,
            seg.size as u32,
            len as u32,
            header.max_timestamp_ms(),
            interval,
        );
        seg.size += len as u64;
        seg.next_offset = base + count;
        seg.first_append_ms.get_or_insert(now);
        st.next_offset = base + count;
        st.pending_bytes += len;
        st.pending_charge += charge;
        st.cache.push(CachedBatch {
            base_offset: base,
            last_offset: base + count - 1,
            bytes,
            patched,
            charge,
        });
        st.check_invariants();
        drop(st);
        self.flushed.notify(usize::MAX); // maintenance may have work (acks=0 data)
        Ok(AppendInfo {
            base_offset: base,
            last_offset: base + count - 1,
            next_offset: base + count,
        })
    }

    /// Backpressure: waits for a write when the buffer cannot take `len` more bytes (of
    /// charge: what pending batches keep in memory).
    async fn make_room(&self, len: usize) -> LogResult<()> {
        loop {
            let (pending, next) = {
                let st = self.state.borrow();
                (st.pending_charge, st.next_offset)
            };
            if pending == 0 || pending + len <= self.config.pending_bytes_max {
                return Ok(());
            }
            self.wait_for(next, Durability::Written).await?;
        }
    }

    async fn maybe_roll(&self, len: u64) -> LogResult<()> {
        let now = self.clock.now_ms();
        let roll = {
            let st = self.state.borrow();
            let a = st.active();
            let too_big = a.size + len > self.config.segment_bytes;
            let too_old = a
                .first_append_ms
                .is_some_and(|t| now.saturating_sub(t) >= self.config.segment_ms as i64);
            !a.is_empty() && (too_big || too_old)
        };
        if roll {
            self.roll().await?;
        }
        Ok(())
    }

    /// Seals the active segment (durable, truncated to size, indexes written) and starts
    /// a new one at the log end offset.
    async fn roll(&self) -> LogResult<()> {
        let next = self.state.borrow().next_offset;
        self.wait_for(next, Durability::Durable).await?;
        let (file, size, base, offsets, times) = {
            let st = self.state.borrow();
            let a = st.active();
            assert_eq!(
                a.written_size, a.size,
                "everything is written before sealing"
            );
            (
                a.file.clone(),
                a.size,
                a.base_offset,
                a.index.encode_offsets(a.size),
                a.index.encode_times(a.size),
            )
        };
        let _no_zeros = self.hold_zero_fill().await;
        self.seal_files(&file, size, base, &offsets, &times).await?;
        let recycled = self.pool.borrow_mut().pop();
        let fresh = create_segment(&self.storage, &self.dir, next, &self.config, recycled).await?;
        let mut st = self.state.borrow_mut();
        let a = st.active_mut();
        a.sealed = true;
        a.allocated = size;
        st.segments.insert(next, fresh);
        assert!(st.staged.is_empty(), "everything is written before sealing");
        st.staged = Staged::new(0, Vec::new());
        Ok(())
    }

    /// Reserves disk space for `len` more bytes in the active segment. ENOSPC here is a
    /// clean refusal: nothing was appended.
    /// Cuts a segment file to its data (no preallocated tail), makes that durable and
    /// writes its index files, which then carry the segment's exact length: at a roll
    /// (sealing) and at a clean close of the active segment, so that the next open trusts
    /// the index instead of scanning the data.
    async fn seal_files(
        &self,
        file: &S::File,
        size: u64,
        base: u64,
        offsets: &[u8],
        times: &[u8],
    ) -> LogResult<()> {
        let sealed = async {
            file.truncate(size).await?;
            file.fdatasync().await
        };
        if let Err(e) = sealed.await {
            return Err(self.poison(LogError::io(&self.name, "sealing a segment", e)));
        }
        let [_, ix_path, tix_path] = segment::paths(&self.dir, base);
        // Index files are derived data: if writing them fails, recovery rebuilds them.
        if let Err(e) = self.storage.write_small_file(&ix_path, offsets).await {
            tracing::warn!(log = %self.name, error = %e, "could not write segment index; it will be rebuilt");
        }
        if let Err(e) = self.storage.write_small_file(&tix_path, times).await {
            tracing::warn!(log = %self.name, error = %e, "could not write time index; it will be rebuilt");
        }
        Ok(())
    }

    async fn ensure_allocated(&self, len: u64) -> LogResult<()> {
        let (file, want) = {
            let st = self.state.borrow();
            let a = st.active();
            let cap = align_up(self.config.segment_bytes);
            // Keep room for the zero-fill lead too, so zero_fill_ahead never runs dry.
            let need = (a.size + len + self.config.zero_fill_ahead_bytes).min(cap);
            if a.size + len <= a.allocated && need <= a.allocated {
                return Ok(());
            }
            let want = align_up(need.max(a.allocated + ALLOCATE_STEP_BYTES)).min(cap);
            (a.file.clone(), want.max(align_up(a.size + len)))
        };
        file.allocate(want)
            .await
            .map_err(self.io_err("allocating segment space"))?;
        self.state.borrow_mut().active_mut().allocated = want;
        Ok(())
    }

    fn poison(&self, err: LogError) -> LogError {
        let cause = err.to_string();
        tracing::error!(log = %self.name, %cause, "log poisoned");
        self.state.borrow_mut().poisoned.get_or_insert(cause);
        err
    }

    fn satisfied(&self, offset: u64, level: Durability) -> bool {
        let st = self.state.borrow();
        match level {
            Durability::Written => st.written_offset >= offset,
            Durability::Durable => st.durable_offset >= offset,
        }
    }

    /// Waits until every offset below `offset` is written (or durable), driving the write
    /// or the fdatasync itself when none is in flight. Writes are serialized, and so are
    /// fdatasyncs, but a write may run while an fdatasync is in flight: the next fdatasync
    /// then covers every batch written meanwhile (group commit).
    pub async fn wait_for(&self, offset: u64, level: Durability) -> LogResult<()> {
        assert!(
            offset <= self.state.borrow().next_offset,
            "waiting for an offset not appended"
        );
        loop {
            if self.satisfied(offset, level) {
                return Ok(());
            }
            self.check_poisoned()?;
            let phase = if self.satisfied(offset, Durability::Written) {
                &self.syncing
            } else {
                &self.writing
            };
            if phase.get() {
                let listener = self.flushed.listen();
                if phase.get() {
                    listener.await;
                }
                continue;
            }
            if std::ptr::eq(phase, &self.writing) {
                self.write_once(level).await?;
            } else {
                self.sync_once().await?;
            }
        }
    }

    /// Writes everything appended and, for `Durable`, fdatasyncs it.
    pub async fn flush(&self, level: Durability) -> LogResult<()> {
        let next = self.state.borrow().next_offset;
        self.wait_for(next, level).await
    }

    /// Applies the flush policy to data no durable waiter asked for (acks=1 and acks=0
    /// traffic: the time bound, the bytes bound, or every batch), writes pending data no
    /// writer is on its way to, and zero-fills ahead of the tail. The owner calls it when
    /// [`Self::maintenance_due_in`] or [`Self::zero_fill_due`] says so.
    pub async fn maintain(&self) -> LogResult<()> {
        self.maintain_flush().await?;
        self.zero_fill_ahead().await?;
        Ok(())
    }

    /// `maintain()` without the zero fill.
    async fn maintain_flush(&self) -> LogResult<()> {
        if self.poisoned().is_some() || self.state.borrow().closed {
            return Ok(());
        }
        if self.sync_runnable() {
            self.sync_once().await?;
        }
        if self.write_wanted() {
            self.write_once(Durability::Written).await?;
        }
        Ok(())
    }

    /// When `maintain()` has flush work: `Some(0)` now, `Some(d)` after `d` (the time bound
    /// of the flush policy), `None` until something changes ([`Self::listen`] wakes the
    /// owner). A maintenance task that sleeps on a timer only when a deadline exists keeps
    /// timers off an idle or fsync-per-batch shard: a 5 ms ticker measured +90 us p50 on
    /// every durable write (glommio arms the timer at each sleep).
    pub fn maintenance_due_in(&self) -> Option<std::time::Duration> {
        if self.poisoned().is_some() || self.state.borrow().closed {
            return None;
        }
        if self.sync_runnable() || self.write_wanted() {
            return Some(std::time::Duration::ZERO);
        }
        if self.syncing.get() {
            return None; // its end notifies listeners
        }
        let st = self.state.borrow();
        match (self.config.flush, st.oldest_unsynced_ms) {
            (FlushPolicy::Interval { ms, .. }, Some(t)) => {
                let due = t.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
                let wait_ms = due.saturating_sub(self.clock.now_ms());
                // Already due but not runnable (a write or fdatasync is in flight): its end
                // notifies. Answering zero here would make the caller spin on a
                // `maintain()` that has nothing it may do yet.
                (wait_ms > 0).then(|| std::time::Duration::from_millis(wait_ms as u64))
            }
            _ => None,
        }
    }

    /// The zero-fill lead is short and no zero fill is in flight: `zero_fill_ahead` has work.
    pub fn zero_fill_due(&self) -> bool {
        self.poisoned().is_none()
            && !self.state.borrow().closed
            && !self.zero_filling()
            && self.zero_fill_range().is_some()
    }

    /// Fires after every append, write and fdatasync: what the owner's maintenance task
    /// waits on between calls. Take it before asking `maintenance_due_in`, or a change in
    /// between is missed.
    pub fn listen(&self) -> event_listener::EventListener {
        self.flushed.listen()
    }

    /// The owner's maintenance task for this log, until `stop` fires: runs the flush work
    /// of `maintain()` whenever `maintenance_due_in` says so, sleeping with `sleep` only
    /// while a deadline exists and otherwise waiting for the log to change; beside it, and
    /// not in its way, the zero fill whenever `zero_fill_due`. `sleep` is the executor's
    /// timer (the engine does not pick a runtime).
    pub async fn run_maintenance<F, Fut>(&self, stop: &StopSignal, sleep: F) -> LogResult<()>
    where
        F: Fn(std::time::Duration) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        use futures_lite::FutureExt;
        let flush = async {
            loop {
                let changed = self.listen();
                let stopping = stop.listen();
                if stop.is_stopped() {
                    return Ok(());
                }
                match self.maintenance_due_in() {
                    Some(d) if d.is_zero() => self.maintain_flush().await?,
                    Some(d) => sleep(d).or(changed).or(stopping).await,
                    None => changed.or(stopping).await,
                }
            }
        };
        futures_lite::future::try_zip(flush, self.run_zero_fill(stop)).await?;
        Ok(())
    }

    /// The zero-fill half of `run_maintenance`.
    async fn run_zero_fill(&self, stop: &StopSignal) -> LogResult<()> {
        if self.config.zero_fill_ahead_bytes == 0 {
            return Ok(()); // nothing to do, and no wake-up for every append
        }
        loop {
            let changed = self.listen();
            let stopping = stop.listen();
            if stop.is_stopped() {
                return Ok(());
            }
            if self.zero_fill_due() {
                self.zero_fill_ahead().await?;
            } else {
                futures_lite::FutureExt::or(changed, stopping).await;
            }
        }
    }

    /// The policy wants an fdatasync of data that no durable waiter is driving.
    fn sync_wanted(&self) -> bool {
        let st = self.state.borrow();
        let unsynced = st.durable_offset < st.next_offset;
        match self.config.flush {
            FlushPolicy::EveryBatch => unsynced,
            FlushPolicy::Interval { ms, bytes } => {
                unsynced
                    && (self.age_due(&st, ms)
                        || st.unsynced_bytes + st.pending_bytes as u64 >= bytes)
            }
        }
    }

    /// The policy wants an fdatasync, none is in flight, and there is written data for it
    /// to cover (pending data is written first, by its waiter or by `write_wanted`).
    fn sync_runnable(&self) -> bool {
        let written_unsynced = {
            let st = self.state.borrow();
            st.written_offset > st.durable_offset
        };
        written_unsynced && !self.syncing.get() && self.sync_wanted()
    }

    /// Appended data waits in memory and no write is under way (acks=0 traffic).
    fn write_wanted(&self) -> bool {
        self.state.borrow().pending_bytes > 0 && !self.writing.get()
    }

    fn age_due(&self, st: &State<S::File>, ms: u64) -> bool {
        st.oldest_unsynced_ms.is_some_and(|t| {
            self.clock.now_ms().saturating_sub(t) >= i64::try_from(ms).unwrap_or(i64::MAX)
        })
    }

    /// Whether the flush policy wants an fdatasync now, whatever the waiters asked for.
    fn sync_due(&self, st: &State<S::File>) -> bool {
        if st.durable_offset == st.written_offset {
            return false;
        }
        match self.config.flush {
            FlushPolicy::EveryBatch => true,
            FlushPolicy::Interval { bytes, ms } => {
                st.unsynced_bytes >= bytes || self.age_due(st, ms)
            }
        }
    }

    /// Writes everything pending in one go (several chunks in flight), then, for a caller
    /// that waits for `Durable` and if the policy says so, fdatasyncs. A `Written` caller
    /// (acks=1) returns as soon as its write completes: it must not sit behind an
    /// fdatasync it did not ask for (that idled its producer and cost ~17% of acks=1
    /// throughput); the policy's bounds for such data are applied by `maintain()`.
    async fn write_once(&self, level: Durability) -> LogResult<()> {
        {
            assert!(!self.writing.get(), "one write at a time");
            self.writing.set(true);
            let _guard = PhaseGuard {
                flag: &self.writing,
                event: &self.flushed,
            };
            let plan = self.plan_flush(&mut self.state.borrow_mut());
            if let Some(p) = plan {
                if level == Durability::Durable && self.durable_write_fits(&p) {
                    return self.write_durable(p).await;
                }
                self.write_plan(p).await?;
            }
        }
        let due = level == Durability::Durable && self.sync_due(&self.state.borrow());
        if due && !self.syncing.get() {
            self.sync_once().await?;
        }
        Ok(())
    }

    async fn write_plan(&self, mut p: FlushPlan<S::File>) -> LogResult<()> {
        self.wait_zeros_below(p.end).await;
        let writes = std::mem::take(&mut p.writes);
        let futs = writes
            .into_iter()
            .map(|(buf, pos)| p.file.write_at(buf, pos));
        if let Err(e) = futures_util::future::try_join_all(futs).await {
            return Err(self.poison(LogError::io(&self.name, "writing the active segment", e)));
        }
        self.commit_write(p);
        Ok(())
    }

    /// Whether a durable waiter's write can carry its own fdatasync (one O_DSYNC write, one
    /// round trip instead of two): a single chunk, no fdatasync in flight and nothing
    /// written that still waits for one, so that the write's sync covers exactly the plan.
    fn durable_write_fits(&self, p: &FlushPlan<S::File>) -> bool {
        let st = self.state.borrow();
        p.writes.len() == 1 && !self.syncing.get() && st.durable_offset == st.written_offset
    }

    /// Writes a plan with `write_durable_at` and marks it durable. Holds the sync slot too:
    /// it is an fdatasync as far as the invariants go (one at a time, fails = poison).
    async fn write_durable(&self, mut p: FlushPlan<S::File>) -> LogResult<()> {
        assert!(!self.syncing.get(), "one fdatasync at a time");
        self.syncing.set(true);
        let _guard = PhaseGuard {
            flag: &self.syncing,
            event: &self.flushed,
        };
        self.wait_zeros_below(p.end).await;
        let (buf, pos) = p.writes.pop().expect("one chunk");
        assert!(p.writes.is_empty(), "a durable write is one chunk");
        if let Err(e) = p.file.write_durable_at(buf, pos).await {
            return Err(self.poison(LogError::io(
                &self.name,
                "writing and syncing the active segment",
                e,
            )));
        }
        let bytes = p.bytes as u64;
        self.commit_write(p);
        let mut st = self.state.borrow_mut();
        assert_eq!(
            st.unsynced_bytes, bytes,
            "the write's sync covers all unsynced"
        );
        st.durable_offset = st.written_offset;
        st.unsynced_bytes = 0;
        st.oldest_unsynced_ms = None;
        st.check_invariants();
        Ok(())
    }

    /// One fdatasync of the active segment, covering everything written before it starts.
    async fn sync_once(&self) -> LogResult<()> {
        assert!(!self.syncing.get(), "one fdatasync at a time");
        self.syncing.set(true);
        let _guard = PhaseGuard {
            flag: &self.syncing,
            event: &self.flushed,
        };
        let (file, target, bytes) = {
            let st = self.state.borrow();
            (
                st.active().file.clone(),
                st.written_offset,
                st.unsynced_bytes,
            )
        };
        let started_ms = self.clock.now_ms();
        if let Err(e) = file.fdatasync().await {
            return Err(self.poison(LogError::io(&self.name, "fsyncing the active segment", e)));
        }
        let mut st = self.state.borrow_mut();
        st.durable_offset = st.durable_offset.max(target);
        st.unsynced_bytes -= bytes;
        // What is still unsynced was written after this fdatasync started, so it is at most
        // that old. Keeping the older stamp made the time bound fire after every fdatasync
        // under steady load: back-to-back fdatasyncs, -15% acks=1 throughput.
        st.oldest_unsynced_ms = (st.durable_offset < st.written_offset).then_some(started_ms);
        st.check_invariants();
        Ok(())
    }

    /// Takes the staged write buffers: everything appended since the last write, behind
    /// the partial tail page (rewritten with the same bytes plus what follows, so a torn
    /// write of that page can only mix old and new copies of identical durable bytes).
    /// Called with no write in flight, so everything pending is staged.
    fn plan_flush(&self, st: &mut State<S::File>) -> Option<FlushPlan<S::File>> {
        if st.staged.is_empty() {
            return None;
        }
        assert_eq!(st.staged_offset, st.written_offset, "no write in flight");
        let seg = st.active();
        let new_written_size = seg.written_size + st.pending_bytes as u64;
        assert_eq!(
            st.staged.end_size(),
            new_written_size,
            "all pending is staged"
        );
        let (file, written_size) = (seg.file.clone(), seg.written_size);
        let (zeroed_until, allocated) = (seg.zeroed_until, seg.allocated);
        let staged = st.staged.finish();
        assert_eq!(staged.writes[0].1, align_down(written_size));
        assert!(
            staged.end <= align_up(allocated),
            "writes stay inside the allocation"
        );
        st.staged_offset = st.next_offset;
        Some(FlushPlan {
            file,
            writes: staged.writes,
            end: staged.end,
            bytes: st.pending_bytes,
            charge: st.pending_charge,
            target_offset: st.next_offset,
            new_written_size,
            new_zeroed_until: zeroed_until.max(staged.end),
        })
    }

    /// Writes zeros ahead of the tail, one step at a time, then fdatasyncs, so that later
    /// data lands on written extents: its write is an overwrite (issued inline, not by an
    /// io_uring worker) and its fdatasync only flushes the disk cache, with no extent
    /// conversion to commit (see design.md). Runs beside the data path, not in its way:
    /// the zeros go past the tail in `ZERO_FILL_WRITE_BYTES` writes, one at a time, and
    /// hold no write slot. Holding the slot, with a 4 MiB step in flight at once, put data
    /// writes behind the zeros: acknowledgement p99 grew 1.5 -> 4-5.6 ms (engine bench,
    /// fsync per 64 KiB batch). Returns whether it wrote anything.
    pub async fn zero_fill_ahead(&self) -> LogResult<bool> {
        if !self.zero_fill_due() {
            return Ok(false); // off, poisoned, closed, in flight, or the lead is long enough
        }
        let (file, start, end) = self.zero_fill_range().expect("due");
        {
            let _guard = ZeroGuard::start(&self.zeroing_from, &self.flushed, start);
            let mut pos = start;
            while pos < end {
                let n = ((end - pos) as usize).min(ZERO_FILL_WRITE_BYTES);
                let mut zeros = file.alloc_buf(n);
                zeros.fill(0);
                if let Err(e) = file.write_at(zeros, pos).await {
                    return Err(self.poison(LogError::io(&self.name, "zero-filling ahead", e)));
                }
                pos += n as u64;
                self.zeroing_from.set(pos);
                let mut st = self.state.borrow_mut();
                let seg = st.active_mut();
                if Rc::ptr_eq(&seg.file, &file) {
                    seg.zeroed_until = seg.zeroed_until.max(pos);
                }
                drop(st);
                self.flushed.notify(usize::MAX); // a data write may wait for these zeros
            }
        }
        // Commit the extent conversion now, not in a producer's fdatasync. It is an ordinary
        // group-commit fdatasync: whatever data was written before it becomes durable too.
        if !self.syncing.get() {
            self.sync_once().await?;
        }
        Ok(true)
    }

    /// Waits for the zero fill in flight to end and keeps another from starting while the
    /// guard lives: sealing cuts the file to its data, and zeros landing after the cut
    /// would grow it again. Marked as a zero fill from position 0, which no data write may
    /// pass either (none runs then: sealing follows a full flush, under the append lock).
    async fn hold_zero_fill(&self) -> ZeroGuard<'_> {
        self.wait_zeros_below(NOT_ZEROING).await;
        ZeroGuard::start(&self.zeroing_from, &self.flushed, 0)
    }

    /// A zero-fill write is in flight.
    fn zero_filling(&self) -> bool {
        self.zeroing_from.get() != NOT_ZEROING
    }

    /// Waits until no zero-fill write is in flight at or past `end`, so that data written
    /// up to `end` cannot be overwritten by zeros that land later.
    async fn wait_zeros_below(&self, end: u64) {
        while self.zeroing_from.get() < end {
            let listener = self.flushed.listen();
            if self.zeroing_from.get() < end {
                listener.await;
            }
        }
    }

    /// The next step of zeros to write ahead of the tail, if the lead is short.
    fn zero_fill_range(&self) -> Option<(Rc<S::File>, u64, u64)> {
        let ahead = self.config.zero_fill_ahead_bytes;
        if ahead == 0 {
            return None;
        }
        let st = self.state.borrow();
        let seg = st.active();
        let start = seg.zeroed_until.max(align_up(seg.size));
        let target = (align_up(seg.size) + ahead).min(align_down(seg.allocated));
        let end = target.min(start + ZERO_FILL_STEP_BYTES);
        let short = end > start && end - start >= ZERO_FILL_STEP_BYTES.min(ahead / 4);
        short.then(|| (seg.file.clone(), start, end))
    }

    /// Bytes from the start of the active segment known to be written (data or zeros).
    pub fn zero_filled_until(&self) -> u64 {
        self.state.borrow().active().zeroed_until
    }

    fn commit_write(&self, p: FlushPlan<S::File>) {
        let now = self.clock.now_ms();
        let mut st = self.state.borrow_mut();
        st.pending_bytes -= p.bytes;
        st.pending_charge -= p.charge;
        st.written_offset = p.target_offset;
        st.unsynced_bytes += p.bytes as u64;
        st.oldest_unsynced_ms.get_or_insert(now);
        let seg = st.active_mut();
        seg.written_size = p.new_written_size;
        seg.zeroed_until = seg.zeroed_until.max(p.new_zeroed_until); // zeros may have gone on meanwhile
        st.check_invariants();
    }

    /// Batches holding offsets from `from` on, below `min(written, max_offset)`: at least
    /// one batch when any is visible, then up to `max_bytes`. The tail comes from the cache.
    pub async fn read(
        &self,
        from: u64,
        max_bytes: usize,
        max_offset: u64,
    ) -> LogResult<Vec<Bytes>> {
        self.check_closed()?;
        let (file, pos, readable, end) = {
            let mut st = self.state.borrow_mut(); // a cache read may make a corrected copy
            let start = st.log_start();
            if from < start || from > st.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset: from,
                    start,
                    end: st.next_offset,
                });
            }
            let end = st.written_offset.min(max_offset);
            if from >= end {
                return Ok(Vec::new());
            }
            if st.cache.covers(from) {
                return Ok(st.cache.read(from, end, max_bytes));
            }
            let (_, seg) = st
                .segments
                .range(..=from)
                .next_back()
                .expect("from >= log start");
            let rel = u32::try_from(from - seg.base_offset).expect("segment offsets fit u32");
            (
                seg.file.clone(),
                u64::from(seg.index.position_for(rel)),
                seg.readable_size(),
                end,
            )
        };
        let mut out = Vec::new();
        let mut total = 0usize;
        // Read a little more than asked: a fetch of N bytes usually ends inside a batch, and
        // a chunk of exactly N bytes would not hold a first batch of N + header bytes, so
        // it was read twice (the bench measured 2.0 device bytes per byte returned).
        let want = max_bytes
            .saturating_add(READ_CHUNK_BYTES_MIN)
            .clamp(READ_CHUNK_BYTES_MIN, READ_BYTES_MAX);
        scan_batches(&*file, pos, readable, want, &self.name, |h, bytes| {
            if h.last_offset() < from {
                return Step::Skip;
            }
            if h.base_offset() >= end || (!out.is_empty() && total + h.len() > max_bytes) {
                return Step::Stop;
            }
            if let Some(bytes) = bytes {
                total += bytes.len();
                out.push(bytes);
            }
            Step::Take
        })
        .await?;
        Ok(out)
    }

    /// The base offset of the first visible batch whose max timestamp is >= `ts_ms`, or
    /// `None` when every batch is older (Kafka's ListOffsets by timestamp, at batch grain).
    pub async fn offset_for_timestamp(&self, ts_ms: i64) -> LogResult<Option<u64>> {
        let candidates: Vec<(Rc<S::File>, u64, u64)> = {
            let st = self.state.borrow();
            st.segments
                .values()
                .filter(|s| s.max_timestamp_ms().is_some_and(|m| m >= ts_ms))
                .map(|s| {
                    let rel = s.index.scan_start_for_time(ts_ms);
                    (
                        s.file.clone(),
                        u64::from(s.index.position_for(rel)),
                        s.readable_size(),
                    )
                })
                .collect()
        };
        for (file, pos, readable) in candidates {
            let mut found = None;
            scan_batches(
                &*file,
                pos,
                readable,
                READ_CHUNK_BYTES_MIN,
                &self.name,
                |h, _| {
                    if h.max_timestamp_ms() >= ts_ms {
                        found = Some(h.base_offset());
                        return Step::Stop;
                    }
                    Step::Skip
                },
            )
            .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Deletes whole sealed segments past retention.ms (by their max timestamp) or beyond
    /// retention.bytes, oldest first. The active segment is never deleted. Returns how many
    /// segments went.
    pub async fn enforce_retention(&self) -> LogResult<usize> {
        let victims = self.take_expired_segments().await;
        let deleted = victims.len();
        // Deleted without the append lock: the segments are already out of the log, and an
        // unlink takes long on a disk mounted with `discard` (0.2 s per written GiB), so
        // holding the lock made the partition's appends wait for it too. (The disk's own
        // stall behind the trims is what recycling removes.)
        for (base, file) in victims {
            // Closed before the unlink, so that the unlink (off this thread) is what frees
            // the blocks. A reader still holding the file closes it when it is done; a
            // close error changes nothing for a file about to be deleted. Only a file no
            // reader holds may be recycled: a reader must never see it rewritten.
            let sole = match Rc::try_unwrap(file) {
                Ok(file) => {
                    let _ = file.close().await;
                    true
                }
                Err(_) => false,
            };
            let [log_path, ix_path, tix_path] = segment::paths(&self.dir, base);
            self.remove_segment_file(&ix_path).await?;
            self.remove_segment_file(&tix_path).await?;
            if !(sole && self.recycle(base, &log_path).await) {
                self.remove_segment_file(&log_path).await?;
            }
        }
        if deleted > 0 {
            self.storage
                .sync_dir(&self.dir)
                .await
                .map_err(self.io_err("syncing the log directory"))?;
            tracing::info!(log = %self.name, segments = deleted, log_start = self.offsets().log_start, "retention deleted segments");
        }
        Ok(deleted)
    }

    async fn remove_segment_file(&self, path: &Path) -> LogResult<()> {
        match self.storage.remove_file(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io(&self.name, "deleting a segment", e)),
        }
    }

    /// Moves a deleted segment's file into the pool, if recycling is on and the pool has
    /// room. Its blocks stay allocated: nothing is freed, so nothing is trimmed, and the
    /// next new segment is written into them. Returns whether it did.
    async fn recycle(&self, base: u64, log_path: &Path) -> bool {
        let taken = self.pool.borrow().len() + self.pool_pending.get();
        if !self.config.recycle_segments || taken >= RECYCLE_POOL_FILES_MAX {
            return false;
        }
        self.pool_pending.set(self.pool_pending.get() + 1);
        let _slot = PoolSlot(&self.pool_pending);
        let to = self.dir.join(segment::recycle_name(base));
        match self.storage.rename(log_path, &to).await {
            Ok(()) => {
                self.pool.borrow_mut().push(base);
                true
            }
            Err(e) => {
                tracing::warn!(log = %self.name, error = %e, "could not keep a deleted segment for reuse; deleting it");
                false
            }
        }
    }

    /// Deleted segments kept for reuse (in the pool).
    pub fn recycled_segments(&self) -> usize {
        self.pool.borrow().len()
    }

    /// Takes the sealed segments past the retention limits out of the log (under the append
    /// lock, so that sizes and the log start do not move meanwhile): the files to delete.
    async fn take_expired_segments(&self) -> Vec<(u64, Rc<S::File>)> {
        let _guard = self.append_lock.lock().await;
        let now = self.clock.now_ms();
        let mut victims = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            let mut total: u64 = st.segments.values().map(|s| s.size).sum();
            while st.segments.len() > 1 {
                let first = st.segments.values().next().expect("len > 1");
                let by_time = self.config.retention_ms >= 0
                    && first
                        .max_timestamp_ms()
                        .is_some_and(|t| t < now.saturating_sub(self.config.retention_ms));
                let by_size = self.config.retention_bytes >= 0
                    && total - first.size >= self.config.retention_bytes as u64;
                if !(by_time || by_size) {
                    break;
                }
                let (base, seg) = st.segments.pop_first().expect("len > 1");
                assert!(seg.sealed, "only sealed segments are deleted");
                total -= seg.size;
                victims.push((base, seg.file));
            }
            let start = st.log_start();
            st.cache.evict_below(start);
        }
        victims
    }

    /// Makes everything durable and closes the files. The next open finds no torn tail.
    /// Flushes, fsyncs and closes. A clean close also cuts the active segment to its data
    /// and writes its index files (as a roll does), so the next open reads the index
    /// instead of scanning the whole active segment (seconds for 1 GiB).
    pub async fn close(&self) -> LogResult<()> {
        if self.state.borrow().closed {
            return Ok(());
        }
        if self.poisoned().is_none() {
            let _guard = self.append_lock.lock().await;
            self.flush(Durability::Durable).await?;
            let (file, size, base, offsets, times) = {
                let st = self.state.borrow();
                let a = st.active();
                (
                    a.file.clone(),
                    a.size,
                    a.base_offset,
                    a.index.encode_offsets(a.size),
                    a.index.encode_times(a.size),
                )
            };
            let _no_zeros = self.hold_zero_fill().await;
            self.seal_files(&file, size, base, &offsets, &times).await?;
        }
        let segments = {
            let mut st = self.state.borrow_mut();
            st.closed = true; // from now on every operation answers LogError::Closed
            std::mem::take(&mut st.segments)
        };
        self.flushed.notify(usize::MAX); // waiters and maintenance see it at once
        for (_, seg) in segments {
            if let Ok(f) = Rc::try_unwrap(seg.file) {
                f.close().await.map_err(self.io_err("closing a segment"))?;
            }
        }
        Ok(())
    }
}

/// What a [`scan_batches`] callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Go on to the next batch without reading this one's bytes.
    Skip,
    /// Read this batch and call again with its bytes.
    Take,
    /// End the scan.
    Stop,
}

/// Walks the batches in `[pos, readable)`, reading `chunk_bytes` at a time. For each batch
/// it calls `f(header, None)` first; only on [`Step::Take`] does it get the bytes (a
/// zero-copy slice of the chunk, or a read of just that batch) and call `f(header,
/// Some(bytes))`, whose `Stop` ends the scan. Deciding on the header first means a batch
/// the caller refuses (past a fetch's byte budget, before the wanted offset, or a
/// header-only walk) is never read: 1 MiB-batch fetches used to read 2.13 device bytes
/// per byte returned.
async fn scan_batches<F: StorageFile>(
    file: &F,
    mut pos: u64,
    readable: u64,
    chunk_bytes: usize,
    name: &str,
    mut f: impl FnMut(&BatchHeader, Option<Bytes>) -> Step,
) -> LogResult<()> {
    let read = |pos: u64, len: usize| async move {
        file.read_at(pos, len)
            .await
            .map_err(|e| LogError::io(name, "reading a segment", e))
    };
    while pos + BATCH_HEADER_BYTES as u64 <= readable {
        let mut chunk = read(pos, chunk_bytes.min((readable - pos) as usize)).await?;
        let mut at = 0usize;
        while at + BATCH_HEADER_BYTES <= chunk.len() {
            let h = *BatchHeader::parse(&chunk[at..]).expect("length checked");
            let len = h.len();
            if len < BATCH_HEADER_BYTES || pos + (at + len) as u64 > readable {
                return Err(LogError::Corrupt {
                    what: "segment",
                    path: name.to_owned(),
                    detail: format!("batch length {len} at byte {}", pos + at as u64),
                });
            }
            match f(&h, None) {
                Step::Stop => return Ok(()),
                Step::Skip => {
                    at += len; // may land past the chunk: the next read starts there
                    continue;
                }
                Step::Take => {}
            }
            if at + len > chunk.len() {
                if at > 0 {
                    break; // re-read from this batch
                }
                chunk = read(pos, len).await?;
                if chunk.len() < len {
                    break;
                }
            }
            if f(&h, Some(chunk.slice(at..at + len))) == Step::Stop {
                return Ok(());
            }
            at += len;
        }
        if at == 0 {
            break;
        }
        pos += at as u64;
    }
    Ok(())
}

async fn read_tail_page<F: StorageFile>(seg: &Segment<F>) -> std::io::Result<Vec<u8>> {
    let start = align_down(seg.written_size);
    let len = (seg.written_size - start) as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let bytes = seg.file.read_at(start, len).await?;
    assert_eq!(bytes.len(), len, "tail page is inside the file");
    Ok(bytes.to_vec())
}

/// The pool found in `dir` at open (files named by `segment::recycle_name`): kept up to
/// `RECYCLE_POOL_FILES_MAX` when recycling is on, the others deleted.
async fn open_pool<S: Storage>(
    storage: &S,
    dir: &Path,
    names: &[String],
    config: &LogConfig,
) -> Vec<u64> {
    let mut pool = Vec::new();
    for base in names.iter().filter_map(|n| segment::parse_recycle_name(n)) {
        if config.recycle_segments && pool.len() < RECYCLE_POOL_FILES_MAX {
            pool.push(base);
        } else if let Err(e) = storage
            .remove_file(&dir.join(segment::recycle_name(base)))
            .await
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delete a recycled segment file");
        }
    }
    pool
}

/// Creates the segment at `base`, over the pool file of `recycled` when given (falling
/// back to a new file if that fails).
async fn create_segment<S: Storage>(
    storage: &S,
    dir: &Path,
    base: u64,
    config: &LogConfig,
    recycled: Option<u64>,
) -> LogResult<Segment<S::File>> {
    if let Some(old) = recycled {
        match reuse_segment(storage, dir, base, old, config).await {
            Ok(seg) => return Ok(seg),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not reuse a deleted segment; creating a new one");
            }
        }
    }
    let name = dir.display().to_string();
    let [log_path, _, _] = segment::paths(dir, base);
    let file = storage
        .open(&log_path, true)
        .await
        .map_err(io_at(&name, "creating a segment"))?;
    // A leftover file of that name (from before a truncation) must not leak old bytes.
    file.truncate(0)
        .await
        .map_err(io_at(&name, "creating a segment"))?;
    let want = align_up(
        ALLOCATE_STEP_BYTES
            .max(config.zero_fill_ahead_bytes)
            .min(config.segment_bytes),
    );
    file.allocate(want)
        .await
        .map_err(io_at(&name, "allocating a new segment"))?;
    storage
        .sync_dir(dir)
        .await
        .map_err(io_at(&name, "syncing the log directory"))?;
    let mut seg = Segment::new(base, file, log_path);
    seg.allocated = want;
    Ok(seg)
}

/// The segment at `base`, written over the pool file of segment `old`, whose bytes are
/// first made to read as zeros while its blocks stay allocated: nothing is freed, so on a
/// disk mounted with `discard` nothing is trimmed, and the host keeps the blocks.
async fn reuse_segment<S: Storage>(
    storage: &S,
    dir: &Path,
    base: u64,
    old: u64,
    config: &LogConfig,
) -> std::io::Result<Segment<S::File>> {
    let [log_path, _, _] = segment::paths(dir, base);
    storage
        .rename(&dir.join(segment::recycle_name(old)), &log_path)
        .await?;
    let file = storage.open(&log_path, false).await?;
    let written = file.size().await?;
    // The old batches must read as zeros: Kafka's batch CRC does not cover the base offset,
    // so a torn write that landed only the first bytes of a new header over an old batch
    // would make that batch pass as the next one (the torn-write test over a recycled
    // segment found it). Zeroing marks the extents unwritten and keeps the blocks.
    file.zero_range(written).await?;
    let want = align_up(ALLOCATE_STEP_BYTES.min(config.segment_bytes));
    if written < want {
        file.allocate(want).await?;
    }
    file.fdatasync().await?;
    storage.sync_dir(dir).await?;
    let mut seg = Segment::new(base, file, log_path);
    seg.allocated = written.max(want);
    // `zeroed_until` stays 0: zeroing made the extents unwritten again, as a new file's.
    Ok(seg)
}

/// Opens a segment file that must exist, with its size in bytes.
async fn open_existing<S: Storage>(
    storage: &S,
    path: &Path,
    name: &str,
) -> LogResult<(S::File, u64)> {
    let file = storage
        .open(path, false)
        .await
        .map_err(io_at(name, "opening a segment"))?;
    let size = file.size().await.map_err(io_at(name, "sizing a segment"))?;
    Ok((file, size))
}

/// Opens a segment through its index files when they match the file's length exactly
/// (written at a roll or a clean close, after the data was cut to length and fsynced).
/// `None` when they are missing or stale: the caller scans instead.
async fn open_indexed<S: Storage>(
    storage: &S,
    dir: &Path,
    base: u64,
) -> LogResult<Option<Segment<S::File>>> {
    let name = dir.display().to_string();
    let [log_path, ix_path, tix_path] = segment::paths(dir, base);
    let (file, size) = open_existing(storage, &log_path, &name).await?;
    let ix = storage
        .read_small_file(&ix_path)
        .await
        .map_err(io_at(&name, "reading an index"))?;
    let tix = storage
        .read_small_file(&tix_path)
        .await
        .map_err(io_at(&name, "reading a time index"))?;
    let Some(mut index) = ix
        .zip(tix)
        .and_then(|(ix, tix)| SegmentIndex::decode(&ix, &tix, size))
    else {
        return Ok(None);
    };
    // The index files hold no max timestamp and no end offset: read them from the
    // batches after the last entry (at most one index interval), headers only.
    let (mut max_ts, mut next, mut first_ts) = (index.last_max_timestamp_before(), base, None);
    scan_batches(
        &file,
        u64::from(index.last_position()),
        size,
        READ_CHUNK_BYTES_MIN,
        &name,
        |h, _| {
            max_ts = max_ts.max(h.max_timestamp_ms());
            next = h.last_offset() + 1;
            Step::Skip
        },
    )
    .await?;
    if size > 0 {
        let head = file
            .read_at(0, BATCH_HEADER_BYTES)
            .await
            .map_err(io_at(&name, "reading a segment"))?;
        first_ts = BatchHeader::parse(&head)
            .ok()
            .map(|h| h.first_timestamp_ms.get());
    }
    index.set_max_timestamp_ms(max_ts);
    let mut seg = Segment::recovered(base, file, log_path, index, size, next);
    seg.first_append_ms = first_ts;
    Ok(Some(seg))
}

async fn open_sealed<S: Storage>(
    storage: &S,
    dir: &Path,
    base: u64,
    config: &LogConfig,
) -> LogResult<Segment<S::File>> {
    if let Some(mut seg) = open_indexed(storage, dir, base).await? {
        seg.sealed = true;
        return Ok(seg);
    }
    let name = dir.display().to_string();
    let [log_path, ix_path, tix_path] = segment::paths(dir, base);
    let (file, size) = open_existing(storage, &log_path, &name).await?;
    let scan = segment::scan(&file, base, size, config.index_interval_bytes)
        .await
        .map_err(io_at(&name, "scanning a segment"))?;
    if scan.valid_bytes != size {
        return Err(LogError::Corrupt {
            what: "sealed segment",
            path: log_path.display().to_string(),
            detail: scan.stopped.unwrap_or_else(|| "trailing bytes".into()),
        });
    }
    tracing::info!(segment = %log_path.display(), "rebuilt a missing or stale index");
    let offsets = scan.index.encode_offsets(size);
    let times = scan.index.encode_times(size);
    storage
        .write_small_file(&ix_path, &offsets)
        .await
        .map_err(io_at(&name, "writing an index"))?;
    storage
        .write_small_file(&tix_path, &times)
        .await
        .map_err(io_at(&name, "writing a time index"))?;
    let mut seg = Segment::recovered(base, file, log_path, scan.index, size, scan.next_offset);
    seg.sealed = true;
    Ok(seg)
}

async fn open_active<S: Storage>(
    storage: &S,
    dir: &Path,
    base: u64,
    config: &LogConfig,
) -> LogResult<Segment<S::File>> {
    let name = dir.display().to_string();
    let [log_path, _, _] = segment::paths(dir, base);
    let (file, file_bytes) = open_existing(storage, &log_path, &name).await?;
    let scan = segment::scan(&file, base, file_bytes, config.index_interval_bytes)
        .await
        .map_err(io_at(&name, "scanning the active segment"))?;
    if let Some(why) = &scan.stopped {
        tracing::warn!(segment = %log_path.display(), %why, valid_bytes = scan.valid_bytes, "truncating a torn or corrupt tail");
    }
    if file_bytes > scan.valid_bytes {
        // Cut the tail (torn bytes and preallocation alike): whatever follows the last
        // valid batch must read as zeros, or stale batches could reappear after new ones.
        file.truncate(scan.valid_bytes)
            .await
            .map_err(io_at(&name, "truncating a torn tail"))?;
        file.fdatasync()
            .await
            .map_err(io_at(&name, "truncating a torn tail"))?;
    }
    let mut seg = Segment::recovered(
        base,
        file,
        log_path,
        scan.index,
        scan.valid_bytes,
        scan.next_offset,
    );
    seg.first_append_ms = scan.first_timestamp_ms;
    Ok(seg)
}

/// Maps an I/O error to a `LogError` naming the log directory and what was being done.
fn io_at<'a>(dir: &'a str, context: &'static str) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |e| LogError::io(dir, context, e)
}

fn check_contiguous<F: StorageFile>(
    segments: &BTreeMap<u64, Segment<F>>,
    name: &str,
) -> LogResult<()> {
    let mut prev: Option<&Segment<F>> = None;
    for seg in segments.values() {
        if let Some(p) = prev {
            if p.next_offset != seg.base_offset {
                return Err(LogError::Corrupt {
                    what: "segment set",
                    path: name.to_owned(),
                    detail: format!(
                        "segment {} ends at offset {} but the next starts at {}",
                        p.base_offset, p.next_offset, seg.base_offset
                    ),
                });
            }
        }
        prev = Some(seg);
    }
    Ok(())
}
