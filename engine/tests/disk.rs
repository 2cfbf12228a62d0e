//! Real-disk tests: glommio (io_uring + O_DIRECT) on a temp dir of the work tree's disk,
//! sized for the 8 MiB memlock limit (io_memory 512 KiB per executor).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cfa_engine::batch::decode_records;
use cfa_engine::segment::log_name;
use cfa_engine::storage::glommio_fs::GlommioStorage;
use cfa_engine::{
    BatchBuilder, ClockRef, Durability, FlushPolicy, LogConfig, PartitionLog, ProducerStamp,
    SystemClock,
};
use glommio::LocalExecutorBuilder;

const IO_MEMORY_BYTES: usize = 512 * 1024;

fn run<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .expect("glommio executor (is RLIMIT_MEMLOCK >= 2 MiB?)")
        .run(f)
}

/// A temp dir on the disk that holds the build (not /tmp, which may be tmpfs: no O_DIRECT).
fn temp_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("target tmpdir");
    tempfile::tempdir_in(base).expect("temp dir")
}

fn batch(tag: u64, count: u32) -> BytesMut {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    for i in 0..count {
        let v = format!("{tag}:{i}:{}", "v".repeat(100));
        b.push(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    b.finish(ProducerStamp::NONE)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 96 * 1024,
        max_message_bytes: 64 * 1024,
        index_interval_bytes: 4096,
        batch_cache_bytes: 64 * 1024,
        pending_bytes_max: 256 * 1024,
        zero_fill_ahead_bytes: 64 * 1024,
        flush: FlushPolicy::Interval {
            bytes: 128 * 1024,
            ms: 50,
        },
        ..LogConfig::default()
    }
}

fn clock() -> ClockRef {
    Rc::new(SystemClock)
}

async fn open(dir: &Path) -> PartitionLog<GlommioStorage> {
    PartitionLog::open(GlommioStorage, dir, config(), clock())
        .await
        .expect("open")
}

async fn values(log: &PartitionLog<GlommioStorage>) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = log.offsets().log_start;
    loop {
        let batches = log.read(next, 256 * 1024, u64::MAX).await.expect("read");
        if batches.is_empty() {
            return out;
        }
        for b in batches {
            for r in decode_records(&b).expect("records") {
                if r.offset >= next {
                    assert_eq!(r.offset, next, "contiguous");
                    let v = String::from_utf8(r.value.expect("value").to_vec()).expect("utf8");
                    out.push(v.split(':').take(2).collect::<Vec<_>>().join(":"));
                    next += 1;
                }
            }
        }
    }
}

/// The base offsets of the segment files in `dir`, ascending.
fn log_bases(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| {
            cfa_engine::segment::parse_log_name(&e.expect("entry").file_name().to_string_lossy())
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn append_roll_reopen_on_real_disk() {
    let tmp = temp_dir();
    let dir = tmp.path().join("t-0");
    run(async move {
        let log = open(&dir).await;
        let mut expected = Vec::new();
        for i in 0..600u64 {
            let count = 1 + (i % 7) as u32;
            let info = log.append(batch(i, count)).await.expect("append");
            expected.extend((0..count).map(|r| format!("{i}:{r}")));
            if i % 50 == 0 {
                log.wait_for(info.next_offset, Durability::Durable)
                    .await
                    .expect("durable");
            }
        }
        log.flush(Durability::Durable).await.expect("flush");
        assert!(log.segment_count() >= 3, "rolled: {}", log.segment_count());
        assert_eq!(values(&log).await, expected, "from cache and disk");
        log.close().await.expect("close");
        // Sealed segments have their indexes on disk; the active one is rebuilt by scan.
        let bases = log_bases(&dir);
        let (_, sealed) = bases.split_last().expect("segments");
        for base in sealed {
            let index = dir.join(log_name(*base)).with_extension("index");
            assert!(index.exists(), "{} exists", index.display());
        }
        let log = open(&dir).await;
        assert_eq!(log.offsets().next, expected.len() as u64);
        assert_eq!(values(&log).await, expected, "all from disk after reopen");
        // Mid-log reads through the sparse index.
        let mid = log.read(1234, 1, u64::MAX).await.expect("read");
        let recs = decode_records(&mid[0]).expect("records");
        assert!(recs.iter().any(|r| r.offset == 1234));
        log.close().await.expect("close");
    });
}

/// Retention on glommio: closed segment files are unlinked on the executor's blocking
/// thread (a discard-mounted disk trims inside unlink) but one, kept for the next roll
/// (zeroed with FALLOC_FL_ZERO_RANGE on this filesystem), and what is left reads and
/// reopens from the new log start.
#[test]
fn retention_deletes_segment_files_on_real_disk() {
    let tmp = temp_dir();
    let dir = tmp.path().join("t-0");
    run(async move {
        let config = LogConfig {
            retention_bytes: 200 * 1024,
            ..config()
        };
        let log = PartitionLog::open(GlommioStorage, &dir, config.clone(), clock())
            .await
            .expect("open");
        let mut expected = Vec::new();
        for i in 0..600u64 {
            log.append(batch(i, 3)).await.expect("append");
            expected.extend((0..3).map(|r| format!("{i}:{r}")));
        }
        log.flush(Durability::Durable).await.expect("flush");
        let before = log_bases(&dir);
        let deleted = log.enforce_retention().await.expect("retention");
        assert!(deleted > 0, "over retention.bytes: something goes");
        let after = log_bases(&dir);
        assert_eq!(after.len(), before.len() - deleted, "their files are gone");
        let start = log.offsets().log_start;
        assert_eq!(
            after.first().copied(),
            Some(start),
            "the oldest file left is the start"
        );
        let kept: Vec<String> = expected[start as usize..].to_vec();
        assert_eq!(values(&log).await, kept);
        // One deleted file waits for reuse; the next roll writes over it, zeroed.
        let recycle = |d: &Path| -> Vec<u64> {
            std::fs::read_dir(d)
                .expect("dir")
                .filter_map(|e| {
                    cfa_engine::segment::parse_recycle_name(
                        &e.expect("entry").file_name().to_string_lossy(),
                    )
                })
                .collect()
        };
        assert_eq!(recycle(&dir).len(), 1);
        assert_eq!(log.recycled_segments(), 1);
        let segments = log.segment_count();
        let mut expected = kept;
        let mut i = 600u64;
        while log.segment_count() == segments {
            log.append(batch(i, 3)).await.expect("append");
            expected.extend((0..3).map(|r| format!("{i}:{r}")));
            i += 1;
        }
        log.flush(Durability::Durable).await.expect("flush");
        assert!(recycle(&dir).is_empty(), "the roll took the recycled file");
        assert_eq!(values(&log).await, expected);
        log.close().await.expect("close");
        let log = PartitionLog::open(GlommioStorage, &dir, config, clock())
            .await
            .expect("reopen");
        assert_eq!(log.offsets().log_start, start);
        assert_eq!(values(&log).await, expected, "after reopen");
        log.close().await.expect("close");
    });
}

#[test]
fn torn_tail_on_real_disk_is_truncated() {
    let tmp = temp_dir();
    let dir = tmp.path().join("t-0");
    let d2 = dir.clone();
    let expected = run(async move {
        let log = open(&d2).await;
        let mut expected = Vec::new();
        for i in 0..40u64 {
            let info = log.append(batch(i, 3)).await.expect("append");
            log.wait_for(info.next_offset, Durability::Durable)
                .await
                .expect("durable");
            expected.extend((0..3).map(|r| format!("{i}:{r}")));
        }
        log.close().await.expect("close");
        expected
    });
    // Append half a batch of garbage after the last valid batch, then a plausible header.
    let path = dir.join(log_name(0));
    let mut bytes = std::fs::read(&path).expect("segment");
    let end = bytes.iter().rposition(|b| *b != 0).expect("data") + 1;
    let tail = batch(999, 3);
    bytes.truncate(end);
    bytes.extend_from_slice(&tail[..tail.len() / 2]);
    std::fs::write(&path, &bytes).expect("write torn tail");
    std::fs::File::open(&path)
        .expect("open")
        .sync_all()
        .expect("sync");
    run(async move {
        let log = open(&dir).await;
        assert_eq!(values(&log).await, expected);
        // New appends land right after the valid data and survive another reopen.
        let info = log.append(batch(1000, 1)).await.expect("append");
        assert_eq!(info.base_offset, expected.len() as u64);
        log.close().await.expect("close");
        let log = open(&dir).await;
        assert_eq!(log.offsets().next, expected.len() as u64 + 1);
        log.close().await.expect("close");
    });
}

/// Child side of `kill9_under_load_loses_no_acknowledged_batch`: appends durable batches
/// and prints each acknowledged offset until killed (bounded in count and time).
#[test]
#[ignore = "entry point of the child process of kill9_under_load_loses_no_acknowledged_batch"]
fn kill9_child() {
    let Ok(dir) = std::env::var("CFA_KILL9_DIR") else {
        return;
    };
    run(async move {
        let log = Rc::new(open(Path::new(&dir)).await);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut i = 0u64;
        while i < 100_000 && Instant::now() < deadline {
            // Two concurrent producers per round, so group commit is exercised.
            let (a, b) = (log.append(batch(i, 2)), log.append(batch(i + 1, 2)));
            let (a, b) = (a.await.expect("append"), b.await.expect("append"));
            let (wa, wb) = (
                log.wait_for(a.next_offset, Durability::Durable),
                log.wait_for(b.next_offset, Durability::Durable),
            );
            let (ra, rb) = futures_lite::future::zip(wa, wb).await;
            ra.expect("durable");
            rb.expect("durable");
            println!("acked {}", b.next_offset);
            i += 2;
        }
    });
}

#[test]
fn kill9_under_load_loses_no_acknowledged_batch() {
    let tmp = temp_dir();
    let dir: PathBuf = tmp.path().join("t-0");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "kill9_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CFA_KILL9_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked = 0u64;
    let start = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("acked ") {
            acked = rest.parse().expect("offset");
            if acked >= 2000 || start.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL the child"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap");
    assert!(acked > 0, "the child acknowledged something before it died");
    run(async move {
        let log = open(&dir).await;
        let got = values(&log).await;
        assert!(
            got.len() as u64 >= acked,
            "lost acknowledged records: {} < {acked}",
            got.len()
        );
        for (i, v) in got.iter().enumerate() {
            let want = format!("{}:{}", i / 2, i % 2);
            assert_eq!(v, &want, "record {i} in order, exactly once");
        }
        log.close().await.expect("close");
    });
}
