//! The producer's sender thread: drains ready batches, sends them to their leaders,
//! completes delivery reports, resends what failed for a passing reason.
//!
//! Everything here runs on one thread; the connection reader threads only post
//! [`Event::Response`]s to its channel. Per broker at most `max_in_flight_per_connection`
//! Produce requests are outstanding, each with at most one batch per partition and at
//! most `max_request_bytes` of batches.
//!
//! Failure handling:
//! - Retriable (lost connection, timeout, NotLeader, ...): the batch is resent after an
//!   exponential back-off, byte for byte (same sequence), until `retries` resends or
//!   `delivery_timeout_ms` since `send` have passed.
//! - OutOfOrderSequence while an earlier batch of the partition is unacknowledged is
//!   retriable: the broker just has not seen the earlier one yet.
//! - A batch with a sequence that fails for good leaves a gap: the producer waits until
//!   nothing is in flight, bumps its epoch (InitProducerId with the current identity),
//!   and renumbers the batches still waiting from 0, as Kafka's idempotent producer does.

use std::collections::{BTreeMap, VecDeque};

use ahash::AHashMap as HashMap;
use std::mem::offset_of;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cfa_engine::batch::batch_crc;
use cfa_engine::{BatchHeader, ProducerStamp};

use crate::client::connection::lock;
use crate::client::error::ClientError;
use crate::client::metadata::Leader;
use crate::client::producer::accumulator::{DrainedBatch, PendingRecord};
use crate::client::producer::delivery::{DeliveryResult, RecordMetadata};
use crate::client::producer::sequence::{stamp, Sequences};
use crate::client::producer::Shared;
use crate::client::retry::{delay_ms, Backoff, XorShift};
use crate::client::TopicPartition;
use crate::protocol::{
    Acks, ApiKey, ErrorCode, InitProducerIdRequest, ProducePartition, ProducePartitionResponse,
    ProduceRequest, ProduceResponse, ProduceTopic, ProducerIdentity, Request, Response,
};

/// Longest the sender sleeps without an event: bounds how late delivery timeouts fire.
const SENDER_IDLE_WAKE_MS: u64 = 100;

/// How often at most the sender scans the accumulator for batches past
/// delivery_timeout_ms. The scan visits every partition under the producers' lock; at
/// max rate the loop runs thousands of times a second, and a record expires this much
/// late at most (against a 120 s default timeout).
const EXPIRY_SCAN_INTERVAL_MS: u64 = 10;

pub(crate) enum Event {
    /// Records were appended; look at the queues.
    Wake,
    /// The answer to in-flight request `request`.
    Response {
        request: u64,
        result: Result<Response, ClientError>,
    },
    /// Stop: after delivering everything (`graceful`), or at once.
    Close { graceful: bool },
}

pub(crate) fn spawn(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
) -> Result<JoinHandle<()>, ClientError> {
    let backoff = Backoff::new(
        shared.config.retry_backoff_ms,
        shared.config.retry_backoff_max_ms,
    );
    let name = format!("cfa-producer-{}", shared.config.client_id);
    let mut sender = Sender {
        shared,
        rx,
        tx,
        identity: None,
        identity_retry_at: None,
        identity_backoff: backoff,
        bump_epoch: false,
        sequences: Sequences::default(),
        resend: BTreeMap::new(),
        in_flight: HashMap::new(),
        per_leader: HashMap::new(),
        next_request: 0,
        closing: None,
        last_error: None,
        rng: XorShift::new(crate::client::retry::seed()),
        drain_cursor: 0,
        next_expiry_scan: Instant::now(),
        next_linger: None,
        released: Released::default(),
    };
    thread::Builder::new()
        .name(name)
        .spawn(move || sender.run())
        .map_err(|e| ClientError::Config(format!("cannot start the sender thread: {e}")))
}

/// A sealed batch: framed, stamped, ready to go (again).
struct Batch {
    /// `tp.topic` is shared by the batch's reports (no name copied per record).
    tp: TopicPartition,
    records: Vec<PendingRecord>,
    bytes: Bytes,
    record_count: u32,
    /// Idempotent producers: the base sequence counter.
    sequence: Option<u64>,
    created: Instant,
    /// Times sent so far.
    attempts: u32,
    retry_at: Instant,
    reserved_bytes: usize,
}

struct InFlight {
    leader: Leader,
    batches: Vec<Batch>,
}

struct Sender {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    identity: Option<ProducerIdentity>,
    identity_retry_at: Option<Instant>,
    identity_backoff: Backoff,
    /// A sequenced batch failed for good: move to a new epoch before sending more.
    bump_epoch: bool,
    sequences: Sequences,
    /// Batches to resend, per partition in sequence (or failure) order.
    resend: BTreeMap<TopicPartition, VecDeque<Batch>>,
    in_flight: HashMap<u64, InFlight>,
    /// Requests in flight per connection (a leader shard, or a broker without shard listeners).
    per_leader: HashMap<Leader, usize>,
    next_request: u64,
    /// `Some(graceful)` once close was asked.
    closing: Option<bool>,
    /// The latest retriable failure, named when records time out.
    last_error: Option<ClientError>,
    rng: XorShift,
    /// Where the next drain of ready partitions starts (Kafka's drainIndex): a request
    /// holds only so many batches, and always starting from the first ready partition
    /// starved the last ones (measured: p50 13 ms, p90 1.2 s at max rate, 6 partitions).
    drain_cursor: usize,
    /// When `expire` next scans the accumulator (see `EXPIRY_SCAN_INTERVAL_MS`).
    next_expiry_scan: Instant,
    /// When the next lingering batch becomes ready, as of the last scan. A batch opened
    /// or filled after the scan wakes the sender (`Accumulator::append` says so).
    next_linger: Option<Instant>,
    /// Completed records and their memory, handed back to the accumulator once per loop
    /// (one lock and one notify for all the batches a loop completes).
    released: Released,
}

/// Records completed and their buffer memory, not yet released (see `Sender::released`).
#[derive(Debug, Default, Clone, Copy)]
struct Released {
    records: usize,
    bytes: usize,
}

/// One look at the accumulator, under one lock.
struct Scan {
    /// Partitions whose oldest batch is ready, in drain order.
    ready: Vec<TopicPartition>,
    /// Whether any batch is queued at all, ready or not.
    queued: bool,
}

impl Sender {
    fn run(&mut self) {
        let mut timeout = Duration::ZERO;
        loop {
            match self.rx.recv_timeout(timeout) {
                Ok(event) => {
                    self.handle(event);
                    while let Ok(event) = self.rx.try_recv() {
                        self.handle(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.closing = Some(false),
            }
            if self.closing == Some(false) {
                self.abort_all();
                self.release_completed();
                return;
            }
            let now = Instant::now();
            self.expire(now);
            let scan = self.scan(now);
            if scan.queued || !self.resend.is_empty() {
                // Errors are kept by the cluster for its back-off; batches wait.
                let _ = self.shared.cluster.maybe_refresh();
                if self.ensure_identity(now) {
                    self.send_ready(now, scan.ready);
                }
            }
            self.release_completed();
            if self.closing == Some(true) && self.idle() {
                return;
            }
            timeout = self.next_wake(Instant::now());
        }
    }

    fn config(&self) -> &crate::client::producer::ProducerConfig {
        &self.shared.config
    }

    fn leader(&self, tp: &TopicPartition) -> Option<Leader> {
        let shard_aware = self.config().shard_aware;
        self.shared.cluster.leader_shard(tp, shard_aware)
    }

    fn idempotent(&self) -> bool {
        self.shared.config.enable_idempotence
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Wake => self
                .shared
                .wake_queued
                .store(false, std::sync::atomic::Ordering::SeqCst),
            Event::Response { request, result } => self.on_response(request, result),
            Event::Close { graceful } => {
                if self.closing != Some(false) {
                    self.closing = Some(graceful);
                }
            }
        }
    }

    fn has_work(&self) -> bool {
        !self.resend.is_empty() || !lock(&self.shared.accumulator).is_empty()
    }

    fn idle(&self) -> bool {
        self.in_flight.is_empty() && !self.has_work()
    }

    // ---- producer identity ----

    /// Whether batches may be sent: non-idempotent, or the identity is current.
    fn ensure_identity(&mut self, now: Instant) -> bool {
        if !self.idempotent() {
            return true;
        }
        if self.identity.is_some() && !self.bump_epoch {
            return true;
        }
        if self.bump_epoch && !self.in_flight.is_empty() {
            return false;
        }
        if self.identity_retry_at.is_some_and(|t| now < t) {
            return false;
        }
        match self.init_producer_id() {
            Ok(identity) => {
                let bumped = self.identity.is_some();
                self.identity = Some(identity);
                self.identity_retry_at = None;
                self.identity_backoff.reset();
                if bumped {
                    self.renumber(identity);
                }
                self.bump_epoch = false;
                true
            }
            Err(e) if e.is_retriable() => {
                self.identity_retry_at = Some(now + self.identity_backoff.next_delay());
                self.last_error = Some(e);
                false
            }
            Err(e) => {
                self.fatal(e);
                false
            }
        }
    }

    /// InitProducerId: a bump of the current identity if there is one; a broker that
    /// refuses the bump gives a new id instead.
    fn init_producer_id(&self) -> Result<ProducerIdentity, ClientError> {
        let bump = self.identity.filter(|_| self.bump_epoch);
        match self.init_producer_id_once(bump) {
            Err(e) if bump.is_some() && !e.is_retriable() => self.init_producer_id_once(None),
            other => other,
        }
    }

    fn init_producer_id_once(
        &self,
        current: Option<ProducerIdentity>,
    ) -> Result<ProducerIdentity, ClientError> {
        let cluster = &self.shared.cluster;
        let conn = cluster.any_connection()?;
        let request = Request::InitProducerId(InitProducerIdRequest { current });
        match conn.call(request, cluster.request_timeout())? {
            Response::InitProducerId(r) => {
                if let Some(e) =
                    ClientError::from_code("InitProducerId", r.error_code, r.error_message)
                {
                    return Err(e);
                }
                Ok(ProducerIdentity {
                    producer_id: r.producer_id,
                    producer_epoch: r.producer_epoch,
                })
            }
            Response::Failed(f) => Err(ClientError::Broker {
                context: "InitProducerId".into(),
                code: f.error_code,
                message: f.error_message,
            }),
            other => Err(conn.unexpected(ApiKey::InitProducerId, &other)),
        }
    }

    /// After an epoch bump: batches still waiting get sequences from 0 in the new epoch.
    fn renumber(&mut self, identity: ProducerIdentity) {
        self.sequences.reset();
        for (tp, queue) in self.resend.iter_mut() {
            for batch in queue.iter_mut() {
                let seq = self.sequences.assign(tp, batch.record_count);
                batch.bytes = restamp(&batch.bytes, producer_stamp(identity, seq));
                batch.sequence = Some(seq);
                self.sequences.requeue(tp, seq);
            }
        }
    }

    /// The producer cannot go on: fail everything queued, refuse later sends.
    fn fatal(&mut self, err: ClientError) {
        // The first cause stays; a later one changes nothing for the caller.
        let _ = self.shared.fatal.set(err.clone());
        let queued = lock(&self.shared.accumulator).take_all();
        for b in queued {
            self.fail_records(b.records, b.reserved_bytes, &err);
        }
        let resend = std::mem::take(&mut self.resend);
        for b in resend.into_values().flatten() {
            self.fail_records(b.records, b.reserved_bytes, &err);
        }
    }

    // ---- sending ----

    /// The ready partitions (rotated to start at the drain cursor), whether anything is
    /// queued, and when the next lingering batch is due: one lock for all three.
    fn scan(&mut self, now: Instant) -> Scan {
        let drain_all = self.closing == Some(true);
        let acc = lock(&self.shared.accumulator);
        let (mut ready, next) = acc.ready(now, drain_all);
        let queued = !acc.is_empty();
        drop(acc);
        self.next_linger = next;
        rotate_from(&mut ready, &mut self.drain_cursor);
        Scan { ready, queued }
    }

    fn send_ready(&mut self, now: Instant, ready: Vec<TopicPartition>) {
        let mut plan: BTreeMap<Leader, Vec<Batch>> = BTreeMap::new();
        self.plan_resends(now, &mut plan);
        self.plan_new(now, ready, &mut plan);
        for (leader, batches) in plan {
            self.send_request(leader, batches, now);
        }
    }

    /// Whether a batch of `bytes` for `tp` may join `leader`'s request this round: its
    /// members so far are that leader's sealed batches in `plan` and its drained ones in
    /// `taken`.
    fn room(
        &self,
        leader: Leader,
        plan: &BTreeMap<Leader, Vec<Batch>>,
        taken: &[(Leader, DrainedBatch)],
        tp: &TopicPartition,
        bytes: usize,
    ) -> bool {
        let sealed = plan.get(&leader).into_iter().flatten();
        let drained = taken.iter().filter(|(n, _)| *n == leader);
        let members = sealed
            .map(|b| (&b.tp, b.bytes.len()))
            .chain(drained.map(|(_, d)| (&d.tp, d.builder.size_bytes())));
        let limits = RequestLimits {
            in_flight_max: self.config().max_in_flight_per_connection,
            bytes_max: self.config().max_request_bytes,
        };
        let in_flight = self.per_leader.get(&leader).copied().unwrap_or(0);
        joins_request(members, in_flight, limits, tp, bytes)
    }

    fn plan_resends(&mut self, now: Instant, plan: &mut BTreeMap<Leader, Vec<Batch>>) {
        let tps: Vec<TopicPartition> = self.resend.keys().cloned().collect();
        for tp in tps {
            let Some(front) = self.resend.get(&tp).and_then(|q| q.front()) else {
                continue;
            };
            let sendable = front.retry_at <= now
                && front
                    .sequence
                    .is_none_or(|seq| self.sequences.may_resend(&tp, seq));
            if !sendable {
                continue;
            }
            let Some(leader) = self.leader(&tp) else {
                self.shared.cluster.request_refresh();
                continue;
            };
            if !self.room(leader, plan, &[], &tp, front.bytes.len()) {
                continue;
            }
            let queue = self.resend.get_mut(&tp).expect("looked up above");
            let batch = queue.pop_front().expect("front exists");
            if queue.is_empty() {
                self.resend.remove(&tp);
            }
            plan.entry(leader).or_default().push(batch);
        }
    }

    fn plan_new(
        &mut self,
        now: Instant,
        ready: Vec<TopicPartition>,
        plan: &mut BTreeMap<Leader, Vec<Batch>>,
    ) {
        // The leaders are looked up before the accumulator is locked: the lookups take
        // the cluster's lock, and the producers' sends wait on the accumulator's.
        let mut candidates: Vec<(Leader, TopicPartition)> = Vec::with_capacity(ready.len());
        for tp in ready {
            // A partition with resends pending waits: new batches go after them.
            if self.resend.contains_key(&tp) || !self.sequences.may_send_new(&tp) {
                continue;
            }
            match self.leader(&tp) {
                Some(leader) => candidates.push((leader, tp)),
                None => self.shared.cluster.request_refresh(),
            }
        }
        if candidates.is_empty() {
            return;
        }
        // One lock for all the batches this round takes (it was one per batch).
        let taken = {
            let mut acc = lock(&self.shared.accumulator);
            let mut taken: Vec<(Leader, DrainedBatch)> = Vec::with_capacity(candidates.len());
            for (leader, tp) in candidates {
                let Some(bytes) = acc.front_bytes(&tp) else {
                    continue;
                };
                if self.room(leader, plan, &taken, &tp, bytes) {
                    taken.extend(acc.take(&tp).map(|d| (leader, d)));
                }
            }
            taken
        };
        for (leader, drained) in taken {
            if let Some(batch) = self.seal(drained, now) {
                plan.entry(leader).or_default().push(batch);
            }
        }
    }

    /// Frames a drained batch: sequence, stamp, compression. `None` if it failed (its
    /// records are failed then).
    fn seal(&mut self, drained: DrainedBatch, now: Instant) -> Option<Batch> {
        let count = drained.builder.record_count();
        let sequence = match (self.idempotent(), self.identity) {
            (true, Some(_)) => Some(self.sequences.assign(&drained.tp, count)),
            _ => None,
        };
        let stamp = match (sequence, self.identity) {
            (Some(seq), Some(identity)) => producer_stamp(identity, seq),
            _ => ProducerStamp::NONE,
        };
        match drained
            .builder
            .finish_with(stamp, self.config().compression)
        {
            Ok(bytes) => Some(Batch {
                tp: drained.tp,
                records: drained.records,
                bytes: bytes.freeze(),
                record_count: count,
                sequence,
                created: drained.created,
                attempts: 0,
                retry_at: now,
                reserved_bytes: drained.reserved_bytes,
            }),
            Err(source) => {
                if let Some(seq) = sequence {
                    self.sequences.unassign(&drained.tp, seq, count);
                }
                let err = ClientError::Batch {
                    context: format!("building a batch for {}", drained.tp),
                    source,
                };
                self.fail_records(drained.records, drained.reserved_bytes, &err);
                None
            }
        }
    }

    fn send_request(&mut self, leader: Leader, mut batches: Vec<Batch>, now: Instant) {
        let conn = match self.shared.cluster.connection_for(leader) {
            Ok(conn) => conn,
            Err(e) => {
                for b in batches {
                    self.retry_or_fail(b, e.clone(), now);
                }
                return;
            }
        };
        for b in &mut batches {
            b.attempts += 1;
            if let Some(seq) = b.sequence {
                self.sequences.sent(&b.tp, seq);
            }
        }
        let config = self.config();
        let request = Request::Produce(ProduceRequest {
            acks: config.acks,
            timeout_ms: u32::try_from(config.request_timeout_ms).unwrap_or(u32::MAX),
            topics: produce_topics(&batches),
        });
        if config.acks == Acks::None {
            match conn.send_oneway(&request) {
                Ok(()) => batches
                    .into_iter()
                    .for_each(|b| self.complete(b, None, None)),
                Err(e) => batches
                    .into_iter()
                    .for_each(|b| self.retry_or_fail(b, e.clone(), now)),
            }
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        let tx = self.tx.clone();
        let callback = Box::new(move |result| {
            // The sender is gone only after close: the answer has no one to go to.
            let _ = tx.send(Event::Response {
                request: id,
                result,
            });
        });
        match conn.send(&request, self.shared.cluster.request_timeout(), callback) {
            Ok(()) => {
                *self.per_leader.entry(leader).or_default() += 1;
                self.in_flight.insert(id, InFlight { leader, batches });
            }
            Err(e) => batches
                .into_iter()
                .for_each(|b| self.retry_or_fail(b, e.clone(), now)),
        }
    }

    // ---- responses ----

    fn on_response(&mut self, request: u64, result: Result<Response, ClientError>) {
        let Some(flight) = self.in_flight.remove(&request) else {
            return;
        };
        let count = self
            .per_leader
            .get_mut(&flight.leader)
            .expect("counted when sent");
        *count -= 1;
        let now = Instant::now();
        match result {
            Ok(Response::Produce(r)) => {
                for b in flight.batches {
                    self.on_partition_answer(b, &r, now);
                }
            }
            Ok(Response::Failed(f)) => {
                for b in flight.batches {
                    let err = ClientError::Broker {
                        context: format!("Produce to {}", b.tp),
                        code: f.error_code,
                        message: f.error_message.clone(),
                    };
                    self.retry_or_fail(b, err, now);
                }
            }
            Ok(other) => {
                let err = ClientError::UnexpectedResponse {
                    addr: flight.leader.to_string(),
                    expected: ApiKey::Produce,
                    got: format!("api key {}", other.api_key_raw()),
                };
                flight
                    .batches
                    .into_iter()
                    .for_each(|b| self.retry_or_fail(b, err.clone(), now));
            }
            Err(e) => flight
                .batches
                .into_iter()
                .for_each(|b| self.retry_or_fail(b, e.clone(), now)),
        }
    }

    fn on_partition_answer(&mut self, b: Batch, r: &ProduceResponse, now: Instant) {
        let answer = find_partition(r, &b.tp);
        match answer {
            Some(p) if matches!(p.error_code, ErrorCode::None | ErrorCode::DuplicateSequence) => {
                self.complete(b, Some(p.base_offset), p.log_append_time_ms);
            }
            Some(p) => {
                let err = ClientError::Broker {
                    context: format!("Produce to {}", b.tp),
                    code: p.error_code,
                    message: p.error_message.clone(),
                };
                self.retry_or_fail(b, err, now);
            }
            None => {
                let err = ClientError::Broker {
                    context: format!("Produce to {}", b.tp),
                    code: ErrorCode::Unknown,
                    message: Some("the response does not mention the partition".into()),
                };
                self.retry_or_fail(b, err, now);
            }
        }
    }

    fn retry_or_fail(&mut self, mut b: Batch, err: ClientError, now: Instant) {
        if err.invalidates_metadata() {
            self.shared.cluster.request_refresh();
        }
        let explained_out_of_order = err.code() == Some(ErrorCode::OutOfOrderSequence)
            && b.sequence
                .is_some_and(|seq| self.sequences.earlier_unacked(&b.tp, seq));
        let retriable = err.is_retriable() || explained_out_of_order;
        let delivery_timeout = Duration::from_millis(self.config().delivery_timeout_ms);
        let in_time = now < b.created + delivery_timeout;
        let resends_left = b.attempts <= self.config().retries;
        if retriable && in_time && resends_left && self.closing != Some(false) {
            let config = self.config();
            let failures = b.attempts.saturating_sub(1);
            let pause = delay_ms(
                config.retry_backoff_ms,
                config.retry_backoff_max_ms,
                failures,
                self.rng.next_u64(),
            );
            b.retry_at = now + Duration::from_millis(pause);
            self.shared.resends.fetch_add(1, Ordering::Relaxed);
            if let Some(seq) = b.sequence {
                self.sequences.will_resend(&b.tp, seq);
            }
            self.last_error = Some(err);
            let queue = self.resend.entry(b.tp.clone()).or_default();
            // Keep resends in sequence order; failures arrive in any order.
            let at = match b.sequence {
                Some(seq) => queue.partition_point(|q| q.sequence.is_some_and(|s| s < seq)),
                None => queue.len(),
            };
            queue.insert(at, b);
            return;
        }
        if let Some(seq) = b.sequence {
            self.sequences.dropped(&b.tp, seq);
            self.bump_epoch = true;
        }
        let err = if retriable {
            ClientError::timeout(
                format!(
                    "delivery to {} ({} attempts; last error: {err})",
                    b.tp, b.attempts
                ),
                delivery_timeout,
            )
        } else {
            err
        };
        self.fail_records(b.records, b.reserved_bytes, &err);
    }

    fn complete(&mut self, b: Batch, base_offset: Option<u64>, append_time_ms: Option<i64>) {
        if let Some(seq) = b.sequence {
            self.sequences.acked(&b.tp, seq);
        }
        let count = b.records.len();
        let handler = self.shared.handler.as_ref();
        // One report, rewritten per record: the topic is cloned once per batch.
        let mut result: DeliveryResult = Ok(RecordMetadata {
            topic: Arc::clone(&b.tp.topic),
            partition: b.tp.partition,
            offset: None,
            timestamp_ms: 0,
            key_bytes: 0,
            value_bytes: 0,
            acked_at: Instant::now(),
        });
        for (i, r) in b.records.into_iter().enumerate() {
            if let Ok(meta) = &mut result {
                meta.offset = base_offset.map(|base| base + i as u64);
                meta.timestamp_ms = append_time_ms.unwrap_or(r.timestamp_ms);
                meta.key_bytes = r.key_bytes;
                meta.value_bytes = r.value_bytes;
            }
            r.completion.complete(&result, handler);
        }
        self.release(count, b.reserved_bytes);
    }

    fn fail_records(
        &mut self,
        records: Vec<PendingRecord>,
        reserved_bytes: usize,
        err: &ClientError,
    ) {
        let count = records.len();
        let handler = self.shared.handler.as_ref();
        let result: DeliveryResult = Err(err.clone());
        for r in records {
            r.completion.complete(&result, handler);
        }
        self.release(count, reserved_bytes);
    }

    /// Counts `records` and their `bytes` as completed; [`Self::release_completed`] hands
    /// them back to the accumulator.
    fn release(&mut self, records: usize, bytes: usize) {
        self.released.records += records;
        self.released.bytes += bytes;
    }

    /// Releases the completed records' memory and wakes whoever waits for it (sends
    /// waiting for buffer memory, flushes): once per loop, for all its batches.
    fn release_completed(&mut self) {
        let Released { records, bytes } = std::mem::take(&mut self.released);
        if records == 0 && bytes == 0 {
            return;
        }
        lock(&self.shared.accumulator).completed(records, bytes);
        self.shared.completed.notify_all();
    }

    // ---- time ----

    /// Fails batches past delivery_timeout_ms that are not in flight.
    fn expire(&mut self, now: Instant) {
        let timeout = Duration::from_millis(self.config().delivery_timeout_ms);
        let Some(cutoff) = now.checked_sub(timeout) else {
            return;
        };
        if now >= self.next_expiry_scan {
            self.next_expiry_scan = now + Duration::from_millis(EXPIRY_SCAN_INTERVAL_MS);
            let expired = lock(&self.shared.accumulator).take_expired(cutoff);
            for b in expired {
                let err = self.expiry_error(&b.tp, timeout);
                self.fail_records(b.records, b.reserved_bytes, &err);
            }
        }
        let tps: Vec<TopicPartition> = self.resend.keys().cloned().collect();
        for tp in tps {
            let queue = self.resend.get_mut(&tp).expect("listed above");
            let (old, keep): (VecDeque<Batch>, VecDeque<Batch>) = std::mem::take(queue)
                .into_iter()
                .partition(|b| b.created <= cutoff);
            if keep.is_empty() {
                self.resend.remove(&tp);
            } else {
                *queue = keep;
            }
            for b in old {
                if let Some(seq) = b.sequence {
                    self.sequences.dropped(&b.tp, seq);
                    self.bump_epoch = true;
                }
                let err = self.expiry_error(&b.tp, timeout);
                self.fail_records(b.records, b.reserved_bytes, &err);
            }
        }
    }

    fn expiry_error(&self, tp: &TopicPartition, timeout: Duration) -> ClientError {
        let last = match &self.last_error {
            Some(e) => format!("; last error: {e}"),
            None => String::new(),
        };
        ClientError::timeout(
            format!("delivery to {tp} (delivery_timeout_ms{last})"),
            timeout,
        )
    }

    fn next_wake(&self, now: Instant) -> Duration {
        let mut wake = now + Duration::from_millis(SENDER_IDLE_WAKE_MS);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t.filter(|t| *t > now) {
                wake = wake.min(t);
            }
        };
        consider(self.next_linger);
        for q in self.resend.values() {
            consider(q.front().map(|b| b.retry_at));
        }
        consider(self.identity_retry_at);
        consider(self.shared.cluster.refresh_due_at());
        wake.saturating_duration_since(now)
    }

    /// Closing without delivering: every record still held fails.
    fn abort_all(&mut self) {
        let err = ClientError::Closed { what: "producer" };
        let queued = lock(&self.shared.accumulator).take_all();
        for b in queued {
            self.fail_records(b.records, b.reserved_bytes, &err);
        }
        let resend = std::mem::take(&mut self.resend);
        for b in resend.into_values().flatten() {
            self.fail_records(b.records, b.reserved_bytes, &err);
        }
        let flights = std::mem::take(&mut self.in_flight);
        for b in flights.into_values().flat_map(|f| f.batches) {
            self.fail_records(b.records, b.reserved_bytes, &err);
        }
    }
}

/// What bounds the Produce requests to one broker.
#[derive(Debug, Clone, Copy)]
struct RequestLimits {
    /// Requests unanswered at most (max_in_flight_per_connection).
    in_flight_max: usize,
    /// Batch bytes in one request at most (max_request_bytes).
    bytes_max: usize,
}

/// Whether a batch of `bytes` for `tp` joins the request being planned for a broker,
/// whose `members` so far are (partition, bytes) pairs. Without members it opens a new
/// request, allowed while fewer than the limit are in flight; with members it joins
/// unless its partition already has a batch there (one per partition per request, as
/// in Kafka) or the request would exceed its byte limit.
fn joins_request<'a>(
    members: impl Iterator<Item = (&'a TopicPartition, usize)> + Clone,
    in_flight: usize,
    limits: RequestLimits,
    tp: &TopicPartition,
    bytes: usize,
) -> bool {
    if members.clone().next().is_none() {
        return in_flight < limits.in_flight_max;
    }
    let used: usize = members.clone().map(|(_, n)| n).sum();
    !members.into_iter().any(|(t, _)| t == tp) && used + bytes <= limits.bytes_max
}

fn producer_stamp(identity: ProducerIdentity, seq: u64) -> ProducerStamp {
    ProducerStamp {
        producer_id: identity.producer_id,
        producer_epoch: identity.producer_epoch,
        base_sequence: stamp(seq),
    }
}

/// Groups one batch per partition into the request's topics, in order.
fn produce_topics(batches: &[Batch]) -> Vec<ProduceTopic> {
    let mut topics: Vec<ProduceTopic> = Vec::new();
    for b in batches {
        let partition = ProducePartition {
            partition: b.tp.partition,
            batches: vec![b.bytes.clone()],
        };
        match topics.iter_mut().find(|t| t.name == *b.tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(ProduceTopic {
                name: b.tp.topic.to_string(),
                partitions: vec![partition],
            }),
        }
    }
    topics
}

fn find_partition<'a>(
    r: &'a ProduceResponse,
    tp: &TopicPartition,
) -> Option<&'a ProducePartitionResponse> {
    r.topics
        .iter()
        .filter(|t| t.name == *tp.topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == tp.partition)
}

/// A copy of `batch` with another producer stamp (the CRC recomputed). Only after an
/// epoch bump: a normal resend keeps its bytes.
fn restamp(batch: &Bytes, stamp: ProducerStamp) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(
        offset_of!(BatchHeader, producer_id),
        &stamp.producer_id.to_le_bytes(),
    );
    put(
        offset_of!(BatchHeader, producer_epoch),
        &stamp.producer_epoch.to_le_bytes(),
    );
    put(
        offset_of!(BatchHeader, base_sequence),
        &stamp.base_sequence.to_le_bytes(),
    );
    let crc = batch_crc(&b);
    let at = offset_of!(BatchHeader, crc);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    b.freeze()
}

/// Rotates `ready` to start at `cursor` (modulo its length) and moves the cursor on by
/// one, so that every ready partition is first in turn.
fn rotate_from<T>(ready: &mut [T], cursor: &mut usize) {
    if ready.is_empty() {
        return;
    }
    ready.rotate_left(*cursor % ready.len());
    *cursor = cursor.wrapping_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_joins_a_request_within_its_limits() {
        let limits = RequestLimits {
            in_flight_max: 2,
            bytes_max: 1000,
        };
        let tp = |p| TopicPartition::new("t", p);
        let (a, b, c) = (tp(0), tp(1), tp(2));
        let none = std::iter::empty();
        // A new request: only while fewer than the limit are in flight.
        assert!(joins_request(none.clone(), 1, limits, &a, 600));
        assert!(!joins_request(none, 2, limits, &a, 600));
        // Joining: the in-flight count no longer matters (the request is already counted).
        let members = [(&a, 400), (&b, 300)];
        assert!(joins_request(members.iter().copied(), 2, limits, &c, 300));
        assert!(!joins_request(members.iter().copied(), 0, limits, &c, 301));
        // One batch per partition per request, whatever its size.
        assert!(!joins_request(members.iter().copied(), 0, limits, &b, 1));
    }

    #[test]
    fn every_ready_partition_leads_a_drain_in_turn() {
        // Room for 4 of 6 ready partitions per request: over 6 drains each partition is
        // taken 4 times, none starves (the old fixed order took 0..3 every time).
        let mut cursor = 0;
        let mut taken = [0u32; 6];
        for _ in 0..6 {
            let mut ready: Vec<usize> = (0..6).collect();
            rotate_from(&mut ready, &mut cursor);
            for &p in ready.iter().take(4) {
                taken[p] += 1;
            }
        }
        assert_eq!(taken, [4; 6]);
        let mut empty: Vec<usize> = Vec::new();
        rotate_from(&mut empty, &mut cursor);
    }
    use cfa_engine::batch::validate;
    use cfa_engine::compression::Compression;
    use cfa_engine::{BatchBuilder, Codec};

    fn batch(stamp: ProducerStamp, codec: Codec) -> Bytes {
        let mut b = BatchBuilder::new(1_000);
        for i in 0..20u8 {
            b.push(1_000 + i64::from(i), Some(&[i]), Some(&[i; 100]), &[]);
        }
        b.finish_with(stamp, Compression::from(codec))
            .expect("encode")
            .freeze()
    }

    #[test]
    fn restamp_matches_a_batch_built_with_the_stamp() {
        let old = ProducerStamp {
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: 40,
        };
        let new = ProducerStamp {
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 0,
        };
        for codec in [Codec::None, Codec::Zstd] {
            let restamped = restamp(&batch(old, codec), new);
            assert_eq!(restamped, batch(new, codec));
            let h = validate(&restamped, u32::MAX).expect("valid CRC");
            assert_eq!(h.producer_epoch.get(), 1);
            assert_eq!(h.base_sequence.get(), 0);
        }
    }

    #[test]
    fn produce_topics_group_by_topic_in_order() {
        let mk = |t: &str, p: u32| Batch {
            tp: TopicPartition::new(t, p),
            records: Vec::new(),
            bytes: Bytes::from_static(b"x"),
            record_count: 1,
            sequence: None,
            created: Instant::now(),
            attempts: 0,
            retry_at: Instant::now(),
            reserved_bytes: 0,
        };
        let topics = produce_topics(&[mk("a", 0), mk("b", 1), mk("a", 2)]);
        let shape: Vec<(String, Vec<u32>)> = topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.partitions.iter().map(|p| p.partition).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![("a".to_owned(), vec![0, 2]), ("b".to_owned(), vec![1])]
        );
    }
}
