//! Random sequences of join / sync / heartbeat / leave / commit / delete / metadata / tick
//! with random time steps, played by simulated clients against the coordinator. After
//! every step the invariants are checked from the outside (describe, fetch, replay).

mod group_common;

use std::collections::{BTreeMap, BTreeSet};

use cfa_cluster::group::{
    CommitEntry, CommitRequest, GroupError, GroupState, OffsetStore, PendingCommit, TopicPartition,
};
use group_common::{config, topics, Harness};
use proptest::prelude::*;

const GROUPS: [&str; 2] = ["g0", "g1"];
const TOPICS: [&str; 3] = ["a", "b", "c"];
const ASSIGNORS: [&[&str]; 5] = [
    &["range"],
    &["roundrobin", "range"],
    &["cooperative-sticky"],
    &["cooperative-sticky", "range"],
    &["sticky", "cooperative-sticky"],
];
const CLIENTS: usize = 6;
const MEMBERS_MAX: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// What a well-behaved consumer does next: rejoin when told, sync after a join,
    /// heartbeat otherwise (and commit its first assigned partition now and then).
    Poll {
        client: usize,
        commit: bool,
    },
    Join {
        client: usize,
        topics: u8,
        assignors: usize,
        forget_id: bool,
    },
    Sync {
        client: usize,
        stale: bool,
    },
    Heartbeat {
        client: usize,
        stale: bool,
    },
    Leave {
        client: usize,
    },
    Commit {
        client: usize,
        topic: usize,
        partition: u32,
        offset: u64,
        standalone: bool,
    },
    /// The oldest pending commit's batch is durable.
    CompleteCommit,
    /// The offsets log failed: every pending append fails (the engine poisons the log).
    FailCommits,
    Delete {
        group: usize,
        abort: bool,
    },
    Metadata {
        counts: [u32; 3],
    },
    Tick {
        step_ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        12 => (client.clone(), proptest::bool::weighted(0.2)).prop_map(|(client, commit)| Op::Poll { client, commit }),
        4 => (client.clone(), 0u8..8, 0..ASSIGNORS.len(), proptest::bool::weighted(0.1))
            .prop_map(|(client, topics, assignors, forget_id)| Op::Join { client, topics, assignors, forget_id }),
        3 => (client.clone(), proptest::bool::weighted(0.2)).prop_map(|(client, stale)| Op::Sync { client, stale }),
        3 => (client.clone(), proptest::bool::weighted(0.2)).prop_map(|(client, stale)| Op::Heartbeat { client, stale }),
        1 => client.clone().prop_map(|client| Op::Leave { client }),
        3 => (client, 0..TOPICS.len(), 0u32..5, 0u64..1000, proptest::bool::weighted(0.2))
            .prop_map(|(client, topic, partition, offset, standalone)| Op::Commit { client, topic, partition, offset, standalone }),
        2 => Just(Op::CompleteCommit),
        1 => Just(Op::FailCommits),
        1 => (0..GROUPS.len(), any::<bool>()).prop_map(|(group, abort)| Op::Delete { group, abort }),
        1 => [0u32..5, 0u32..5, 0u32..5].prop_map(|counts| Op::Metadata { counts }),
        4 => prop_oneof![6 => 0u64..2_000, 1 => 0u64..40_000].prop_map(|step_ms| Op::Tick { step_ms }),
    ]
}

/// What a client learns from a join answer: its member id and generation, or an error
/// (`true`: it is unknown and must start over).
type Learnt = Result<(String, i32), bool>;

/// A consumer as the coordinator sees it through its requests.
#[derive(Debug, Clone, Default)]
struct Client {
    member_id: Option<String>,
    generation: i32,
    /// Topics mask and assignor choice of its last join.
    topics: u8,
    assignors: usize,
    /// A join of this client is parked.
    parked: bool,
    /// The generation it fetched its assignment for, and that assignment's first partition.
    synced: Option<(i32, Option<TopicPartition>)>,
    must_rejoin: bool,
    /// Partitions this consumer is consuming right now, as a Kafka client would: it takes
    /// an assignment on SyncGroup, and releases what the assignment took away just before
    /// its next request (the latest the contract allows).
    owned: Owned,
    to_release: Owned,
    /// Protocol of the generation it last synced.
    cooperative: bool,
}

type Owned = BTreeSet<(String, u32)>;

struct Model {
    h: Harness,
    clients: Vec<Client>,
    /// Which client sent each join token.
    token_client: BTreeMap<u64, usize>,
    pending: Vec<PendingCommit>,
    /// Committed offsets as the completed commits and deletions define them.
    committed: BTreeMap<(String, TopicPartition), u64>,
    generations: BTreeMap<String, i32>,
    /// Entries of `h.removed` already applied to the clients.
    removed_seen: usize,
}

fn group_of(client: usize) -> &'static str {
    GROUPS[client % GROUPS.len()]
}

impl Model {
    fn new() -> Self {
        let mut cfg = config(500);
        cfg.group_members_max = MEMBERS_MAX;
        Model {
            h: Harness::new(cfg, topics(&[("a", 2), ("b", 3), ("c", 1)])),
            clients: vec![Client::default(); CLIENTS],
            token_client: BTreeMap::new(),
            pending: Vec::new(),
            committed: BTreeMap::new(),
            generations: BTreeMap::new(),
            removed_seen: 0,
        }
    }

    /// Clients learn from answered joins.
    fn absorb_answers(&mut self) {
        let answered: Vec<(usize, Learnt)> = self
            .h
            .answers
            .iter()
            .filter_map(|(token, result)| {
                let client = *self.token_client.get(token)?;
                let learnt = match result {
                    Ok(r) => Ok((r.member_id.clone(), r.generation_id)),
                    Err(e) => Err(matches!(e, GroupError::UnknownMemberId { .. })),
                };
                Some((client, learnt))
            })
            .collect();
        self.token_client
            .retain(|token, _| !self.h.answers.contains_key(token));
        for (client, learnt) in answered {
            let c = &mut self.clients[client];
            c.parked = false;
            match learnt {
                Ok((member_id, generation)) => {
                    c.member_id = Some(member_id);
                    c.generation = generation;
                }
                Err(true) => c.member_id = None,
                Err(false) => c.must_rejoin = true,
            }
        }
    }

    /// A client that is told it is unknown starts over, as Kafka clients do (its
    /// partitions are lost).
    fn learn(&mut self, client: usize, result: &Result<impl Sized, GroupError>) {
        let c = &mut self.clients[client];
        match result {
            Err(GroupError::UnknownMemberId { .. }) => {
                c.member_id = None;
                c.must_rejoin = true;
                c.owned.clear();
                c.to_release.clear();
            }
            Err(GroupError::RebalanceInProgress { .. } | GroupError::IllegalGeneration { .. }) => {
                c.must_rejoin = true;
            }
            _ => {}
        }
    }

    /// Before any Heartbeat or JoinGroup: release what the last sync took away.
    fn before_request(&mut self, client: usize) {
        let c = &mut self.clients[client];
        let released = std::mem::take(&mut c.to_release);
        c.owned.retain(|tp| !released.contains(tp));
    }

    /// Before a JoinGroup: an eager consumer releases everything; a restarted one (a new
    /// member id) holds nothing.
    fn before_join(&mut self, client: usize, restarted: bool) {
        self.before_request(client);
        let c = &mut self.clients[client];
        if restarted || !c.cooperative {
            c.owned.clear();
        }
        if restarted {
            c.cooperative = false;
        }
    }

    fn heartbeat(
        &mut self,
        client: usize,
        generation: i32,
        member: &str,
    ) -> Result<(), GroupError> {
        self.before_request(client);
        let r = self.h.heartbeat(group_of(client), generation, member);
        self.learn(client, &r);
        r
    }

    fn sync(&mut self, client: usize, generation: i32, member: &str) {
        let r = self
            .h
            .c
            .sync(group_of(client), generation, member, self.h.now_ms);
        if let Ok(sync) = &r {
            let first = sync
                .assignment
                .iter()
                .next()
                .map(|(t, ps)| TopicPartition::new(t, ps[0]));
            let new: Owned = sync
                .assignment
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect();
            let c = &mut self.clients[client];
            c.synced = Some((generation, first));
            c.to_release = c.owned.difference(&new).cloned().collect();
            c.owned.extend(new);
            c.cooperative = sync.cooperative;
        }
        self.learn(client, &r);
    }

    /// Members the coordinator removed hold nothing any more (a real one may still be
    /// running: Kafka fences it by generation, and so does cfa).
    fn absorb_removals(&mut self) {
        for (member_id, _) in &self.h.removed[self.removed_seen..] {
            for c in &mut self.clients {
                if c.member_id.as_ref() == Some(member_id) {
                    c.owned.clear();
                    c.to_release.clear();
                }
            }
        }
        self.removed_seen = self.h.removed.len();
    }

    fn poll(&mut self, client: usize, commit: bool) {
        let c = self.clients[client].clone();
        if c.parked {
            return;
        }
        if c.member_id.is_none() || c.must_rejoin {
            let (topics, assignors) = (c.topics.max(1), c.assignors);
            self.apply(&Op::Join {
                client,
                topics,
                assignors,
                forget_id: false,
            });
            return;
        }
        let member = c.member_id.clone().unwrap_or_default();
        match c.synced {
            Some((generation, first)) if generation == c.generation => {
                let r = self.heartbeat(client, generation, &member);
                if let (true, Some(tp)) = (commit && r.is_ok(), first) {
                    let offset = self.h.now_ms % 1000;
                    self.commit(client, tp, offset, false);
                }
            }
            _ => self.sync(client, c.generation, &member),
        }
    }

    fn commit(&mut self, client: usize, tp: TopicPartition, offset: u64, standalone: bool) {
        let (member, generation) = match standalone {
            true => (String::new(), -1),
            false => self.identity(client, false),
        };
        let req = CommitRequest {
            group_id: group_of(client).to_owned(),
            generation_id: generation,
            member_id: member,
            entries: vec![CommitEntry {
                partition: tp,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        };
        if let Ok(prepared) = self.h.c.prepare_commit(req, self.h.now_ms) {
            let batch = prepared.batch.expect("one entry gives one batch");
            self.h.log.push(batch.freeze());
            self.pending.push(prepared.pending);
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Join {
                client,
                topics,
                assignors,
                forget_id,
            } => {
                let subscribed: Vec<&str> = (0..3)
                    .filter(|i| topics & (1 << i) != 0)
                    .map(|i| TOPICS[i])
                    .collect();
                let member = match forget_id {
                    true => String::new(),
                    false => self.clients[*client].member_id.clone().unwrap_or_default(),
                };
                self.before_join(*client, *forget_id);
                let token = self.h.try_join(
                    group_of(*client),
                    &member,
                    "c",
                    &subscribed,
                    ASSIGNORS[*assignors],
                );
                if let Ok(token) = token {
                    self.token_client.insert(token, *client);
                    let c = &mut self.clients[*client];
                    (c.topics, c.assignors, c.parked, c.must_rejoin) =
                        (*topics, *assignors, true, false);
                }
                self.learn(*client, &token);
            }
            Op::Sync { client, stale } => {
                let (member, generation) = self.identity(*client, *stale);
                self.sync(*client, generation, &member);
            }
            Op::Heartbeat { client, stale } => {
                let (member, generation) = self.identity(*client, *stale);
                let _ = self.heartbeat(*client, generation, &member);
            }
            Op::Leave { client } => {
                let (member, _) = self.identity(*client, false);
                let c = &mut self.clients[*client];
                c.owned.clear();
                c.to_release.clear();
                let r = self.h.leave(group_of(*client), &member);
                self.learn(*client, &r);
            }
            Op::Commit {
                client,
                topic,
                partition,
                offset,
                standalone,
            } => {
                let tp = TopicPartition::new(TOPICS[*topic], *partition);
                self.commit(*client, tp, *offset, *standalone);
            }
            Op::Poll { client, commit } => self.poll(*client, *commit),
            Op::CompleteCommit => {
                if !self.pending.is_empty() {
                    let pending = self.pending.remove(0);
                    for (tp, o) in pending.offsets() {
                        self.committed
                            .insert((pending.group_id().to_owned(), tp.clone()), o.offset);
                    }
                    self.h.c.complete_commit(pending);
                }
            }
            Op::FailCommits => {
                // Their batches never became durable: take them out of the log again.
                let n = self.pending.len();
                self.h.log.truncate(self.h.log.len() - n);
                self.pending.clear();
            }
            Op::Delete { group, abort } => self.delete(GROUPS[*group], *abort),
            Op::Metadata { counts } => {
                let meta: Vec<(&str, u32)> =
                    TOPICS.iter().copied().zip(counts.iter().copied()).collect();
                self.h.set_metadata(topics(&meta));
            }
            Op::Tick { step_ms } => self.h.advance(*step_ms),
        }
        self.absorb_answers();
        self.absorb_removals();
    }

    fn identity(&self, client: usize, stale: bool) -> (String, i32) {
        let c = &self.clients[client];
        let generation = if stale {
            c.generation - 1
        } else {
            c.generation
        };
        (c.member_id.clone().unwrap_or_default(), generation)
    }

    fn delete(&mut self, group: &str, abort: bool) {
        // Deleting while commits are pending would reorder the log against memory; the
        // server serialises appends per partition, so model that by flushing first.
        if !self.pending.is_empty() {
            return;
        }
        let Ok(prepared) = self.h.c.prepare_delete_group(group, self.h.now_ms) else {
            return;
        };
        assert_eq!(self.h.state(group), GroupState::Dead);
        if abort {
            self.h.c.abort_delete_group(prepared.pending);
            assert_eq!(self.h.state(group), GroupState::Empty);
            return;
        }
        for batch in prepared.batches {
            self.h.log.push(batch.freeze());
        }
        self.h.c.complete_delete_group(prepared.pending);
        self.committed.retain(|(g, _), _| g != group);
    }

    fn check(&mut self) {
        let metadata = self.h.c.topic_metadata().clone();
        let listed: BTreeSet<String> = self
            .h
            .c
            .list_groups()
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        self.generations.retain(|g, _| listed.contains(g));
        for group in &listed {
            let d = self.h.c.describe_group(group).expect("listed");
            let previous = self.generations.insert(group.clone(), d.generation_id);
            assert!(
                previous.is_none_or(|p| p <= d.generation_id),
                "generation went back in {group}"
            );
            assert!(d.members.len() <= MEMBERS_MAX);
            let empty_state = matches!(d.state, GroupState::Empty | GroupState::Dead);
            assert_eq!(d.members.is_empty(), empty_state, "{group} {}", d.state);
            if matches!(
                d.state,
                GroupState::Stable | GroupState::CompletingRebalance
            ) {
                self.check_assignment(group, &metadata);
            }
            self.check_ownership(group);
        }
        let held: BTreeMap<(String, TopicPartition), u64> = self
            .h
            .c
            .offsets()
            .iter()
            .map(|(k, v)| ((k.group_id.clone(), k.topic_partition()), v.offset))
            .collect();
        assert_eq!(
            held, self.committed,
            "in-memory offsets differ from the completed commits"
        );
        for group in self.h.c.offsets().group_ids() {
            assert!(listed.contains(group), "a group with offsets is listed");
        }
    }

    /// The assignment is a partition of every subscribed partition across the members,
    /// except partitions withheld while another member releases them.
    fn check_assignment(&self, group: &str, metadata: &cfa_cluster::group::TopicMetadata) {
        let d = self.h.c.describe_group(group).expect("exists");
        let mut seen = BTreeSet::new();
        for m in &d.members {
            for (t, ps) in &m.assignment {
                assert!(m.topics.contains(t));
                for p in ps {
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} twice in {group}");
                }
            }
        }
        for m in &d.members {
            for (t, ps) in &m.revoking {
                seen.extend(ps.iter().map(|p| (t.clone(), *p)));
            }
        }
        let subscribed: BTreeSet<&String> = d.members.iter().flat_map(|m| &m.topics).collect();
        let expected: BTreeSet<(String, u32)> = metadata
            .iter()
            .filter(|(t, _)| subscribed.contains(t))
            .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p)))
            .collect();
        assert!(
            seen.is_superset(&expected),
            "assignment of {group} misses partitions"
        );
    }

    /// No partition is consumed by two live consumers of a group, nor assigned or being
    /// revoked in two members; what a consumer holds, the coordinator knows it holds.
    fn check_ownership(&self, group: &str) {
        let d = self.h.c.describe_group(group).expect("exists");
        let mut coordinator_view: BTreeMap<(String, u32), &str> = BTreeMap::new();
        let mut member_view: BTreeMap<&str, Owned> = BTreeMap::new();
        for m in &d.members {
            let mine: &mut Owned = member_view.entry(&m.member_id).or_default();
            for (t, ps) in m.assignment.iter().chain(&m.revoking) {
                for p in ps {
                    mine.insert((t.clone(), *p));
                    let other = coordinator_view.insert((t.clone(), *p), &m.member_id);
                    assert!(
                        other.is_none_or(|o| o == m.member_id),
                        "{t}-{p} in two members"
                    );
                }
            }
        }
        let mut consumed: BTreeMap<&(String, u32), usize> = BTreeMap::new();
        for (i, c) in self
            .clients
            .iter()
            .enumerate()
            .filter(|(i, _)| group_of(*i) == group)
        {
            for tp in &c.owned {
                let other = consumed.insert(tp, i);
                assert!(
                    other.is_none(),
                    "{tp:?} consumed by clients {other:?} and {i} in {group}"
                );
            }
            let known = c.member_id.as_deref().and_then(|m| member_view.get(m));
            match known {
                Some(view) => assert!(
                    c.owned.is_subset(view),
                    "client {i} holds {:?}, coordinator knows {view:?}",
                    c.owned
                ),
                None => assert!(
                    c.owned.is_empty(),
                    "client {i} is no member but holds {:?}",
                    c.owned
                ),
            }
        }
    }

    /// With time moving on and no new requests, every parked join is answered.
    fn drain(&mut self) {
        for _ in 0..4 {
            self.h.advance(2 * 3_600_000);
            self.absorb_answers();
            self.absorb_removals();
            self.check();
        }
        assert!(
            self.token_client.is_empty(),
            "joins never answered: {:?}",
            self.token_client
        );
        // Flush the remaining commits, then the log replays to exactly what memory holds.
        while !self.pending.is_empty() {
            self.apply(&Op::CompleteCommit);
        }
        let replayed = OffsetStore::replay(&self.h.log).expect("the log replays");
        assert_eq!(&replayed, self.h.c.offsets());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn coordinator_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..200)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
            model.check();
        }
        model.drain();
    }
}

/// A fixed sequence that reaches Stable with several members, so the property test is
/// known to exercise the interesting states (a random run could pass by never leaving
/// Empty).
#[test]
fn the_model_reaches_a_stable_multi_member_group() {
    let mut model = Model::new();
    for client in [0, 2, 4] {
        model.apply(&Op::Join {
            client,
            topics: 0b011,
            assignors: 1,
            forget_id: false,
        });
    }
    model.apply(&Op::Tick { step_ms: 600 });
    model.apply(&Op::Tick { step_ms: 600 });
    for client in [0, 2, 4] {
        model.apply(&Op::Sync {
            client,
            stale: false,
        });
        model.check();
    }
    assert_eq!(model.h.state("g0"), GroupState::Stable);
    assert_eq!(
        model
            .h
            .c
            .describe_group("g0")
            .expect("exists")
            .members
            .len(),
        3
    );
    model.apply(&Op::Commit {
        client: 0,
        topic: 1,
        partition: 2,
        offset: 7,
        standalone: false,
    });
    model.apply(&Op::CompleteCommit);
    model.check();
    assert_eq!(model.committed.len(), 1);
    model.drain();
}
