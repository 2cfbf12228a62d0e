//! Producer -> broker -> consumer round trips through the client SDK, on an in-process
//! broker listening on 127.0.0.1.

mod client_support;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use cfa_net::client::partitioner::partition_for_key;
use cfa_net::client::{
    Acks, ClientError, Codec, Compression, Consumer, ConsumerConfig, Producer, ProducerConfig,
    ProducerRecord, ProducerRecordRef, RecordHeader, TopicPartition,
};
use cfa_net::protocol::{ConfigEntry, ErrorCode, MetadataRequest, OffsetSpec, Request, Response};

use client_support::*;

#[test]
fn keyed_records_round_trip_in_per_key_order() {
    let broker = TestBroker::start();
    broker.create_topic("soccer", 4);
    let producer = broker.producer();
    let keys: Vec<String> = (0..10).map(|k| format!("game-{k}")).collect();
    let records: Vec<ProducerRecord> = (0..300)
        .map(|i| {
            let key = &keys[i % keys.len()];
            ProducerRecord::new("soccer", format!("{key}:{i}")).with_key(key.clone())
        })
        .collect();
    let reports = send_all(&producer, records);
    let count = NonZeroU32::new(4).expect("4");
    let mut partition_of_key: BTreeMap<String, u32> = BTreeMap::new();
    for (i, m) in reports.iter().enumerate() {
        let key = &keys[i % keys.len()];
        assert_eq!(
            m.partition,
            partition_for_key(key.as_bytes(), count),
            "{key}"
        );
        let seen = partition_of_key.entry(key.clone()).or_insert(m.partition);
        assert_eq!(*seen, m.partition, "same key, same partition");
        assert!(m.offset.is_some());
    }
    producer.close();

    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer.assign(partitions("soccer", 4)).expect("assign");
    let records = poll_n(&mut consumer, 300);
    assert_eq!(records.len(), 300);
    let mut last_seq: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let key = String::from_utf8(r.key.as_deref().expect("key").to_vec()).expect("utf-8");
        let value = value_str(r);
        let (vkey, seq) = value.split_once(':').expect("key:seq");
        assert_eq!(vkey, key);
        let seq: usize = seq.parse().expect("number");
        if let Some(prev) = last_seq.insert(key.clone(), seq) {
            assert!(prev < seq, "key {key}: {seq} after {prev}");
        }
        assert_eq!(partition_of_key[&key], r.partition);
        let m = &reports[seq];
        assert_eq!(
            m.offset,
            Some(r.offset),
            "report and record agree on the offset"
        );
    }
    assert_quiet(&mut consumer, Duration::from_millis(300));
    consumer.close().expect("close");
}

#[test]
fn every_codec_round_trips() {
    let broker = TestBroker::start();
    for codec in [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ] {
        let topic = format!("codec-{codec}");
        broker.create_topic(&topic, 1);
        let producer = Producer::new(ProducerConfig {
            compression: Compression::from(codec),
            linger_ms: 20,
            ..broker.producer_config()
        })
        .expect("producer");
        let values: Vec<String> = (0..200)
            .map(|i| format!("{codec} value {i} {}", "x".repeat(i % 50)))
            .collect();
        let records = values
            .iter()
            .map(|v| {
                ProducerRecord::new(topic.as_str(), v.clone())
                    .with_header("codec", Some(Bytes::from(codec.to_string())))
            })
            .collect();
        send_all(&producer, records);
        producer.close();
        let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
        consumer.assign(partitions(&topic, 1)).expect("assign");
        let got = poll_n(&mut consumer, values.len());
        let got_values: Vec<String> = got.iter().map(value_str).collect();
        assert_eq!(got_values, values, "{codec}");
        assert_eq!(
            got[0].headers[0].value.as_deref(),
            Some(codec.to_string().as_bytes())
        );
        let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..values.len() as u64).collect::<Vec<_>>());
        consumer.close().expect("close");
    }
}

#[test]
fn acks_zero_and_one_deliver() {
    let broker = TestBroker::start();
    broker.create_topic("acks", 1);
    for acks in [Acks::None, Acks::Leader] {
        let producer = Producer::new(ProducerConfig {
            acks,
            enable_idempotence: false,
            ..broker.producer_config()
        })
        .expect("producer");
        let records = (0..20)
            .map(|i| ProducerRecord::new("acks", format!("{acks:?}-{i}")))
            .collect();
        let reports = send_all(&producer, records);
        for m in &reports {
            assert_eq!(m.offset.is_some(), acks != Acks::None, "{acks:?}");
        }
        producer.close();
    }
    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer.assign(partitions("acks", 1)).expect("assign");
    let values: BTreeSet<String> = poll_n(&mut consumer, 40).iter().map(value_str).collect();
    assert_eq!(values.len(), 40);
    consumer.close().expect("close");
}

/// `send_with_callback`: every record's report reaches its callback once, in per-partition
/// offset order; a record refused up front returns the error and never calls back.
#[test]
fn callbacks_get_every_report_and_refused_records_none() {
    let broker = TestBroker::start();
    broker.create_topic("calls", 2);
    let producer = broker.producer();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..200u32 {
        let tx = tx.clone();
        let record = ProducerRecord::new("calls", format!("v{i}")).with_partition(i % 2);
        producer
            .send_with_callback(record, move |r| tx.send((i, r)).expect("channel"))
            .expect("queued");
    }
    let refused_calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&refused_calls);
    let refused = producer.send_with_callback(
        ProducerRecord::new("calls", "x").with_partition(7),
        move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    );
    assert_refused_for_partition_7(&refused);
    producer.flush();
    drop(tx);
    let mut reports: Vec<(u32, _)> = rx.iter().collect();
    assert_eq!(reports.len(), 200, "one report per record");
    reports.sort_by_key(|(i, _)| *i);
    let delivered = reports
        .into_iter()
        .map(|(i, r)| (u64::from(i), r.expect("delivered")));
    assert_alternate_partitions_in_send_order(delivered);
    producer.close();
    assert_eq!(refused_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A send to partition 7 of a 2-partition topic was refused up front.
fn assert_refused_for_partition_7(refused: &Result<(), ClientError>) {
    assert!(
        matches!(
            refused,
            Err(ClientError::UnknownPartition { partition: 7, .. })
        ),
        "{refused:?}"
    );
}

/// Reports of records `i` = 0, 1, ... sent to partition `i % 2`, in send order: each on
/// its partition, at the next offset there.
fn assert_alternate_partitions_in_send_order(
    reports: impl Iterator<Item = (u64, cfa_net::client::RecordMetadata)>,
) {
    let mut next_offset = [0u64; 2];
    for (i, m) in reports {
        assert_eq!(u64::from(m.partition), i % 2);
        let p = m.partition as usize;
        assert_eq!(
            m.offset,
            Some(next_offset[p]),
            "record {i}: offsets in send order"
        );
        next_offset[p] += 1;
    }
}

/// `send_with_opaque`: the producer's one handler gets every record's report with the
/// record's opaque, the sizes sent and per-partition offsets in send order; a producer
/// without a handler refuses the call, and a refused record is never reported.
#[test]
fn the_delivery_handler_gets_every_report_with_its_opaque() {
    let broker = TestBroker::start();
    broker.create_topic("opaque", 2);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let handler: cfa_net::client::DeliveryHandler = std::sync::Arc::new(move |opaque, r| {
        // The report is lent: one metadata serves a whole batch, rewritten per record.
        tx.lock()
            .expect("lock")
            .send((opaque, r.clone()))
            .expect("channel");
    });
    let producer =
        Producer::with_delivery_handler(broker.producer_config(), handler).expect("producer");
    let sent_at = std::time::Instant::now();
    for i in 0..200u64 {
        let record = ProducerRecord::new("opaque", "v".repeat(i as usize))
            .with_partition((i % 2) as u32)
            .with_key(format!("k{i}"));
        producer.send_with_opaque(record, 1000 + i).expect("queued");
    }
    let refused =
        producer.send_with_opaque(ProducerRecord::new("opaque", "x").with_partition(7), 7);
    assert_refused_for_partition_7(&refused);
    producer.flush();
    let flushed_at = std::time::Instant::now();
    let mut reports: Vec<(u64, _)> = rx.try_iter().collect();
    assert_eq!(
        reports.len(),
        200,
        "one report per record, none for the refused one"
    );
    reports.sort_by_key(|(opaque, _)| *opaque);
    let delivered: Vec<_> = reports
        .into_iter()
        .map(|(opaque, r)| (opaque - 1000, r.expect("delivered")))
        .collect();
    for (i, m) in &delivered {
        assert_eq!(m.value_bytes, *i as usize);
        assert_eq!(m.key_bytes, format!("k{i}").len());
        assert!(
            sent_at <= m.acked_at && m.acked_at <= flushed_at,
            "acked within the run"
        );
    }
    assert_alternate_partitions_in_send_order(delivered.into_iter());
    producer.close();

    let plain = broker.producer();
    let err = plain.send_with_opaque(ProducerRecord::new("opaque", "x"), 1);
    assert!(matches!(err, Err(ClientError::Config(_))), "{err:?}");
    plain.close();
}

/// `send_ref_with_opaque` copies a borrowed record before it returns: the caller's
/// buffers are overwritten after every call, and every record still arrives with the
/// key, value, header and timestamp it had when it was sent. A record too large for the
/// topic is refused as with an owned record.
#[test]
fn a_borrowed_record_is_copied_before_send_returns() {
    let broker = TestBroker::start();
    broker.create_topic("lent", 1);
    let reports = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&reports);
    let handler: cfa_net::client::DeliveryHandler = std::sync::Arc::new(move |_, r| {
        assert!(r.is_ok(), "{r:?}");
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let producer =
        Producer::with_delivery_handler(broker.producer_config(), handler).expect("producer");
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let header = [RecordHeader {
        key: Bytes::from_static(b"h"),
        value: Some(Bytes::from_static(b"hv")),
    }];
    for i in 0..100u64 {
        key.clear();
        key.extend_from_slice(format!("k{i}").as_bytes());
        value.clear();
        value.extend_from_slice(format!("value-{i}").repeat(i as usize % 7 + 1).as_bytes());
        let record = ProducerRecordRef::new("lent", &value)
            .with_key(&key)
            .with_partition(0)
            .with_headers(&header)
            .with_timestamp_ms(1_000 + i as i64);
        producer.send_ref_with_opaque(record, i).expect("queued");
        // The next record reuses the buffers at once; what was sent must not change.
        key.fill(b'#');
        value.fill(b'#');
    }
    let huge = vec![0u8; 2 << 20];
    let refused = producer.send_ref_with_opaque(ProducerRecordRef::new("lent", &huge), 7);
    assert!(
        matches!(refused, Err(ClientError::RecordTooLarge { .. })),
        "{refused:?}"
    );
    producer.close();
    assert_eq!(reports.load(std::sync::atomic::Ordering::Relaxed), 100);

    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer.assign(partitions("lent", 1)).expect("assign");
    let records = poll_n(&mut consumer, 100);
    assert_eq!(records.len(), 100);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(value_str(r), format!("value-{i}").repeat(i % 7 + 1));
        assert_eq!(r.timestamp_ms, 1_000 + i as i64);
        assert_eq!(r.headers, header);
    }
    consumer.close().expect("close");
}

#[test]
fn size_limits_name_the_sizes() {
    let broker = TestBroker::start();
    let small = [ConfigEntry {
        key: "max.message.bytes".into(),
        value: "2048".into(),
    }];
    broker
        .admin()
        .create_topic("small", Some(1), None, &small)
        .expect("created");
    let producer = broker.producer();
    // Client side: larger than max_request_bytes, refused before sending.
    let err = producer
        .send(ProducerRecord::new("small", vec![0u8; 2 << 20]))
        .expect_err("too large for a request");
    assert!(matches!(err, ClientError::RecordTooLarge { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("exceeds max_request_bytes 1048576"),
        "{err}"
    );
    // Broker side: within the request limit, above the topic's max.message.bytes.
    let report = producer
        .send(ProducerRecord::new("small", vec![7u8; 10_000]))
        .expect("queued")
        .wait_timeout(WAIT);
    let err = report.expect_err("refused by the broker");
    assert_eq!(err.code(), Some(ErrorCode::RecordTooLarge), "{err}");
    // A record that fits still goes through.
    let ok = producer
        .send(ProducerRecord::new("small", vec![1u8; 100]))
        .expect("queued")
        .wait_timeout(WAIT)
        .expect("delivered");
    assert_eq!(ok.partition, 0);
    producer.close();
}

#[test]
fn unknown_topics_and_unreachable_brokers_are_named() {
    let broker = TestBroker::start();
    let producer = broker.producer();
    let err = producer
        .send(ProducerRecord::new("nope", "x"))
        .expect_err("unknown topic");
    assert!(err.to_string().starts_with("unknown topic 'nope'"), "{err}");
    producer.close();
    let addr = broker.addr();
    broker.shutdown();
    let producer = Producer::new(ProducerConfig::new(&addr)).expect("config");
    let err = producer
        .send(ProducerRecord::new("t", "x"))
        .expect_err("no broker");
    assert!(
        err.to_string()
            .starts_with(&format!("broker unreachable at {addr}")),
        "{err}"
    );
}

#[test]
fn admin_lists_describes_and_deletes() {
    let broker = TestBroker::start();
    let admin = broker.admin();
    admin.create_topic("a", Some(3), None, &[]).expect("a");
    admin.create_topic("b", Some(1), None, &[]).expect("b");
    let err = admin
        .create_topic("a", Some(3), None, &[])
        .expect_err("exists");
    assert_eq!(err.code(), Some(ErrorCode::TopicAlreadyExists), "{err}");
    let names: Vec<String> = admin
        .list_topics()
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .filter(|n| !n.starts_with("__"))
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    let producer = broker.producer();
    send_all(
        &producer,
        (0..5)
            .map(|i| ProducerRecord::new("a", format!("{i}")).with_partition(1))
            .collect(),
    );
    producer.close();
    let d = admin.describe_topic("a").expect("describe");
    assert_eq!(d.partitions.len(), 3);
    assert_eq!(d.partitions[1].log_end_offset, 5);
    let latest = admin.list_offsets("a", OffsetSpec::Latest).expect("latest");
    let ends: Vec<Option<u64>> = latest.iter().map(|(_, l)| l.offset).collect();
    assert_eq!(ends, vec![Some(0), Some(5), Some(0)]);
    assert!(
        broker.dir.path().join("b-0").exists(),
        "b's partition has a log"
    );
    admin.delete_topic("b").expect("deleted");
    let err = admin.describe_topic("b").expect_err("gone");
    assert!(err.to_string().starts_with("unknown topic 'b'"), "{err}");
    // Deleted from disk as well (off the shard's thread, through the file layer).
    assert!(!broker.dir.path().join("b-0").exists(), "b's log is gone");
    assert!(broker.dir.path().join("a-1").exists(), "a's logs stay");
}

/// The producer keeps each topic's route until the metadata changes. A record for a
/// partition past the known count makes it look again (at most once per retry back-off)
/// before refusing: once the topic has more partitions (deleted and created again with
/// 3), records go to the new ones.
#[test]
fn a_partition_past_the_known_count_makes_the_producer_look_again() {
    let broker = TestBroker::start();
    broker.create_topic("grow", 1);
    let producer = broker.producer();
    send_all(&producer, vec![ProducerRecord::new("grow", "a")]);
    let refused = producer.send(ProducerRecord::new("grow", "b").with_partition(2));
    assert!(
        matches!(refused, Err(ClientError::UnknownPartition { count: 1, .. })),
        "{refused:?}"
    );
    broker.admin().delete_topic("grow").expect("deleted");
    broker.create_topic("grow", 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        match producer.send(ProducerRecord::new("grow", "c").with_partition(2)) {
            Ok(report) => break report,
            Err(ClientError::UnknownPartition { count: 1, .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the route was not refreshed: {e}"),
        }
    };
    let m = report.wait_timeout(WAIT).expect("delivered");
    assert_eq!((m.partition, m.offset), (2, Some(0)));
    producer.close();
}

#[test]
fn seeks_and_positions() {
    let broker = TestBroker::start();
    broker.create_topic("seek", 1);
    let producer = broker.producer();
    send_all(
        &producer,
        (0..10)
            .map(|i| ProducerRecord::new("seek", format!("{i}")))
            .collect(),
    );
    producer.close();
    let tp = TopicPartition::new("seek", 0);
    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer.assign(vec![tp.clone()]).expect("assign");
    assert_eq!(consumer.position(&tp).expect("earliest"), 0);
    consumer.seek(&tp, 7).expect("seek");
    let got: Vec<String> = poll_n(&mut consumer, 3).iter().map(value_str).collect();
    assert_eq!(got, vec!["7", "8", "9"]);
    assert_eq!(consumer.position(&tp).expect("position"), 10);
    consumer
        .seek_to_beginning(std::slice::from_ref(&tp))
        .expect("beginning");
    assert_eq!(consumer.position(&tp).expect("position"), 0);
    assert_eq!(poll_n(&mut consumer, 10).len(), 10);
    consumer
        .seek_to_end(std::slice::from_ref(&tp))
        .expect("end");
    assert_eq!(consumer.position(&tp).expect("position"), 10);
    assert_quiet(&mut consumer, Duration::from_millis(300));
    consumer.close().expect("close");
}

#[test]
fn records_fail_after_delivery_timeout_and_send_blocks_on_full_memory() {
    let broker = TestBroker::start();
    broker.create_topic("lost", 1);
    let producer = Producer::new(ProducerConfig {
        request_timeout_ms: 300,
        delivery_timeout_ms: 1_500,
        linger_ms: 0,
        batch_size_bytes: 1024,
        buffer_memory_bytes: 4096,
        max_block_ms: 300,
        ..broker.producer_config()
    })
    .expect("producer");
    send_all(&producer, vec![ProducerRecord::new("lost", "before")]);
    broker.shutdown();
    let started = std::time::Instant::now();
    let pending = producer
        .send(ProducerRecord::new("lost", vec![1u8; 1500]))
        .expect("metadata is cached: queued");
    // The first record holds most of the memory: the next send waits, then gives up.
    let err = producer
        .send(ProducerRecord::new("lost", vec![2u8; 3000]))
        .expect_err("no room");
    assert!(
        err.to_string().contains("waiting for buffer memory"),
        "{err}"
    );
    let err = pending.wait_timeout(WAIT).expect_err("never delivered");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("delivery to lost-0"), "{text}");
    assert!(text.contains("last error"), "the cause is named: {text}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1_200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // Memory came back with the failure.
    assert!(producer
        .send(ProducerRecord::new("lost", vec![3u8; 3000]))
        .is_ok());
}

/// Produces 600 records over 6 partitions of a two-shard broker, reads them back, then
/// produces and reads 60 more while the consumer is on the tail. Returns how many calls
/// the shards made to each other in the first produce and in the tail phase. With shard
/// listeners, each partition's batches and fetches go to the connection of the shard
/// that owns it, so neither phase should cross shards; without them, the shard a
/// connection landed on forwards the other shard's partitions. Either way every record
/// is read back once, in order.
fn produce_on_two_shards(
    shard_listeners: bool,
    shard_aware: bool,
    consumer_shard_aware: bool,
) -> (u64, u64) {
    let broker = TestBroker::start_with(|c| {
        c.shards = 2;
        c.shard_listeners = shard_listeners;
    });
    broker.create_topic("soccer", 6);
    let handle = broker.handle.as_ref().expect("running");
    let mut raw = cfa_net::testing::RawClient::connect(handle.local_addr()).expect("connect");
    let meta = match raw.call(Request::Metadata(MetadataRequest { topics: None })) {
        Response::Metadata(m) => m,
        other => panic!("{other:?}"),
    };
    let ports = &meta.brokers[0].shard_ports;
    let topic = meta
        .topics
        .iter()
        .find(|t| t.name == "soccer")
        .expect("listed");
    for p in &topic.partitions {
        let owner = cfa_net::server::owner_shard("soccer", p.partition, 2);
        assert_eq!(p.leader_shard, Some(owner as u16), "{p:?}");
    }
    let listed: Vec<u16> = handle.shard_addrs().iter().map(|a| a.port()).collect();
    assert_eq!(&listed, ports, "the handle and Metadata agree");
    if shard_listeners {
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert!(ports[0] != ports[1] && !ports.contains(&handle.local_addr().port()));
    } else {
        assert!(ports.is_empty(), "{ports:?}");
    }
    drop(raw);
    let producer = Producer::new(ProducerConfig {
        shard_aware,
        ..broker.producer_config()
    })
    .expect("producer");
    // The first delivery waits for the producer id, which shard 0 hands out (a call to
    // shard 0 from a connection on shard 1): the count starts after it.
    send_all(
        &producer,
        vec![ProducerRecord::new("soccer", "warm-up").with_partition(0)],
    );
    let metrics = handle.metrics();
    let calls = || (0..2).map(|s| metrics.shard(s).calls_sent()).sum::<u64>();
    let before = calls();
    let records = (0..600)
        .map(|i| ProducerRecord::new("soccer", format!("{i}")).with_partition(i % 6))
        .collect();
    let reports = send_all(&producer, records);
    let forwarded = calls() - before;
    for (i, m) in reports.iter().enumerate() {
        assert_eq!(m.partition, i as u32 % 6);
        assert_eq!(m.offset, Some(i as u64 / 6 + u64::from(i % 6 == 0)));
    }
    let config = ConsumerConfig {
        shard_aware: consumer_shard_aware,
        ..broker.consumer_config(None)
    };
    let mut consumer = Consumer::new(config).expect("consumer");
    consumer.assign(partitions("soccer", 6)).expect("assign");
    let mut got = poll_n(&mut consumer, 601);
    // On the tail: the consumer's fetches are parked on the broker when this starts.
    let before_tail = calls();
    let more = (600..660)
        .map(|i| ProducerRecord::new("soccer", format!("{i}")).with_partition(i % 6))
        .collect();
    send_all(&producer, more);
    got.extend(poll_n(&mut consumer, 60));
    let forwarded_tail = calls() - before_tail;
    producer.close();
    let got = by_partition(&got);
    for p in 0..6u32 {
        let want: Vec<String> = (p == 0)
            .then(|| "warm-up".to_owned())
            .into_iter()
            .chain((0..660).filter(|i| i % 6 == p).map(|i| i.to_string()))
            .collect();
        let values: Vec<&String> = got[&p].iter().map(|(_, v)| v).collect();
        assert_eq!(values, want.iter().collect::<Vec<_>>(), "partition {p}");
    }
    assert_quiet(&mut consumer, Duration::from_millis(200));
    consumer.close().expect("close");
    (forwarded, forwarded_tail)
}

#[test]
fn clients_send_each_partition_to_the_shard_that_owns_it() {
    assert_eq!(
        produce_on_two_shards(true, true, true),
        (0, 0),
        "nothing crossed shards"
    );
}

#[test]
fn without_shard_listeners_the_receiving_shard_forwards() {
    // The control for the test above: the counts it checks do see forwarding.
    let (produce, tail) = produce_on_two_shards(false, true, true);
    assert!(produce > 0 && tail > 0, "{produce} {tail}");
}

#[test]
fn a_consumer_that_is_not_shard_aware_fetches_through_one_shard() {
    let (produce, tail) = produce_on_two_shards(true, true, false);
    assert_eq!(produce, 0, "the producer is shard-aware");
    assert!(tail > 0, "the consumer's fetches were forwarded");
}

#[test]
fn a_producer_that_is_not_shard_aware_uses_the_brokers_address() {
    // Shard listeners on, the producer's `shard_aware` off: its batches are forwarded
    // (the consumer's fetches, shard-aware, are not, but the tail phase produces too).
    let (produce, tail) = produce_on_two_shards(true, false, true);
    assert!(produce > 0 && tail > 0, "{produce} {tail}");
}
