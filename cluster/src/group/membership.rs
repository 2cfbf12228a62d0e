//! One group's members and its state transitions (Kafka's classic protocol, with the
//! assignment computed here when a generation forms).
//!
//! Transitions:
//!
//! ```text
//! Empty --join--> PreparingRebalance (initial delay) --deadline--> CompletingRebalance
//! Stable/CompletingRebalance --new member, changed member, removal, metadata--> PreparingRebalance
//! PreparingRebalance --every member rejoined, or rebalance timeout--> CompletingRebalance
//!                                                       (or Empty when nobody is left)
//! CompletingRebalance --every member synced--> Stable
//! CompletingRebalance --sync timeout: unsynced members removed--> PreparingRebalance
//! Empty --delete--> Dead --tombstones durable--> (gone, or Empty if offsets remain)
//! ```
//!
//! Partition ownership. The coordinator tracks, per member, what it may still be
//! consuming (`holding`): a member starts holding its assignment when it syncs, and stops
//! holding a partition when it has released it. The client contract (Kafka's consumer
//! behaviour, which cfa's SDK must follow):
//! - after a SyncGroup answer, the client releases every partition it holds that the new
//!   assignment does not contain, before it sends its next Heartbeat or JoinGroup for the
//!   group (and sends no Heartbeat while the SyncGroup is outstanding);
//! - in an eager generation (its last synced assignor is not cooperative) the client
//!   releases everything before it rejoins; in a cooperative one it keeps its partitions.
//!
//! So a validated Heartbeat or JoinGroup after a sync confirms the release of what that
//! sync took away, and an eager rejoin confirms the release of everything. When a
//! generation forms, a partition that some other member still holds is **withheld**:
//! it goes to nobody in this generation. Once its holder releases it, the coordinator
//! starts a follow-up rebalance that hands it out (Kafka's cooperative protocol, driven
//! by the coordinator). No partition is ever in the assignment or holding of two members
//! at once; members removed by the coordinator hold nothing (as in Kafka, a removed
//! member is fenced by its generation, not trusted).

use std::collections::{BTreeMap, BTreeSet};

use crate::group::api::{
    Effect, JoinMember, JoinResult, JoinToken, RebalanceReason, RemovalReason,
};
use crate::group::assignor::{AssignorMember, Assignors};
use crate::group::error::GroupError;
use crate::group::{Assignment, GroupState, TopicMetadata};

/// A set of (topic, partition).
pub(crate) type Partitions = BTreeSet<(String, u32)>;

pub(crate) fn partitions_of(assignment: &Assignment) -> Partitions {
    assignment
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect()
}

pub(crate) fn assignment_of(partitions: &Partitions) -> Assignment {
    let mut out = Assignment::new();
    for (topic, p) in partitions {
        out.entry(topic.clone()).or_default().push(*p);
    }
    out
}

/// What a state transition needs from the coordinator, and where it writes effects.
pub(crate) struct Ctx<'a> {
    pub assignors: &'a Assignors,
    pub topics: &'a TopicMetadata,
    pub initial_rebalance_delay_ms: u64,
    pub now_ms: u64,
    pub effects: &'a mut Vec<Effect>,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub topics: BTreeSet<String>,
    /// Most preferred first.
    pub assignors: Vec<String>,
    /// The parked JoinGroup request while the member waits for the generation to form.
    /// Such a member is not subject to its session timeout: it cannot heartbeat meanwhile.
    pub awaiting_join: Option<JoinToken>,
    pub last_heartbeat_ms: u64,
    /// Share of the latest generation the member is part of.
    pub assignment: Assignment,
    /// What the member may still be consuming (see the module documentation).
    pub holding: Partitions,
    /// Held partitions its last sync took away: released by its next request.
    pub unreleased: Partitions,
    /// Whether the assignor of the generation it last synced is cooperative.
    pub synced_cooperative: bool,
}

impl Member {
    pub fn session_deadline_ms(&self) -> u64 {
        self.last_heartbeat_ms
            .saturating_add(u64::from(self.session_timeout_ms))
    }

    pub fn supports(&self, assignor: &str) -> bool {
        self.assignors.iter().any(|a| a == assignor)
    }
}

/// While the first rebalance of an Empty group waits for more members
/// (group.initial.rebalance.delay.ms).
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    /// The delay is re-armed at most until here (the rebalance timeout).
    cap_ms: u64,
    /// A member joined since the delay was last armed.
    new_member_added: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub assignor: Option<String>,
    /// Kafka's leader: the first member to join; replaced when it leaves.
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// PreparingRebalance: when the join phase ends at the latest.
    join_deadline_ms: u64,
    initial_delay: Option<InitialDelay>,
    /// CompletingRebalance: members that have not fetched their assignment yet.
    pending_sync: BTreeSet<String>,
    sync_deadline_ms: u64,
    /// Metadata of the subscribed topics the current assignment was computed from.
    assigned_topics: TopicMetadata,
    /// Partitions of the current generation given to nobody because another member still
    /// held them; their release starts a follow-up rebalance.
    withheld: Partitions,
}

impl Group {
    pub fn new(group_id: &str) -> Self {
        Group {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            generation_id: 0,
            assignor: None,
            leader_id: None,
            members: BTreeMap::new(),
            join_deadline_ms: 0,
            initial_delay: None,
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: 0,
            assigned_topics: TopicMetadata::new(),
            withheld: Partitions::new(),
        }
    }

    /// The largest rebalance timeout of the members (Kafka's group rebalance timeout).
    fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| u64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Assignors this coordinator implements that every member except `except` supports.
    /// `None` means no restriction (no other member).
    pub fn assignors_supported_by_all(&self, except: Option<&str>) -> Option<BTreeSet<&str>> {
        let mut common: Option<BTreeSet<&str>> = None;
        for member in self.members.values() {
            if Some(member.member_id.as_str()) == except {
                continue;
            }
            let mine: BTreeSet<&str> = member.assignors.iter().map(String::as_str).collect();
            common = Some(match common {
                None => mine,
                Some(c) => c.intersection(&mine).copied().collect(),
            });
        }
        common
    }

    /// Topics any member subscribes to, with their partition counts in `topics`.
    pub fn subscribed_metadata(&self, topics: &TopicMetadata) -> TopicMetadata {
        let subscribed: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect();
        subscribed
            .into_iter()
            .filter_map(|t| topics.get(t).filter(|n| **n > 0).map(|n| (t.clone(), *n)))
            .collect()
    }

    pub fn metadata_changed(&self, topics: &TopicMetadata) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) && self.subscribed_metadata(topics) != self.assigned_topics
    }

    /// Adds a new member waiting in a join; it becomes leader when there is none.
    pub fn add_member(&mut self, member: Member) {
        assert!(
            member.awaiting_join.is_some(),
            "a member is added by a join"
        );
        assert!(!self.members.contains_key(&member.member_id));
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(initial) = self.initial_delay.as_mut() {
            initial.new_member_added = true;
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Starts a rebalance unless one is running (Kafka's maybePrepareRebalance).
    pub fn prepare_rebalance(&mut self, reason: RebalanceReason, ctx: &mut Ctx<'_>) {
        let from = self.state;
        match from {
            GroupState::PreparingRebalance | GroupState::Dead => return,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {}
        }
        let timeout_ms = self.rebalance_timeout_ms();
        self.state = GroupState::PreparingRebalance;
        self.pending_sync.clear();
        if from == GroupState::Empty && ctx.initial_rebalance_delay_ms > 0 {
            let delay_ms = ctx.initial_rebalance_delay_ms.min(timeout_ms);
            self.join_deadline_ms = ctx.now_ms.saturating_add(delay_ms);
            self.initial_delay = Some(InitialDelay {
                cap_ms: ctx.now_ms.saturating_add(timeout_ms),
                new_member_added: false,
            });
        } else {
            self.join_deadline_ms = ctx.now_ms.saturating_add(timeout_ms);
            self.initial_delay = None;
        }
        ctx.effects.push(Effect::RebalanceStarted {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            reason,
        });
    }

    /// Completes the join phase when nothing more is awaited: every member has rejoined
    /// (outside the initial delay), or nobody is left.
    pub fn maybe_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        if self.members.is_empty() || (self.initial_delay.is_none() && all_joined) {
            self.complete_join(ctx);
        }
    }

    /// The join deadline passed: re-arm the initial delay if members keep arriving,
    /// otherwise form the generation without the members that did not rejoin.
    fn join_deadline_passed(&mut self, ctx: &mut Ctx<'_>) {
        assert_eq!(self.state, GroupState::PreparingRebalance);
        if let Some(initial) = self.initial_delay.as_mut() {
            if initial.new_member_added && self.join_deadline_ms < initial.cap_ms {
                initial.new_member_added = false;
                self.join_deadline_ms = ctx
                    .now_ms
                    .saturating_add(ctx.initial_rebalance_delay_ms)
                    .min(initial.cap_ms);
                return;
            }
        }
        self.complete_join(ctx);
    }

    /// Forms the next generation from the members that rejoined, computes the assignment
    /// and answers every parked join.
    fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        assert_eq!(self.state, GroupState::PreparingRebalance);
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in missing {
            self.drop_member(&member_id, RemovalReason::JoinTimeout, ctx);
        }
        self.initial_delay = None;
        // A generation id overflows after 2^31 rebalances; saturate rather than wrap so
        // that it never decreases.
        self.generation_id = self.generation_id.saturating_add(1);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.assignor = None;
            self.assigned_topics.clear();
            self.withheld.clear();
            return;
        }
        let assignor = self.choose_assignor(ctx.assignors);
        self.assign(&assignor, ctx);
        self.assignor = Some(assignor);
        self.state = GroupState::CompletingRebalance;
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline_ms = ctx.now_ms.saturating_add(self.rebalance_timeout_ms());
        let now_ms = ctx.now_ms;
        let tokens: Vec<(String, JoinToken)> = self
            .members
            .values_mut()
            .filter_map(|m| {
                m.last_heartbeat_ms = now_ms;
                m.awaiting_join.take().map(|t| (m.member_id.clone(), t))
            })
            .collect();
        for (member_id, token) in tokens {
            let result = self.join_result(&member_id);
            ctx.effects.push(Effect::JoinResponse {
                token,
                group_id: self.group_id.clone(),
                member_id,
                result: Ok(result),
            });
        }
    }

    /// First assignor in the leader's preference order that every member supports and
    /// this coordinator implements. Joins are refused when none would exist, and removals
    /// only widen the choice, so one always does.
    fn choose_assignor(&self, assignors: &Assignors) -> String {
        let leader = self
            .leader_id
            .as_ref()
            .and_then(|l| self.members.get(l))
            .expect("a group with members has a leader");
        leader
            .assignors
            .iter()
            .find(|a| assignors.contains(a) && self.members.values().all(|m| m.supports(a)))
            .cloned()
            .expect("joins keep a common assignor")
    }

    fn assign(&mut self, assignor_name: &str, ctx: &Ctx<'_>) {
        let assignor = ctx
            .assignors
            .get(assignor_name)
            .expect("chosen among the registered assignors");
        let topics = self.subscribed_metadata(ctx.topics);
        let input: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                member_id: &m.member_id,
                topics: &m.topics,
                previous: &m.assignment,
            })
            .collect();
        let out = assignor.assign(&input, &topics);
        assert_eq!(out.len(), self.members.len(), "one assignment per member");
        let holders: BTreeMap<(String, u32), String> = self
            .members
            .values()
            .flat_map(|m| m.holding.iter().map(|tp| (tp.clone(), m.member_id.clone())))
            .collect();
        self.withheld.clear();
        for (member, target) in self.members.values_mut().zip(out) {
            let mut mine = partitions_of(&target);
            mine.retain(|tp| match holders.get(tp) {
                Some(holder) if *holder != member.member_id => {
                    self.withheld.insert(tp.clone());
                    false
                }
                _ => true,
            });
            member.assignment = assignment_of(&mine);
        }
        self.assigned_topics = topics;
    }

    /// The member fetched its assignment: it holds it from now on, and still holds what
    /// the assignment takes away until its next request.
    pub fn record_sync(&mut self, member_id: &str, cooperative: bool) {
        let member = self.members.get_mut(member_id).expect("a member syncs");
        let assigned = partitions_of(&member.assignment);
        member.holding.extend(assigned.iter().cloned());
        member.unreleased = member.holding.difference(&assigned).cloned().collect();
        member.synced_cooperative = cooperative;
    }

    /// A validated request after a sync: the member has released what the sync took away,
    /// and everything if it rejoins in an eager generation. A release that frees a
    /// withheld partition starts the follow-up rebalance.
    pub fn released(&mut self, member_id: &str, rejoin: bool, ctx: &mut Ctx<'_>) {
        let member = self.members.get_mut(member_id).expect("a member releases");
        let freed: Partitions = if rejoin && !member.synced_cooperative {
            std::mem::take(&mut member.holding)
        } else {
            let freed = std::mem::take(&mut member.unreleased);
            member.holding.retain(|tp| !freed.contains(tp));
            freed
        };
        member.unreleased.clear();
        let follow_up = freed.iter().any(|tp| self.withheld.contains(tp));
        if follow_up {
            self.prepare_rebalance(RebalanceReason::PartitionsReleased, ctx);
        }
    }

    /// The join answer for a member of the current generation.
    pub fn join_result(&self, member_id: &str) -> JoinResult {
        let leader_id = self.leader_id.clone().unwrap_or_default();
        let members = if leader_id == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    topics: m.topics.iter().cloned().collect(),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            generation_id: self.generation_id,
            member_id: member_id.to_owned(),
            leader_id,
            assignor: self.assignor.clone().unwrap_or_default(),
            members,
        }
    }

    /// Removes a member for `reason` and moves the group on: a rebalance for the others,
    /// or Empty when it was the last one.
    pub fn remove_member(&mut self, member_id: &str, reason: RemovalReason, ctx: &mut Ctx<'_>) {
        self.drop_member(member_id, reason, ctx);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(
                    RebalanceReason::MemberRemoved {
                        member_id: member_id.to_owned(),
                    },
                    ctx,
                );
                self.maybe_complete_join(ctx);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(ctx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Takes a member out, answering its parked join, and picks a new leader if needed
    /// (Kafka: a member waiting in a join first).
    fn drop_member(&mut self, member_id: &str, reason: RemovalReason, ctx: &mut Ctx<'_>) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        self.pending_sync.remove(member_id);
        if let Some(token) = member.awaiting_join {
            ctx.effects.push(Effect::JoinResponse {
                token,
                group_id: self.group_id.clone(),
                member_id: member_id.to_owned(),
                result: Err(GroupError::UnknownMemberId {
                    group_id: self.group_id.clone(),
                    member_id: member_id.to_owned(),
                }),
            });
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.member_id.clone());
        }
        ctx.effects.push(Effect::MemberRemoved {
            group_id: self.group_id.clone(),
            member_id: member_id.to_owned(),
            reason,
        });
    }

    /// Records that `member_id` fetched its assignment; the group is Stable once all have.
    pub fn synced(&mut self, member_id: &str) {
        if self.state == GroupState::CompletingRebalance {
            self.pending_sync.remove(member_id);
            if self.pending_sync.is_empty() {
                self.state = GroupState::Stable;
            }
        }
    }

    /// Applies every deadline that has passed at `ctx.now_ms`: expired sessions, the end
    /// of the join phase, the end of the sync phase.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && ctx.now_ms >= m.session_deadline_ms())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            self.remove_member(&member_id, RemovalReason::SessionExpired, ctx);
        }
        if self.state == GroupState::PreparingRebalance && ctx.now_ms >= self.join_deadline_ms {
            self.join_deadline_passed(ctx);
        }
        if self.state == GroupState::CompletingRebalance && ctx.now_ms >= self.sync_deadline_ms {
            let unsynced: Vec<String> = self.pending_sync.iter().cloned().collect();
            for member_id in unsynced {
                self.remove_member(&member_id, RemovalReason::SyncTimeout, ctx);
            }
        }
    }

    /// The earliest time at which [`Group::tick`] would change something.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(Member::session_deadline_ms);
        let phase = match self.state {
            GroupState::PreparingRebalance => Some(self.join_deadline_ms),
            GroupState::CompletingRebalance => Some(self.sync_deadline_ms),
            _ => None,
        };
        sessions.chain(phase).min()
    }

    /// Checks every invariant of the group; cheap ones always, the assignment check only
    /// in debug builds (it walks every assigned partition).
    pub fn assert_invariants(&self, limit_members: usize) {
        assert!(self.generation_id >= 0);
        assert!(self.members.len() <= limit_members, "member limit");
        let has_members = !self.members.is_empty();
        assert_eq!(
            has_members,
            !matches!(self.state, GroupState::Empty | GroupState::Dead),
            "only Empty and Dead groups have no members ({})",
            self.state
        );
        assert_eq!(
            self.leader_id.is_some(),
            has_members,
            "a leader iff members"
        );
        if let Some(leader) = &self.leader_id {
            assert!(self.members.contains_key(leader), "the leader is a member");
        }
        if self.state != GroupState::PreparingRebalance {
            assert!(self.members.values().all(|m| m.awaiting_join.is_none()));
            assert!(self.initial_delay.is_none());
        }
        if self.state == GroupState::CompletingRebalance {
            assert!(!self.pending_sync.is_empty());
            assert!(self
                .pending_sync
                .iter()
                .all(|m| self.members.contains_key(m)));
        } else {
            assert!(self.pending_sync.is_empty());
        }
        if has_members && self.state != GroupState::PreparingRebalance {
            assert!(self.assignor.is_some());
            if cfg!(debug_assertions) {
                self.assert_assignment_complete();
            }
        }
        if cfg!(debug_assertions) {
            self.assert_exclusive_ownership();
        }
    }

    /// Every partition of `assigned_topics` is assigned to exactly one member subscribed
    /// to its topic, or withheld because another member still holds it; nothing else is
    /// assigned.
    fn assert_assignment_complete(&self) {
        let mut seen: BTreeSet<(&str, u32)> = BTreeSet::new();
        for member in self.members.values() {
            for (topic, partitions) in &member.assignment {
                assert!(
                    member.topics.contains(topic),
                    "assigned an unsubscribed topic"
                );
                let count = self.assigned_topics.get(topic).copied().unwrap_or(0);
                for &p in partitions {
                    assert!(p < count, "assigned {topic}-{p} beyond {count} partitions");
                    assert!(seen.insert((topic, p)), "{topic}-{p} assigned twice");
                }
            }
        }
        for (topic, &count) in &self.assigned_topics {
            for p in 0..count {
                let held = || {
                    self.members
                        .values()
                        .any(|m| m.holding.contains(&(topic.clone(), p)))
                };
                assert!(
                    seen.contains(&(topic.as_str(), p)) || held(),
                    "{topic}-{p} lost"
                );
            }
        }
    }

    /// No partition is in the assignment or holding of two members.
    fn assert_exclusive_ownership(&self) {
        let mut owner: BTreeMap<(&str, u32), &str> = BTreeMap::new();
        for member in self.members.values() {
            let assigned = member
                .assignment
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.as_str(), *p)));
            let held = member.holding.iter().map(|(t, p)| (t.as_str(), *p));
            for tp in assigned.chain(held) {
                let previous = owner.insert(tp, &member.member_id);
                assert!(
                    previous.is_none_or(|o| o == member.member_id),
                    "{}-{} owned by {previous:?} and {}",
                    tp.0,
                    tp.1,
                    member.member_id
                );
            }
            assert!(member.unreleased.is_subset(&member.holding));
        }
    }
}
