//! The broker through the raw protocol (no client SDK): topics, produce, fetch, list
//! offsets, idempotent retries, bad input, restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use cfa_engine::ProducerStamp;
use cfa_net::protocol::*;
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};
use cfa_net::testing::{batch, values, RawClient};

fn start(dir: &std::path::Path, shards: usize) -> BrokerHandle {
    let mut c = BrokerConfig::for_tests(dir);
    c.shards = shards;
    Broker::start(c).expect("broker starts")
}

#[test]
fn produce_fetch_and_metadata_on_two_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 2);
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("soccer", 4).error_code, ErrorCode::None);
    assert_eq!(
        raw.create_topic("soccer", 4).error_code,
        ErrorCode::TopicAlreadyExists
    );
    assert_eq!(
        raw.create_topic("bad name", 1).error_code,
        ErrorCode::InvalidTopicName
    );
    assert_eq!(
        raw.create_topic("zero", 0).error_code,
        ErrorCode::InvalidPartitions
    );
    // Every partition, whichever shard owns it, takes and returns records.
    for p in 0..4 {
        let r = raw.produce(
            "soccer",
            p,
            vec![batch(&["a", "b"], ProducerStamp::NONE)],
            Acks::All,
        );
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 0), "{r:?}");
        let r = raw.produce(
            "soccer",
            p,
            vec![batch(&["c"], ProducerStamp::NONE)],
            Acks::Leader,
        );
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 2));
        let f = raw.fetch("soccer", p, 0, 0);
        assert_eq!(f.error_code, ErrorCode::None);
        assert_eq!(f.high_watermark, 3);
        assert_eq!(values(&f.batches), ["a", "b", "c"]);
    }
    match raw.call(Request::Metadata(MetadataRequest { topics: None })) {
        Response::Metadata(m) => {
            let t = m
                .topics
                .iter()
                .find(|t| t.name == "soccer")
                .expect("listed");
            assert_eq!(t.partitions.len(), 4);
            assert_eq!(m.brokers[0].port, broker.local_addr().port());
        }
        other => panic!("{other:?}"),
    }
    let r = raw.produce(
        "nope",
        0,
        vec![batch(&["x"], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!(r.error_code, ErrorCode::UnknownTopic);
    let r = raw.produce(
        "soccer",
        9,
        vec![batch(&["x"], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!(r.error_code, ErrorCode::UnknownPartition);
    broker.shutdown().expect("clean shutdown");
}

/// One fetch of many partitions on two shards: each answer in the request's order with
/// its own partition's records, whether the reads run at once (budgets fit the total) or
/// one after another (they do not: each gets what the ones before left).
#[test]
fn a_fetch_of_many_partitions_answers_each_in_request_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 2);
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("a", 4).error_code, ErrorCode::None);
    assert_eq!(raw.create_topic("b", 2).error_code, ErrorCode::None);
    let fill = |raw: &mut RawClient, t: &str, p: u32| {
        let v = format!("{t}{p}");
        let r = raw.produce(t, p, vec![batch(&[&v, &v], ProducerStamp::NONE)], Acks::All);
        assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
        let r = raw.produce(t, p, vec![batch(&[&v], ProducerStamp::NONE)], Acks::All);
        assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
    };
    for p in 0..4 {
        fill(&mut raw, "a", p);
    }
    for p in 0..2 {
        fill(&mut raw, "b", p);
    }
    // Partition 9 of "a" does not exist: an error in its place, the others served.
    let order: [(&str, &[u32]); 2] = [("a", &[3, 0, 9, 2, 1]), ("b", &[1, 0])];
    let request = |max_bytes: u32, partition_max_bytes: u32| {
        Request::Fetch(FetchRequest {
            replica_id: None,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes,
            topics: order
                .iter()
                .map(|(t, ps)| FetchTopic {
                    name: (*t).into(),
                    partitions: ps
                        .iter()
                        .map(|p| FetchPartition {
                            partition: *p,
                            fetch_offset: 0,
                            partition_max_bytes,
                        })
                        .collect(),
                })
                .collect(),
        })
    };
    // At once: 1 MiB each fits the total. Sequential: a total of 1 byte, so the first
    // partition gets one batch and the rest none (Kafka's budget).
    for (max_bytes, whole) in [(64 << 20, true), (1, false)] {
        let Response::Fetch(f) = raw.call(request(max_bytes, 1 << 20)) else {
            panic!("not a fetch response");
        };
        let mut first = true;
        for ((t, ps), got) in order.iter().zip(&f.topics) {
            assert_eq!(&got.name, t);
            let answered: Vec<u32> = got.partitions.iter().map(|p| p.partition).collect();
            assert_eq!(&answered, ps);
            for part in &got.partitions {
                if part.partition == 9 {
                    assert_eq!(part.error_code, ErrorCode::UnknownPartition);
                    continue;
                }
                assert_eq!(part.error_code, ErrorCode::None, "{part:?}");
                let v = format!("{t}{}", part.partition);
                let want: Vec<&str> = match (whole, first) {
                    (true, _) => vec![&v, &v, &v],
                    (false, true) => vec![&v, &v],
                    (false, false) => vec![],
                };
                assert_eq!(values(&part.batches), want, "{t}-{}", part.partition);
                first = false;
            }
        }
    }
    broker.shutdown().expect("clean shutdown");
}

#[test]
fn long_poll_returns_when_data_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 2);
    let addr = broker.local_addr();
    let mut raw = RawClient::connect(addr).expect("connect");
    assert_eq!(raw.create_topic("t", 2).error_code, ErrorCode::None);
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut raw = RawClient::connect(addr).expect("connect");
        raw.produce(
            "t",
            1,
            vec![batch(&["late"], ProducerStamp::NONE)],
            Acks::Leader,
        )
    });
    let t0 = std::time::Instant::now();
    let f = raw.fetch("t", 1, 0, 5_000);
    let waited = t0.elapsed();
    assert_eq!(values(&f.batches), ["late"]);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(
        producer.join().expect("producer").error_code,
        ErrorCode::None
    );
    // Nothing arrives: the fetch ends at max_wait with no data.
    let t0 = std::time::Instant::now();
    let f = raw.fetch("t", 0, 0, 200);
    assert!(f.batches.is_empty() && t0.elapsed() >= Duration::from_millis(190));
    broker.shutdown().expect("clean shutdown");
}

#[test]
fn idempotent_retries_are_written_once_and_data_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    assert_eq!(raw.create_topic("idem", 1).error_code, ErrorCode::None);
    let pid = match raw.call(Request::InitProducerId(InitProducerIdRequest {
        current: None,
    })) {
        Response::InitProducerId(r) => {
            assert_eq!(r.error_code, ErrorCode::None);
            r.producer_id
        }
        other => panic!("{other:?}"),
    };
    let stamp = |seq| ProducerStamp {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
    };
    let b0 = batch(&["one", "two"], stamp(0));
    let b1 = batch(&["three"], stamp(2));
    assert_eq!(
        raw.produce("idem", 0, vec![b0.clone()], Acks::All)
            .base_offset,
        0
    );
    assert_eq!(
        raw.produce("idem", 0, vec![b1.clone()], Acks::All)
            .base_offset,
        2
    );
    // The response to b0 was "lost": the producer sends it again, byte for byte.
    let again = raw.produce("idem", 0, vec![b0], Acks::All);
    assert_eq!((again.error_code, again.base_offset), (ErrorCode::None, 0));
    // A gap in sequences is refused.
    let gap = raw.produce("idem", 0, vec![batch(&["x"], stamp(9))], Acks::All);
    assert_eq!(gap.error_code, ErrorCode::OutOfOrderSequence);
    let f = raw.fetch("idem", 0, 0, 0);
    assert_eq!(values(&f.batches), ["one", "two", "three"], "written once");
    drop(raw);
    broker.shutdown().expect("clean shutdown");
    // Restart: topics and records are back.
    let broker = start(dir.path(), 1);
    let mut raw = RawClient::connect(broker.local_addr()).expect("connect");
    let f = raw.fetch("idem", 0, 0, 0);
    assert_eq!(values(&f.batches), ["one", "two", "three"]);
    broker.shutdown().expect("clean shutdown");
}

#[test]
fn bad_input_gets_an_error_or_a_closed_connection_and_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let addr = broker.local_addr();
    let mut good = RawClient::connect(addr).expect("connect");
    assert_eq!(good.create_topic("t", 1).error_code, ErrorCode::None);
    // A frame length of 2^31: the broker closes that connection.
    let mut bad = TcpStream::connect(addr).expect("connect");
    bad.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    bad.write_all(&(1u32 << 31).to_le_bytes()).expect("write");
    bad.write_all(&[0u8; 64]).expect("write");
    let mut sink = Vec::new();
    let _ = bad.read_to_end(&mut sink);
    // Garbage bytes.
    let mut garbage = TcpStream::connect(addr).expect("connect");
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = garbage.write_all(&[0xA5u8; 4096]);
    let _ = garbage.read_to_end(&mut sink);
    // A client that connects and sends nothing does not block anyone.
    let _idle = TcpStream::connect(addr).expect("connect");
    // A corrupt batch (flipped byte after the CRC was computed) is refused whole.
    let mut b = BytesMut::from(&batch(&["ok"], ProducerStamp::NONE)[..]);
    let last = b.len() - 1;
    b[last] ^= 0xFF;
    let r = good.produce("t", 0, vec![b.freeze()], Acks::All);
    assert_eq!(r.error_code, ErrorCode::CorruptMessage, "{r:?}");
    // A batch over max.message.bytes.
    let big = "x".repeat(2 << 20);
    let r = good.produce(
        "t",
        0,
        vec![batch(&[big.as_str()], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!(r.error_code, ErrorCode::RecordTooLarge, "{r:?}");
    assert!(r
        .error_message
        .unwrap_or_default()
        .contains("max.message.bytes"));
    // Nothing partial was appended; the good connection still works.
    let r = good.produce(
        "t",
        0,
        vec![batch(&["fine"], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 0));
    broker.shutdown().expect("clean shutdown");
}

#[test]
fn deleting_a_topic_under_a_long_poll_answers_and_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 2);
    let addr = broker.local_addr();
    let mut admin = RawClient::connect(addr).expect("connect");
    assert_eq!(admin.create_topic("gone", 2).error_code, ErrorCode::None);
    let pollers: Vec<_> = (0..2u32)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = RawClient::connect(addr).expect("connect");
                c.fetch("gone", p, 0, 3_000)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    match admin.call(Request::DeleteTopics(DeleteTopicsRequest {
        names: vec!["gone".into()],
        timeout_ms: 10_000,
    })) {
        Response::DeleteTopics(d) => assert_eq!(d.topics[0].error_code, ErrorCode::None),
        other => panic!("{other:?}"),
    }
    for p in pollers {
        let f = p.join().expect("the long poll is answered");
        assert!(f.batches.is_empty());
    }
    // The broker is alive and serves everyone else.
    assert_eq!(admin.create_topic("after", 1).error_code, ErrorCode::None);
    let r = admin.produce(
        "after",
        0,
        vec![batch(&["x"], ProducerStamp::NONE)],
        Acks::All,
    );
    assert_eq!(r.error_code, ErrorCode::None);
    broker.shutdown().expect("clean shutdown");
}
