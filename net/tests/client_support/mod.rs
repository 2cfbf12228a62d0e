//! Shared helpers of the client integration tests: an in-process broker on 127.0.0.1,
//! client configs with short timeouts, and bounded polling loops.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cfa_net::client::{
    Admin, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};

/// Every wait in these tests gives up after this long.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestBroker {
    pub handle: Option<BrokerHandle>,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub fn start() -> TestBroker {
        TestBroker::start_with(|_| {})
    }

    /// A broker whose test config `tune` changed first.
    pub fn start_with(tune: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig::for_tests(dir.path());
        tune(&mut config);
        let handle = Broker::start(config).expect("broker starts");
        TestBroker {
            handle: Some(handle),
            dir,
        }
    }

    pub fn addr(&self) -> String {
        self.handle
            .as_ref()
            .expect("running")
            .local_addr()
            .to_string()
    }

    pub fn admin(&self) -> Admin {
        Admin::new(&self.addr()).expect("admin")
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.admin()
            .create_topic(name, Some(partitions), None, &[])
            .expect("topic created");
    }

    pub fn producer_config(&self) -> ProducerConfig {
        ProducerConfig {
            client_id: "test-producer".into(),
            request_timeout_ms: 5_000,
            delivery_timeout_ms: 20_000,
            max_block_ms: 10_000,
            ..ProducerConfig::new(&self.addr())
        }
    }

    pub fn producer(&self) -> Producer {
        Producer::new(self.producer_config()).expect("producer")
    }

    pub fn consumer_config(&self, group: Option<&str>) -> ConsumerConfig {
        ConsumerConfig {
            client_id: "test-consumer".into(),
            auto_offset_reset: OffsetReset::Earliest,
            request_timeout_ms: 10_000,
            fetch_max_wait_ms: 100,
            ..ConsumerConfig::new(&self.addr(), group)
        }
    }

    pub fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().expect("clean shutdown");
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.shutdown();
        }
    }
}

/// Every partition of `topic`.
pub fn partitions(topic: &str, count: u32) -> Vec<TopicPartition> {
    (0..count).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Sends `records` and waits for every delivery report.
pub fn send_all(
    producer: &Producer,
    records: Vec<ProducerRecord>,
) -> Vec<cfa_net::client::RecordMetadata> {
    let futures: Vec<_> = records
        .into_iter()
        .map(|r| producer.send(r).expect("queued"))
        .collect();
    futures
        .into_iter()
        .map(|f| f.wait_timeout(WAIT).expect("delivered"))
        .collect()
}

/// Polls until `n` records arrived (or fails after `WAIT`).
pub fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records after {WAIT:?}",
            out.len()
        );
        out.extend(consumer.poll(Duration::from_millis(200)).expect("poll"));
    }
    out
}

/// Polls for `quiet` and asserts nothing more arrives.
pub fn assert_quiet(consumer: &mut Consumer, quiet: Duration) {
    let deadline = Instant::now() + quiet;
    while Instant::now() < deadline {
        let extra = consumer.poll(Duration::from_millis(100)).expect("poll");
        assert!(extra.is_empty(), "unexpected records: {extra:?}");
    }
}

pub fn value_str(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.as_deref().expect("a value").to_vec()).expect("utf-8")
}

/// Values per partition, in offset order.
pub fn by_partition(records: &[ConsumerRecord]) -> BTreeMap<u32, Vec<(u64, String)>> {
    let mut out: BTreeMap<u32, Vec<(u64, String)>> = BTreeMap::new();
    for r in records {
        out.entry(r.partition)
            .or_default()
            .push((r.offset, value_str(r)));
    }
    out
}
