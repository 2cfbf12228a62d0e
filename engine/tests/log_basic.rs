//! Appends, reads, rolls, indexes, retention and failures on the in-memory storage.

mod common;

use cfa_engine::segment::{log_name, recycle_name};
use cfa_engine::storage::mem::{Faults, MemStorage};
use cfa_engine::storage::Storage;
use cfa_engine::{Durability, FlushPolicy, LogConfig, LogError, PartitionLog};
use common::*;

#[test]
fn append_assigns_offsets_and_reads_back() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        let a = log.append(batch(1, 3, 10)).await.expect("append");
        let b = log.append(batch(2, 2, 20)).await.expect("append");
        assert_eq!((a.base_offset, a.last_offset), (0, 2));
        assert_eq!((b.base_offset, b.last_offset), (3, 4));
        // Nothing is visible until written.
        assert!(log
            .read(0, 1 << 20, u64::MAX)
            .await
            .expect("read")
            .is_empty());
        log.wait_for(b.next_offset, Durability::Written)
            .await
            .expect("written");
        let all = read_all(&log, 0).await;
        let values: Vec<_> = all.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["1:0", "1:1", "1:2", "2:0", "2:1"]);
        // Reads honour an upper bound (the future high watermark).
        let capped = log.read(0, 1 << 20, 3).await.expect("read");
        assert_eq!(capped.len(), 1);
    });
}

#[test]
fn reads_from_disk_after_reopen_match_cache() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        for i in 0..200 {
            log.append(batch(i, 40, 1000 + i as i64))
                .await
                .expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        assert!(
            log.segment_count() >= 2,
            "small segments rolled: {}",
            log.segment_count()
        );
        let before = read_all(&log, 0).await;
        assert_eq!(before.len(), 8000);
        log.close().await.expect("close");
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(log.offsets().next, 8000);
        assert_eq!(read_all(&log, 0).await, before);
        // Mid-batch and mid-segment starting points.
        for from in [401, 4001, 7999] {
            assert_eq!(read_all(&log, from).await, before[from as usize..].to_vec());
        }
        assert_eq!(log.cached_bytes(), 0, "reopened log serves from disk");
    });
}

#[test]
fn disk_fetches_never_read_a_batch_they_refuse() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = large_batch_config();
        let log = open(&s, config.clone(), &clock).await;
        for i in 0..12 {
            log.append(sized_batch(i, 100_000, 0))
                .await
                .expect("append");
        }
        log.close().await.expect("close");
        let log = open(&s, config, &clock).await;
        let mut from = 0;
        while from < 12 {
            let before = s.read_bytes();
            let got = log.read(from, 120_000, u64::MAX).await.expect("read");
            let read = s.read_bytes() - before;
            assert_eq!(got.len(), 1, "one 100 kB batch fits 120 kB, two do not");
            let returned = got[0].len() as u64;
            // One chunk of max_bytes + 64 KiB and no second read of the refused batch.
            assert!(
                read <= 120_000 + (64 << 10),
                "fetch at {from} read {read} bytes to return {returned}"
            );
            from += 1;
        }
    });
}

#[test]
fn a_clean_close_spares_the_next_open_a_scan() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = LogConfig {
            segment_bytes: 4 << 20,
            ..small_config()
        };
        let log = open(&s, config.clone(), &clock).await;
        for i in 0..100 {
            log.append(sized_batch(i, 4000, 1000 + i as i64))
                .await
                .expect("append");
        }
        log.flush(Durability::Written).await.expect("written");
        let before = read_all(&log, 0).await;
        assert_eq!(before.len(), 100);
        log.close().await.expect("close");
        let reads = s.read_bytes();
        let log = open(&s, config.clone(), &clock).await;
        let scanned = s.read_bytes() - reads;
        assert!(
            scanned < 16 << 10,
            "a clean close left an index: open read {scanned} bytes of ~400 kB"
        );
        assert_eq!(log.offsets().next, 100);
        assert!(
            read_all(&log, 0).await == before,
            "same records after reopen"
        );
        assert_eq!(
            log.offset_for_timestamp(1050).await.expect("time lookup"),
            Some(50)
        );
        // Append after the clean reopen, then lose power: the index files now describe a
        // shorter file, so the next open must scan, and keep every durable batch.
        log.append(sized_batch(100, 4000, 2000))
            .await
            .expect("append");
        log.flush(Durability::Durable).await.expect("flush");
        log.append(sized_batch(101, 4000, 2001))
            .await
            .expect("append");
        log.flush(Durability::Written).await.expect("written");
        drop(log);
        s.crash(None);
        let reads = s.read_bytes();
        let log = open(&s, config, &clock).await;
        assert!(s.read_bytes() - reads > 400_000, "stale index: full scan");
        assert_eq!(log.offsets().next, 101, "durable kept, unsynced dropped");
        assert!(
            read_all(&log, 0).await[..100] == before[..],
            "durable records kept"
        );
    });
}

#[test]
fn a_closed_log_answers_closed_and_never_panics() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        let n = log
            .append(batch(1, 2, 0))
            .await
            .expect("append")
            .next_offset;
        log.close().await.expect("close");
        log.close().await.expect("a second close is a no-op");
        let o = log.offsets();
        assert_eq!((o.log_start, o.next), (n, n), "offsets stay readable");
        assert!(matches!(
            log.append(batch(2, 1, 0)).await,
            Err(LogError::Closed { .. })
        ));
        assert!(matches!(
            log.read(0, 1024, u64::MAX).await,
            Err(LogError::Closed { .. })
        ));
        assert!(
            log.wait_for(n, Durability::Durable).await.is_ok(),
            "already durable"
        );
        assert_eq!(log.maintenance_due_in(), None);
        log.maintain().await.expect("nothing to do");
        assert_eq!(log.offset_for_timestamp(0).await.expect("lookup"), None);
    });
}

#[test]
fn offset_out_of_range_and_bounds() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        log.append(batch(1, 2, 10)).await.expect("append");
        log.flush(Durability::Durable).await.expect("flush");
        assert!(log.read(2, 100, u64::MAX).await.expect("at end").is_empty());
        match log.read(3, 100, u64::MAX).await {
            Err(LogError::OffsetOutOfRange {
                offset: 3,
                start: 0,
                end: 2,
            }) => {}
            other => panic!("expected out of range, got {other:?}"),
        }
    });
}

#[test]
fn oversized_and_corrupt_batches_are_rejected_whole() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        let err = log
            .append(sized_batch(1, 20 * 1024, 0))
            .await
            .expect_err("too large");
        assert!(
            err.to_string().contains("exceeds max.message.bytes 16384"),
            "{err}"
        );
        let mut bad = batch(2, 2, 0);
        let n = bad.len();
        bad[n - 1] ^= 0x40;
        let err = log.append(bad).await.expect_err("bad crc");
        assert!(err.to_string().contains("CRC mismatch"), "{err}");
        assert_eq!(log.offsets().next, 0, "nothing appended");
        log.append(batch(3, 1, 0)).await.expect("log still works");
        assert_eq!(log.offsets().next, 1);
    });
}

/// A batch refused for its CRC has already been copied into the write buffers (the copy
/// computes the CRC), here past the first buffer into a second: none of its bytes may
/// reach the disk, and the next batch takes its place.
#[test]
fn a_batch_refused_for_its_crc_leaves_no_bytes_behind() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = large_batch_config();
        let log = open(&s, config.clone(), &clock).await;
        let first = batch(1, 3, 0);
        let last = batch(3, 2, 0);
        let bytes = (first.len() + last.len()) as u64;
        log.append(first).await.expect("append");
        let mut bad = sized_batch(2, 200 << 10, 0);
        let n = bad.len();
        bad[n - 1] ^= 0x40;
        let err = log.append(bad).await.expect_err("bad crc");
        assert!(err.to_string().contains("CRC mismatch"), "{err}");
        log.append(last).await.expect("append");
        log.flush(Durability::Durable).await.expect("flush");
        let want = ["1:0", "1:1", "1:2", "3:0", "3:1"];
        let values = |all: Vec<(u64, String)>| all.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
        assert_eq!(values(read_all(&log, 0).await), want);
        assert_eq!(
            log.size_bytes(),
            bytes,
            "only the two good batches are in the log"
        );
        log.close().await.expect("close");
        let log = open(&s, config, &clock).await;
        assert_eq!(log.offsets().next, 5);
        assert_eq!(values(read_all(&log, 0).await), want, "the same from disk");
        assert_eq!(log.size_bytes(), bytes);
    });
}

#[test]
fn group_commit_one_fsync_for_concurrent_waiters() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        let mut nexts = Vec::new();
        for i in 0..5 {
            nexts.push(
                log.append(batch(i, 1, 0))
                    .await
                    .expect("append")
                    .next_offset,
            );
        }
        let before = s.fsync_count();
        let waits = nexts.iter().map(|n| log.wait_for(*n, Durability::Durable));
        futures_util::future::try_join_all(waits)
            .await
            .expect("durable");
        assert_eq!(
            s.fsync_count() - before,
            1,
            "one fdatasync covered five batches"
        );
        assert_eq!(log.offsets().durable, 5);
    });
}

#[test]
fn interval_policy_defers_fsync_until_bytes_or_time() {
    block_on(async {
        let (c, clock) = clock();
        let s = MemStorage::new();
        let config = LogConfig {
            flush: FlushPolicy::Interval {
                bytes: 4096,
                ms: 1000,
            },
            // Zero-fill's own fdatasync would make the data durable early.
            zero_fill_ahead_bytes: 0,
            ..small_config()
        };
        let log = open(&s, config, &clock).await;
        let n = log
            .append(batch(1, 1, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n, Durability::Written).await.expect("written");
        let o = log.offsets();
        assert_eq!((o.written, o.durable), (1, 0), "written, not yet synced");
        log.maintain().await.expect("maintain");
        assert_eq!(log.offsets().durable, 0, "interval not reached");
        c.advance(1000);
        log.maintain().await.expect("maintain");
        assert_eq!(log.offsets().durable, 1, "time interval synced it");
        // Bytes interval: an acks=1 write that crosses 4096 unsynced bytes returns without
        // waiting for an fdatasync; the next maintenance tick syncs it, before any time
        // bound is due.
        let n = log
            .append(sized_batch(2, 5000, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n, Durability::Written).await.expect("written");
        assert!(log.offsets().durable < n, "a Written waiter does not fsync");
        log.maintain().await.expect("maintain");
        assert_eq!(log.offsets().durable, n, "bytes interval synced it");
        // A durable waiter under the interval policy syncs at once.
        let n = log
            .append(batch(3, 1, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n, Durability::Durable).await.expect("durable");
        assert_eq!(log.offsets().durable, n);
    });
}

#[test]
fn maintenance_task_writes_and_syncs_what_nobody_waits_for() {
    block_on(async {
        let (c, clock) = clock();
        let s = MemStorage::new();
        let config = LogConfig {
            flush: FlushPolicy::Interval {
                bytes: 1 << 20,
                ms: 100,
            },
            zero_fill_ahead_bytes: 0,
            ..small_config()
        };
        let log = open(&s, config, &clock).await;
        let stop = cfa_engine::StopSignal::new();
        let slept_ms = std::cell::Cell::new(0);
        // The timer of this test: time passes as soon as the task sleeps.
        let sleep = |d: std::time::Duration| {
            slept_ms.set(slept_ms.get() + d.as_millis() as i64);
            c.advance(d.as_millis() as i64);
            std::future::ready(())
        };
        assert_eq!(log.maintenance_due_in(), None, "an idle log has no work");
        let driver = async {
            // acks=0: append and wait for nothing.
            let n = log
                .append(batch(1, 3, 0))
                .await
                .expect("append")
                .next_offset;
            for _ in 0..1000 {
                if log.offsets().durable == n {
                    break;
                }
                futures_lite::future::yield_now().await;
            }
            stop.stop();
            n
        };
        let (maintained, n) =
            futures_lite::future::zip(log.run_maintenance(&stop, sleep), driver).await;
        maintained.expect("maintenance");
        let o = log.offsets();
        assert_eq!(
            (o.written, o.durable),
            (n, n),
            "written, then synced by time"
        );
        assert_eq!(
            slept_ms.get(),
            100,
            "slept exactly until the interval was due"
        );
        assert_eq!(log.maintenance_due_in(), None);
    });
}

#[test]
fn fsync_failure_poisons_the_log() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        let n = log
            .append(batch(1, 1, 0))
            .await
            .expect("append")
            .next_offset;
        log.flush(Durability::Durable).await.expect("flush");
        s.set_faults(Faults {
            fail_fsync: 1,
            ..Faults::default()
        });
        let n2 = log
            .append(batch(2, 1, 0))
            .await
            .expect("append")
            .next_offset;
        let err = log
            .wait_for(n2, Durability::Durable)
            .await
            .expect_err("fsync fails");
        assert!(err.to_string().contains("syncing"), "{err}");
        // No retry: the fault is gone, yet the log refuses appends and flushes.
        s.set_faults(Faults::default());
        let err = log.append(batch(3, 1, 0)).await.expect_err("poisoned");
        assert!(matches!(err, LogError::Poisoned { .. }), "{err}");
        assert!(log.wait_for(n2, Durability::Durable).await.is_err());
        // What was durable before is still readable after a crash and reopen.
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(log.offsets().next, n);
        assert_eq!(read_all(&log, 0).await.len(), 1);
    });
}

#[test]
fn enospc_is_a_clear_error_and_keeps_durable_data() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        for i in 0..10 {
            log.append(batch(i, 2, 0)).await.expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        let used: u64 = s
            .paths()
            .iter()
            .map(|p| s.file_bytes(p).map_or(0, |b| b.len() as u64))
            .sum();
        s.set_faults(Faults {
            capacity_bytes: Some(used),
            ..Faults::default()
        });
        // Fill the active segment's allocation, then the next allocation fails.
        let mut err = None;
        for i in 0..10_000 {
            match log.append(sized_batch(100 + i, 4000, 0)).await {
                Ok(info) => log
                    .wait_for(info.next_offset, Durability::Durable)
                    .await
                    .expect("fits"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.expect("disk fills up");
        assert!(matches!(err, LogError::NoSpace { .. }), "{err}");
        assert!(err.to_string().contains("no space left on device"), "{err}");
        let durable = log.offsets().durable;
        assert!(
            log.poisoned().is_none(),
            "ENOSPC on allocation refuses, does not poison"
        );
        s.set_faults(Faults::default());
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(log.offsets().next, durable);
        assert_eq!(read_all(&log, 0).await.len() as u64, durable);
    });
}

#[test]
fn retention_by_size_and_time() {
    block_on(async {
        let (c, clock) = clock();
        let s = MemStorage::new();
        let config = retained_config(100 * 1024);
        let log = open(&s, config.clone(), &clock).await;
        let t0 = 1_700_000_000_000;
        for i in 0..100 {
            log.append(sized_batch(i, 4000, t0 + i as i64))
                .await
                .expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        let before = log.size_bytes();
        let deleted = log.enforce_retention().await.expect("retention");
        assert!(deleted > 0);
        assert!(log.size_bytes() <= before);
        assert!(
            log.size_bytes() >= 100 * 1024 - 64 * 1024,
            "keeps about retention.bytes"
        );
        let start = log.offsets().log_start;
        assert!(start > 0);
        assert!(matches!(
            log.read(0, 100, u64::MAX).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log, start).await.len() as u64, 100 - start);
        // Time: move the clock 8 days on; every sealed segment expires, the active stays.
        c.set(t0 + 8 * 24 * 3600 * 1000);
        log.enforce_retention().await.expect("retention");
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.offsets().next, 100);
        // Reopen: the log start is where retention left it.
        let expected_start = log.offsets().log_start;
        log.close().await.expect("close");
        let log = open(&s, config, &clock).await;
        assert_eq!(log.offsets().log_start, expected_start);
    });
}

#[test]
fn appends_go_on_while_retention_deletes_files() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = retained_config(64 * 1024);
        let log = open(&s, config, &clock).await;
        let t0 = 1_700_000_000_000;
        for i in 0..60 {
            log.append(sized_batch(i, 4000, t0)).await.expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        let segments = log.segment_count();
        assert!(segments >= 3, "{segments} segments");
        s.hold_removes(true);
        let mut retention = std::pin::pin!(log.enforce_retention());
        assert!(
            futures_lite::future::poll_once(&mut retention)
                .await
                .is_none(),
            "the deletion waits for the held remove"
        );
        // The expired segments are out of the log already, and the log takes appends.
        assert!(log.segment_count() < segments);
        let start = log.offsets().log_start;
        assert!(start > 0);
        let append =
            futures_lite::future::poll_once(std::pin::pin!(log.append(sized_batch(60, 4000, t0))))
                .await;
        assert!(
            matches!(append, Some(Ok(ref info)) if info.base_offset == 60),
            "an append finishes while the files are being deleted: {append:?}"
        );
        s.hold_removes(false);
        assert!(retention.await.expect("retention") > 0);
        log.flush(Durability::Durable).await.expect("flush");
        assert_eq!(read_all(&log, start).await.len() as u64, 61 - start);
    });
}

fn recycle_files(s: &MemStorage) -> Vec<String> {
    s.paths()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".recycle"))
        .collect()
}

/// Appends 4 KiB batches with tags from `from` until `until(log)` holds (at most 200).
async fn append_until(
    log: &PartitionLog<MemStorage>,
    from: u64,
    until: impl Fn(&PartitionLog<MemStorage>) -> bool,
) -> u64 {
    let mut tag = from;
    while !until(log) {
        assert!(tag < from + 200, "the condition came true");
        log.append(sized_batch(tag, 4000, 1_700_000_000_000))
            .await
            .expect("append");
        tag += 1;
    }
    log.flush(Durability::Durable).await.expect("flush");
    tag
}

#[test]
fn a_deleted_segment_is_written_over_by_the_next_roll() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = retained_config(64 * 1024);
        let log = open(&s, config.clone(), &clock).await;
        let next = append_until(&log, 0, |l| l.segment_count() >= 4).await;
        let victim_bytes = s
            .file_bytes(&std::path::PathBuf::from(DIR).join(log_name(0)))
            .expect("first segment")
            .len();
        assert!(log.enforce_retention().await.expect("retention") >= 2);
        // One deleted segment is kept (the pool holds one), the others are gone.
        assert_eq!(log.recycled_segments(), 1);
        assert_eq!(recycle_files(&s), [recycle_name(0)]);
        let start = log.offsets().log_start;
        // The next roll takes it: the new active segment is the old file (its length
        // kept, its old bytes zeroed), and reads see only the new batches.
        let segments = log.segment_count();
        let next = append_until(&log, next, |l| l.segment_count() > segments).await;
        assert_eq!(log.recycled_segments(), 0);
        assert!(recycle_files(&s).is_empty());
        let active = *log.segment_bases().last().expect("active");
        let file = s
            .file_bytes(&std::path::PathBuf::from(DIR).join(log_name(active)))
            .expect("active segment");
        assert!(file.len() >= victim_bytes, "the old file, not a new one");
        let data = log.size_bytes() as usize; // bytes of every segment kept
        assert!(
            file[data.min(file.len())..].iter().all(|b| *b == 0),
            "no old batch is left past the new data"
        );
        let got = read_all(&log, start).await;
        assert_eq!(got.len() as u64, log.offsets().next - start);
        assert!(got
            .last()
            .expect("records")
            .1
            .starts_with(&format!("{}:", next - 1)));
        // Reopened (cleanly closed, then after a crash), the log has the same records.
        log.close().await.expect("close");
        let log = open(&s, config.clone(), &clock).await;
        assert_eq!(read_all(&log, start).await, got);
        s.crash(None);
        let log = open(&s, config, &clock).await;
        assert_eq!(read_all(&log, start).await, got);
    });
}

#[test]
fn with_recycling_off_deleted_segments_are_unlinked() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let config = LogConfig {
            recycle_segments: false,
            ..retained_config(64 * 1024)
        };
        let log = open(&s, config.clone(), &clock).await;
        append_until(&log, 0, |l| l.segment_count() >= 4).await;
        assert!(log.enforce_retention().await.expect("retention") >= 2);
        assert_eq!(log.recycled_segments(), 0);
        assert!(recycle_files(&s).is_empty());
        // A pool left by a run with recycling on is deleted at open when it is off.
        log.close().await.expect("close");
        let on = LogConfig {
            recycle_segments: true,
            ..config.clone()
        };
        let log = open(&s, on, &clock).await;
        let segments = log.segment_count();
        append_until(&log, 1000, |l| l.segment_count() > segments + 1).await;
        log.enforce_retention().await.expect("retention");
        assert_eq!(recycle_files(&s).len(), 1);
        log.close().await.expect("close");
        let log = open(&s, config, &clock).await;
        assert!(recycle_files(&s).is_empty());
        assert_eq!(log.recycled_segments(), 0);
    });
}

#[test]
fn segment_ms_rolls_an_old_segment() {
    block_on(async {
        let (c, clock) = clock();
        let s = MemStorage::new();
        let config = LogConfig {
            segment_ms: 60_000,
            ..small_config()
        };
        let log = open(&s, config, &clock).await;
        log.append(batch(1, 1, 0)).await.expect("append");
        c.advance(59_999);
        log.append(batch(2, 1, 0)).await.expect("append");
        assert_eq!(log.segment_count(), 1);
        c.advance(1);
        log.append(batch(3, 1, 0)).await.expect("append");
        assert_eq!(log.segment_bases(), vec![0, 2]);
    });
}

#[test]
fn timestamp_lookup_and_index_rebuild() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        for i in 0..300u64 {
            log.append(batch(i, 40, 10_000 + i as i64 * 10))
                .await
                .expect("append");
        }
        log.flush(Durability::Durable).await.expect("flush");
        assert!(log.segment_count() >= 3);
        assert_eq!(log.offset_for_timestamp(0).await.expect("ts"), Some(0));
        assert_eq!(
            log.offset_for_timestamp(10_000 + 1234).await.expect("ts"),
            Some(40 * 124)
        );
        assert_eq!(
            log.offset_for_timestamp(10_000 + 2990).await.expect("ts"),
            Some(40 * 299)
        );
        assert_eq!(
            log.offset_for_timestamp(99_999_999).await.expect("ts"),
            None
        );
        let before = read_all(&log, 0).await;
        log.close().await.expect("close");
        // Remove one index and make another stale: both are rebuilt on open.
        let idx: Vec<_> = s
            .paths()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "index"))
            .collect();
        assert!(idx.len() >= 2);
        let paths_before = s.paths().len();
        s.remove_file(&idx[0]).await.expect("remove");
        s.set_file_bytes(&idx[1], b"garbage".to_vec());
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(s.paths().len(), paths_before, "missing index rewritten");
        assert_ne!(
            s.file_bytes(&idx[1]).expect("index"),
            b"garbage".to_vec(),
            "stale index rewritten"
        );
        assert_eq!(read_all(&log, 0).await, before);
        assert_eq!(
            log.offset_for_timestamp(10_000 + 1234).await.expect("ts"),
            Some(40 * 124)
        );
    });
}

#[test]
fn log_manager_creates_discovers_and_deletes_partitions() {
    use cfa_engine::{LogManager, PartitionId};
    use std::path::Path;
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let data = Path::new("/data");
        let mut m = LogManager::open(s.clone(), data, clock.clone(), |_| small_config())
            .await
            .expect("open");
        assert!(m.is_empty());
        for p in 0..3 {
            let log = m
                .create(PartitionId::new("soccer", p), small_config())
                .await
                .expect("create");
            log.append(batch(u64::from(p), 1 + p, 0))
                .await
                .expect("append");
        }
        let err = m
            .create(PartitionId::new("bad/name", 0), small_config())
            .await
            .err()
            .expect("invalid topic");
        assert!(err.to_string().contains("illegal character"), "{err}");
        m.close().await.expect("close");
        let mut m = LogManager::open(s.clone(), data, clock.clone(), |_| small_config())
            .await
            .expect("reopen");
        assert_eq!(m.len(), 3);
        let p2 = m.get(&PartitionId::new("soccer", 2)).expect("found");
        assert_eq!(p2.offsets().next, 3);
        assert!(m
            .delete(&PartitionId::new("soccer", 1))
            .await
            .expect("delete"));
        assert!(!m
            .delete(&PartitionId::new("soccer", 1))
            .await
            .expect("already gone"));
        let m = LogManager::open(s, data, clock, |_| small_config())
            .await
            .expect("reopen");
        let ids: Vec<String> = m.ids().map(|id| id.to_string()).collect();
        assert_eq!(ids, ["soccer-0", "soccer-2"]);
    });
}

#[test]
fn padding_after_the_last_batch_is_zeros() {
    // Write buffers are not zeroed when allocated (MemStorage fills them with 0xA5): the
    // padding of the last page must still reach the disk as zeros, never stale memory.
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, small_config(), &clock).await;
        for i in 0..3 {
            let n = log
                .append(batch(i, 3, 0))
                .await
                .expect("append")
                .next_offset;
            log.wait_for(n, Durability::Durable).await.expect("durable");
            let image = s
                .file_bytes(&std::path::Path::new(DIR).join(cfa_engine::segment::log_name(0)))
                .expect("segment");
            let end = log.size_bytes() as usize;
            assert!(
                image[end..].iter().all(|b| *b == 0),
                "non-zero bytes after the log end"
            );
        }
    });
}

/// `small_config` with a 16 KiB zero-fill lead.
fn zero_fill_config() -> LogConfig {
    LogConfig {
        zero_fill_ahead_bytes: 16 * 1024,
        ..small_config()
    }
}

#[test]
fn maintain_zero_fills_ahead_off_the_write_path() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, zero_fill_config(), &clock).await;
        let n = log
            .append(batch(1, 3, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n, Durability::Durable).await.expect("durable");
        let size = log.size_bytes();
        assert!(
            log.zero_filled_until() < size + 16 * 1024,
            "flushes do not zero-fill"
        );
        let syncs = s.fsync_count();
        assert!(log.zero_fill_ahead().await.expect("zero fill"));
        assert!(
            log.zero_filled_until() >= size + 8 * 1024,
            "lead built: {}",
            log.zero_filled_until()
        );
        assert_eq!(
            s.fsync_count(),
            syncs + 1,
            "the extent conversion is synced right away"
        );
        // Data written later lands inside the zero-filled region and reads back intact.
        let n2 = log
            .append(batch(2, 3, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n2, Durability::Durable)
            .await
            .expect("durable");
        assert_eq!(read_all(&log, 0).await.len(), 6);
        log.maintain().await.expect("maintain");
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(
            read_all(&log, 0).await.len(),
            6,
            "zeros ahead are not mistaken for data"
        );
    });
}

/// Zeros run beside the data path: a data write that reaches the zeros in flight waits for
/// them, so that zeros landing late can never cover data. Without the wait, the held zero
/// write lands after the data and the reopened log loses the second batch.
#[test]
fn data_catching_up_with_zeros_in_flight_waits_for_them() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, zero_fill_config(), &clock).await;
        let n = log
            .append(batch(1, 3, 0))
            .await
            .expect("append")
            .next_offset;
        log.wait_for(n, Durability::Durable).await.expect("durable");
        let zero_start = log.zero_filled_until();
        s.hold_writes_from(Some(zero_start));
        let zeros = log.zero_fill_ahead();
        futures_lite::pin!(zeros);
        assert!(
            futures_lite::future::poll_once(&mut zeros).await.is_none(),
            "the zero write is held"
        );
        // Data now reaches past where the held zeros start.
        let n2 = log
            .append(sized_batch(2, 6 * 1024, 0))
            .await
            .expect("append")
            .next_offset;
        assert!(log.size_bytes() > zero_start, "the data reaches the zeros");
        let data = log.wait_for(n2, Durability::Written);
        futures_lite::pin!(data);
        assert!(
            futures_lite::future::poll_once(&mut data).await.is_none(),
            "the data write waits for the zeros in flight"
        );
        s.hold_writes_from(None);
        let (z, d) = futures_lite::future::zip(zeros, data).await;
        assert!(z.expect("zero fill"));
        d.expect("written");
        log.flush(Durability::Durable).await.expect("durable");
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        let values: Vec<String> = read_all(&log, 0)
            .await
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values.len(), 4, "both batches survive: {values:?}");
        assert!(values[3].starts_with("2:"), "the late batch is intact");
    });
}

/// A roll waits for the zero fill in flight before it cuts the segment to its data:
/// zeros that landed after the cut grew the sealed file again.
#[test]
fn a_roll_cuts_the_segment_after_the_zeros_in_flight() {
    block_on(async {
        let (_c, clock) = clock();
        let s = MemStorage::new();
        let log = open(&s, zero_fill_config(), &clock).await;
        // About 60 KiB of the 64 KiB segment, durable; the zeros then go past it.
        for tag in 0..5 {
            log.append(sized_batch(tag, 12 * 1024, 0))
                .await
                .expect("append");
        }
        log.flush(Durability::Durable).await.expect("durable");
        let data = log.size_bytes() as usize;
        s.hold_writes_from(Some(log.zero_filled_until()));
        let zeros = log.zero_fill_ahead();
        futures_lite::pin!(zeros);
        assert!(
            futures_lite::future::poll_once(&mut zeros).await.is_none(),
            "the zero write is held"
        );
        // A batch that does not fit rolls the segment; the roll must wait for the zeros.
        let roll = log.append(sized_batch(9, 12 * 1024, 0));
        futures_lite::pin!(roll);
        assert!(
            futures_lite::future::poll_once(&mut roll).await.is_none(),
            "the roll waits for the zeros in flight"
        );
        s.hold_writes_from(None);
        let (z, r) = futures_lite::future::zip(zeros, roll).await;
        assert!(z.expect("zero fill"));
        r.expect("append after the roll");
        assert_eq!(log.segment_count(), 2, "the segment rolled");
        let first = s
            .paths()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .min()
            .expect("a segment");
        let len = s.file_bytes(&first).expect("sealed segment").len();
        assert_eq!(len, data, "the sealed file is cut to its data");
    });
}
