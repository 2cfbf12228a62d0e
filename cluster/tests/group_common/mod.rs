//! Test driver for the group coordinator: plays the server's part (parks joins by token,
//! keeps the clock, appends commit batches to an in-memory offsets log).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use cfa_cluster::group::{
    Assignment, CommitEntry, CommitRequest, CoordinatorConfig, Effect, GroupCoordinator,
    GroupError, GroupState, JoinRequest, JoinResult, OffsetStore, RemovalReason, TopicMetadata,
    TopicPartition,
};

pub const SESSION_MS: u32 = 10_000;
pub const REBALANCE_MS: u32 = 30_000;

pub struct Harness {
    pub c: GroupCoordinator,
    pub now_ms: u64,
    next_token: u64,
    /// Answers of parked joins, by token; a token answered twice fails the test.
    pub answers: BTreeMap<u64, Result<JoinResult, GroupError>>,
    pub removed: Vec<(String, RemovalReason)>,
    pub rebalances: usize,
    /// Batches appended to the offsets log, in order.
    pub log: Vec<Bytes>,
}

pub fn config(initial_delay_ms: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay_ms: initial_delay_ms,
        member_id_nonce: 0xabc,
        ..CoordinatorConfig::default()
    }
}

pub fn topics(list: &[(&str, u32)]) -> TopicMetadata {
    list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Harness {
    pub fn new(config: CoordinatorConfig, metadata: TopicMetadata) -> Self {
        Harness::with_store(config, metadata, OffsetStore::new())
    }

    pub fn with_store(
        config: CoordinatorConfig,
        metadata: TopicMetadata,
        store: OffsetStore,
    ) -> Self {
        let mut c = GroupCoordinator::new(config, store);
        let effects = c.set_topic_metadata(metadata, 0);
        assert!(effects.is_empty());
        Harness {
            c,
            now_ms: 0,
            next_token: 0,
            answers: BTreeMap::new(),
            removed: Vec::new(),
            rebalances: 0,
            log: Vec::new(),
        }
    }

    pub fn absorb(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::JoinResponse {
                    token,
                    member_id,
                    result,
                    ..
                } => {
                    if let Ok(r) = &result {
                        assert_eq!(r.member_id, member_id);
                    }
                    assert!(token < self.next_token, "answered a token never issued");
                    let old = self.answers.insert(token, result);
                    assert!(old.is_none(), "token {token} answered twice");
                }
                Effect::MemberRemoved {
                    member_id, reason, ..
                } => self.removed.push((member_id, reason)),
                Effect::RebalanceStarted { .. } => self.rebalances += 1,
            }
        }
    }

    /// Sends a JoinGroup; returns its token (or the immediate refusal).
    pub fn try_join(
        &mut self,
        group: &str,
        member_id: &str,
        client_id: &str,
        subscribed: &[&str],
        assignors: &[&str],
    ) -> Result<u64, GroupError> {
        let token = self.next_token;
        self.next_token += 1;
        let req = JoinRequest {
            token,
            group_id: group.to_owned(),
            member_id: member_id.to_owned(),
            client_id: client_id.to_owned(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            topics: strings(subscribed),
            assignors: strings(assignors),
        };
        let effects = self.c.join(req, self.now_ms)?;
        self.absorb(effects);
        Ok(token)
    }

    pub fn join(
        &mut self,
        group: &str,
        member_id: &str,
        client_id: &str,
        subscribed: &[&str],
    ) -> u64 {
        self.try_join(
            group,
            member_id,
            client_id,
            subscribed,
            &["range", "roundrobin"],
        )
        .expect("join accepted")
    }

    pub fn answer(&self, token: u64) -> Option<&Result<JoinResult, GroupError>> {
        self.answers.get(&token)
    }

    pub fn joined(&self, token: u64) -> JoinResult {
        match self.answers.get(&token) {
            Some(Ok(r)) => r.clone(),
            other => panic!("join {token} not answered with success: {other:?}"),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        let effects = self.c.tick(self.now_ms);
        self.absorb(effects);
    }

    pub fn heartbeat(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
    ) -> Result<(), GroupError> {
        self.c.heartbeat(group, generation, member, self.now_ms)
    }

    pub fn sync(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
    ) -> Result<Assignment, GroupError> {
        self.c
            .sync(group, generation, member, self.now_ms)
            .map(|s| s.assignment)
    }

    pub fn leave(&mut self, group: &str, member: &str) -> Result<(), GroupError> {
        let effects = self.c.leave(group, member, self.now_ms)?;
        self.absorb(effects);
        Ok(())
    }

    pub fn set_metadata(&mut self, metadata: TopicMetadata) {
        let effects = self.c.set_topic_metadata(metadata, self.now_ms);
        self.absorb(effects);
    }

    /// Commits through both phases, appending the batch to `log` first.
    pub fn commit(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
        offsets: &[(&str, u32, u64)],
    ) -> Result<(), GroupError> {
        let entries = offsets
            .iter()
            .map(|(t, p, o)| CommitEntry {
                partition: TopicPartition::new(t, *p),
                offset: *o,
                leader_epoch: -1,
                metadata: format!("m{o}"),
            })
            .collect();
        let req = CommitRequest {
            group_id: group.to_owned(),
            generation_id: generation,
            member_id: member.to_owned(),
            entries,
        };
        let prepared = self.c.prepare_commit(req, self.now_ms)?;
        if let Some(batch) = prepared.batch {
            self.log.push(batch.freeze());
        }
        self.c.complete_commit(prepared.pending);
        Ok(())
    }

    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let tp = TopicPartition::new(topic, partition);
        let fetched = self
            .c
            .fetch_offsets(group, Some(&[tp]))
            .expect("valid group id");
        fetched[0].1.as_ref().map(|o| o.offset)
    }

    pub fn state(&self, group: &str) -> GroupState {
        self.c.describe_group(group).expect("group exists").state
    }

    /// Checks that the group's assignment covers every subscribed partition once.
    pub fn assert_complete_assignment(&self, group: &str) -> BTreeMap<String, Assignment> {
        let d = self.c.describe_group(group).expect("group exists");
        let metadata = self.c.topic_metadata();
        let subscribed: BTreeSet<&String> =
            d.members.iter().flat_map(|m| m.topics.iter()).collect();
        let expected: BTreeSet<(String, u32)> = subscribed
            .iter()
            .filter_map(|t| metadata.get(*t).map(|n| ((*t).clone(), *n)))
            .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
            .collect();
        let mut seen = BTreeSet::new();
        for m in &d.members {
            for (t, ps) in &m.assignment {
                assert!(m.topics.contains(t), "{} got unsubscribed {t}", m.member_id);
                for p in ps {
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} assigned twice");
                }
            }
        }
        assert_eq!(
            seen, expected,
            "assignment of {group} is not a partition of its topics"
        );
        d.members
            .into_iter()
            .map(|m| (m.member_id, m.assignment))
            .collect()
    }
}
