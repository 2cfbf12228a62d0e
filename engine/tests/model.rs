//! Property test: random sequences of appends, flushes, reads, rolls, retention, clean
//! reopens and crashes against a simple in-memory model (a vector of records).

mod common;

use cfa_engine::storage::mem::MemStorage;
use cfa_engine::{Durability, FlushPolicy, LogConfig, LogError};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// `shared`: appended as a slice of a larger buffer (`append_shared`, as the broker
    /// does with request frames), which the log keeps uncorrected until it writes or
    /// reads it.
    Append {
        count: u32,
        pad: usize,
        shared: bool,
    },
    Flush(bool),
    Read {
        from_pct: u8,
        max_bytes: usize,
    },
    Retention {
        advance_ms: i64,
    },
    Reopen,
    Crash,
    Maintain {
        advance_ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u32..8, 0usize..12_000, any::<bool>()).prop_map(|(count, pad, shared)| Op::Append { count, pad, shared }),
        2 => any::<bool>().prop_map(Op::Flush),
        3 => (any::<u8>(), 1usize..20_000).prop_map(|(from_pct, max_bytes)| Op::Read { from_pct, max_bytes }),
        1 => (0i64..3_000_000).prop_map(|advance_ms| Op::Retention { advance_ms }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (0i64..200).prop_map(|advance_ms| Op::Maintain { advance_ms }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        retention_bytes: 150 * 1024,
        retention_ms: 3_600_000,
        flush: FlushPolicy::Interval {
            bytes: 8 * 1024,
            ms: 100,
        },
        ..small_config()
    }
}

/// The model: record values by offset, plus the log start and the durable watermark.
struct Model {
    values: Vec<String>,
    start: u64,
}

async fn run(ops: Vec<Op>) {
    let s = MemStorage::new();
    let (c, clock) = clock();
    let mut log = open(&s, config(), &clock).await;
    let mut m = Model {
        values: Vec::new(),
        start: 0,
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append { count, pad, shared } => {
                let mut b = cfa_engine::BatchBuilder::new(c_now(&c));
                for r in 0..count {
                    let mut v = format!("{step}:{r}:");
                    v.push_str(&"p".repeat(pad / count as usize));
                    b.push(c_now(&c), None, Some(v.as_bytes()), &[]);
                    m.values.push(v);
                }
                let batch = b.finish(cfa_engine::ProducerStamp::NONE);
                let info = if shared {
                    // The batch in the middle of a frame, its base offset left at 0.
                    let mut frame = bytes::BytesMut::from(&b"frame head"[..]);
                    frame.extend_from_slice(&batch);
                    frame.extend_from_slice(b"frame tail");
                    let frame = frame.freeze();
                    let slice = frame.slice(10..10 + batch.len());
                    log.append_shared(slice, frame.len()).await
                } else {
                    log.append(batch).await
                }
                .expect("append");
                assert_eq!(info.next_offset, m.values.len() as u64);
            }
            Op::Flush(sync) => {
                let level = if sync {
                    Durability::Durable
                } else {
                    Durability::Written
                };
                log.flush(level).await.expect("flush");
                let o = log.offsets();
                assert_eq!(o.written, m.values.len() as u64);
                if sync {
                    assert_eq!(o.durable, o.written);
                }
            }
            Op::Read {
                from_pct,
                max_bytes,
            } => {
                let o = log.offsets();
                let span = o.next - o.log_start;
                let from = o.log_start + span * u64::from(from_pct) / 255;
                let batches = log.read(from, max_bytes, u64::MAX).await.expect("read");
                let mut next = None;
                for b in &batches {
                    for r in cfa_engine::batch::decode_records(b).expect("valid") {
                        if let Some(n) = next {
                            assert_eq!(r.offset, n, "contiguous");
                        }
                        next = Some(r.offset + 1);
                        let v = String::from_utf8(r.value.expect("value").to_vec()).expect("utf8");
                        assert_eq!(v, m.values[r.offset as usize]);
                    }
                }
                if from < o.written {
                    assert!(!batches.is_empty(), "a visible offset returns data");
                    assert!(next.expect("records") > from);
                }
                match log.read(o.next + 1, 100, u64::MAX).await {
                    Err(LogError::OffsetOutOfRange { .. }) => {}
                    other => panic!("read past the end: {other:?}"),
                }
            }
            Op::Retention { advance_ms } => {
                c.advance(advance_ms);
                log.enforce_retention().await.expect("retention");
                let start = log.offsets().log_start;
                assert!(start >= m.start, "log start never moves back");
                m.start = start;
            }
            Op::Maintain { advance_ms } => {
                c.advance(advance_ms);
                log.maintain().await.expect("maintain");
            }
            Op::Reopen => {
                log.close().await.expect("close");
                log = open(&s, config(), &clock).await;
                assert_eq!(
                    log.offsets().next,
                    m.values.len() as u64,
                    "clean close loses nothing"
                );
            }
            Op::Crash => {
                let durable = log.offsets().durable;
                drop(log);
                s.crash(None);
                log = open(&s, config(), &clock).await;
                let o = log.offsets();
                assert_eq!(
                    o.next, durable,
                    "exactly the durable records survive a power cut"
                );
                m.values.truncate(durable as usize);
                assert_eq!(o.log_start, m.start, "retention's deletions are durable");
            }
        }
        let o = log.offsets();
        assert!(o.log_start <= o.durable && o.durable <= o.written && o.written <= o.next);
        assert_eq!(o.log_start, m.start);
    }
    log.flush(Durability::Durable).await.expect("flush");
    let got = read_all(&log, m.start).await;
    assert_eq!(got.len() as u64, m.values.len() as u64 - m.start);
    for (offset, v) in got {
        assert_eq!(v, m.values[offset as usize]);
    }
}

fn c_now(c: &cfa_engine::ManualClock) -> i64 {
    use cfa_engine::Clock;
    c.now_ms()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128), ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..120)) {
        block_on(run(ops));
    }
}
