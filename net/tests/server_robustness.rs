//! The broker under conditions a happy-path client never creates: retention deleting
//! segments under readers, idempotent retries across restarts (clean and crash-like), bad
//! input at the protocol level, and a client that floods one connection.
//! Every test binds 127.0.0.1 on a free port and bounds its waits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cfa_engine::batch::decode_records;
use cfa_engine::{BatchBuilder, ProducerStamp};
use cfa_net::protocol::*;
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};
use cfa_net::testing::{batch, values, RawClient};

fn start_with(dir: &Path, tune: impl FnOnce(&mut BrokerConfig)) -> BrokerHandle {
    let mut c = BrokerConfig::for_tests(dir);
    tune(&mut c);
    Broker::start(c).expect("broker starts")
}

fn create_with_configs(
    raw: &mut RawClient,
    name: &str,
    partitions: Option<u32>,
    configs: &[(&str, &str)],
) -> TopicResult {
    let configs = configs
        .iter()
        .map(|(k, v)| ConfigEntry {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect();
    match raw.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            partitions,
            replication_factor: None,
            configs,
        }],
        timeout_ms: 10_000,
    })) {
        Response::CreateTopics(mut c) => c.topics.remove(0),
        other => panic!("{other:?}"),
    }
}

fn list_offset(raw: &mut RawClient, topic: &str, spec: OffsetSpec) -> u64 {
    match raw.call(Request::ListOffsets(ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition { partition: 0, spec }],
        }],
    })) {
        Response::ListOffsets(mut r) => {
            let p = r.topics.remove(0).partitions.remove(0);
            assert_eq!(p.error_code, ErrorCode::None, "{:?}", p.error_message);
            p.offset.expect("an offset")
        }
        other => panic!("{other:?}"),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// One batch of one record of about `bytes` bytes whose value starts with `tag`, stamped
/// with the current time (so time-based retention sees it as fresh).
fn fresh_batch(tag: u64, bytes: usize) -> Bytes {
    let mut v = format!("{tag}:").into_bytes();
    v.resize(bytes, b'x');
    let now = now_ms();
    let mut b = BatchBuilder::new(now);
    b.push(now, None, Some(&v), &[]);
    b.finish(ProducerStamp::NONE).freeze()
}

/// Every record of partition 0 from `from` on, as (offset, value), checking contiguity.
fn read_from(raw: &mut RawClient, topic: &str, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let f = raw.fetch(topic, 0, next, 0);
        assert_eq!(f.error_code, ErrorCode::None, "{:?}", f.error_message);
        if f.batches.is_empty() {
            return out;
        }
        for b in &f.batches {
            for r in decode_records(b).expect("records") {
                if r.offset < next {
                    continue;
                }
                assert_eq!(r.offset, next, "contiguous");
                let v = r.value.expect("value");
                out.push((r.offset, String::from_utf8_lossy(&v).into_owned()));
                next += 1;
            }
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of a partition gauge in the Prometheus text of the metrics endpoint.
fn scrape_gauge(addr: SocketAddr, family: &str, topic: &str) -> Option<u64> {
    scrape_counter(addr, family, &format!("topic=\"{topic}\""))
}

/// The value of a sample whose labels include `labels` (as written, e.g. `api="Produce"`).
fn scrape_counter(addr: SocketAddr, family: &str, labels: &str) -> Option<u64> {
    let mut s = TcpStream::connect(addr).expect("metrics connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn retention_deletes_old_segments_through_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_with(dir.path(), |c| {
        c.retention_check_interval_ms = 100;
        c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    let small = [("segment.bytes", "65536"), ("max.message.bytes", "16384")];
    // By size: 384 KiB into 64 KiB segments, 128 KiB kept.
    let by_size = [small[0], small[1], ("retention.bytes", "131072")];
    let r = create_with_configs(&mut raw, "by-size", Some(1), &by_size);
    assert_eq!(r.error_code, ErrorCode::None, "{:?}", r.error_message);
    for i in 0..48 {
        let r = raw.produce("by-size", 0, vec![fresh_batch(i, 8 << 10)], Acks::Leader);
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, i));
    }
    // Done when what is left is below retention.bytes + one segment (24 batches of 8 KiB);
    // passes run after each roll, so earlier states are seen first.
    let mut seen = 0;
    let start = eventually(Duration::from_secs(10), || {
        seen = list_offset(&mut raw, "by-size", OffsetSpec::Earliest);
        (seen > 0 && 48 - seen <= 24).then_some(seen)
    })
    .unwrap_or_else(|| panic!("the log start moves forward: {seen}"));
    // Below the log start: OffsetOutOfRange, with a message naming the range.
    let f = raw.fetch("by-size", 0, 0, 0);
    assert_eq!(f.error_code, ErrorCode::OffsetOutOfRange, "{f:?}");
    let msg = f.error_message.expect("a message");
    assert!(msg.contains(&start.to_string()), "{msg}");
    assert_eq!(f.log_start_offset, start);
    // From the log start on, everything is still there, in order.
    let kept = read_from(&mut raw, "by-size", start);
    assert_eq!(kept.len() as u64, 48 - start);
    assert!(kept[0].1.starts_with(&format!("{start}:")));
    match raw.call(Request::DescribeTopic(DescribeTopicRequest {
        name: "by-size".into(),
    })) {
        Response::DescribeTopic(d) => {
            assert_eq!(d.partitions[0].log_start_offset, start);
            assert_eq!(d.partitions[0].log_end_offset, 48);
        }
        other => panic!("{other:?}"),
    }

    // By time: nothing is old enough when the segments roll, so only the periodic check
    // can delete them, later, with no request arriving in between.
    let by_time = [small[0], small[1], ("retention.ms", "2500")];
    let r = create_with_configs(&mut raw, "by-time", Some(1), &by_time);
    assert_eq!(r.error_code, ErrorCode::None, "{:?}", r.error_message);
    let t0 = Instant::now();
    for i in 0..24 {
        let r = raw.produce("by-time", 0, vec![fresh_batch(i, 8 << 10)], Acks::Leader);
        assert_eq!(r.error_code, ErrorCode::None);
    }
    if t0.elapsed() < Duration::from_millis(2000) {
        assert_eq!(list_offset(&mut raw, "by-time", OffsetSpec::Earliest), 0);
    }
    let start = eventually(Duration::from_secs(15), || {
        let s = list_offset(&mut raw, "by-time", OffsetSpec::Earliest);
        (s > 0).then_some(s)
    })
    .expect("time retention deletes the sealed segments");
    assert!(t0.elapsed() >= Duration::from_millis(2400));
    // Retention refreshed the gauge itself: no produce or fetch touched it since.
    let metrics = broker.metrics_addr().expect("metrics endpoint");
    // (The log start moves when the segments leave the log, the gauge once their files
    // are deleted: poll.)
    let gauge = eventually(Duration::from_secs(5), || {
        scrape_gauge(metrics, "cfa_partition_log_start_offset", "by-time").filter(|&g| g == start)
    });
    assert_eq!(gauge, Some(start));
    drop(raw);
    broker.shutdown().expect("clean shutdown");
}

fn init_producer(raw: &mut RawClient) -> i64 {
    match raw.call(Request::InitProducerId(InitProducerIdRequest {
        current: None,
    })) {
        Response::InitProducerId(r) => {
            assert_eq!(r.error_code, ErrorCode::None);
            r.producer_id
        }
        other => panic!("{other:?}"),
    }
}

/// A batch of UTF-8 values stamped now: `testing::batch` stamps 2023, which the
/// default 7-day retention.ms deletes as soon as a segment rolls (and the first append
/// after a restart rolls, since segment.ms counts from the first batch's timestamp).
fn stamped(values: &[&str], stamp: ProducerStamp) -> Bytes {
    let now = now_ms();
    let mut b = BatchBuilder::new(now);
    for v in values {
        b.push(now, None, Some(v.as_bytes()), &[]);
    }
    b.finish(stamp).freeze()
}

#[test]
fn idempotent_retries_are_duplicates_across_clean_and_crash_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("idem-0").join("producers.snapshot");
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("idem", 1).error_code, ErrorCode::None);
    let pid = init_producer(&mut raw);
    let other = init_producer(&mut raw);
    let stamp = |pid, seq| ProducerStamp {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
    };
    let b0 = stamped(&["a", "b"], stamp(pid, 0));
    let b1 = stamped(&["c"], stamp(pid, 2));
    let o0 = stamped(&["x"], stamp(other, 0));
    let b2 = stamped(&["d", "e"], stamp(pid, 3));
    for (b, want) in [(&b0, 0), (&b1, 2), (&o0, 3), (&b2, 4)] {
        let r = raw.produce("idem", 0, vec![b.clone()], Acks::All);
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, want));
    }
    drop(raw);
    broker.shutdown().expect("clean shutdown");
    assert!(snapshot.exists(), "a clean close writes the snapshot");

    // Clean restart: the last batch sent again is a duplicate, answered with its offset.
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    let again = raw.produce("idem", 0, vec![b2.clone()], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 4));
    // (Shard 0 opens its partitions before it accepts, so they are open by now.)
    assert!(!snapshot.exists(), "the snapshot is used once");
    let again = raw.produce("idem", 0, vec![b1.clone()], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 2));
    // The sequence state came back too: a gap is refused, the next batch is appended.
    let gap = raw.produce("idem", 0, vec![stamped(&["?"], stamp(pid, 9))], Acks::All);
    assert_eq!(gap.error_code, ErrorCode::OutOfOrderSequence, "{gap:?}");
    let b3 = stamped(&["f"], stamp(pid, 5));
    let r = raw.produce("idem", 0, vec![b3.clone()], Acks::All);
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 6));
    assert_eq!(
        values(&raw.fetch("idem", 0, 0, 0).batches),
        ["a", "b", "c", "x", "d", "e", "f"]
    );
    drop(raw);
    broker.shutdown().expect("clean shutdown");

    // Crash-like restart: no snapshot, so the table is rebuilt from the log.
    std::fs::remove_file(&snapshot).expect("snapshot written by the second close");
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    let again = raw.produce("idem", 0, vec![b3], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 6));
    let again = raw.produce("idem", 0, vec![o0], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 3));
    let gap = raw.produce("idem", 0, vec![stamped(&["?"], stamp(pid, 9))], Acks::All);
    assert_eq!(gap.error_code, ErrorCode::OutOfOrderSequence, "{gap:?}");
    assert_eq!(
        values(&raw.fetch("idem", 0, 0, 0).batches),
        ["a", "b", "c", "x", "d", "e", "f"],
        "nothing appended twice"
    );
    drop(raw);
    broker.shutdown().expect("clean shutdown");

    // A damaged snapshot is refused and rebuilt over, not trusted.
    std::fs::write(&snapshot, b"CFAPRODS garbage").expect("write");
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    let again = raw.produce("idem", 0, vec![b2], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 4));
    assert_eq!(list_offset(&mut raw, "idem", OffsetSpec::Latest), 7);
    drop(raw);
    broker.shutdown().expect("clean shutdown");
}

/// The broker reads a batch's producer stamp before the log checks its CRC (in the copy
/// into the write buffers). A corrupt batch whose stamp says "retry of an appended batch"
/// must be refused as corrupt, not acknowledged as that duplicate.
#[test]
fn a_corrupt_batch_that_looks_like_a_retry_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("idem", 1).error_code, ErrorCode::None);
    let pid = init_producer(&mut raw);
    let stamp = ProducerStamp {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let b0 = stamped(&["a", "b"], stamp);
    let r = raw.produce("idem", 0, vec![b0.clone()], Acks::All);
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 0));
    let mut bad = b0.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0x40; // the last value byte: the stamp still names the first batch
    let r = raw.produce("idem", 0, vec![Bytes::from(bad)], Acks::All);
    assert_eq!(r.error_code, ErrorCode::CorruptMessage, "{r:?}");
    let again = raw.produce("idem", 0, vec![b0], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 0));
    assert_eq!(values(&raw.fetch("idem", 0, 0, 0).batches), ["a", "b"]);
    drop(raw);
    broker.shutdown().expect("clean shutdown");
}

// ---- bad input ----

/// A request frame built by hand (docs/format.md, "Frame"): any key, version and body.
fn raw_frame(api_key: u16, version: u16, request_id: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(20 + body.len());
    f.extend_from_slice(&(16 + body.len() as u32).to_le_bytes());
    f.extend_from_slice(&api_key.to_le_bytes());
    f.extend_from_slice(&version.to_le_bytes());
    f.extend_from_slice(&request_id.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes()); // flags: a request
    f.extend_from_slice(&0u16.to_le_bytes()); // error code
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// A plain socket speaking frames: sends bytes, reads whole response frames.
struct Wire {
    stream: TcpStream,
    buf: BytesMut,
    splitter: FrameSplitter,
}

impl Wire {
    fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Wire {
            stream,
            buf: BytesMut::new(),
            splitter: FrameSplitter::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next response, or `None` once the broker closed the connection.
    fn recv(&mut self) -> Option<DecodedResponse> {
        loop {
            if let Some(frame) = self.splitter.next_frame(&mut self.buf).expect("framing") {
                return Some(decode_response(frame).expect("a valid response"));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("no answer and no close within the timeout: {e}"),
            }
        }
    }

    fn failure(&mut self, request_id: u32) -> FailedResponse {
        let r = self.recv().expect("an answer, not a close");
        assert_eq!(r.request_id, request_id);
        match r.response {
            Response::Failed(f) => f,
            other => panic!("{other:?}"),
        }
    }
}

/// The broker still serves normal work.
fn still_serves(good: &mut RawClient, topic: &str) {
    let end = list_offset(good, topic, OffsetSpec::Latest);
    let r = good.produce(
        topic,
        0,
        vec![batch(&["alive"], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, end));
    let f = good.fetch(topic, 0, end, 0);
    assert_eq!(values(&f.batches), ["alive"]);
}

#[test]
fn bad_frames_get_a_named_error_or_a_close_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_with(dir.path(), |_| {});
    let addr = broker.local_addr();
    let mut good = RawClient::connect(addr).expect("connect");
    assert_eq!(good.create_topic("t", 1).error_code, ErrorCode::None);

    // An unknown API key: a failure frame echoing the key and id; the connection stays.
    let mut w = Wire::connect(addr);
    w.send(&raw_frame(999, 0, 41, &[]));
    let f = w.failure(41);
    assert_eq!((f.api_key, f.error_code), (999, ErrorCode::UnknownApi));
    assert!(f.error_message.unwrap_or_default().contains("999"));
    let ok = encode_request(42, 0, &Request::ListTopics(ListTopicsRequest {}))
        .expect("encode")
        .to_bytes();
    w.send(&ok);
    let r = w.recv().expect("served after the bad frame");
    assert!(matches!(r.response, Response::ListTopics(_)), "{r:?}");
    still_serves(&mut good, "t");

    // An unsupported version of a known API.
    w.send(&raw_frame(ApiKey::Metadata.as_u16(), 99, 43, &[]));
    let f = w.failure(43);
    assert_eq!(f.error_code, ErrorCode::UnsupportedVersion);
    // ApiVersions keeps its frozen v0 answer: the ranges this broker speaks.
    w.send(&raw_frame(ApiKey::ApiVersions.as_u16(), 99, 44, &[]));
    let r = w.recv().expect("answer");
    assert_eq!((r.request_id, r.api_version), (44, 0));
    match r.response {
        Response::ApiVersions(v) => {
            assert_eq!(v.error_code, ErrorCode::UnsupportedVersion);
            assert!(!v.versions.is_empty());
        }
        other => panic!("{other:?}"),
    }

    // A valid header around a body that is not a flatbuffer: InvalidFrame (the protocol
    // maps every framing and flatbuffer failure to it, docs/format.md).
    w.send(&raw_frame(ApiKey::Metadata.as_u16(), 0, 45, &[0xFF; 24]));
    let f = w.failure(45);
    assert_eq!(f.error_code, ErrorCode::InvalidFrame, "{f:?}");
    // A well-formed flatbuffer with a value no request may carry: InvalidRequest. The
    // timestamp is patched after encoding (the encoder refuses to write it).
    let marker: i64 = 0x1122_3344_5566_7788;
    let req = Request::ListOffsets(ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition: 0,
                spec: OffsetSpec::Timestamp(marker),
            }],
        }],
    });
    let mut frame = encode_request(46, 0, &req)
        .expect("encode")
        .to_bytes()
        .to_vec();
    let at = frame
        .windows(8)
        .position(|w| w == marker.to_le_bytes())
        .expect("the timestamp is in the body");
    frame[at..at + 8].copy_from_slice(&(-7i64).to_le_bytes());
    w.send(&frame);
    let f = w.failure(46);
    assert_eq!(f.error_code, ErrorCode::InvalidRequest, "{f:?}");
    assert!(f.error_message.unwrap_or_default().contains("-7"));
    still_serves(&mut good, "t");

    // A truncated frame, then the client closes: no answer, the broker just drops it.
    let mut cut = Wire::connect(addr);
    let whole = encode_request(1, 0, &Request::ListTopics(ListTopicsRequest {}))
        .expect("encode")
        .to_bytes();
    cut.send(&whole[..whole.len() / 2]);
    cut.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    assert!(cut.recv().is_none(), "closed without an answer");
    // A length field below the smallest frame: the stream lost its framing; closed.
    let mut tiny = Wire::connect(addr);
    tiny.send(&3u32.to_le_bytes());
    tiny.send(&[0u8; 16]);
    assert!(tiny.recv().is_none(), "closed");
    still_serves(&mut good, "t");
    broker.shutdown().expect("clean shutdown");
}

#[test]
fn create_topics_refuses_bad_partition_counts_and_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_with(dir.path(), |_| {});
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    // The wire type of CreatableTopic.partitions is `uint` (net/schema/topics.fbs): a
    // negative count cannot be sent. Its bit pattern (-1 as u32) is the largest value.
    for bad in [0, (-1i32) as u32, 10_001] {
        let r = create_with_configs(&mut raw, "parts", Some(bad), &[]);
        assert_eq!(r.error_code, ErrorCode::InvalidPartitions, "{bad}: {r:?}");
        assert!(r.error_message.unwrap_or_default().contains("partitions"));
    }
    let long = "x".repeat(250);
    for bad in [
        "",
        ".",
        "..",
        "bad name",
        "a/b",
        "é",
        "__internal",
        long.as_str(),
    ] {
        let r = create_with_configs(&mut raw, bad, Some(1), &[]);
        assert_eq!(r.error_code, ErrorCode::InvalidTopicName, "{bad:?}: {r:?}");
        assert!(r.error_message.is_some());
    }
    // Bad topic configs are named too.
    let r = create_with_configs(&mut raw, "cfg", Some(1), &[("retention.ms", "soon")]);
    assert_eq!(r.error_code, ErrorCode::InvalidConfig);
    assert!(r.error_message.unwrap_or_default().contains("retention.ms"));
    // None of them exists; a good one still does.
    match raw.call(Request::ListTopics(ListTopicsRequest {})) {
        Response::ListTopics(l) => {
            let names: Vec<&str> = l.topics.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["__consumer_offsets"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(raw.create_topic("parts", 1).error_code, ErrorCode::None);
    broker.shutdown().expect("clean shutdown");
}

// ---- overload ----

fn produce_frame(id: u32, tag: u64, bytes: usize) -> Bytes {
    let req = Request::Produce(ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "flood".into(),
            partitions: vec![ProducePartition {
                partition: 0,
                batches: vec![fresh_batch(tag, bytes)],
            }],
        }],
    });
    encode_request(id, 0, &req).expect("encode").to_bytes()
}

/// A long poll on an empty partition: its response is the first one the connection owes,
/// so every response after it waits (responses go out in request order).
fn long_poll_frame(id: u32) -> Bytes {
    let req = Request::Fetch(FetchRequest {
        replica_id: None,
        max_wait_ms: 30_000,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: "idle".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
            }],
        }],
    });
    encode_request(id, 0, &req).expect("encode").to_bytes()
}

/// Writes frames as fast as the socket takes them until a write makes no progress for a
/// second; reports (bytes written, frames started), then on `go` finishes the frame it
/// was in and returns.
fn flood(
    mut w: TcpStream,
    batch_bytes: usize,
    cap_bytes: usize,
    blocked: std::sync::mpsc::Sender<(usize, u32)>,
    go: std::sync::mpsc::Receiver<()>,
) {
    w.set_write_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let (mut written, mut frames) = (0usize, 0u32);
    loop {
        // Request ids from 2 (1 is the long poll); batch tags = offsets from 0.
        let frame = produce_frame(frames + 2, u64::from(frames), batch_bytes);
        frames += 1;
        let mut at = 0;
        while at < frame.len() {
            match w.write(&frame[at..]) {
                Ok(n) => {
                    at += n;
                    written += n;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    blocked.send((written, frames)).expect("main waits");
                    go.recv().expect("go");
                    w.set_write_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    w.write_all(&frame[at..]).expect("the rest of the frame");
                    return;
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        if written > cap_bytes {
            // Never blocked: the broker kept reading. Main fails the test on the figures.
            blocked.send((written, frames)).expect("main waits");
            return;
        }
    }
}

/// A producer pipelines acks=1 requests on one connection as fast as it can while the
/// broker cannot answer any of them (a long poll heads the response queue) and the client
/// reads nothing. The broker must stop reading at `connection_inflight_bytes`, so the
/// client's writes block; then every request is answered and every batch is readable.
///
/// Why a long poll holds the responses rather than a socket the client leaves unread: on
/// loopback, a client that writes non-stop and never reads got its writes stuck while the
/// broker had read and answered every byte sent (measured: 0 requests held), a TCP stall
/// on the client side, so that setup never reached the broker's bound.
#[test]
fn a_client_that_floods_one_connection_is_held_to_the_inflight_bound() {
    const INFLIGHT: usize = 1 << 20;
    const BATCH: usize = 128 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_with(dir.path(), |c| {
        c.connection_inflight_bytes = INFLIGHT;
        c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = broker.metrics_addr().expect("metrics endpoint");
    let addr = broker.local_addr();
    let mut admin = RawClient::connect(addr).expect("connect");
    assert_eq!(admin.create_topic("flood", 1).error_code, ErrorCode::None);
    assert_eq!(admin.create_topic("idle", 1).error_code, ErrorCode::None);
    let mut stream = TcpStream::connect(addr).expect("connect");
    let poll = long_poll_frame(1);
    stream.write_all(&poll).expect("long poll");
    let frame_bytes = produce_frame(2, 0, BATCH).len();
    // What the client may get out before its writes stop: the broker's bound plus the
    // socket buffers of the request path (the client's send buffer, the broker's receive
    // buffer): 16 MiB is several times what loopback autotuning reached here.
    let allowed = INFLIGHT + (16 << 20);
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let w = stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        flood(w, BATCH, allowed + (64 << 20), blocked_tx, go_rx);
    });
    let (written, frames) = blocked_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the writer reports");
    // The broker's own view, steady while the client is blocked: requests appended (one
    // record each) and answered (none can be yet). Appended and unanswered = held.
    let appended = scrape_gauge(metrics, "cfa_partition_log_end_offset", "flood")
        .expect("log end gauge") as usize;
    let answered = scrape_counter(metrics, "cfa_requests_total", "api=\"Produce\"").unwrap_or(0);
    println!(
        "flood: {written} bytes written ({frames} requests of {frame_bytes} bytes) before \
         the writes blocked; the broker holds {appended} requests, answered {answered} \
         (bound {INFLIGHT}, allowed written {allowed})"
    );
    assert_eq!(answered, 0, "the long poll heads the response queue");
    let held_bytes = poll.len() + appended * frame_bytes;
    assert!(
        held_bytes <= INFLIGHT && held_bytes + frame_bytes > INFLIGHT,
        "the broker reads up to its in-flight bound and no further: {appended} x {frame_bytes}"
    );
    assert!(
        written <= allowed,
        "the broker kept reading: {written} bytes written, allowed {allowed}"
    );
    // Data for the long poll ends it; then every response flows, in request order.
    let woke = admin.produce("idle", 0, vec![fresh_batch(0, 10)], Acks::Leader);
    assert_eq!(woke.error_code, ErrorCode::None);
    let _ = go_tx.send(());
    let mut reader = RawReader::new(stream.try_clone().expect("clone"));
    let first = reader.next().expect("the long poll's answer");
    assert_eq!(first.request_id, 1);
    assert!(matches!(first.response, Response::Fetch(_)), "{first:?}");
    for i in 0..frames {
        let r = reader.next().expect("a response");
        assert_eq!(r.request_id, i + 2);
        let p = match r.response {
            Response::Produce(mut p) => p.topics.remove(0).partitions.remove(0),
            other => panic!("{other:?}"),
        };
        assert_eq!(p.error_code, ErrorCode::None, "{:?}", p.error_message);
        assert_eq!(p.base_offset, u64::from(i), "appended once, in order");
    }
    writer.join().expect("writer");
    let all = read_from(&mut admin, "flood", 0);
    assert_eq!(
        all.len(),
        frames as usize,
        "every acknowledged batch is readable"
    );
    for (offset, v) in &all {
        assert!(
            v.starts_with(&format!("{offset}:")),
            "batch {offset} holds its data"
        );
    }
    drop(stream);
    broker.shutdown().expect("clean shutdown");
}

/// Reads response frames off a socket.
struct RawReader {
    stream: TcpStream,
    buf: BytesMut,
    splitter: FrameSplitter,
}

impl RawReader {
    fn new(stream: TcpStream) -> RawReader {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        RawReader {
            stream,
            buf: BytesMut::new(),
            splitter: FrameSplitter::new(),
        }
    }

    fn next(&mut self) -> Option<DecodedResponse> {
        loop {
            if let Some(frame) = self.splitter.next_frame(&mut self.buf).expect("framing") {
                return Some(decode_response(frame).expect("a response"));
            }
            let mut chunk = vec![0u8; 64 << 10];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}
