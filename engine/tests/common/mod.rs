//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::rc::Rc;

use bytes::BytesMut;
use cfa_engine::batch::decode_records;
use cfa_engine::storage::mem::MemStorage;
use cfa_engine::{BatchBuilder, ClockRef, LogConfig, ManualClock, PartitionLog, ProducerStamp};

pub const DIR: &str = "/data/t-0";

/// A batch of `count` records whose values are `tag:i` (so tests can tell batches apart).
pub fn batch(tag: u64, count: u32, ts_ms: i64) -> BytesMut {
    let mut b = BatchBuilder::new(ts_ms);
    for i in 0..count {
        let v = format!("{tag}:{i}");
        b.push(ts_ms, Some(b"key"), Some(v.as_bytes()), &[]);
    }
    b.finish(ProducerStamp::NONE)
}

/// A batch whose value is padded to about `bytes` bytes.
pub fn sized_batch(tag: u64, bytes: usize, ts_ms: i64) -> BytesMut {
    let mut b = BatchBuilder::new(ts_ms);
    let mut v = format!("{tag}:").into_bytes();
    v.resize(bytes.saturating_sub(80).max(v.len()), b'x');
    b.push(ts_ms, None, Some(&v), &[]);
    b.finish(ProducerStamp::NONE)
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        max_message_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        batch_cache_bytes: 8 * 1024,
        pending_bytes_max: 32 * 1024,
        zero_fill_ahead_bytes: 8 * 1024,
        ..LogConfig::default()
    }
}

/// `small_config` with room for batches of 100-250 KiB: 4 MiB segments, 256 KiB max
/// batch, 1 MiB pending.
pub fn large_batch_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 20,
        max_message_bytes: 256 << 10,
        pending_bytes_max: 1 << 20,
        ..small_config()
    }
}

/// `small_config` with retention.bytes set.
pub fn retained_config(retention_bytes: i64) -> LogConfig {
    LogConfig {
        retention_bytes,
        ..small_config()
    }
}

pub fn clock() -> (ManualClock, ClockRef) {
    let c = ManualClock::new(1_700_000_000_000);
    (c.clone(), Rc::new(c))
}

pub async fn open(
    storage: &MemStorage,
    config: LogConfig,
    clock: &ClockRef,
) -> PartitionLog<MemStorage> {
    PartitionLog::open(storage.clone(), Path::new(DIR), config, clock.clone())
        .await
        .expect("log opens")
}

/// Every record value from `from` on, in offset order, checking offsets are contiguous.
pub async fn read_all(log: &PartitionLog<MemStorage>, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let batches = log.read(next, 64 * 1024, u64::MAX).await.expect("read");
        if batches.is_empty() {
            return out;
        }
        for b in batches {
            for r in decode_records(&b).expect("valid records") {
                if r.offset < next {
                    continue;
                }
                assert_eq!(r.offset, next, "offsets are contiguous");
                out.push((
                    r.offset,
                    String::from_utf8(r.value.expect("value").to_vec()).expect("utf8"),
                ));
                next += 1;
            }
        }
    }
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(f)
}
