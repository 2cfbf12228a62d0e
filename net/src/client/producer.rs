//! The producer: `send` records, get a delivery report per record.
//!
//! `send` picks the partition (explicit, else Kafka's murmur2 of the key, else the sticky
//! partitioner), appends the record to that partition's open batch in the accumulator and
//! returns a [`DeliveryFuture`]. One sender thread per producer closes batches (full, or
//! after `linger_ms`), compresses and frames them, groups them per leader into Produce
//! requests (at most `max_in_flight_per_connection` per broker) and completes every
//! record's report from the responses.
//!
//! Idempotence (default on): the producer gets an id and epoch (InitProducerId) and
//! stamps each batch with its partition's next sequence number; a batch whose fate is
//! unknown is resent byte for byte, so the broker drops the duplicate and answers with the
//! original offsets. See `sequence.rs` for the ordering rules.
//!
//! Backpressure: records hold `buffer_memory_bytes` until their report is in; `send`
//! blocks up to `max_block_ms` for room, then fails.

mod accumulator;
mod delivery;
mod sender;
mod sequence;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cfa_engine::compression::Compression;
use cfa_engine::constants::{BATCH_HEADER_BYTES, MAX_MESSAGE_BYTES_CEILING};

use crate::client::connection::{lock, Faults};
use crate::client::error::ClientError;
use crate::client::metadata::{Cluster, ClusterConfig};
use crate::client::partitioner::KeylessStrategy;
use crate::client::RecordHeader;
use crate::constants::{
    BATCH_SIZE_BYTES_DEFAULT, BUFFER_MEMORY_BYTES_DEFAULT, CONNECT_TIMEOUT_MS_DEFAULT,
    DELIVERY_TIMEOUT_MS_DEFAULT, LINGER_MS_DEFAULT, MAX_BLOCK_MS_DEFAULT,
    MAX_IN_FLIGHT_IDEMPOTENT_MAX, MAX_IN_FLIGHT_PER_CONNECTION_DEFAULT, MAX_REQUEST_BYTES_DEFAULT,
    METADATA_MAX_AGE_MS_DEFAULT, PAYLOAD_BYTES_MAX, REQUEST_TIMEOUT_MS_DEFAULT,
    RETRY_BACKOFF_MAX_MS_DEFAULT, RETRY_BACKOFF_MS_DEFAULT,
};

use accumulator::{record_size_bound, Accumulator, AccumulatorConfig, AppendRecord, Placement};
use delivery::{Completion, DeliverySlot};
pub use delivery::{DeliveryFuture, DeliveryHandler, DeliveryResult, RecordMetadata};

pub use crate::protocol::Acks;

/// Producer settings (Kafka's names, units last).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `host:port` of one or more brokers.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    /// When the broker answers: `None` (acks=0, no answer), `Leader` (1), `All` (-1).
    pub acks: Acks,
    /// A partition's batch is sent once it holds this many bytes (uncompressed).
    pub batch_size_bytes: usize,
    /// How long a batch waits for more records before it is sent anyway.
    pub linger_ms: u64,
    pub compression: Compression,
    /// Records held (queued or in flight) at most; `send` blocks beyond it.
    pub buffer_memory_bytes: usize,
    /// How long `send` may block for buffer memory or topic metadata.
    pub max_block_ms: u64,
    /// Produce requests in flight per broker (at most 5 with idempotence).
    pub max_in_flight_per_connection: usize,
    /// Resends of a batch after a retriable failure.
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Upper bound on the time from `send` to the report.
    pub delivery_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Idempotent delivery: retries never duplicate nor reorder (needs acks=all).
    pub enable_idempotence: bool,
    /// Largest Produce request; a record that cannot fit one is refused by `send`.
    pub max_request_bytes: usize,
    pub metadata_max_age_ms: u64,
    /// How records without a key are spread.
    pub keyless: KeylessStrategy,
    /// Send each partition's batches to the connection of the shard that owns it, where
    /// the broker lists shard listeners (one connection per shard); `false`: one
    /// connection per broker, whose receiving shard forwards the other shards' batches.
    pub shard_aware: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap: vec!["127.0.0.1:9192".to_owned()],
            client_id: "cfa-producer".to_owned(),
            acks: Acks::All,
            batch_size_bytes: BATCH_SIZE_BYTES_DEFAULT,
            linger_ms: LINGER_MS_DEFAULT,
            compression: Compression::NONE,
            buffer_memory_bytes: BUFFER_MEMORY_BYTES_DEFAULT,
            max_block_ms: MAX_BLOCK_MS_DEFAULT,
            max_in_flight_per_connection: MAX_IN_FLIGHT_PER_CONNECTION_DEFAULT,
            retries: u32::MAX,
            retry_backoff_ms: RETRY_BACKOFF_MS_DEFAULT,
            retry_backoff_max_ms: RETRY_BACKOFF_MAX_MS_DEFAULT,
            delivery_timeout_ms: DELIVERY_TIMEOUT_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            enable_idempotence: true,
            max_request_bytes: MAX_REQUEST_BYTES_DEFAULT,
            metadata_max_age_ms: METADATA_MAX_AGE_MS_DEFAULT,
            keyless: KeylessStrategy::Sticky,
            shard_aware: true,
        }
    }
}

impl ProducerConfig {
    /// A default config for `bootstrap` (comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> ProducerConfig {
        ProducerConfig {
            bootstrap: crate::client::metadata::parse_bootstrap(bootstrap),
            ..ProducerConfig::default()
        }
    }

    /// Checks every value and their combinations; the error names the setting.
    pub fn validate(&self) -> Result<(), ClientError> {
        self.cluster_config().validate()?;
        let fail = |m: String| Err(ClientError::Config(m));
        if self.batch_size_bytes <= BATCH_HEADER_BYTES {
            return fail(format!(
                "batch_size_bytes {} must exceed the {BATCH_HEADER_BYTES}-byte batch header",
                self.batch_size_bytes
            ));
        }
        if self.max_request_bytes <= BATCH_HEADER_BYTES
            || self.max_request_bytes > PAYLOAD_BYTES_MAX
        {
            return fail(format!(
                "max_request_bytes {} must be in {}..={PAYLOAD_BYTES_MAX}",
                self.max_request_bytes,
                BATCH_HEADER_BYTES + 1
            ));
        }
        if self.batch_size_bytes > self.max_request_bytes {
            return fail(format!(
                "batch_size_bytes {} exceeds max_request_bytes {}",
                self.batch_size_bytes, self.max_request_bytes
            ));
        }
        if self.buffer_memory_bytes < self.batch_size_bytes {
            return fail(format!(
                "buffer_memory_bytes {} is below batch_size_bytes {}",
                self.buffer_memory_bytes, self.batch_size_bytes
            ));
        }
        if self.max_in_flight_per_connection == 0 {
            return fail("max_in_flight_per_connection must be at least 1".into());
        }
        if self.delivery_timeout_ms < self.linger_ms.saturating_add(self.request_timeout_ms) {
            return fail(format!(
                "delivery_timeout_ms {} must be at least linger_ms + request_timeout_ms ({})",
                self.delivery_timeout_ms,
                self.linger_ms.saturating_add(self.request_timeout_ms)
            ));
        }
        if self.enable_idempotence {
            if self.acks != Acks::All {
                return fail("enable_idempotence needs acks=all".into());
            }
            if self.retries == 0 {
                return fail("enable_idempotence needs retries > 0".into());
            }
            if self.max_in_flight_per_connection > MAX_IN_FLIGHT_IDEMPOTENT_MAX {
                return fail(format!(
                    "enable_idempotence needs max_in_flight_per_connection <= \
                     {MAX_IN_FLIGHT_IDEMPOTENT_MAX} (got {})",
                    self.max_in_flight_per_connection
                ));
            }
        }
        Ok(())
    }

    fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            bootstrap: self.bootstrap.clone(),
            client_id: self.client_id.clone(),
            connect_timeout_ms: self.connect_timeout_ms,
            request_timeout_ms: self.request_timeout_ms,
            retry_backoff_ms: self.retry_backoff_ms,
            retry_backoff_max_ms: self.retry_backoff_max_ms,
            metadata_max_age_ms: self.metadata_max_age_ms,
            // One spare slot so a metadata request never waits behind produce requests.
            in_flight_max: self.max_in_flight_per_connection + 1,
        }
    }

    /// The largest record `send` accepts: one batch in one request, within the engine's
    /// max.message.bytes ceiling and the buffer memory.
    fn record_bytes_max(&self) -> (usize, &'static str) {
        let limits = [
            (self.max_request_bytes, "max_request_bytes"),
            (
                MAX_MESSAGE_BYTES_CEILING as usize,
                "the max.message.bytes ceiling",
            ),
            (self.buffer_memory_bytes, "buffer_memory_bytes"),
        ];
        limits
            .into_iter()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("three limits")
    }
}

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Shared, not owned: a producer sending to one topic clones a reference per record,
    /// not the name (a `String` per record showed in max-rate profiles).
    pub topic: Arc<str>,
    /// `None`: by key if there is one, else the keyless partitioner.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
    /// `None`: the time of `send`.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value only.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    pub fn with_partition(mut self, partition: u32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    pub fn with_header(mut self, key: impl Into<Bytes>, value: Option<Bytes>) -> ProducerRecord {
        self.headers.push(RecordHeader {
            key: key.into(),
            value,
        });
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> ProducerRecord {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// This record, borrowed: what every `send` hands to the accumulator.
    pub fn borrowed(&self) -> ProducerRecordRef<'_> {
        ProducerRecordRef {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// One record to send, borrowed from the caller (librdkafka's `RD_KAFKA_MSG_F_COPY`).
/// [`Producer::send_ref_with_opaque`] copies its bytes into a batch before it returns,
/// so a caller that keeps its values in its own buffers clones, allocates and drops
/// nothing per record: the topic's and the value's reference counts were two atomic
/// increments and two decrements per record in max-rate profiles (~2% of the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerRecordRef<'a> {
    pub topic: &'a str,
    /// `None`: by key if there is one, else the keyless partitioner.
    pub partition: Option<u32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader],
    /// `None`: the time of `send`.
    pub timestamp_ms: Option<i64>,
}

impl<'a> ProducerRecordRef<'a> {
    /// A record with a value only.
    pub fn new(topic: &'a str, value: &'a [u8]) -> ProducerRecordRef<'a> {
        ProducerRecordRef {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp_ms: None,
        }
    }

    pub fn with_key(mut self, key: &'a [u8]) -> ProducerRecordRef<'a> {
        self.key = Some(key);
        self
    }

    pub fn with_partition(mut self, partition: u32) -> ProducerRecordRef<'a> {
        self.partition = Some(partition);
        self
    }

    pub fn with_headers(mut self, headers: &'a [RecordHeader]) -> ProducerRecordRef<'a> {
        self.headers = headers;
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> ProducerRecordRef<'a> {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// What the producer's threads share.
pub(crate) struct Shared {
    pub config: ProducerConfig,
    pub cluster: Cluster,
    pub accumulator: Mutex<Accumulator>,
    /// Notified whenever records complete: buffer memory freed, flushes may be done.
    pub completed: Condvar,
    pub events: Mutex<mpsc::Sender<sender::Event>>,
    /// A wake-up is queued for the sender (coalesces them).
    pub wake_queued: AtomicBool,
    pub closed: AtomicBool,
    /// Batches queued for a resend after a retriable failure, since the start.
    pub resends: AtomicU64,
    /// Set (once) when the producer can deliver nothing more (fenced, unsupported
    /// broker). A `OnceLock`: every `send` reads it, and a mutex there showed in profiles.
    pub fatal: OnceLock<ClientError>,
    /// Receives the reports of `send_with_opaque`.
    pub handler: Option<DeliveryHandler>,
}

impl Shared {
    pub fn wake(&self) {
        if !self.wake_queued.swap(true, Ordering::SeqCst) {
            // The sender is gone only after close: nothing left to wake.
            let _ = lock(&self.events).send(sender::Event::Wake);
        }
    }
}

/// A producer: thread-safe, `send` from any thread. Call [`Producer::close`] to deliver
/// what is queued; dropping it without `close` fails undelivered records at once.
pub struct Producer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.shared.config.client_id)
            .finish()
    }
}

impl Producer {
    /// Validates the config and starts the sender thread. Connects lazily: an unreachable
    /// broker shows in the first `send` (or its report).
    pub fn new(config: ProducerConfig) -> Result<Producer, ClientError> {
        Producer::start(config, None)
    }

    /// Like [`Producer::new`], with `handler` receiving the report of every record sent
    /// with [`send_with_opaque`](Producer::send_with_opaque).
    pub fn with_delivery_handler(
        config: ProducerConfig,
        handler: DeliveryHandler,
    ) -> Result<Producer, ClientError> {
        Producer::start(config, Some(handler))
    }

    fn start(
        config: ProducerConfig,
        handler: Option<DeliveryHandler>,
    ) -> Result<Producer, ClientError> {
        config.validate()?;
        let cluster = Cluster::with_faults(config.cluster_config(), Arc::new(Faults::default()))?;
        let accumulator = Accumulator::new(AccumulatorConfig {
            batch_size_bytes: config.batch_size_bytes,
            linger: Duration::from_millis(config.linger_ms),
            buffer_memory_bytes: config.buffer_memory_bytes,
            keyless: config.keyless,
            keyless_start: crate::client::retry::seed() as u32,
        });
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            config,
            cluster,
            accumulator: Mutex::new(accumulator),
            completed: Condvar::new(),
            events: Mutex::new(tx.clone()),
            wake_queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            resends: AtomicU64::new(0),
            fatal: OnceLock::new(),
            handler,
        });
        let handle = sender::spawn(Arc::clone(&shared), tx, rx)?;
        Ok(Producer {
            shared,
            sender: Some(handle),
        })
    }

    /// Queues `record` and returns its delivery report. Blocks up to `max_block_ms` for
    /// topic metadata and buffer memory. Fails at once for a record too large to send,
    /// an unknown topic or partition, or a closed producer.
    pub fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        let slot = DeliverySlot::new();
        self.enqueue(record.borrowed(), Completion::Slot(Arc::clone(&slot)))?;
        Ok(DeliveryFuture::new(slot))
    }

    /// Queues `record` like [`send`](Producer::send); its report goes to `callback`, run
    /// on the producer's sender thread (keep it short), like Kafka's
    /// `send(record, callback)`. Cheaper than `send` plus
    /// [`on_delivery`](DeliveryFuture::on_delivery): no shared slot between the caller's
    /// thread and the sender's. When this returns an error the record was not queued and
    /// `callback` is never called.
    pub fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(DeliveryResult) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.enqueue(record.borrowed(), Completion::Callback(Box::new(callback)))
    }

    /// Queues `record` like [`send`](Producer::send); its report goes to the producer's
    /// [`DeliveryHandler`] with `opaque` (librdkafka's `msg_opaque`), on the sender
    /// thread. The cheapest way to send: nothing is allocated per record for the report.
    /// Fails if the producer was not built [`with_delivery_handler`](Producer::with_delivery_handler).
    /// When this returns an error the record was not queued and nothing is reported.
    pub fn send_with_opaque(&self, record: ProducerRecord, opaque: u64) -> Result<(), ClientError> {
        self.send_ref_with_opaque(record.borrowed(), opaque)
    }

    /// [`send_with_opaque`](Producer::send_with_opaque) for a borrowed record: its bytes
    /// are copied into a batch before this returns, and nothing of it is kept.
    pub fn send_ref_with_opaque(
        &self,
        record: ProducerRecordRef<'_>,
        opaque: u64,
    ) -> Result<(), ClientError> {
        if self.shared.handler.is_none() {
            return Err(ClientError::Config(
                "send_with_opaque and send_ref_with_opaque need a producer built \
                 with_delivery_handler"
                    .into(),
            ));
        }
        self.enqueue(record, Completion::Opaque(opaque))
    }

    fn enqueue(
        &self,
        record: ProducerRecordRef<'_>,
        completion: Completion,
    ) -> Result<(), ClientError> {
        self.check_open()?;
        let config = &self.shared.config;
        let bytes = record_size_bound(record.key, record.value, record.headers);
        let (max, limit) = config.record_bytes_max();
        if bytes + BATCH_HEADER_BYTES > max {
            return Err(ClientError::RecordTooLarge {
                size: bytes + BATCH_HEADER_BYTES,
                max,
                limit,
            });
        }
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        // max_block_ms runs from the first wait; the monotonic clock is not read for a
        // record that does not wait (clock reads showed in max-rate profiles).
        let mut deadline = None;
        let mut looked_again = false;
        loop {
            let generation = self.shared.cluster.generation();
            let mut acc = self.wait_for_space(bytes, &mut deadline)?;
            let key = record.key;
            match acc.place(record.topic, record.partition, key, generation) {
                Placement::Partition(partition) => {
                    let append = AppendRecord {
                        topic: record.topic,
                        key,
                        value: record.value,
                        headers: record.headers,
                        timestamp_ms,
                        completion,
                    };
                    let wake = acc.append(append, partition, bytes, Instant::now);
                    drop(acc);
                    if wake {
                        self.shared.wake();
                    }
                    return Ok(());
                }
                Placement::UnknownPartition { count } => {
                    // The topic may have grown since its route was read: look once (at
                    // most one refresh per retry_backoff_ms) before refusing, as Kafka's
                    // producer refreshes metadata for a partition it does not know.
                    drop(acc);
                    if !looked_again {
                        looked_again = true;
                        let age = Duration::from_millis(config.retry_backoff_ms);
                        if let Ok(true) = self.shared.cluster.refresh_unless_newer_than(age) {
                            continue;
                        }
                    }
                    return Err(ClientError::UnknownPartition {
                        topic: record.topic.to_string(),
                        partition: record.partition.unwrap_or_default(),
                        count,
                    });
                }
                Placement::NoRoute => {
                    drop(acc);
                    let until = *deadline.get_or_insert_with(|| self.block_deadline());
                    if Instant::now() >= until {
                        return Err(self.shared.cluster.topic_timeout(record.topic));
                    }
                    let info = self.shared.cluster.wait_for_topic(record.topic, until)?;
                    lock(&self.shared.accumulator).set_route(generation, info);
                }
            }
        }
    }

    fn block_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.shared.config.max_block_ms)
    }

    fn check_open(&self) -> Result<(), ClientError> {
        if let Some(err) = self.shared.fatal.get() {
            return Err(err.clone());
        }
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Closed { what: "producer" });
        }
        Ok(())
    }

    /// Waits until the buffer has room for `bytes` and returns the locked accumulator;
    /// `deadline` is set (max_block_ms from now) when it first has to wait.
    fn wait_for_space(
        &self,
        bytes: usize,
        deadline: &mut Option<Instant>,
    ) -> Result<std::sync::MutexGuard<'_, Accumulator>, ClientError> {
        let mut acc = lock(&self.shared.accumulator);
        loop {
            if acc.has_space(bytes) {
                return Ok(acc);
            }
            let until = *deadline.get_or_insert_with(|| self.block_deadline());
            let now = Instant::now();
            if now >= until {
                let used = acc.used_bytes();
                let config = &self.shared.config;
                return Err(ClientError::timeout(
                    format!(
                        "send waiting for buffer memory ({used} of {} bytes held by \
                         undelivered records)",
                        config.buffer_memory_bytes
                    ),
                    Duration::from_millis(config.max_block_ms),
                ));
            }
            acc = self
                .shared
                .completed
                .wait_timeout(acc, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            drop(acc);
            self.check_open()?;
            acc = lock(&self.shared.accumulator);
        }
    }

    /// How many batches were resent after a retriable failure (Kafka's
    /// `record-retry-total`, counted per batch): retries the caller never sees, since an
    /// idempotent resend is invisible in the delivery reports.
    pub fn resends(&self) -> u64 {
        self.shared.resends.load(Ordering::Relaxed)
    }

    /// Sends every queued record now (ignoring linger) and waits until every record sent
    /// before or during the call has its report. Bounded by delivery_timeout_ms per
    /// record; under a steady stream of concurrent sends it may wait for those too.
    pub fn flush(&self) {
        lock(&self.shared.accumulator).begin_flush();
        self.shared.wake();
        let mut acc = lock(&self.shared.accumulator);
        while acc.incomplete_records() > 0 && !self.sender_finished() {
            acc = self
                .shared
                .completed
                .wait_timeout(acc, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        acc.end_flush();
    }

    fn sender_finished(&self) -> bool {
        self.sender.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Delivers everything queued (as `flush`), then stops the sender thread and closes
    /// the connections.
    pub fn close(mut self) {
        self.flush();
        self.stop(true);
    }

    fn stop(&mut self, graceful: bool) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = lock(&self.shared.events).send(sender::Event::Close { graceful });
        if let Some(handle) = self.sender.take() {
            // A panic in the sender already failed the records it held; nothing to add.
            let _ = handle.join();
        }
        self.shared.cluster.close();
        self.shared.completed.notify_all();
    }

    /// Test hooks: break connections on purpose.
    #[doc(hidden)]
    pub fn faults(&self) -> &Arc<Faults> {
        self.shared.cluster.faults()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.sender.is_some() {
            self.stop(false);
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_engine::Codec;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = ProducerConfig::new("127.0.0.1:9192");
        c.validate().expect("defaults are valid");
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.batch_size_bytes, 16 << 10);
        assert_eq!(c.linger_ms, 5);
        assert_eq!(c.buffer_memory_bytes, 32 << 20);
        assert_eq!(c.max_in_flight_per_connection, 5);
        assert_eq!(c.retries, u32::MAX);
        assert_eq!((c.retry_backoff_ms, c.retry_backoff_max_ms), (100, 1000));
        assert_eq!(
            (c.delivery_timeout_ms, c.request_timeout_ms),
            (120_000, 30_000)
        );
        assert!(c.enable_idempotence);
        assert_eq!(c.compression.codec(), Codec::None);
    }

    #[test]
    fn validation_names_the_conflict() {
        let check = |f: fn(&mut ProducerConfig), needle: &str| {
            let mut c = ProducerConfig::default();
            f(&mut c);
            let err = c.validate().expect_err(needle);
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        };
        check(|c| c.acks = Acks::Leader, "needs acks=all");
        check(
            |c| c.max_in_flight_per_connection = 6,
            "max_in_flight_per_connection <= 5",
        );
        check(|c| c.retries = 0, "retries > 0");
        check(|c| c.batch_size_bytes = 10, "batch_size_bytes");
        check(
            |c| c.batch_size_bytes = 2 << 20,
            "exceeds max_request_bytes",
        );
        check(|c| c.buffer_memory_bytes = 1024, "buffer_memory_bytes");
        check(|c| c.max_request_bytes = 64 << 20, "max_request_bytes");
        check(|c| c.delivery_timeout_ms = 1000, "delivery_timeout_ms");
        check(|c| c.bootstrap.clear(), "bootstrap");
        let ok = ProducerConfig {
            enable_idempotence: false,
            acks: Acks::None,
            max_in_flight_per_connection: 10,
            ..ProducerConfig::default()
        };
        ok.validate().expect("non-idempotent acks=0 is fine");
    }

    #[test]
    fn record_limit_is_the_smallest_bound() {
        let mut c = ProducerConfig::default();
        assert_eq!(c.record_bytes_max(), (1 << 20, "max_request_bytes"));
        c.max_request_bytes = 20 << 20;
        c.batch_size_bytes = 16 << 10;
        assert_eq!(
            c.record_bytes_max(),
            (16 << 20, "the max.message.bytes ceiling")
        );
    }

    #[test]
    fn too_large_records_are_refused_before_any_io() {
        // Nothing listens on port 1: the size check must come first.
        let producer = Producer::new(ProducerConfig::new("127.0.0.1:1")).expect("config");
        let record = ProducerRecord::new("t", vec![0u8; 2 << 20]);
        let err = producer.send(record).expect_err("too large");
        let text = err.to_string();
        assert!(text.starts_with("record of "), "{text}");
        assert!(text.contains("exceeds max_request_bytes 1048576"), "{text}");
    }
}
