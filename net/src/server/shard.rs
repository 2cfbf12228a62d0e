//! One shard: a glommio executor pinned to a core that owns a share of the partitions.
//!
//! Only the owning shard touches a partition's log. Requests that arrive on another shard
//! travel here as messages over glommio's channel mesh ([`ShardMsg`]), and the reply goes
//! back the same way; no partition state is shared between threads.
//!
//! Ownership: `__consumer_offsets` lives on shard 0 with the group coordinator; every
//! other partition on `(fnv1a(topic) + partition) % shards`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cfa_engine::storage::glommio_fs::GlommioStorage;
use cfa_engine::storage::Storage as _;
use cfa_engine::{
    BatchHeader, ClockRef, Durability, LogConfig, LogError, PartitionId, PartitionLog, StopSignal,
};
use glommio::channels::channel_mesh::Senders;

use crate::constants::{CONNECTION_READ_BYTES, SHARED_BATCH_PIN_RATIO_MAX};
use crate::protocol::{
    Acks, ErrorCode, FetchPartitionResponse, ListOffsetsPartitionResponse, OffsetSpec,
    PartitionDescription, ProducePartitionResponse, Request, Response,
};
use crate::server::config::BrokerConfig;
use crate::server::idempotence::{ProducerTable, Verdict};
use crate::server::metrics::{metered, MeteredStorage, Metrics, PartitionMetrics};
use crate::server::producer_state;
use crate::server::retention::Retention;
use crate::server::slot::Slot;
use crate::server::topics::{TopicMeta, TopicTable, OFFSETS_TOPIC};
use crate::server::ServerError;

pub(crate) type Store = MeteredStorage<GlommioStorage>;
pub(crate) type Log = PartitionLog<Store>;

/// The shard that owns a partition.
pub fn owner_shard(topic: &str, partition: u32, shards: usize) -> usize {
    if topic == OFFSETS_TOPIC {
        return 0;
    }
    let mut h: u32 = 0x811c_9dc5; // FNV-1a: stable across runs and builds
    for b in topic.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h.wrapping_add(partition) as usize) % shards
}

/// Work one shard asks of another.
#[derive(Debug)]
pub(crate) enum ShardRequest {
    Produce {
        topic: String,
        partition: u32,
        batches: Vec<Bytes>,
        /// The length of the request frame the batches are slices of.
        frame_bytes: usize,
        acks: Acks,
    },
    Fetch {
        topic: String,
        partition: u32,
        offset: u64,
        /// At most this much (at least one batch, if any); 0: offsets only, no batches.
        max_bytes: usize,
    },
    /// Answer when any of these partitions has data at or past the offset, or after wait_ms.
    Wait {
        parts: Vec<(String, u32, u64)>,
        wait_ms: u32,
    },
    ListOffset {
        topic: String,
        partition: u32,
        spec: OffsetSpec,
    },
    Describe {
        topic: String,
        partition: u32,
    },
    /// A whole request for shard 0 (topic admin, producer ids, consumer groups).
    Whole(Request),
    TopicCreated(TopicMeta),
    TopicDeleted(String),
}

#[derive(Debug)]
pub(crate) enum ShardReply {
    Produce(ProducePartitionResponse),
    Fetch(FetchPartitionResponse),
    ListOffset(ListOffsetsPartitionResponse),
    Describe(PartitionDescription),
    Whole(Response),
    Done(Result<(), String>),
}

#[derive(Debug)]
pub(crate) enum ShardMsg {
    Request {
        id: u64,
        from: usize,
        req: ShardRequest,
    },
    Reply {
        id: u64,
        rep: ShardReply,
    },
}

/// A partition this shard owns.
pub(crate) struct Partition {
    pub log: Rc<Log>,
    pub producers: RefCell<ProducerTable>,
    /// Its maintenance task's stop signal.
    pub stop: Rc<StopSignal>,
    /// Its counters in the metrics registry.
    pub metrics: Arc<PartitionMetrics>,
    /// The file layer of its log (the producer snapshot is written through it).
    pub storage: Store,
    /// Its active segment rolled since the last retention check.
    pub retention_due: Cell<bool>,
    /// `true` once the log is closed. Held by a retention pass and by the close, so a
    /// close waits for retention in progress and retention never touches a closed log.
    pub lifecycle: async_lock::Mutex<bool>,
}

/// Where clients reach the broker.
pub(crate) struct Advertised {
    /// The address every shard listens on (SO_REUSEPORT).
    pub addr: std::net::SocketAddr,
    /// Every shard's own listener port, by shard (on `addr`'s IP); empty without.
    pub shard_ports: Arc<[u16]>,
}

pub(crate) struct Shard {
    pub id: usize,
    pub shards: usize,
    pub config: BrokerConfig,
    pub clock: ClockRef,
    pub topics: RefCell<TopicTable>,
    pub partitions: RefCell<HashMap<PartitionId, Rc<Partition>>>,
    pub mesh: Option<Senders<ShardMsg>>,
    pending: RefCell<HashMap<u64, Rc<Slot<ShardReply>>>>,
    next_call: Cell<u64>,
    pub shutting_down: Cell<bool>,
    pub admin: Option<crate::server::admin::Admin>,
    /// Where clients reach this broker (Metadata answers it).
    pub advertised: Advertised,
    /// The broker's metrics registry (this shard's own counters: `metrics.shard(id)`).
    pub metrics: Arc<Metrics>,
    /// The retention task's controls.
    pub retention: Retention,
}

/// A partition's produce answer carrying only an error.
pub(crate) fn produce_error(
    partition: u32,
    code: ErrorCode,
    msg: String,
) -> ProducePartitionResponse {
    ProducePartitionResponse {
        partition,
        error_code: code,
        error_message: Some(msg),
        base_offset: 0,
        log_append_time_ms: None,
        log_start_offset: 0,
    }
}

/// A partition's fetch answer carrying only an error.
pub(crate) fn fetch_error(partition: u32, code: ErrorCode, msg: String) -> FetchPartitionResponse {
    FetchPartitionResponse {
        partition,
        error_code: code,
        error_message: Some(msg),
        high_watermark: 0,
        log_start_offset: 0,
        batches: Vec::new(),
    }
}

/// The code and message a client gets for an engine error.
/// What a batch that is a slice of a request frame of `frame_bytes` may keep in memory:
/// the allocation the frame was received into. A frame longer than one read lands in an
/// allocation of exactly its length (`ReadBuffer` reads the rest of it into one); a
/// shorter one may share a read's allocation with its neighbours.
fn frame_pinned_bytes(frame_bytes: usize) -> usize {
    if frame_bytes > CONNECTION_READ_BYTES {
        frame_bytes
    } else {
        frame_bytes + CONNECTION_READ_BYTES
    }
}

/// Appends a batch that arrived in a request frame. A batch that is a large enough share
/// of its frame is kept as a slice of it (no copy, `append_shared`), charged with the
/// frame's whole allocation; a small one (many partitions in one request) is copied out,
/// so that it does not keep a frame many times its size alive in the cache.
async fn append_from_frame(
    log: &Log,
    batch: &Bytes,
    frame_bytes: usize,
) -> Result<cfa_engine::AppendInfo, LogError> {
    let pinned = frame_pinned_bytes(frame_bytes);
    if batch.len().saturating_mul(SHARED_BATCH_PIN_RATIO_MAX) >= pinned {
        log.append_shared(batch.clone(), pinned).await
    } else {
        log.append(BytesMut::from(&batch[..])).await
    }
}

pub(crate) fn log_error(e: &LogError) -> (ErrorCode, String) {
    (ErrorCode::from(e), e.to_string())
}

/// Stops a partition's maintenance, waits for a retention pass in progress, closes its
/// log and, with `keep_state` and a healthy log, writes its producer snapshot for the log
/// end offset it closed at. A failed snapshot is logged, not returned: the next start
/// rebuilds the table from the log.
async fn close_partition(part: &Partition, keep_state: bool) -> Result<(), LogError> {
    part.stop.stop();
    let mut closed = part.lifecycle.lock().await;
    *closed = true;
    // Taken together, with no await in between: the table holds exactly the batches
    // appended below this offset. Appends that slip in during the close only make the
    // snapshot stale (the next open rebuilds), never wrong.
    let end = part.log.offsets().next;
    let snapshot = keep_state.then(|| part.producers.borrow().encode_snapshot(end));
    part.log.close().await?;
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    if part.log.poisoned().is_some() {
        return Ok(());
    }
    if let Err(e) = producer_state::store(&part.storage, part.log.dir(), &snapshot).await {
        tracing::warn!(error = %e, "the next start rebuilds the producer table from the log");
    }
    Ok(())
}

impl Shard {
    pub fn new(
        id: usize,
        config: BrokerConfig,
        clock: ClockRef,
        topics: TopicTable,
        mesh: Option<Senders<ShardMsg>>,
        advertised: Advertised,
        metrics: Arc<Metrics>,
    ) -> Shard {
        let ports = advertised.shard_ports.len();
        assert!(
            ports == 0 || ports == config.shards,
            "a port for every shard, or none"
        );
        let shards = config.shards;
        let admin = (id == 0).then(|| crate::server::admin::Admin::new(&config));
        Shard {
            id,
            shards,
            config,
            clock,
            topics: RefCell::new(topics),
            partitions: RefCell::new(HashMap::new()),
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_call: Cell::new(0),
            shutting_down: Cell::new(false),
            admin,
            advertised,
            metrics,
            retention: Retention::default(),
        }
    }

    pub fn owner(&self, topic: &str, partition: u32) -> usize {
        owner_shard(topic, partition, self.shards)
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Option<Rc<Partition>> {
        let id = PartitionId::new(topic, partition);
        self.partitions.borrow().get(&id).cloned()
    }

    /// Opens (creating if needed) every partition of `meta` this shard owns, each with its
    /// maintenance task.
    pub async fn open_topic(&self, meta: &TopicMeta) -> Result<(), ServerError> {
        let config = meta
            .log_config(&self.config.log)
            .map_err(|e| ServerError::Config(e.message))?;
        for p in 0..meta.partitions {
            if self.owner(&meta.name, p) != self.id {
                continue;
            }
            self.open_partition(&meta.name, p, config.clone()).await?;
        }
        Ok(())
    }

    async fn open_partition(
        &self,
        topic: &str,
        p: u32,
        config: LogConfig,
    ) -> Result<(), ServerError> {
        let id = PartitionId::new(topic, p);
        if self.partitions.borrow().contains_key(&id) {
            return Ok(());
        }
        let dir = self.config.data_dir.join(id.dir_name());
        let storage = metered(GlommioStorage, self.metrics.shard(self.id).clone());
        let log = PartitionLog::open(storage.clone(), &dir, config, self.clock.clone()).await?;
        let (producers, origin) = producer_state::load(&storage, &log).await?;
        tracing::debug!(partition = %id, producers = producers.len(), ?origin, "producer state loaded");
        let log = Rc::new(log);
        let metrics = self.metrics.register_partition(topic, p);
        metrics.set_offsets(&log.offsets());
        let stop = Rc::new(StopSignal::new());
        {
            let (log, stop) = (log.clone(), stop.clone());
            glommio::spawn_local(async move {
                if let Err(e) = log.run_maintenance(&stop, glommio::timer::sleep).await {
                    tracing::error!(partition = %log.dir().display(), error = %e, "partition maintenance stopped");
                }
            })
            .detach();
        }
        let part = Rc::new(Partition {
            log,
            producers: RefCell::new(producers),
            stop,
            metrics,
            storage,
            retention_due: Cell::new(false),
            lifecycle: async_lock::Mutex::new(false),
        });
        self.partitions.borrow_mut().insert(id, part);
        self.share_cache_budget();
        Ok(())
    }

    /// Splits the shard's batch-cache budget evenly among its partitions (each capped by
    /// its own batch_cache_bytes). Called whenever the partition count changes.
    fn share_cache_budget(&self) {
        let parts = self.partitions.borrow();
        let share = self.config.shard_batch_cache_bytes / parts.len().max(1);
        for p in parts.values() {
            p.log.set_batch_cache_bytes(share);
        }
    }

    /// Closes and deletes this shard's partitions of a topic.
    pub async fn drop_topic(&self, name: &str) -> Result<(), ServerError> {
        let ids: Vec<PartitionId> = self
            .partitions
            .borrow()
            .keys()
            .filter(|id| id.topic == name)
            .cloned()
            .collect();
        for id in ids {
            let part = self.partitions.borrow_mut().remove(&id);
            if let Some(part) = part {
                self.metrics
                    .unregister_partition(&id.topic, id.partition, &part.metrics);
                close_partition(&part, false).await?;
                let dir = self.config.data_dir.join(id.dir_name());
                // Through the file layer: it unlinks on glommio's blocking thread. Called
                // here on the executor, `remove_dir_all` held the whole shard inside the
                // kernel's trims (ftrace: 33 ms per blocked call, 0.68 s per deleted
                // topic in a bench run), every other partition of the shard waiting.
                part.storage
                    .remove_dir_all(&dir)
                    .await
                    .map_err(|e| ServerError::Io {
                        what: format!("deleting {}", dir.display()),
                        source: e,
                    })?;
            }
        }
        self.topics.borrow_mut().remove(name);
        self.share_cache_budget();
        Ok(())
    }

    /// Flushes, fsyncs and closes every partition (graceful shutdown).
    pub async fn close_all(&self) -> Result<(), ServerError> {
        let parts: Vec<Rc<Partition>> = self
            .partitions
            .borrow_mut()
            .drain()
            .map(|(_, p)| p)
            .collect();
        let mut first_err = None;
        for part in parts {
            if let Err(e) = close_partition(&part, true).await {
                tracing::error!(partition = %part.log.dir().display(), error = %e, "closing a partition");
                first_err.get_or_insert(ServerError::Log(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    // ---- cross-shard calls ----

    /// Runs `req` on shard `to` (here when it is this shard) and returns its reply.
    pub async fn call(self: &Rc<Self>, to: usize, req: ShardRequest) -> ShardReply {
        self.call_started(to, req).await.await
    }

    /// Sends `req` to shard `to` now (waiting only for room in the channel: backpressure)
    /// and returns the future of its reply.
    pub async fn call_started(
        self: &Rc<Self>,
        to: usize,
        req: ShardRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ShardReply>>> {
        if to == self.id {
            let shard = self.clone();
            return Box::pin(async move { shard.serve(req).await });
        }
        let Some(mesh) = &self.mesh else {
            return Box::pin(async { ShardReply::Done(Err("no shard mesh".into())) });
        };
        self.metrics.shard(self.id).call_sent();
        let id = self.next_call.get();
        self.next_call.set(id + 1);
        let slot = Rc::new(Slot::new());
        self.pending.borrow_mut().insert(id, slot.clone());
        let msg = ShardMsg::Request {
            id,
            from: self.id,
            req,
        };
        if mesh.send_to(to, msg).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Box::pin(async move { ShardReply::Done(Err(format!("shard {to} is gone"))) });
        }
        Box::pin(async move { slot.wait().await })
    }

    /// Handles one message from a peer. Produce appends run inline, in arrival order (so
    /// the sequence checks of idempotent producers see batches in the order they were
    /// sent); everything else, and the wait for a produce's acks, runs in its own task.
    pub async fn on_message(self: &Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Reply { id, rep } => {
                if let Some(slot) = self.pending.borrow_mut().remove(&id) {
                    slot.fill(rep);
                }
            }
            ShardMsg::Request { id, from, req } => {
                let fut: std::pin::Pin<Box<dyn std::future::Future<Output = ShardReply>>> =
                    match req {
                        ShardRequest::Produce {
                            topic,
                            partition,
                            batches,
                            frame_bytes,
                            acks,
                        } => {
                            let appended = self
                                .produce_append(&topic, partition, &batches, frame_bytes)
                                .await;
                            let shard = self.clone();
                            Box::pin(async move {
                                ShardReply::Produce(shard.produce_finish(appended, acks).await)
                            })
                        }
                        other => {
                            let shard = self.clone();
                            Box::pin(async move { shard.serve(other).await })
                        }
                    };
                let shard = self.clone();
                glommio::spawn_local(async move {
                    let rep = fut.await;
                    if let Some(mesh) = &shard.mesh {
                        let _ = mesh.send_to(from, ShardMsg::Reply { id, rep }).await;
                    }
                })
                .detach();
            }
        }
    }

    /// Serves a request addressed to this shard.
    pub async fn serve(self: Rc<Self>, req: ShardRequest) -> ShardReply {
        match req {
            ShardRequest::Produce {
                topic,
                partition,
                batches,
                frame_bytes,
                acks,
            } => {
                let appended = self
                    .produce_append(&topic, partition, &batches, frame_bytes)
                    .await;
                ShardReply::Produce(self.produce_finish(appended, acks).await)
            }
            ShardRequest::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
            } => ShardReply::Fetch(self.fetch_local(&topic, partition, offset, max_bytes).await),
            ShardRequest::Wait { parts, wait_ms } => {
                self.wait_local(&parts, wait_ms).await;
                ShardReply::Done(Ok(()))
            }
            ShardRequest::ListOffset {
                topic,
                partition,
                spec,
            } => ShardReply::ListOffset(self.list_offset_local(&topic, partition, spec).await),
            ShardRequest::Describe { topic, partition } => {
                ShardReply::Describe(self.describe_local(&topic, partition))
            }
            ShardRequest::Whole(req) => {
                ShardReply::Whole(crate::server::admin::serve_whole(&self, req).await)
            }
            ShardRequest::TopicCreated(meta) => {
                let res = self.open_topic(&meta).await.map_err(|e| e.to_string());
                if res.is_ok() {
                    let mut t = self.topics.borrow_mut();
                    t.remove(&meta.name);
                    let _ = t.insert(meta);
                }
                ShardReply::Done(res)
            }
            ShardRequest::TopicDeleted(name) => {
                ShardReply::Done(self.drop_topic(&name).await.map_err(|e| e.to_string()))
            }
        }
    }

    // ---- partition work (on the owner) ----

    /// Validates and appends the batches of one partition (idempotence checked first).
    /// Returns the partition's response so far and the offset to wait for.
    pub async fn produce_append(
        &self,
        topic: &str,
        partition: u32,
        batches: &[Bytes],
        frame_bytes: usize,
    ) -> Result<(Rc<Partition>, ProducePartitionResponse, u64), ProducePartitionResponse> {
        let Some(part) = self.partition(topic, partition) else {
            return Err(produce_error(
                partition,
                ErrorCode::UnknownPartition,
                format!("partition {topic}-{partition} is not on this broker"),
            ));
        };
        let mut base = None;
        let mut wait_to = 0;
        let segments = part.log.segment_count();
        for batch in batches {
            let header = match BatchHeader::parse(batch) {
                Ok(h) => *h,
                Err(e) => return Err(produce_error(partition, ErrorCode::from(&e), e.to_string())),
            };
            let (pid, epoch, seq) = (
                header.producer_id.get(),
                header.producer_epoch.get(),
                header.base_sequence.get(),
            );
            let count = header.record_count().max(1);
            if pid >= 0 {
                let verdict = part.producers.borrow().check(pid, epoch, seq, count);
                match verdict {
                    Verdict::Append => {}
                    Verdict::Duplicate { base_offset } => {
                        // The header was read unchecked (the log checks the CRC as it
                        // copies a batch in): a retry answered from the producer table must
                        // not be a corrupt batch that only looks like one.
                        let max = part.log.config().max_message_bytes;
                        if let Err(e) = cfa_engine::batch::validate(batch, max) {
                            return Err(produce_error(
                                partition,
                                ErrorCode::from(&e),
                                e.to_string(),
                            ));
                        }
                        base.get_or_insert(base_offset);
                        continue;
                    }
                    Verdict::Refuse(code, msg) => return Err(produce_error(partition, code, msg)),
                }
            }
            let info = match append_from_frame(&part.log, batch, frame_bytes).await {
                Ok(info) => info,
                Err(e) => {
                    let (code, msg) = log_error(&e);
                    return Err(produce_error(partition, code, msg));
                }
            };
            part.metrics
                .appended(batch.len(), header.record_count(), info.next_offset);
            if pid >= 0 {
                part.producers
                    .borrow_mut()
                    .record(pid, epoch, seq, count, info.base_offset);
            }
            base.get_or_insert(info.base_offset);
            wait_to = info.next_offset;
        }
        if part.log.segment_count() > segments {
            self.retention.rolled(&part);
        }
        let offsets = part.log.offsets();
        part.metrics.set_offsets(&offsets);
        let start = offsets.log_start;
        let resp = ProducePartitionResponse {
            partition,
            error_code: ErrorCode::None,
            error_message: None,
            base_offset: base.unwrap_or(0),
            log_append_time_ms: None,
            log_start_offset: start,
        };
        Ok((part, resp, wait_to))
    }

    /// Waits for what `acks` asks (nothing, written, durable) and completes the response.
    pub async fn produce_finish(
        &self,
        appended: Result<(Rc<Partition>, ProducePartitionResponse, u64), ProducePartitionResponse>,
        acks: Acks,
    ) -> ProducePartitionResponse {
        let (part, resp, wait_to) = match appended {
            Ok(a) => a,
            Err(e) => return e,
        };
        let level = match acks {
            Acks::None => return resp,
            Acks::Leader => Durability::Written,
            // One broker: the in-sync set is this broker, so "all" means durable here.
            Acks::All => Durability::Durable,
        };
        if wait_to == 0 {
            return resp; // only duplicates: already acknowledged once
        }
        match part.log.wait_for(wait_to, level).await {
            Ok(()) => resp,
            Err(e) => {
                let (code, msg) = log_error(&e);
                produce_error(resp.partition, code, msg)
            }
        }
    }

    pub async fn fetch_local(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> FetchPartitionResponse {
        let Some(part) = self.partition(topic, partition) else {
            return fetch_error(
                partition,
                ErrorCode::UnknownPartition,
                format!("partition {topic}-{partition} is not on this broker"),
            );
        };
        let o = part.log.offsets();
        // One broker: the high watermark is what the leader has written.
        let hw = o.written;
        part.metrics.set_offsets(&o);
        // No room left in the response: offsets only (the log would return one batch).
        let read = if max_bytes == 0 {
            Ok(Vec::new())
        } else {
            part.log.read(offset, max_bytes, hw).await
        };
        match read {
            Ok(batches) => {
                // Counted where they are read: a long-poll pass that the receiving shard
                // discards (below min_bytes) counts too.
                part.metrics.fetched(&batches);
                FetchPartitionResponse {
                    partition,
                    error_code: ErrorCode::None,
                    error_message: None,
                    high_watermark: hw,
                    log_start_offset: o.log_start,
                    batches,
                }
            }
            Err(e) => {
                let (code, msg) = log_error(&e);
                let mut r = fetch_error(partition, code, msg);
                r.high_watermark = hw;
                r.log_start_offset = o.log_start;
                r
            }
        }
    }

    /// Returns when any listed partition has written data at or past its offset, or
    /// after `wait_ms`.
    pub async fn wait_local(&self, parts: &[(String, u32, u64)], wait_ms: u32) {
        use futures_lite::FutureExt;
        let logs: Vec<(Rc<Partition>, u64)> = parts
            .iter()
            .filter_map(|(t, p, off)| self.partition(t, *p).map(|part| (part, *off)))
            .collect();
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(u64::from(wait_ms));
        loop {
            let listeners: Vec<_> = logs.iter().map(|(p, _)| p.log.listen()).collect();
            if logs.iter().any(|(p, off)| p.log.offsets().written > *off)
                || self.shutting_down.get()
            {
                return;
            }
            let now = std::time::Instant::now();
            if now >= deadline || listeners.is_empty() {
                if listeners.is_empty() && now < deadline {
                    glommio::timer::sleep(deadline - now).await;
                }
                return;
            }
            let any = futures_util::future::select_all(listeners);
            async {
                any.await;
            }
            .or(async {
                glommio::timer::sleep(deadline - now).await;
            })
            .await;
        }
    }

    pub async fn list_offset_local(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> ListOffsetsPartitionResponse {
        let mut r = ListOffsetsPartitionResponse {
            partition,
            error_code: ErrorCode::None,
            error_message: None,
            offset: None,
            timestamp_ms: None,
        };
        let Some(part) = self.partition(topic, partition) else {
            r.error_code = ErrorCode::UnknownPartition;
            r.error_message = Some(format!(
                "partition {topic}-{partition} is not on this broker"
            ));
            return r;
        };
        let o = part.log.offsets();
        match spec {
            OffsetSpec::Earliest => r.offset = Some(o.log_start),
            OffsetSpec::Latest => r.offset = Some(o.written),
            OffsetSpec::Timestamp(ts) => match part.log.offset_for_timestamp(ts).await {
                Ok(off) => {
                    r.offset = off;
                    r.timestamp_ms = off.map(|_| ts);
                }
                Err(e) => {
                    let (code, msg) = log_error(&e);
                    r.error_code = code;
                    r.error_message = Some(msg);
                }
            },
        }
        r
    }

    pub fn describe_local(&self, topic: &str, partition: u32) -> PartitionDescription {
        let node = self.config.node_id;
        let mut d = PartitionDescription {
            partition,
            error_code: ErrorCode::None,
            error_message: None,
            leader_id: Some(node),
            leader_epoch: 0,
            replicas: vec![node],
            isr: vec![node],
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
        };
        match self.partition(topic, partition) {
            Some(part) => {
                let o = part.log.offsets();
                d.log_start_offset = o.log_start;
                d.log_end_offset = o.next;
                d.high_watermark = o.written;
            }
            None => {
                d.error_code = ErrorCode::UnknownPartition;
                d.error_message = Some(format!(
                    "partition {topic}-{partition} is not on this broker"
                ));
            }
        }
        d
    }
}
