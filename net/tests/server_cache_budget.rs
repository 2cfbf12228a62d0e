//! A shard's partitions share one batch-cache budget (`shard_batch_cache_bytes`): with a
//! small budget split among many partitions, old batches are read back from disk; with
//! room for them, the same reads come from memory. This file holds one test so that its
//! process's storage reads (/proc/self/io) are its own.

use cfa_engine::ProducerStamp;
use cfa_net::protocol::*;
use cfa_net::server::{Broker, BrokerConfig};
use cfa_net::testing::{batch, RawClient};

/// Bytes this process has read from storage (direct I/O included).
fn storage_read_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    text.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("read_bytes line")
}

/// Writes 2 MiB to partition 0 of an 8-partition topic on one shard, then reads it all
/// back from offset 0; returns the bytes read from storage by that read-back.
fn read_back_storage_bytes(shard_budget_bytes: usize) -> u64 {
    // Under target/: direct I/O needs a real filesystem.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.shard_batch_cache_bytes = shard_budget_bytes;
    let broker = Broker::start(config).expect("broker starts");
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("t", 8).error_code, ErrorCode::None);
    let value = "v".repeat(60 << 10);
    for _ in 0..32 {
        let r = raw.produce(
            "t",
            0,
            vec![batch(&[&value], ProducerStamp::NONE)],
            Acks::All,
        );
        assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
    }
    let before = storage_read_bytes();
    let mut offset = 0;
    while offset < 32 {
        let f = raw.fetch("t", 0, offset, 0);
        assert_eq!(f.error_code, ErrorCode::None);
        assert!(!f.batches.is_empty(), "offset {offset} is readable");
        offset += f.batches.len() as u64;
    }
    let read = storage_read_bytes() - before;
    broker.shutdown().expect("clean stop");
    read
}

#[test]
fn partitions_share_the_shards_cache_budget() {
    // 8 MiB over 8 partitions: 1 MiB each (under the 4 MiB per-partition default), so
    // most of the 2 MiB written is gone from memory and comes from disk.
    let small = read_back_storage_bytes(8 << 20);
    assert!(
        small >= 512 << 10,
        "small budget: read {small} bytes from storage"
    );
    // 256 MiB over 8: each partition keeps its own 4 MiB, all 2 MiB stay in memory.
    let large = read_back_storage_bytes(256 << 20);
    assert!(
        large < 64 << 10,
        "large budget: read {large} bytes from storage"
    );
}
