//! Criterion micro-benchmarks of the network layer's per-record and per-frame CPU work:
//! the murmur2 key partitioner, CRC32 of record data, encoding and decoding of Produce
//! and Fetch frames, and cutting frames off a read buffer. No sockets, no disk.
//!
//! Run: `cargo bench -p cfa-net --bench hot_paths`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cfa_engine::{BatchBuilder, ProducerStamp};
use cfa_net::client::partitioner::murmur2;
use cfa_net::protocol::{
    decode_request, decode_response, Acks, ApiKey, Encoder, ErrorCode, FetchPartitionResponse,
    FetchResponse, FetchTopicResponse, FrameSplitter, ProducePartition, ProduceRequest,
    ProduceTopic, Request, Response,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

/// Keys hashed per iteration, so one iteration is long enough to time and the keys vary.
const KEYS_PER_ITER: usize = 1024;
const KEY_BYTES: usize = 16;
/// 1 KiB and 64 KiB (KiB = 2^10 bytes): a record and a full producer batch.
const CRC_INPUT_BYTES: [usize; 2] = [1 << 10, 64 << 10];
/// The record batch a Produce request carries: 64 KiB of 1 KiB records.
const BATCH_BYTES: usize = 64 << 10;
const RECORD_BYTES: usize = 1 << 10;
/// Batches in the Fetch response: 1 MiB, a consumer's usual partition_max_bytes.
const FETCH_BATCHES: usize = 16;
/// Frames in the buffer the splitter cuts, each a Produce request of one small batch.
const SPLIT_FRAMES: usize = 1024;
const SPLIT_RECORDS_PER_FRAME: usize = 4;

fn bench_murmur2(c: &mut Criterion) {
    let keys: Vec<[u8; KEY_BYTES]> = (0..KEYS_PER_ITER as u64)
        .map(|i| {
            let mut key = [0u8; KEY_BYTES];
            key[..8].copy_from_slice(&i.to_le_bytes());
            key[8..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            key
        })
        .collect();
    let mut group = c.benchmark_group("murmur2");
    group.throughput(Throughput::Elements(KEYS_PER_ITER as u64));
    group.bench_function("16-byte keys", |b| {
        b.iter(|| {
            keys.iter()
                .fold(0i32, |acc, key| acc ^ murmur2(black_box(key)))
        })
    });
    group.finish();
}

fn bench_crc32(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32fast");
    for size in CRC_INPUT_BYTES {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(size_label(size)),
            &data,
            |b, data| b.iter(|| crc32fast::hash(black_box(data))),
        );
    }
    group.finish();
}

fn size_label(bytes: usize) -> String {
    format!("{} KiB", bytes >> 10)
}

/// A record batch of about `batch_bytes` of `RECORD_BYTES` records (as engine/benches).
fn record_batch(batch_bytes: usize) -> Bytes {
    let value = vec![b'x'; RECORD_BYTES - 16];
    let mut builder = BatchBuilder::with_capacity(0, batch_bytes);
    for _ in 0..(batch_bytes / RECORD_BYTES).max(1) {
        builder.push(0, None, Some(&value), &[]);
    }
    builder.finish(ProducerStamp::NONE).freeze()
}

fn produce_request(batch: Bytes) -> Request {
    Request::Produce(ProduceRequest {
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "bench-topic".into(),
            partitions: vec![ProducePartition {
                partition: 0,
                batches: vec![batch],
            }],
        }],
    })
}

fn fetch_response(batches: Vec<Bytes>) -> Response {
    Response::Fetch(FetchResponse {
        throttle_time_ms: 0,
        topics: vec![FetchTopicResponse {
            name: "bench-topic".into(),
            partitions: vec![FetchPartitionResponse {
                partition: 0,
                error_code: ErrorCode::None,
                error_message: None,
                high_watermark: 1 << 20,
                log_start_offset: 0,
                batches,
            }],
        }],
    })
}

/// Encode (one reused `Encoder`, as a connection keeps one) and decode of a frame. The
/// codec shares the batches instead of copying them, so these measure the header and
/// flatbuffer work per frame; throughput counts the whole frame.
fn bench_codec(c: &mut Criterion) {
    let batch = record_batch(BATCH_BYTES);
    let produce = produce_request(batch.clone());
    let produce_version = ApiKey::Produce.versions().max;
    let mut encoder = Encoder::new();
    let produce_frame = encoder
        .request(7, produce_version, &produce)
        .expect("encode produce")
        .to_bytes();
    let mut group = c.benchmark_group("frame/produce-64KiB-batch");
    group.throughput(Throughput::Bytes(produce_frame.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encoder.request(7, produce_version, black_box(&produce)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_request(black_box(produce_frame.clone())).expect("decode produce"))
    });
    group.finish();

    let fetch = fetch_response(vec![batch; FETCH_BATCHES]);
    let fetch_version = ApiKey::Fetch.versions().max;
    let fetch_frame = encoder
        .response(7, fetch_version, &fetch)
        .expect("encode fetch")
        .to_bytes();
    let mut group = c.benchmark_group("frame/fetch-response-1MiB");
    group.throughput(Throughput::Bytes(fetch_frame.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encoder.response(7, fetch_version, black_box(&fetch)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_response(black_box(fetch_frame.clone())).expect("decode fetch"))
    });
    group.finish();
}

/// Cutting `SPLIT_FRAMES` whole frames off one read buffer. The buffer is rebuilt
/// outside the timing for each iteration (the splitter consumes it).
fn bench_splitter(c: &mut Criterion) {
    let batch = record_batch(SPLIT_RECORDS_PER_FRAME * RECORD_BYTES);
    let version = ApiKey::Produce.versions().max;
    let mut encoder = Encoder::new();
    let mut stream = BytesMut::new();
    for id in 0..SPLIT_FRAMES as u32 {
        let frame = encoder
            .request(id, version, &produce_request(batch.clone()))
            .expect("encode produce");
        stream.extend_from_slice(&frame.to_bytes());
    }
    let stream = stream.freeze();
    let mut group = c.benchmark_group("frame-splitter");
    group.throughput(Throughput::Elements(SPLIT_FRAMES as u64));
    group.bench_function(format!("{SPLIT_FRAMES} frames of 4 KiB"), |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut splitter = FrameSplitter::new();
                let mut frames = 0;
                while let Some(frame) = splitter.next_frame(buf).expect("valid stream") {
                    black_box(frame);
                    frames += 1;
                }
                assert_eq!(frames, SPLIT_FRAMES);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_murmur2,
    bench_crc32,
    bench_codec,
    bench_splitter
);
criterion_main!(benches);
