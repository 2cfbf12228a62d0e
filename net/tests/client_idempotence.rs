//! Idempotent delivery: a Produce response lost after the broker appended the batch (the
//! client's fault hook drops it and closes the connection) makes the producer resend the
//! same bytes; the broker recognises the sequence and nothing is written twice.

mod client_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use cfa_net::client::{Consumer, Producer, ProducerConfig, ProducerRecord};

use client_support::*;

fn idempotent_config(broker: &TestBroker) -> ProducerConfig {
    ProducerConfig {
        linger_ms: 2,
        // Small batches: many requests, several in flight per connection.
        batch_size_bytes: 1024,
        retry_backoff_ms: 10,
        retry_backoff_max_ms: 50,
        ..broker.producer_config()
    }
}

/// Sends `n` records with values `0..n` spread over `partitions` and returns, per
/// partition, the values consumed back.
fn round_trip(
    broker: &TestBroker,
    topic: &str,
    partitions_count: u32,
    producer: Producer,
    n: usize,
) -> BTreeMap<u32, Vec<u64>> {
    let records: Vec<ProducerRecord> = (0..n)
        .map(|i| {
            ProducerRecord::new(topic, format!("{i:06}-{}", "v".repeat(40)))
                .with_partition(i as u32 % partitions_count)
        })
        .collect();
    let reports = send_all(&producer, records);
    let mut offsets: Vec<(u32, u64)> = reports
        .iter()
        .map(|m| (m.partition, m.offset.expect("acks=all reports an offset")))
        .collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets.len(), n, "every record has its own offset");
    producer.close();

    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer
        .assign(partitions(topic, partitions_count))
        .expect("assign");
    let mut got = poll_n(&mut consumer, n);
    // Give duplicates, if any, a chance to show up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        got.extend(
            consumer
                .poll(std::time::Duration::from_millis(100))
                .expect("poll"),
        );
    }
    consumer.close().expect("close");
    let mut out: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in &got {
        let v: u64 = value_str(r)[..6].parse().expect("number");
        out.entry(r.partition).or_default().push(v);
    }
    out
}

#[test]
fn lost_responses_are_resent_without_duplicates_or_reordering() {
    let broker = TestBroker::start();
    broker.create_topic("idem", 3);
    let producer = Producer::new(idempotent_config(&broker)).expect("producer");
    let faults = Arc::clone(producer.faults());
    faults.drop_produce_responses(3);
    let got = round_trip(&broker, "idem", 3, producer, 600);
    assert_eq!(
        faults.produce_responses_to_drop(),
        0,
        "the three faults fired"
    );
    for (p, values) in &got {
        let expected: Vec<u64> = (0..600u64).filter(|v| v % 3 == u64::from(*p)).collect();
        assert_eq!(
            values, &expected,
            "partition {p}: each record once, in order"
        );
    }
}

#[test]
fn the_fault_hook_really_loses_responses() {
    // Control: without idempotence the same fault writes a batch twice, so the test above
    // would catch a producer that did not deduplicate.
    let broker = TestBroker::start();
    broker.create_topic("dups", 1);
    let producer = Producer::new(ProducerConfig {
        enable_idempotence: false,
        max_in_flight_per_connection: 1,
        ..idempotent_config(&broker)
    })
    .expect("producer");
    producer.faults().drop_produce_responses(1);
    let records: Vec<ProducerRecord> = (0..50)
        .map(|i| ProducerRecord::new("dups", format!("{i:06}")))
        .collect();
    send_all(&producer, records);
    assert_eq!(
        producer.faults().produce_responses_to_drop(),
        0,
        "the fault fired"
    );
    producer.close();
    let mut consumer = Consumer::new(broker.consumer_config(None)).expect("consumer");
    consumer.assign(partitions("dups", 1)).expect("assign");
    let got = poll_n(&mut consumer, 51);
    assert!(got.len() > 50, "a resent batch was appended twice");
    consumer.close().expect("close");
}
