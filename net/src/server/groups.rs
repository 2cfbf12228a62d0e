//! The consumer-group coordinator service on shard 0: the pure
//! [`GroupCoordinator`](cfa_cluster::group::GroupCoordinator) wired to the wire protocol,
//! the clock and the `__consumer_offsets` partitions (which shard 0 owns).
//!
//! - JoinGroup requests are parked in a [`Slot`] under a token; the coordinator answers
//!   them through `Effect::JoinResponse`, now or from a later call (another join, a leave,
//!   the timer). The connection's writer awaits the slot.
//! - Commits are two-phase: validate (`prepare_commit`), append the batch to the group's
//!   offsets partition and wait until it is durable, then apply (`complete_commit`). The
//!   commits of one group run one at a time, so they complete in append order.
//! - One timer task ticks the coordinator at its next deadline, and sleeps on an event when
//!   there is none: no periodic timer while idle (glommio arms a timer at every executor
//!   sleep while one is pending, which slows fsync-per-batch produce latency).
//! - On start the committed offsets are replayed from every offsets partition.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cfa_cluster::group::{
    self as cg, CommitEntry, CommitRequest, CoordinatorConfig, Effect, GroupCoordinator,
    GroupError, JoinRequest, JoinResult, JoinToken, OffsetStore, TopicMetadata, TopicPartition,
};
use cfa_engine::{BatchHeader, ClockRef, Durability};
use event_listener::Event;
use futures_lite::FutureExt;

use crate::constants::{
    GROUP_JOINS_PARKED_MAX, OFFSETS_REPLAY_READ_BYTES, OFFSETS_TOPIC_PARTITIONS,
};
use crate::protocol::{
    DescribeGroupRequest, DescribeGroupResponse, ErrorCode, FailedResponse, GroupListing,
    GroupMemberDescription, GroupState, HeartbeatRequest, HeartbeatResponse, JoinGroupMember,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchPartition, OffsetFetchRequest,
    OffsetFetchResponse, OffsetFetchTopic, PartitionResult, Request, Response, SyncGroupRequest,
    SyncGroupResponse, TopicPartitionResults, TopicPartitions,
};
use crate::server::config::BrokerConfig;
use crate::server::shard::{log_error, Log, Shard};
use crate::server::slot::Slot;
use crate::server::topics::OFFSETS_TOPIC;
use crate::server::ServerError;

/// What a parked JoinGroup gets: the member it was for, and the answer or why not.
struct JoinAnswer {
    member_id: String,
    result: Result<JoinResult, (ErrorCode, String)>,
}

pub(crate) struct GroupService {
    inner: Rc<Inner>,
}

/// Shared with the timer task.
struct Inner {
    coordinator: RefCell<GroupCoordinator>,
    /// Parked JoinGroup requests by token (at most `GROUP_JOINS_PARKED_MAX`). Every token
    /// handed to the coordinator is answered by it eventually (generation formed, member
    /// removed, or rebalance timeout), or by `stop`.
    parked: RefCell<HashMap<JoinToken, Rc<Slot<JoinAnswer>>>>,
    next_token: Cell<JoinToken>,
    /// One lock per group with a commit in progress (removed when the last user is done,
    /// so bounded by the requests in flight).
    commit_locks: RefCell<HashMap<String, Rc<async_lock::Mutex<()>>>>,
    /// Notified when a call may have moved the coordinator's next deadline earlier, and
    /// on stop.
    changed: Event,
    started: Cell<bool>,
    stopped: Cell<bool>,
    timer: RefCell<Option<glommio::Task<()>>>,
}

fn now_ms(clock: &ClockRef) -> u64 {
    u64::try_from(clock.now_ms()).unwrap_or(0)
}

fn failed(api: u16, code: ErrorCode, msg: String) -> Response {
    Response::Failed(FailedResponse {
        api_key: api,
        error_code: code,
        error_message: Some(msg),
    })
}

fn group_error(e: &GroupError) -> (ErrorCode, String) {
    (ErrorCode::from(e), e.to_string())
}

impl GroupService {
    pub fn new(_config: &BrokerConfig) -> GroupService {
        // The boot time makes member ids of this run distinct from those of earlier runs.
        let boot_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let config = CoordinatorConfig {
            member_id_nonce: boot_ms,
            ..CoordinatorConfig::default()
        };
        GroupService {
            inner: Rc::new(Inner {
                coordinator: RefCell::new(GroupCoordinator::new(config, OffsetStore::new())),
                parked: RefCell::new(HashMap::new()),
                next_token: Cell::new(0),
                commit_locks: RefCell::new(HashMap::new()),
                changed: Event::new(),
                started: Cell::new(false),
                stopped: Cell::new(false),
                timer: RefCell::new(None),
            }),
        }
    }

    /// Loads committed offsets from `__consumer_offsets`, gives the coordinator the topic
    /// metadata and starts its timer task. Called once, on shard 0, after its partitions
    /// are open and before the broker reports ready.
    pub async fn start(&self, shard: &Rc<Shard>) -> Result<(), ServerError> {
        assert!(!self.inner.started.get(), "the group service starts once");
        assert!(shard.admin.is_some(), "the group service runs on shard 0");
        let mut store = OffsetStore::new();
        let mut records = 0usize;
        for p in 0..OFFSETS_TOPIC_PARTITIONS {
            let part = shard.partition(OFFSETS_TOPIC, p).ok_or_else(|| {
                ServerError::Config(format!("{OFFSETS_TOPIC}-{p} is not open on shard 0"))
            })?;
            records += replay_partition(&part.log, p, &mut store).await?;
        }
        let groups = store.group_ids().count();
        for (key, committed) in store.iter() {
            let (group, topic) = (&key.group_id, &key.topic);
            shard
                .metrics
                .set_committed(group, topic, key.partition, committed.offset);
        }
        let config = self.inner.coordinator.borrow().config().clone();
        *self.inner.coordinator.borrow_mut() = GroupCoordinator::new(config, store);
        tracing::info!(
            records,
            groups,
            "group coordinator loaded committed offsets"
        );
        self.topics_changed(shard);
        let task = glommio::spawn_local(run_timer(self.inner.clone(), shard.clock.clone()));
        *self.inner.timer.borrow_mut() = Some(task);
        self.inner.started.set(true);
        Ok(())
    }

    /// Ends the timer task and answers every parked join (the broker is shutting down).
    pub async fn stop(&self) {
        self.inner.stopped.set(true);
        self.inner.changed.notify(usize::MAX);
        let task = self.inner.timer.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        let parked: Vec<Rc<Slot<JoinAnswer>>> = self
            .inner
            .parked
            .borrow_mut()
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in parked {
            slot.fill(JoinAnswer {
                member_id: String::new(),
                result: Err(shutting_down()),
            });
        }
    }

    /// Gives the coordinator the current topic -> partition counts (after topics were
    /// created or deleted); groups whose subscriptions changed rebalance.
    pub fn topics_changed(&self, shard: &Shard) {
        let topics: TopicMetadata = shard
            .topics
            .borrow()
            .topics
            .values()
            .filter(|t| t.name != OFFSETS_TOPIC)
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let effects = self
            .inner
            .coordinator
            .borrow_mut()
            .set_topic_metadata(topics, now_ms(&shard.clock));
        self.inner.apply(effects);
        self.inner.changed.notify(usize::MAX);
    }

    /// Serves one group request.
    pub async fn serve(&self, shard: &Rc<Shard>, req: Request) -> Response {
        let api = req.api_key().as_u16();
        if self.inner.stopped.get() {
            let (code, msg) = shutting_down();
            return failed(api, code, msg);
        }
        if !self.inner.started.get() {
            return failed(
                api,
                ErrorCode::CoordinatorNotAvailable,
                "the group coordinator is still loading committed offsets".into(),
            );
        }
        match req {
            Request::JoinGroup(r) => Response::JoinGroup(self.join(shard, r).await),
            Request::SyncGroup(r) => Response::SyncGroup(self.sync(shard, r)),
            Request::Heartbeat(r) => Response::Heartbeat(self.heartbeat(shard, r)),
            Request::LeaveGroup(r) => Response::LeaveGroup(self.leave(shard, r)),
            Request::OffsetCommit(r) => Response::OffsetCommit(self.commit(shard, r).await),
            Request::OffsetFetch(r) => Response::OffsetFetch(self.fetch_offsets(r)),
            Request::ListGroups(_) => Response::ListGroups(self.list_groups()),
            Request::DescribeGroup(r) => Response::DescribeGroup(self.describe(r)),
            other => failed(
                api,
                ErrorCode::InvalidRequest,
                format!("{:?} is not a group request", other.api_key()),
            ),
        }
    }

    async fn join(&self, shard: &Shard, r: JoinGroupRequest) -> JoinGroupResponse {
        let parked = self.inner.parked.borrow().len();
        if parked >= GROUP_JOINS_PARKED_MAX {
            let msg = format!(
                "the coordinator already holds {parked} unanswered joins (limit {GROUP_JOINS_PARKED_MAX}); retry later"
            );
            return join_refused(r.member_id, ErrorCode::CoordinatorNotAvailable, msg);
        }
        let token = self.inner.next_token.get();
        self.inner.next_token.set(token + 1);
        let slot = Rc::new(Slot::new());
        self.inner.parked.borrow_mut().insert(token, slot.clone());
        let member_id = r.member_id.clone();
        let req = JoinRequest {
            token,
            group_id: r.group_id,
            member_id: r.member_id,
            client_id: r.client_id,
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            topics: r.topics,
            assignors: r.assignors,
        };
        let res = self
            .inner
            .coordinator
            .borrow_mut()
            .join(req, now_ms(&shard.clock));
        match res {
            Ok(effects) => self.inner.apply(effects),
            Err(e) => {
                self.inner.parked.borrow_mut().remove(&token);
                let (code, msg) = group_error(&e);
                return join_refused(member_id, code, msg);
            }
        }
        self.inner.changed.notify(usize::MAX);
        // The answer may come long after (the rebalance timeout); the writer of the
        // member's connection waits for it.
        let answer = slot.wait().await;
        match answer.result {
            Ok(j) => JoinGroupResponse {
                error_code: ErrorCode::None,
                error_message: None,
                generation_id: j.generation_id,
                member_id: j.member_id,
                leader_id: j.leader_id,
                assignor: j.assignor,
                members: j
                    .members
                    .into_iter()
                    .map(|m| JoinGroupMember {
                        member_id: m.member_id,
                        client_id: m.client_id,
                        topics: m.topics,
                    })
                    .collect(),
            },
            Err((code, msg)) => {
                let member = match answer.member_id.is_empty() {
                    true => member_id,
                    false => answer.member_id,
                };
                join_refused(member, code, msg)
            }
        }
    }

    fn sync(&self, shard: &Shard, r: SyncGroupRequest) -> SyncGroupResponse {
        let res = self.inner.coordinator.borrow_mut().sync(
            &r.group_id,
            r.generation_id,
            &r.member_id,
            now_ms(&shard.clock),
        );
        match res {
            Ok(s) => SyncGroupResponse {
                error_code: ErrorCode::None,
                error_message: None,
                assignment: assignment_to_wire(&s.assignment),
            },
            Err(e) => {
                let (code, msg) = group_error(&e);
                SyncGroupResponse {
                    error_code: code,
                    error_message: Some(msg),
                    assignment: Vec::new(),
                }
            }
        }
    }

    fn heartbeat(&self, shard: &Shard, r: HeartbeatRequest) -> HeartbeatResponse {
        let res = self.inner.coordinator.borrow_mut().heartbeat(
            &r.group_id,
            r.generation_id,
            &r.member_id,
            now_ms(&shard.clock),
        );
        match res {
            Ok(()) => HeartbeatResponse {
                error_code: ErrorCode::None,
                error_message: None,
            },
            Err(e) => {
                // A heartbeat may start a follow-up rebalance (a new, possibly earlier
                // deadline); a plain one only moves a session deadline later.
                self.inner.changed.notify(usize::MAX);
                let (code, msg) = group_error(&e);
                HeartbeatResponse {
                    error_code: code,
                    error_message: Some(msg),
                }
            }
        }
    }

    fn leave(&self, shard: &Shard, r: LeaveGroupRequest) -> LeaveGroupResponse {
        let res = self.inner.coordinator.borrow_mut().leave(
            &r.group_id,
            &r.member_id,
            now_ms(&shard.clock),
        );
        match res {
            Ok(effects) => {
                self.inner.apply(effects);
                self.inner.changed.notify(usize::MAX);
                LeaveGroupResponse {
                    error_code: ErrorCode::None,
                    error_message: None,
                }
            }
            Err(e) => {
                let (code, msg) = group_error(&e);
                LeaveGroupResponse {
                    error_code: code,
                    error_message: Some(msg),
                }
            }
        }
    }

    async fn commit(&self, shard: &Shard, r: OffsetCommitRequest) -> OffsetCommitResponse {
        let group_id = r.group_id.clone();
        let lock = self.inner.commit_lock(&group_id);
        let res = {
            let _guard = lock.lock().await;
            self.commit_locked(shard, &r).await
        };
        self.inner.release_commit_lock(&group_id, lock);
        let (code, msg) = match res {
            Ok(()) => (ErrorCode::None, None),
            Err((code, msg)) => (code, Some(msg)),
        };
        // The coordinator accepts or refuses a commit as a whole: every partition carries
        // the outcome, the top level names the cause.
        OffsetCommitResponse {
            error_code: code,
            error_message: msg,
            topics: r
                .topics
                .iter()
                .map(|t| TopicPartitionResults {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionResult {
                            partition: p.partition,
                            error_code: code,
                            error_message: None,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Prepare, append durably, complete; the caller holds the group's commit lock.
    async fn commit_locked(
        &self,
        shard: &Shard,
        r: &OffsetCommitRequest,
    ) -> Result<(), (ErrorCode, String)> {
        let entries: Vec<CommitEntry> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| CommitEntry {
                    partition: TopicPartition::new(&t.name, p.partition),
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone(),
                })
            })
            .collect();
        let req = CommitRequest {
            group_id: r.group_id.clone(),
            generation_id: r.generation_id,
            member_id: r.member_id.clone(),
            entries,
        };
        let prepared = self
            .inner
            .coordinator
            .borrow_mut()
            .prepare_commit(req, now_ms(&shard.clock))
            .map_err(|e| group_error(&e))?;
        if let Some(batch) = prepared.batch {
            let p = cg::offsets_partition_for(&r.group_id, OFFSETS_TOPIC_PARTITIONS);
            let part = shard
                .partition(OFFSETS_TOPIC, p)
                .ok_or_else(shutting_down)?;
            let storage = |e: &cfa_engine::LogError| {
                let (code, msg) = log_error(e);
                (
                    code,
                    format!("appending the commit to {OFFSETS_TOPIC}-{p}: {msg}"),
                )
            };
            // On failure `prepared.pending` is dropped: nothing was applied.
            let info = part.log.append(batch).await.map_err(|e| storage(&e))?;
            part.log
                .wait_for(info.next_offset, Durability::Durable)
                .await
                .map_err(|e| storage(&e))?;
        }
        self.inner
            .coordinator
            .borrow_mut()
            .complete_commit(prepared.pending);
        // The lag metric follows what is committed now (last entry wins, as in the store).
        for t in &r.topics {
            for p in &t.partitions {
                let (group, topic) = (&r.group_id, &t.name);
                shard
                    .metrics
                    .set_committed(group, topic, p.partition, p.offset);
            }
        }
        Ok(())
    }

    fn fetch_offsets(&self, r: OffsetFetchRequest) -> OffsetFetchResponse {
        let wanted: Option<Vec<TopicPartition>> = r.topics.map(|ts| {
            ts.iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|&p| TopicPartition::new(&t.topic, p))
                })
                .collect()
        });
        let res = self
            .inner
            .coordinator
            .borrow()
            .fetch_offsets(&r.group_id, wanted.as_deref());
        let found = match res {
            Ok(found) => found,
            Err(e) => {
                let (code, msg) = group_error(&e);
                return OffsetFetchResponse {
                    error_code: code,
                    error_message: Some(msg),
                    topics: Vec::new(),
                };
            }
        };
        let mut topics: Vec<OffsetFetchTopic> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (tp, committed) in found {
            let partition = OffsetFetchPartition {
                partition: tp.partition,
                error_code: ErrorCode::None,
                error_message: None,
                offset: committed.as_ref().map(|c| c.offset),
                leader_epoch: committed.as_ref().map_or(-1, |c| c.leader_epoch),
                metadata: committed.map(|c| c.metadata).unwrap_or_default(),
            };
            let at = *index.entry(tp.topic.to_string()).or_insert_with(|| {
                topics.push(OffsetFetchTopic {
                    name: tp.topic.to_string(),
                    partitions: Vec::new(),
                });
                topics.len() - 1
            });
            topics[at].partitions.push(partition);
        }
        OffsetFetchResponse {
            error_code: ErrorCode::None,
            error_message: None,
            topics,
        }
    }

    fn list_groups(&self) -> ListGroupsResponse {
        let groups = self
            .inner
            .coordinator
            .borrow()
            .list_groups()
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id,
                state: state_to_wire(g.state),
                member_count: u32::try_from(g.members).unwrap_or(u32::MAX),
            })
            .collect();
        ListGroupsResponse { groups }
    }

    fn describe(&self, r: DescribeGroupRequest) -> DescribeGroupResponse {
        let res = self.inner.coordinator.borrow().describe_group(&r.group_id);
        match res {
            Ok(d) => DescribeGroupResponse {
                error_code: ErrorCode::None,
                error_message: None,
                group_id: d.group_id,
                state: state_to_wire(d.state),
                assignor: d.assignor,
                leader_id: d.leader_id,
                // Generation 0 is "no generation formed yet"; the wire says -1.
                generation_id: if d.generation_id == 0 {
                    -1
                } else {
                    d.generation_id
                },
                members: d
                    .members
                    .into_iter()
                    .map(|m| GroupMemberDescription {
                        assignment: assignment_to_wire(&m.assignment),
                        member_id: m.member_id,
                        client_id: m.client_id,
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        topics: m.topics,
                    })
                    .collect(),
            },
            Err(e) => {
                let (code, msg) = group_error(&e);
                // Kafka answers an unknown group as Dead.
                DescribeGroupResponse {
                    error_code: code,
                    error_message: Some(msg),
                    group_id: r.group_id,
                    state: GroupState::Dead,
                    assignor: None,
                    leader_id: None,
                    generation_id: -1,
                    members: Vec::new(),
                }
            }
        }
    }
}

impl Inner {
    /// Answers parked joins and logs the rest.
    fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::JoinResponse {
                    token,
                    group_id,
                    member_id,
                    result,
                } => {
                    let slot = self.parked.borrow_mut().remove(&token);
                    let Some(slot) = slot else {
                        // Only `stop` empties the table early; every other token is
                        // answered exactly once.
                        assert!(self.stopped.get(), "join {token} answered twice");
                        continue;
                    };
                    if let Err(e) = &result {
                        tracing::debug!(group = %group_id, member = %member_id, error = %e, "join refused");
                    }
                    slot.fill(JoinAnswer {
                        member_id,
                        result: result.map_err(|e| group_error(&e)),
                    });
                }
                Effect::RebalanceStarted {
                    group_id,
                    generation_id,
                    reason,
                } => {
                    tracing::info!(group = %group_id, generation_id, ?reason, "rebalance started");
                }
                Effect::MemberRemoved {
                    group_id,
                    member_id,
                    reason,
                } => {
                    tracing::info!(group = %group_id, member = %member_id, ?reason, "member removed");
                }
            }
        }
    }

    fn commit_lock(&self, group_id: &str) -> Rc<async_lock::Mutex<()>> {
        self.commit_locks
            .borrow_mut()
            .entry(group_id.to_owned())
            .or_insert_with(|| Rc::new(async_lock::Mutex::new(())))
            .clone()
    }

    /// Forgets the group's lock when no other commit holds or awaits it.
    fn release_commit_lock(&self, group_id: &str, lock: Rc<async_lock::Mutex<()>>) {
        // The table's reference and ours: nobody else cloned it.
        if Rc::strong_count(&lock) == 2 {
            self.commit_locks.borrow_mut().remove(group_id);
        }
    }
}

/// Ticks the coordinator at its next deadline; sleeps on `changed` when there is none.
async fn run_timer(inner: Rc<Inner>, clock: ClockRef) {
    loop {
        // Listen before reading the deadline, so a change in between is not missed.
        let changed = inner.changed.listen();
        if inner.stopped.get() {
            return;
        }
        let now = now_ms(&clock);
        let effects = inner.coordinator.borrow_mut().tick(now);
        inner.apply(effects);
        let next = inner.coordinator.borrow().next_deadline_ms();
        match next {
            Some(at) => {
                // At least 1 ms: a deadline the tick just passed is not retried in a spin.
                let wait = Duration::from_millis(at.saturating_sub(now).max(1));
                async {
                    glommio::timer::sleep(wait).await;
                }
                .or(changed)
                .await;
            }
            None => changed.await,
        }
    }
}

/// Reads every batch of one offsets partition into `store`; returns the records applied.
async fn replay_partition(
    log: &Log,
    p: u32,
    store: &mut OffsetStore,
) -> Result<usize, ServerError> {
    let offsets = log.offsets();
    let mut from = offsets.log_start;
    let mut records = 0;
    while from < offsets.written {
        let batches: Vec<Bytes> = log
            .read(from, OFFSETS_REPLAY_READ_BYTES, offsets.written)
            .await?;
        // A read below the written offset returns at least one batch.
        assert!(
            !batches.is_empty(),
            "{OFFSETS_TOPIC}-{p}: no batch at {from}"
        );
        for batch in &batches {
            let header = BatchHeader::parse(batch).map_err(|e| replay_error(p, from, &e))?;
            let next = header.last_offset() + 1;
            records += store
                .replay_batch(batch)
                .map_err(|e| replay_error(p, from, &e))?;
            assert!(next > from, "replay moves forward");
            from = next;
        }
    }
    Ok(records)
}

/// A batch of the offsets topic that passed the engine's checks but does not decode:
/// refuse to start rather than guess (guessing could lose committed offsets).
fn replay_error(p: u32, offset: u64, e: &dyn std::fmt::Display) -> ServerError {
    ServerError::Io {
        what: format!("replaying {OFFSETS_TOPIC}-{p} at offset {offset}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    }
}

fn shutting_down() -> (ErrorCode, String) {
    (
        ErrorCode::BrokerShuttingDown,
        "the broker is shutting down".into(),
    )
}

fn join_refused(member_id: String, code: ErrorCode, msg: String) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code,
        error_message: Some(msg),
        generation_id: -1,
        member_id,
        leader_id: String::new(),
        assignor: String::new(),
        members: Vec::new(),
    }
}

fn assignment_to_wire(a: &cg::Assignment) -> Vec<TopicPartitions> {
    a.iter()
        .map(|(topic, partitions)| TopicPartitions {
            topic: topic.clone(),
            partitions: partitions.clone(),
        })
        .collect()
}

fn state_to_wire(s: cg::GroupState) -> GroupState {
    match s {
        cg::GroupState::Empty => GroupState::Empty,
        cg::GroupState::PreparingRebalance => GroupState::PreparingRebalance,
        cg::GroupState::CompletingRebalance => GroupState::CompletingRebalance,
        cg::GroupState::Stable => GroupState::Stable,
        cg::GroupState::Dead => GroupState::Dead,
    }
}
