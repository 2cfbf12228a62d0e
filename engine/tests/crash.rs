//! Crash tests on the fault-injecting storage: torn tails at every byte, bit flips,
//! dropped unsynced writes. The check is always: every batch reported durable is readable
//! after reopen, in order, exactly once, and nothing corrupt is returned.

mod common;

use std::path::PathBuf;

use cfa_engine::segment::log_name;
use cfa_engine::storage::mem::MemStorage;
use cfa_engine::{Durability, FlushPolicy, LogConfig, PartitionLog};
use common::*;

/// `config` syncing only when asked: unsynced batches stay written-not-durable.
fn sync_when_asked(config: LogConfig) -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Interval {
            bytes: u64::MAX,
            ms: u64::MAX,
        },
        ..config
    }
}

/// Appends `durable` batches and syncs them, then `unsynced` more batches that are
/// written but not synced. Returns the expected values by offset and the durable count.
async fn setup(s: &MemStorage, durable: u64, unsynced: u64) -> (Vec<String>, u64, PathBuf) {
    let (_c, clock) = clock();
    let log = open(s, sync_when_asked(small_config()), &clock).await;
    let mut values = Vec::new();
    for i in 0..durable + unsynced {
        let count = 1 + (i % 3) as u32;
        let info = log
            .append(batch(i, count, 1000 + i as i64))
            .await
            .expect("append");
        for r in 0..count {
            values.push(format!("{i}:{r}"));
        }
        if i < durable {
            log.wait_for(info.next_offset, Durability::Durable)
                .await
                .expect("durable");
        } else {
            log.wait_for(info.next_offset, Durability::Written)
                .await
                .expect("written");
        }
    }
    let o = log.offsets();
    assert_eq!(o.written, values.len() as u64);
    assert!(
        unsynced == 0 || o.durable < o.written,
        "some batches are not durable"
    );
    let base = *log.segment_bases().last().expect("a segment");
    (values, o.durable, PathBuf::from(DIR).join(log_name(base)))
}

/// Reopens and checks the recovered log against what was appended.
async fn check_recovered(s: &MemStorage, values: &[String], durable: u64) -> u64 {
    let (_c, clock) = clock();
    let log = open(s, small_config(), &clock).await;
    let got = read_all(&log, 0).await;
    assert!(
        got.len() as u64 >= durable,
        "lost durable records: {} < {durable}",
        got.len()
    );
    for (i, (offset, v)) in got.iter().enumerate() {
        assert_eq!(*offset, i as u64, "in order, exactly once");
        assert_eq!(v, &values[i], "no corrupt or foreign record at offset {i}");
    }
    assert_eq!(log.offsets().next, got.len() as u64);
    // The recovered log takes new appends right after what survived.
    let info = log
        .append(batch(999, 1, 0))
        .await
        .expect("append after recovery");
    assert_eq!(info.base_offset, got.len() as u64);
    log.wait_for(info.next_offset, Durability::Durable)
        .await
        .expect("durable");
    got.len() as u64
}

#[test]
fn dropped_unsynced_writes_keep_every_durable_batch() {
    block_on(async {
        let s = MemStorage::new();
        let (values, durable, _) = setup(&s, 40, 5).await;
        s.crash(None);
        let recovered = check_recovered(&s, &values, durable).await;
        assert_eq!(
            recovered, durable,
            "unsynced writes are gone, durable ones are all there"
        );
    });
}

#[test]
fn torn_tail_at_every_byte() {
    block_on(async {
        let reference = MemStorage::new();
        let (values, durable, path) = setup(&reference, 30, 4).await;
        let current = reference.file_bytes(&path).expect("segment");
        // Bound of the unsynced region: try every byte count up to it (and a page beyond).
        let mut seen_partial = false;
        for keep in 0..=(current.len().min(64 * 1024)) {
            let s = reference.deep_clone();
            s.crash(Some((&path, keep)));
            let recovered = check_recovered(&s, &values, durable).await;
            seen_partial |= recovered > durable && recovered < values.len() as u64;
            if recovered == values.len() as u64 && keep > 8192 {
                break; // every unsynced byte survived: longer tears change nothing
            }
        }
        assert!(seen_partial, "some tears keep part of the unsynced batches");
    });
}

/// A log whose active segment was written over a recycled file (old batches beyond its
/// data): `durable` batches synced into it, then `unsynced` written only. Returns the
/// expected value prefix by offset, the log start, the durable offset and the path.
async fn setup_recycled(
    s: &MemStorage,
    durable: u64,
    unsynced: u64,
) -> (Vec<String>, u64, u64, PathBuf) {
    let (_c, clock) = clock();
    let log = open(s, sync_when_asked(retained_config(64 * 1024)), &clock).await;
    let mut values = Vec::new();
    async fn append(log: &PartitionLog<MemStorage>, values: &mut Vec<String>, level: Durability) {
        let tag = values.len() as u64;
        values.push(format!("{tag}:"));
        let info = log.append(sized_batch(tag, 3000, 0)).await.expect("append");
        log.wait_for(info.next_offset, level).await.expect("wait");
    }
    while log.segment_count() < 4 {
        append(&log, &mut values, Durability::Durable).await;
    }
    log.enforce_retention().await.expect("retention");
    assert_eq!(log.recycled_segments(), 1);
    let segments = log.segment_count();
    while log.segment_count() == segments {
        append(&log, &mut values, Durability::Durable).await;
    }
    assert_eq!(
        log.recycled_segments(),
        0,
        "the roll took the recycled file"
    );
    for _ in 0..durable {
        append(&log, &mut values, Durability::Durable).await;
    }
    for _ in 0..unsynced {
        append(&log, &mut values, Durability::Written).await;
    }
    let o = log.offsets();
    let base = *log.segment_bases().last().expect("a segment");
    (
        values,
        o.log_start,
        o.durable,
        PathBuf::from(DIR).join(log_name(base)),
    )
}

#[test]
fn torn_tail_over_a_recycled_segment_at_every_byte() {
    block_on(async {
        let reference = MemStorage::new();
        let (values, start, durable, path) = setup_recycled(&reference, 3, 4).await;
        let current = reference.file_bytes(&path).expect("segment");
        let mut seen_partial = false;
        for keep in 0..=(current.len().min(64 * 1024)) {
            let s = reference.deep_clone();
            s.crash(Some((&path, keep)));
            let (_c, clock) = clock();
            let log = open(&s, small_config(), &clock).await;
            assert_eq!(log.offsets().log_start, start);
            let got = read_all(&log, start).await;
            let end = start + got.len() as u64;
            assert!(end >= durable, "lost durable records: {end} < {durable}");
            for (offset, v) in &got {
                // One record per batch: the value starts with its batch's tag.
                if !v.starts_with(&values[*offset as usize]) {
                    eprintln!("keep {keep} start {start} durable {durable} n {} end {end} bases {:?} len {}", values.len(), log.segment_bases(), current.len());
                }
                assert!(
                    v.starts_with(&values[*offset as usize]),
                    "no old or corrupt record at offset {offset}: {}",
                    &v[..v.len().min(20)]
                );
            }
            let info = log.append(batch(999, 1, 0)).await.expect("append");
            assert_eq!(info.base_offset, end, "appends go on right after");
            seen_partial |= end > durable && end < values.len() as u64;
            if end == values.len() as u64 && keep > 16 * 1024 {
                break; // every unsynced byte survived
            }
        }
        assert!(seen_partial, "some tears keep part of the unsynced batches");
    });
}

#[test]
fn bit_flips_in_the_tail_never_return_corrupt_records() {
    block_on(async {
        let reference = MemStorage::new();
        let (values, durable, path) = setup(&reference, 20, 6).await;
        let image = reference.file_bytes(&path).expect("segment");
        let end = image.iter().rposition(|b| *b != 0).expect("data") + 1;
        // Flip one bit in each byte of the last ~2 KiB of data (durable and unsynced alike):
        // recovery cuts at the damaged batch, so what it returns is a clean prefix.
        for at in end.saturating_sub(2048)..end {
            let s = reference.deep_clone();
            let mut bytes = s.file_bytes(&path).expect("segment");
            bytes[at] ^= 1 << (at % 8);
            s.set_file_bytes(&path, bytes);
            let (_c, clock) = clock();
            let log = open(&s, small_config(), &clock).await;
            let got = read_all(&log, 0).await;
            for (i, (offset, v)) in got.iter().enumerate() {
                assert_eq!(*offset, i as u64);
                assert_eq!(v, &values[i], "flip at byte {at} returned a corrupt record");
            }
        }
        let _ = durable;
    });
}

#[test]
fn crash_during_roll_and_reopen_twice() {
    block_on(async {
        let s = MemStorage::new();
        let (_c, clock) = clock();
        let log = open(&s, small_config(), &clock).await;
        let mut expected = 0u64;
        for i in 0..400u64 {
            let info = log.append(batch(i, 20, 0)).await.expect("append");
            log.wait_for(info.next_offset, Durability::Durable)
                .await
                .expect("durable");
            expected = info.next_offset;
        }
        assert!(log.segment_count() > 1);
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(log.offsets().next, expected);
        drop(log);
        s.crash(None);
        let log = open(&s, small_config(), &clock).await;
        assert_eq!(log.offsets().next, expected, "recovery is idempotent");
        assert_eq!(read_all(&log, 0).await.len() as u64, expected);
    });
}

proptest::proptest! {
    /// Recovery's segment scanner never panics on arbitrary file contents and never
    /// reports more valid bytes than the file has.
    #[test]
    fn scan_survives_garbage(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), seed_valid in proptest::prelude::any::<bool>()) {
        block_on(async {
            use cfa_engine::storage::Storage;
            let s = MemStorage::new();
            let path = PathBuf::from(DIR).join(log_name(0));
            let mut image = if seed_valid { batch(1, 2, 0).to_vec() } else { Vec::new() };
            image.extend_from_slice(&bytes);
            s.set_file_bytes(&path, image.clone());
            let f = s.open(&path, false).await.expect("open");
            let res = cfa_engine::segment::scan(&f, 0, image.len() as u64, 1024).await.expect("scan");
            assert!(res.valid_bytes <= image.len() as u64);
            if seed_valid {
                assert!(res.valid_bytes >= batch(1, 2, 0).len() as u64, "the valid prefix is kept");
            }
        });
    }
}
