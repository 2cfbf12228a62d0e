//! A partition's idempotent-producer table across restarts.
//!
//! A clean close writes `producers.snapshot` (format in docs/format.md) for the log end
//! offset it closed at. On open the snapshot is used only when it covers exactly the log
//! end offset found by recovery; otherwise (a crash, a torn tail cut off, a damaged file)
//! the table is rebuilt from the batch headers at the end of the log, read through the
//! engine's public read API. Either way the snapshot is removed once read, so a later
//! crash can never pair it with a log that changed after it.

use std::path::{Path, PathBuf};

use cfa_engine::storage::Storage;
use cfa_engine::{BatchHeader, LogError, PartitionLog};

use crate::constants::{
    PRODUCER_SNAPSHOT_FILE, PRODUCER_STATE_REBUILD_BYTES, PRODUCER_STATE_REBUILD_READ_BYTES,
};
use crate::server::idempotence::ProducerTable;

/// Where a partition keeps its snapshot.
pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(PRODUCER_SNAPSHOT_FILE)
}

/// How the table of a partition was obtained at open (logged, and asserted by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a snapshot that covered the log end offset.
    Snapshot,
    /// Rebuilt from the log, starting at this offset.
    Rebuilt { from: u64 },
}

/// The producer table of a freshly opened log.
pub async fn load<S: Storage>(
    storage: &S,
    log: &PartitionLog<S>,
) -> Result<(ProducerTable, Origin), LogError> {
    let path = snapshot_path(log.dir());
    let name = path.display().to_string();
    let bytes = storage
        .read_small_file(&path)
        .await
        .map_err(|e| LogError::io(&name, "reading the producer snapshot", e))?;
    let end = log.offsets().next;
    let from_snapshot = bytes.and_then(|b| match ProducerTable::decode_snapshot(&b) {
        Ok((covered, table)) if covered == end => Some(table),
        Ok((covered, _)) => {
            tracing::info!(snapshot = %name, covered, log_end = end, "producer snapshot is stale; rebuilding from the log");
            None
        }
        Err(e) => {
            tracing::warn!(snapshot = %name, error = %e, "producer snapshot refused; rebuilding from the log");
            None
        }
    });
    let loaded = match from_snapshot {
        Some(table) => (table, Origin::Snapshot),
        None => {
            let from = rebuild_start(log);
            (rebuild(log, from).await?, Origin::Rebuilt { from })
        }
    };
    // Used once: the log moves on from here, and only the next clean close may vouch for
    // a table again. Not synced: a snapshot that reappears after a power cut still names
    // the offset it covers, and the log is then past it or exactly at it.
    match storage.remove_file(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LogError::io(&name, "removing the producer snapshot", e)),
    }
    Ok(loaded)
}

/// Writes a snapshot (from [`ProducerTable::encode_snapshot`], taken with the log end
/// offset before the log closed) atomically: temp file, fsync, rename, directory fsync.
pub async fn store<S: Storage>(storage: &S, dir: &Path, snapshot: &[u8]) -> Result<(), LogError> {
    let path = snapshot_path(dir);
    storage
        .write_small_file(&path, snapshot)
        .await
        .map_err(|e| {
            LogError::io(
                &path.display().to_string(),
                "writing the producer snapshot",
                e,
            )
        })
}

/// The offset a rebuild starts at: the base of the segment that holds the point
/// `PRODUCER_STATE_REBUILD_BYTES` before the end of the log. The engine exposes segment
/// bases and the total size, not per-segment sizes, so that point is placed by the log's
/// average bytes per offset (exact for uniform batches; a segment of larger or smaller
/// batches than the average moves it by at most that segment).
pub fn rebuild_start<S: Storage>(log: &PartitionLog<S>) -> u64 {
    start_for_window(log, PRODUCER_STATE_REBUILD_BYTES)
}

fn start_for_window<S: Storage>(log: &PartitionLog<S>, window_bytes: u64) -> u64 {
    let o = log.offsets();
    let span = o.next - o.log_start;
    let size = log.size_bytes();
    if span == 0 || size <= window_bytes {
        return o.log_start;
    }
    // Offsets in the window = span * window / size, in u128 (no overflow); below span
    // because window < size.
    let window = u128::from(span) * u128::from(window_bytes) / u128::from(size);
    let point = o.next - u64::try_from(window).expect("below span");
    let base = log
        .segment_bases()
        .into_iter()
        .rev()
        .find(|&b| b <= point)
        .unwrap_or(o.log_start);
    assert!(o.log_start <= base && base <= o.next);
    base
}

/// Replays the batch headers from `from` to the end of the log into a new table: every
/// batch with a producer id is recorded, in log order, exactly as when it was appended.
pub async fn rebuild<S: Storage>(
    log: &PartitionLog<S>,
    from: u64,
) -> Result<ProducerTable, LogError> {
    let mut table = ProducerTable::new();
    let mut next = from;
    loop {
        let batches = log
            .read(next, PRODUCER_STATE_REBUILD_READ_BYTES, u64::MAX)
            .await?;
        let before = next;
        for bytes in &batches {
            // The engine validated these batches when it recovered or appended them.
            let h = BatchHeader::parse(bytes)?;
            if h.last_offset() < next {
                continue;
            }
            let (pid, seq) = (h.producer_id.get(), h.base_sequence.get());
            // A batch without a sequence was never accepted from an idempotent producer.
            if pid >= 0 && seq >= 0 {
                table.record(
                    pid,
                    h.producer_epoch.get(),
                    seq,
                    h.record_count().max(1),
                    h.base_offset(),
                );
            }
            next = h.last_offset() + 1;
        }
        // An empty read is the end of the log; a read that did not advance would loop.
        if next == before {
            return Ok(table);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use cfa_engine::storage::mem::MemStorage;
    use cfa_engine::{BatchBuilder, ClockRef, Durability, LogConfig, ManualClock, ProducerStamp};
    use futures_lite::future::block_on;

    use super::*;
    use crate::server::idempotence::Verdict;

    const DIR: &str = "/data/idem-0";

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 << 10,
            max_message_bytes: 16 << 10,
            ..LogConfig::default()
        }
    }

    async fn open(s: &MemStorage) -> PartitionLog<MemStorage> {
        let clock: ClockRef = Rc::new(ManualClock::new(1_700_000_000_000));
        PartitionLog::open(s.clone(), Path::new(DIR), config(), clock)
            .await
            .expect("log opens")
    }

    fn batch(stamp: ProducerStamp, records: u32) -> bytes::BytesMut {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        for _ in 0..records {
            b.push(1_700_000_000_000, None, Some(&[b'v'; 200]), &[]);
        }
        b.finish(stamp)
    }

    /// Appends a mix of idempotent batches (three producers, an epoch bump) and plain
    /// ones, recording them as the broker does; returns the live table.
    async fn fill(log: &PartitionLog<MemStorage>, rounds: u32) -> ProducerTable {
        let mut live = ProducerTable::new();
        let mut seqs = [0i32; 3];
        for round in 0..rounds {
            for (i, seq) in seqs.iter_mut().enumerate() {
                let epoch = if i == 2 && round >= rounds / 2 { 1 } else { 0 };
                if i == 2 && round == rounds / 2 {
                    *seq = 0; // the epoch bump starts over
                }
                let stamp = ProducerStamp {
                    producer_id: 10 + i as i64,
                    producer_epoch: epoch,
                    base_sequence: *seq,
                };
                let count = 1 + (round % 3);
                assert_eq!(
                    live.check(stamp.producer_id, epoch, *seq, count),
                    Verdict::Append
                );
                let info = log.append(batch(stamp, count)).await.expect("append");
                live.record(stamp.producer_id, epoch, *seq, count, info.base_offset);
                *seq += count as i32;
            }
            log.append(batch(ProducerStamp::NONE, 2))
                .await
                .expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        live
    }

    #[test]
    fn a_rebuild_from_the_log_start_equals_the_live_table() {
        block_on(async {
            let s = MemStorage::new();
            let log = open(&s).await;
            let live = fill(&log, 150).await;
            assert!(log.segment_count() > 3, "several segments");
            let end = log.offsets().next;
            let rebuilt = rebuild(&log, 0).await.expect("rebuild");
            assert_eq!(rebuilt.encode_snapshot(end), live.encode_snapshot(end));
            // Starting later forgets the producers' older batches only.
            let later = rebuild(&log, log.segment_bases()[2])
                .await
                .expect("rebuild");
            assert_eq!(later.len(), 3);
        });
    }

    #[test]
    fn load_takes_an_exact_snapshot_and_rebuilds_otherwise() {
        block_on(async {
            let s = MemStorage::new();
            let log = open(&s).await;
            let live = fill(&log, 10).await;
            let end = log.offsets().next;
            // A snapshot whose content differs from the log: taken only if it covers
            // the log end, which shows which path ran.
            let mut odd = ProducerTable::new();
            odd.record(99, 0, 0, 1, 0);
            store(&s, Path::new(DIR), &odd.encode_snapshot(end))
                .await
                .expect("store");
            let (t, origin) = load(&s, &log).await.expect("load");
            assert_eq!((origin, t.len()), (Origin::Snapshot, 1));
            assert!(
                s.file_bytes(&snapshot_path(Path::new(DIR))).is_none(),
                "used once"
            );
            // Stale (another end offset), damaged, or absent: rebuilt from the log.
            for bytes in [odd.encode_snapshot(end - 1), b"garbage".to_vec()] {
                store(&s, Path::new(DIR), &bytes).await.expect("store");
                let (t, origin) = load(&s, &log).await.expect("load");
                assert_eq!(origin, Origin::Rebuilt { from: 0 });
                assert_eq!(t.encode_snapshot(end), live.encode_snapshot(end));
            }
            let (_, origin) = load(&s, &log).await.expect("load");
            assert_eq!(origin, Origin::Rebuilt { from: 0 });
        });
    }

    #[test]
    fn the_rebuild_window_starts_at_a_segment_base_holding_the_window() {
        block_on(async {
            let s = MemStorage::new();
            let log = open(&s).await;
            fill(&log, 400).await;
            let bases = log.segment_bases();
            let size = log.size_bytes();
            assert!(bases.len() > 6, "{bases:?}");
            assert_eq!(start_for_window(&log, size), 0, "the whole log");
            let window = size / 4;
            let start = start_for_window(&log, window);
            let i = bases
                .iter()
                .position(|&b| b == start)
                .expect("a segment base");
            // Uniform batches: what is read from there covers the window, and starting
            // one segment later would not.
            let log = &log;
            let bytes_from = |from: u64| async move {
                let mut total = 0u64;
                let mut next = from;
                loop {
                    let got = log.read(next, 1 << 20, u64::MAX).await.expect("read");
                    let Some(last) = got.last() else { return total };
                    total += got.iter().map(|b| b.len() as u64).sum::<u64>();
                    next = BatchHeader::parse(last).expect("header").last_offset() + 1;
                }
            };
            assert!(bytes_from(start).await >= window * 9 / 10);
            if let Some(&after) = bases.get(i + 1) {
                assert!(bytes_from(after).await < window);
            }
        });
    }
}
