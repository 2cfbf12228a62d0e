//! Criterion micro-benchmarks of the engine's hot paths: batch encode and validation
//! (CPU), append with group commit on the real disk (glommio, O_DIRECT), and reads from
//! the batch cache and from disk.
//!
//! Data goes under target/ (direct I/O does not work on tmpfs). Run: `cargo bench -p cfa-engine`.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cfa_engine::storage::glommio_fs::{check_memlock, GlommioStorage};
use cfa_engine::{
    BatchBuilder, Durability, FlushPolicy, LogConfig, PartitionLog, ProducerStamp, SystemClock,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::{LocalExecutorBuilder, Placement};

const RECORD_BYTES: usize = 1024;
/// io_memory of each bench executor (1 MiB; glommio locks 3x that plus 512 KiB).
const IO_MEMORY_BYTES: usize = cfa_engine::constants::IO_MEMORY_BYTES_DEFAULT;

fn batch(batch_bytes: usize) -> BytesMut {
    let value = vec![b'x'; RECORD_BYTES - 16];
    let mut b = BatchBuilder::with_capacity(0, batch_bytes);
    for _ in 0..(batch_bytes / RECORD_BYTES).max(1) {
        b.push(0, None, Some(&value), &[]);
    }
    b.finish(ProducerStamp::NONE)
}

fn bench_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion-data");
    std::fs::create_dir_all(&base).expect("bench data dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

fn config(batch_bytes: usize, flush: FlushPolicy) -> LogConfig {
    LogConfig {
        max_message_bytes: (batch_bytes + 4096).max(1 << 20) as u32,
        pending_bytes_max: (4 * batch_bytes).max(8 << 20),
        batch_cache_bytes: 64 << 20,
        flush,
        retention_bytes: -1,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// As `cfa bench` does (bench/src/malloc_tuning.rs): keep freed heap memory mapped, so the
/// engine's 1 MiB write buffers are not page-faulted and zeroed again on every write.
fn keep_freed_memory() {
    // SAFETY: mallopt only stores allocator parameters; glibc takes its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Runs `f` in a fresh glommio executor with a fresh log and returns what `f` measured.
fn with_log<F, Fut>(cfg: LogConfig, f: F) -> Duration
where
    F: FnOnce(Rc<PartitionLog<GlommioStorage>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Duration> + 'static,
{
    if let Err(msg) = check_memlock(IO_MEMORY_BYTES, 1) {
        panic!("{msg}");
    }
    keep_freed_memory();
    let tmp = bench_dir();
    let dir = tmp.path().join("bench-0");
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move {
            let log = PartitionLog::open(GlommioStorage, &dir, cfg, Rc::new(SystemClock))
                .await
                .expect("open");
            let log = Rc::new(log);
            let took = f(log.clone()).await;
            log.close().await.expect("close");
            took
        })
        .expect("executor")
        .join()
        .expect("join")
}

/// Appends `iters` batches with 4 writers in flight, each waiting for `level`.
async fn append_n(
    log: Rc<PartitionLog<GlommioStorage>>,
    template: BytesMut,
    iters: u64,
    level: Durability,
) -> Duration {
    let start = Instant::now();
    let writers = 4u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (log, template) = (log.clone(), template.clone());
        let n = iters / writers + u64::from(w < iters % writers);
        tasks.push(glommio::spawn_local(async move {
            for _ in 0..n {
                let info = log
                    .append(BytesMut::from(&template[..]))
                    .await
                    .expect("append");
                log.wait_for(info.next_offset, level).await.expect("wait");
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    log.flush(Durability::Durable).await.expect("flush");
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_1kib_records");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for batch_bytes in [16 << 10, 64 << 10, 1 << 20] {
        g.throughput(Throughput::Bytes(batch(batch_bytes).len() as u64));
        let policies = [
            (
                "flush_every_batch",
                FlushPolicy::EveryBatch,
                Durability::Durable,
            ),
            (
                "flush_every_4mib",
                FlushPolicy::Interval {
                    bytes: 4 << 20,
                    ms: 1000,
                },
                Durability::Written,
            ),
        ];
        for (name, flush, level) in policies {
            g.bench_with_input(
                BenchmarkId::new(name, batch_bytes),
                &batch_bytes,
                |b, &batch_bytes| {
                    b.iter_custom(|iters| {
                        with_log(config(batch_bytes, flush), move |log| {
                            append_n(log, batch(batch_bytes), iters, level)
                        })
                    })
                },
            );
        }
    }
    g.finish();
}

/// Fills a log with 32 MiB, then reads it `iters` times (from the cache, or from disk
/// after a reopen) and checks each batch's CRC as a consumer would.
fn read(c: &mut Criterion) {
    const FILL_BYTES: usize = 32 << 20;
    const BATCH_BYTES: usize = 64 << 10;
    let mut g = c.benchmark_group("read_64kib_batches");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(FILL_BYTES as u64));
    for from_disk in [false, true] {
        let name = if from_disk { "disk" } else { "cache" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let cfg = LogConfig {
                    batch_cache_bytes: if from_disk { 0 } else { 64 << 20 },
                    ..config(BATCH_BYTES, FlushPolicy::EveryBatch)
                };
                with_log(cfg, move |log| async move {
                    for _ in 0..FILL_BYTES / BATCH_BYTES {
                        log.append(batch(BATCH_BYTES)).await.expect("append");
                    }
                    log.flush(Durability::Durable).await.expect("flush");
                    let start = Instant::now();
                    for _ in 0..iters {
                        read_all(&log).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

async fn read_all(log: &PartitionLog<GlommioStorage>) {
    let next = log.offsets().next;
    let mut from = 0;
    while from < next {
        let batches = log.read(from, 1 << 20, next).await.expect("read");
        for b in &batches {
            let h = cfa_engine::batch::validate(b, u32::MAX).expect("valid");
            from = h.last_offset() + 1;
        }
    }
}

fn cpu(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    let value = vec![b'x'; RECORD_BYTES - 16];
    g.throughput(Throughput::Bytes(64 << 10));
    g.bench_function("encode_64kib_batch_of_1kib_records", |b| {
        b.iter(|| {
            let mut bb = BatchBuilder::with_capacity(0, 64 << 10);
            for _ in 0..64 {
                bb.push(0, Some(b"key"), Some(&value), &[]);
            }
            bb.finish(ProducerStamp::NONE)
        })
    });
    let one = batch(64 << 10);
    g.bench_function("validate_crc_64kib_batch", |b| {
        b.iter(|| {
            cfa_engine::batch::validate(&one, u32::MAX)
                .expect("valid")
                .record_count()
        })
    });
    g.finish();
}

criterion_group!(benches, cpu, append, read);
criterion_main!(benches);
