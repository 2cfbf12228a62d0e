//! The group coordinator: every consumer group of one coordinator, their members and
//! committed offsets, as one synchronous state machine.
//!
//! Contract with the server (which owns sockets, the clock and the offsets log):
//! - Call it from one shard; every method takes the current time as `now_ms`.
//! - JoinGroup is answered later: [`GroupCoordinator::join`] returns [`Effect`]s, and each
//!   `Effect::JoinResponse` answers the parked request with that token (possibly the one
//!   just made). Every other call that returns effects may answer parked joins too.
//! - Call [`GroupCoordinator::tick`] at least every few hundred ms (or at
//!   [`GroupCoordinator::next_deadline_ms`]): it expires sessions and rebalance timeouts.
//! - Commits and group deletions are two-phase: `prepare_*` validates and returns the
//!   batch to append to `__consumer_offsets`; once it is durable (acks=all) the server
//!   calls `complete_*`, in append order.
//! - Call [`GroupCoordinator::set_topic_metadata`] whenever topics or partition counts
//!   change; groups whose assignment depends on the change rebalance.
//!
//! Contract with clients (Kafka's consumer behaviour; cfa's SDK must keep it), on which
//! partition ownership rests:
//! - After a SyncGroup answer, release every partition the new assignment no longer
//!   holds before the next Heartbeat or JoinGroup; send no Heartbeat while a SyncGroup is
//!   outstanding. A validated Heartbeat or JoinGroup therefore confirms that release.
//! - If the last synced generation is eager (`SyncResult::cooperative` false), release
//!   everything before rejoining; if cooperative, keep the partitions while rejoining.
//!
//! With `cooperative-sticky`, a partition that moves is withheld from its new owner while
//! the old one may still consume it; the old owner's confirmation starts a follow-up
//! rebalance that hands it over (Kafka's two-rebalance cooperative protocol, driven by
//! the coordinator). No partition is ever assigned to, or being released by, two members.
//!
//! Differences from Kafka, on purpose: the assignment is computed here (as KIP-848 does)
//! with the leader's preferred common assignor rather than by the leader client; a known
//! member rejoining with unchanged subscriptions gets the current generation back even if
//! it is the leader (the coordinator itself watches metadata); the group is Stable once
//! every member has synced; a commit is accepted or refused as a whole. Static membership
//! (`group.instance.id`) is not implemented.

use std::collections::{BTreeMap, BTreeSet};

use crate::constants::{
    ASSIGNORS_PER_MEMBER_MAX, ASSIGNOR_NAME_BYTES_MAX, CLIENT_ID_BYTES_MAX, COMMIT_PARTITIONS_MAX,
    GROUP_ID_BYTES_MAX, MEMBER_ID_BYTES_MAX, OFFSETS_PER_GROUP_MAX, OFFSET_BATCH_BYTES_MAX,
    REBALANCE_TIMEOUT_MS_MAX, SUBSCRIPTIONS_PER_MEMBER_MAX, TOPIC_NAME_BYTES_MAX,
};
use crate::group::api::{
    CommitRequest, CoordinatorConfig, Effect, GroupDescription, GroupListing, JoinRequest,
    MemberDescription, PendingCommit, PendingDelete, PreparedCommit, PreparedDelete,
    RebalanceReason, RemovalReason, SyncResult,
};
use crate::group::assignor::Assignors;
use crate::group::error::GroupError;
use crate::group::membership::{assignment_of, partitions_of, Ctx, Group, Member};
use crate::group::offsets::{
    build_batch, build_batches, CommittedOffset, OffsetRecord, OffsetStore,
};
use crate::group::{GroupState, TopicMetadata, TopicPartition};

/// Every group of one coordinator. See the module documentation for the contract.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    assignors: Assignors,
    topics: TopicMetadata,
    groups: BTreeMap<String, Group>,
    offsets: OffsetStore,
    /// Suffix counter of member ids handed out.
    next_member_seq: u64,
    /// Effects of calls that return none (a heartbeat that starts a follow-up
    /// rebalance), handed out with the next call that returns effects. At most one
    /// `RebalanceStarted` per group per rebalance, so bounded by the group count.
    deferred: Vec<Effect>,
}

impl GroupCoordinator {
    /// A coordinator with the default assignors (`range`, `roundrobin`) and the offsets
    /// replayed from the log; every group with offsets starts Empty.
    pub fn new(config: CoordinatorConfig, offsets: OffsetStore) -> Self {
        GroupCoordinator::with_assignors(config, Assignors::default(), offsets)
    }

    pub fn with_assignors(
        config: CoordinatorConfig,
        assignors: Assignors,
        offsets: OffsetStore,
    ) -> Self {
        assert!(config.session_timeout_ms_min <= config.session_timeout_ms_max);
        assert!(config.group_members_max > 0 && config.groups_max > 0);
        let groups = offsets
            .group_ids()
            .map(|id| (id.to_owned(), Group::new(id)))
            .collect();
        GroupCoordinator {
            config,
            assignors,
            topics: TopicMetadata::new(),
            groups,
            offsets,
            next_member_seq: 0,
            deferred: Vec::new(),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    pub fn topic_metadata(&self) -> &TopicMetadata {
        &self.topics
    }

    fn ctx<'a>(
        assignors: &'a Assignors,
        topics: &'a TopicMetadata,
        config: &CoordinatorConfig,
        now_ms: u64,
        effects: &'a mut Vec<Effect>,
    ) -> Ctx<'a> {
        Ctx {
            assignors,
            topics,
            initial_rebalance_delay_ms: config.initial_rebalance_delay_ms,
            now_ms,
            effects,
        }
    }

    /// JoinGroup. `Err` refuses the request now; otherwise the effects hold its answer
    /// (now, or later from another call) and any other parked joins this one completes.
    pub fn join(&mut self, req: JoinRequest, now_ms: u64) -> Result<Vec<Effect>, GroupError> {
        self.validate_join(&req)?;
        let topics: BTreeSet<String> = req.topics.iter().cloned().collect();
        self.check_join_allowed(self.groups.get(&req.group_id), &req)?;
        let mut effects = std::mem::take(&mut self.deferred);
        let member_id = if req.member_id.is_empty() {
            self.new_member_id(&req.client_id)
        } else {
            req.member_id.clone()
        };
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        let mut ctx = Self::ctx(
            &self.assignors,
            &self.topics,
            &self.config,
            now_ms,
            &mut effects,
        );
        if req.member_id.is_empty() {
            join_new_member(group, member_id, topics, req, &mut ctx);
        } else {
            join_known_member(group, topics, req, &mut ctx);
        }
        group.assert_invariants(self.config.group_members_max);
        Ok(effects)
    }

    fn validate_join(&self, req: &JoinRequest) -> Result<(), GroupError> {
        validate_group_id(&req.group_id)?;
        check_len("member id", &req.member_id, MEMBER_ID_BYTES_MAX)?;
        check_len("client id", &req.client_id, CLIENT_ID_BYTES_MAX)?;
        let (min_ms, max_ms) = (
            self.config.session_timeout_ms_min,
            self.config.session_timeout_ms_max,
        );
        if !(min_ms..=max_ms).contains(&req.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout {
                timeout_ms: req.session_timeout_ms,
                min_ms,
                max_ms,
            });
        }
        if !(1..=REBALANCE_TIMEOUT_MS_MAX).contains(&req.rebalance_timeout_ms) {
            return Err(GroupError::InvalidRebalanceTimeout {
                timeout_ms: req.rebalance_timeout_ms,
                max_ms: REBALANCE_TIMEOUT_MS_MAX,
            });
        }
        check_count(
            "subscribed topics",
            req.topics.len(),
            SUBSCRIPTIONS_PER_MEMBER_MAX,
        )?;
        for topic in &req.topics {
            check_non_empty("topic name", topic)?;
            check_len("topic name", topic, TOPIC_NAME_BYTES_MAX)?;
        }
        check_count("assignors", req.assignors.len(), ASSIGNORS_PER_MEMBER_MAX)?;
        for assignor in &req.assignors {
            check_len("assignor name", assignor, ASSIGNOR_NAME_BYTES_MAX)?;
        }
        Ok(())
    }

    /// Checks against the group's current members: deletion, member id, size limit and a
    /// common assignor.
    fn check_join_allowed(
        &self,
        group: Option<&Group>,
        req: &JoinRequest,
    ) -> Result<(), GroupError> {
        let Some(group) = group else {
            if !req.member_id.is_empty() {
                return Err(unknown_member(&req.group_id, &req.member_id));
            }
            if self.groups.len() >= self.config.groups_max {
                return Err(GroupError::GroupLimitReached {
                    max: self.config.groups_max,
                });
            }
            return self.check_assignors(None, req);
        };
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupDeleting {
                group_id: req.group_id.clone(),
            });
        }
        let known = !req.member_id.is_empty();
        if known && !group.members.contains_key(&req.member_id) {
            return Err(unknown_member(&req.group_id, &req.member_id));
        }
        if !known && group.members.len() >= self.config.group_members_max {
            return Err(GroupError::GroupMaxSizeReached {
                group_id: req.group_id.clone(),
                max: self.config.group_members_max,
            });
        }
        let others = group.assignors_supported_by_all(known.then_some(req.member_id.as_str()));
        self.check_assignors(others, req)
    }

    /// The member must offer an assignor this coordinator implements that every other
    /// member (`others`: their common set, `None` when there are none) supports too.
    fn check_assignors(
        &self,
        others: Option<BTreeSet<&str>>,
        req: &JoinRequest,
    ) -> Result<(), GroupError> {
        let usable = req.assignors.iter().any(|a| {
            self.assignors.contains(a) && others.as_ref().is_none_or(|o| o.contains(a.as_str()))
        });
        if !usable {
            return Err(GroupError::InconsistentGroupProtocol {
                group_id: req.group_id.clone(),
                offered: req.assignors.clone(),
            });
        }
        Ok(())
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member_seq += 1;
        let member_id = format!(
            "{client_id}-{:x}-{:x}",
            self.config.member_id_nonce, self.next_member_seq
        );
        assert!(member_id.len() <= MEMBER_ID_BYTES_MAX);
        member_id
    }

    /// SyncGroup: the member's assignment for `generation_id`.
    pub fn sync(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        now_ms: u64,
    ) -> Result<SyncResult, GroupError> {
        let group = member_group(&mut self.groups, group_id, generation_id, member_id)?;
        if group.state == GroupState::PreparingRebalance {
            return Err(rebalancing(group_id));
        }
        let assignor = group.assignor.clone().unwrap_or_default();
        let cooperative = self
            .assignors
            .get(&assignor)
            .is_some_and(|a| a.cooperative());
        group.synced(member_id);
        group.record_sync(member_id, cooperative);
        let member = group.members.get_mut(member_id).expect("checked member");
        member.last_heartbeat_ms = now_ms;
        let result = SyncResult {
            assignor,
            assignment: member.assignment.clone(),
            cooperative,
        };
        group.assert_invariants(self.config.group_members_max);
        Ok(result)
    }

    /// Heartbeat: refreshes the session and confirms that the member released what its
    /// last SyncGroup took away. `RebalanceInProgress` tells the member to rejoin.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        let group = member_group(&mut self.groups, group_id, generation_id, member_id)?;
        let member = group.members.get_mut(member_id).expect("checked member");
        member.last_heartbeat_ms = now_ms;
        let mut ctx = Self::ctx(
            &self.assignors,
            &self.topics,
            &self.config,
            now_ms,
            &mut self.deferred,
        );
        group.released(member_id, false, &mut ctx);
        group.assert_invariants(self.config.group_members_max);
        if group.state == GroupState::PreparingRebalance {
            return Err(rebalancing(group_id));
        }
        Ok(())
    }

    /// LeaveGroup: the others rebalance; the last one leaving makes the group Empty (its
    /// committed offsets stay).
    pub fn leave(
        &mut self,
        group_id: &str,
        member_id: &str,
        now_ms: u64,
    ) -> Result<Vec<Effect>, GroupError> {
        let group = live_group(&mut self.groups, group_id, member_id)?;
        let mut effects = std::mem::take(&mut self.deferred);
        let mut ctx = Self::ctx(
            &self.assignors,
            &self.topics,
            &self.config,
            now_ms,
            &mut effects,
        );
        group.remove_member(member_id, RemovalReason::Left, &mut ctx);
        group.assert_invariants(self.config.group_members_max);
        Ok(effects)
    }

    /// Expires sessions, join phases and sync phases due at `now_ms`, and forgets Empty
    /// groups that hold no offsets.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        let mut effects = std::mem::take(&mut self.deferred);
        for group in self.groups.values_mut() {
            let mut ctx = Self::ctx(
                &self.assignors,
                &self.topics,
                &self.config,
                now_ms,
                &mut effects,
            );
            group.tick(&mut ctx);
            group.assert_invariants(self.config.group_members_max);
        }
        let offsets = &self.offsets;
        self.groups
            .retain(|id, g| g.state != GroupState::Empty || offsets.group(id).is_some());
        effects
    }

    /// The earliest `now_ms` at which [`GroupCoordinator::tick`] has membership work to do
    /// (forgetting unused Empty groups is housekeeping and not included).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .min()
    }

    /// Replaces the topic metadata (topic -> partition count). Groups in Stable or
    /// CompletingRebalance whose subscribed topics changed (partition count, created,
    /// deleted) start a rebalance; a rebalance in progress uses the new metadata anyway.
    pub fn set_topic_metadata(&mut self, topics: TopicMetadata, now_ms: u64) -> Vec<Effect> {
        self.topics = topics;
        let mut effects = std::mem::take(&mut self.deferred);
        for group in self.groups.values_mut() {
            if group.metadata_changed(&self.topics) {
                let mut ctx = Self::ctx(
                    &self.assignors,
                    &self.topics,
                    &self.config,
                    now_ms,
                    &mut effects,
                );
                group.prepare_rebalance(RebalanceReason::TopicMetadata, &mut ctx);
                group.assert_invariants(self.config.group_members_max);
            }
        }
        effects
    }

    /// OffsetCommit, first phase: validates membership, generation, partitions and limits,
    /// and returns the batch to append. A standalone consumer (generation -1, empty member
    /// id) may commit while the group has no members; the group is created if needed.
    pub fn prepare_commit(
        &mut self,
        req: CommitRequest,
        now_ms: u64,
    ) -> Result<PreparedCommit, GroupError> {
        validate_group_id(&req.group_id)?;
        check_len("member id", &req.member_id, MEMBER_ID_BYTES_MAX)?;
        check_count(
            "partitions in one commit",
            req.entries.len(),
            COMMIT_PARTITIONS_MAX,
        )?;
        self.check_commit_member(&req)?;
        self.check_commit_entries(&req)?;
        let timestamp_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let offsets: Vec<(TopicPartition, CommittedOffset)> = req
            .entries
            .into_iter()
            .map(|e| {
                let value = CommittedOffset {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata,
                    commit_timestamp_ms: timestamp_ms,
                };
                (e.partition, value)
            })
            .collect();
        let records = OffsetStore::commit_records(&req.group_id, offsets.iter().cloned());
        // The limits checked above keep every string far below u16::MAX.
        let batch =
            build_batch(&records, timestamp_ms).expect("validated fields fit the record format");
        let bytes = batch.as_ref().map_or(0, |b| b.len());
        if bytes > OFFSET_BATCH_BYTES_MAX {
            return Err(GroupError::CommitTooLarge {
                bytes,
                max: OFFSET_BATCH_BYTES_MAX,
            });
        }
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        if let Some(member) = group.members.get_mut(&req.member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        Ok(PreparedCommit {
            batch,
            pending: PendingCommit {
                group_id: req.group_id,
                offsets,
            },
        })
    }

    /// Kafka's validateOffsetCommit.
    fn check_commit_member(&self, req: &CommitRequest) -> Result<(), GroupError> {
        let standalone = req.generation_id < 0 && req.member_id.is_empty();
        let Some(group) = self.groups.get(&req.group_id) else {
            if standalone {
                if self.groups.len() >= self.config.groups_max {
                    return Err(GroupError::GroupLimitReached {
                        max: self.config.groups_max,
                    });
                }
                return Ok(());
            }
            if req.generation_id >= 0 {
                return Err(GroupError::IllegalGeneration {
                    group_id: req.group_id.clone(),
                    generation_id: req.generation_id,
                    current: 0,
                });
            }
            return Err(unknown_member(&req.group_id, &req.member_id));
        };
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupDeleting {
                group_id: req.group_id.clone(),
            });
        }
        if standalone {
            return match group.members.is_empty() {
                true => Ok(()),
                false => Err(unknown_member(&req.group_id, &req.member_id)),
            };
        }
        if !group.members.contains_key(&req.member_id) {
            return Err(unknown_member(&req.group_id, &req.member_id));
        }
        if req.generation_id != group.generation_id {
            return Err(GroupError::IllegalGeneration {
                group_id: req.group_id.clone(),
                generation_id: req.generation_id,
                current: group.generation_id,
            });
        }
        Ok(())
    }

    fn check_commit_entries(&self, req: &CommitRequest) -> Result<(), GroupError> {
        let mut new_keys = BTreeSet::new();
        for entry in &req.entries {
            let tp = &entry.partition;
            check_len("topic name", &tp.topic, TOPIC_NAME_BYTES_MAX)?;
            let exists = self
                .topics
                .get(&*tp.topic)
                .is_some_and(|&n| tp.partition < n);
            if !exists {
                return Err(GroupError::UnknownTopicOrPartition {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                });
            }
            if entry.metadata.len() > self.config.offset_metadata_bytes_max {
                return Err(GroupError::OffsetMetadataTooLarge {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                    bytes: entry.metadata.len(),
                    max: self.config.offset_metadata_bytes_max,
                });
            }
            if self.offsets.get(&req.group_id, tp).is_none() {
                new_keys.insert(tp);
            }
        }
        let count = self.offsets.group_len(&req.group_id) + new_keys.len();
        check_count(
            "committed offsets of one group",
            count,
            OFFSETS_PER_GROUP_MAX,
        )
    }

    /// OffsetCommit, second phase: the batch of `pending` is durable; apply it. Never
    /// fails: the offsets are in the log whatever happened to the group meanwhile.
    pub fn complete_commit(&mut self, pending: PendingCommit) {
        let records = OffsetStore::commit_records(&pending.group_id, pending.offsets);
        for record in &records {
            self.offsets.apply(record);
        }
        self.groups
            .entry(pending.group_id.clone())
            .or_insert_with(|| Group::new(&pending.group_id));
    }

    /// OffsetFetch: the committed offset of each requested partition (`None`: nothing
    /// committed), or every committed offset of the group when `partitions` is `None`.
    /// An unknown group has no offsets (not an error, as in Kafka).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, GroupError> {
        validate_group_id(group_id)?;
        Ok(match partitions {
            Some(list) => list
                .iter()
                .map(|tp| (tp.clone(), self.offsets.get(group_id, tp).cloned()))
                .collect(),
            None => self
                .offsets
                .group(group_id)
                .into_iter()
                .flatten()
                .map(|(tp, o)| (tp.clone(), Some(o.clone())))
                .collect(),
        })
    }

    /// ListGroups, in group-id order.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        self.groups
            .values()
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                state: g.state,
                members: g.members.len(),
            })
            .collect()
    }

    /// DescribeGroup, with the group's committed offsets for the caller's lag figures.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| GroupError::GroupIdNotFound {
                group_id: group_id.to_owned(),
            })?;
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                topics: m.topics.iter().cloned().collect(),
                assignment: m.assignment.clone(),
                revoking: {
                    let assigned = partitions_of(&m.assignment);
                    assignment_of(&m.holding.difference(&assigned).cloned().collect())
                },
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.group_id.clone(),
            state: group.state,
            generation_id: group.generation_id,
            assignor: group.assignor.clone(),
            leader_id: group.leader_id.clone(),
            members,
            offsets: self.offsets.group(group_id).cloned().unwrap_or_default(),
        })
    }

    /// DeleteGroups, first phase: only an Empty group can be deleted. The group is Dead
    /// (refusing joins and commits) until the tombstones are durable.
    pub fn prepare_delete_group(
        &mut self,
        group_id: &str,
        now_ms: u64,
    ) -> Result<PreparedDelete, GroupError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| GroupError::GroupIdNotFound {
                group_id: group_id.to_owned(),
            })?;
        match group.state {
            GroupState::Empty => {}
            GroupState::Dead => {
                return Err(GroupError::GroupDeleting {
                    group_id: group_id.to_owned(),
                })
            }
            _ => {
                return Err(GroupError::NonEmptyGroup {
                    group_id: group_id.to_owned(),
                    members: group.members.len(),
                })
            }
        }
        let tombstones = self.offsets.tombstones_for_group(group_id);
        let timestamp_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        // Keys of stored offsets were encoded once already, so they encode again.
        let batches = build_batches(&tombstones, timestamp_ms, OFFSET_BATCH_BYTES_MAX)
            .expect("stored keys fit the record format");
        group.state = GroupState::Dead;
        Ok(PreparedDelete {
            batches,
            pending: PendingDelete {
                group_id: group_id.to_owned(),
                keys: tombstones.into_iter().map(|r| r.key).collect(),
            },
        })
    }

    /// DeleteGroups, second phase: the tombstones are durable. Removes exactly the offsets
    /// they delete; the group is forgotten unless a commit landed meanwhile.
    pub fn complete_delete_group(&mut self, pending: PendingDelete) {
        for key in pending.keys {
            self.offsets.apply(&OffsetRecord { key, value: None });
        }
        self.end_delete(&pending.group_id);
        if self.offsets.group(&pending.group_id).is_none() {
            self.groups.remove(&pending.group_id);
        }
    }

    /// DeleteGroups failed to append its tombstones: the group is Empty again.
    pub fn abort_delete_group(&mut self, pending: PendingDelete) {
        self.end_delete(&pending.group_id);
    }

    fn end_delete(&mut self, group_id: &str) {
        if let Some(group) = self.groups.get_mut(group_id) {
            if group.state == GroupState::Dead {
                group.state = GroupState::Empty;
            }
        }
    }
}

/// Adds a member with a new id and starts (or joins) the rebalance.
fn join_new_member(
    group: &mut Group,
    member_id: String,
    topics: BTreeSet<String>,
    req: JoinRequest,
    ctx: &mut Ctx<'_>,
) {
    group.add_member(Member {
        member_id: member_id.clone(),
        client_id: req.client_id,
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topics,
        assignors: req.assignors,
        awaiting_join: Some(req.token),
        last_heartbeat_ms: ctx.now_ms,
        assignment: Default::default(),
        holding: Default::default(),
        unreleased: Default::default(),
        synced_cooperative: false,
    });
    group.prepare_rebalance(RebalanceReason::NewMember { member_id }, ctx);
    group.maybe_complete_join(ctx);
}

/// A known member rejoins: while a rebalance runs it is counted in; otherwise it gets the
/// current generation back, unless its topics or assignors changed or its release frees
/// withheld partitions (then it rebalances).
fn join_known_member(
    group: &mut Group,
    topics: BTreeSet<String>,
    req: JoinRequest,
    ctx: &mut Ctx<'_>,
) {
    // Rejoining confirms a release (everything, in an eager generation); that may itself
    // start the follow-up rebalance of a cooperative group.
    group.released(&req.member_id, true, ctx);
    let state = group.state;
    let member = group
        .members
        .get_mut(&req.member_id)
        .expect("checked member");
    let changed = member.topics != topics || member.assignors != req.assignors;
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    member.topics = topics;
    member.assignors = req.assignors;
    member.last_heartbeat_ms = ctx.now_ms;
    if state != GroupState::PreparingRebalance && !changed {
        let result = group.join_result(&req.member_id);
        ctx.effects.push(Effect::JoinResponse {
            token: req.token,
            group_id: group.group_id.clone(),
            member_id: req.member_id,
            result: Ok(result),
        });
        return;
    }
    if let Some(old) = member.awaiting_join.replace(req.token) {
        // A second join from the same member replaces the first (its connection is
        // presumably gone); answer the first so the server does not hold it forever.
        ctx.effects.push(Effect::JoinResponse {
            token: old,
            group_id: group.group_id.clone(),
            member_id: req.member_id.clone(),
            result: Err(rebalancing(&group.group_id)),
        });
    }
    group.prepare_rebalance(
        RebalanceReason::MemberChanged {
            member_id: req.member_id,
        },
        ctx,
    );
    group.maybe_complete_join(ctx);
}

/// The group of a member of the current generation (Kafka's checks, in Kafka's order).
fn member_group<'a>(
    groups: &'a mut BTreeMap<String, Group>,
    group_id: &str,
    generation_id: i32,
    member_id: &str,
) -> Result<&'a mut Group, GroupError> {
    let group = live_group(groups, group_id, member_id)?;
    if generation_id != group.generation_id {
        return Err(GroupError::IllegalGeneration {
            group_id: group_id.to_owned(),
            generation_id,
            current: group.generation_id,
        });
    }
    Ok(group)
}

/// The group, if it is not being deleted and `member_id` is one of its members.
fn live_group<'a>(
    groups: &'a mut BTreeMap<String, Group>,
    group_id: &str,
    member_id: &str,
) -> Result<&'a mut Group, GroupError> {
    let group = groups
        .get_mut(group_id)
        .ok_or_else(|| unknown_member(group_id, member_id))?;
    if group.state == GroupState::Dead {
        return Err(GroupError::GroupDeleting {
            group_id: group_id.to_owned(),
        });
    }
    if !group.members.contains_key(member_id) {
        return Err(unknown_member(group_id, member_id));
    }
    Ok(group)
}

fn unknown_member(group_id: &str, member_id: &str) -> GroupError {
    GroupError::UnknownMemberId {
        group_id: group_id.to_owned(),
        member_id: member_id.to_owned(),
    }
}

fn rebalancing(group_id: &str) -> GroupError {
    GroupError::RebalanceInProgress {
        group_id: group_id.to_owned(),
    }
}

fn validate_group_id(group_id: &str) -> Result<(), GroupError> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId { reason: "empty" });
    }
    if group_id.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId {
            reason: "longer than 255 bytes",
        });
    }
    Ok(())
}

fn check_len(what: &'static str, s: &str, max: usize) -> Result<(), GroupError> {
    match s.len() <= max {
        true => Ok(()),
        false => Err(GroupError::TooLong {
            what,
            bytes: s.len(),
            max,
        }),
    }
}

fn check_non_empty(what: &'static str, s: &str) -> Result<(), GroupError> {
    match s.is_empty() {
        true => Err(GroupError::Empty { what }),
        false => Ok(()),
    }
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), GroupError> {
    match count <= max {
        true => Ok(()),
        false => Err(GroupError::TooMany { what, count, max }),
    }
}
