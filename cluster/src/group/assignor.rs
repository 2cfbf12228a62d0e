//! Partition assignors, computed by the coordinator (server side, as in Kafka's KIP-848)
//! when a generation forms.
//!
//! An assignor gets the members sorted by member id and the metadata of the topics they
//! subscribe to, and returns one assignment per member. It must give every partition of
//! every subscribed topic to exactly one member that subscribes to the topic, and must be
//! deterministic: the coordinator's state, and so a replica of it, depends only on its
//! inputs.

use std::collections::BTreeSet;

use crate::group::{Assignment, TopicMetadata};

/// One member as an assignor sees it.
#[derive(Debug, Clone, Copy)]
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    pub topics: &'a BTreeSet<String>,
    /// What the member held in the previous generation (empty for a new member); for
    /// assignors that keep partitions where they are.
    pub previous: &'a Assignment,
}

/// A partition assignment strategy (Kafka's `partition.assignment.strategy`).
pub trait Assignor: Send {
    /// The protocol name members list in JoinGroup (Kafka's names where they exist).
    fn name(&self) -> &'static str;

    /// `members` are sorted by member id and distinct; `topics` holds only topics with at
    /// least one partition. Returns the assignments in the order of `members`.
    fn assign(&self, members: &[AssignorMember<'_>], topics: &TopicMetadata) -> Vec<Assignment>;

    /// Kafka's COOPERATIVE rebalance protocol: members keep their partitions while they
    /// rejoin and release only those a new assignment takes away. `false` (EAGER):
    /// members release everything before they rejoin.
    fn cooperative(&self) -> bool {
        false
    }
}

/// Kafka's RangeAssignor: per topic, the members subscribed to it in member-id order get
/// contiguous ranges; the first `partitions % members` get one partition more.
///
/// Example from Kafka's documentation: members C0 and C1, topics t0 and t1 of 3
/// partitions each: C0 gets `t0 [0, 1]` and `t1 [0, 1]`, C1 gets `t0 [2]` and `t1 [2]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, members: &[AssignorMember<'_>], topics: &TopicMetadata) -> Vec<Assignment> {
        assert_sorted(members);
        let mut out = vec![Assignment::new(); members.len()];
        for (topic, &partitions) in topics {
            let consumers: Vec<usize> = (0..members.len())
                .filter(|&i| members[i].topics.contains(topic))
                .collect();
            if consumers.is_empty() || partitions == 0 {
                continue;
            }
            let count = u32::try_from(consumers.len()).unwrap_or(u32::MAX);
            let (per_member, extra) = (partitions / count, partitions % count);
            for (i, &member) in (0u32..).zip(&consumers) {
                let start = per_member * i + i.min(extra);
                let len = per_member + u32::from(i < extra);
                if len > 0 {
                    out[member].insert(topic.clone(), (start..start + len).collect());
                }
            }
        }
        out
    }
}

/// Kafka's RoundRobinAssignor: every partition of every subscribed topic, sorted by topic
/// then partition, dealt in turn to the members in member-id order; a member that does
/// not subscribe to a partition's topic is skipped for it, and the turn carries over
/// from topic to topic.
///
/// Example from Kafka's documentation: members C0 and C1, topics t0 and t1 of 3
/// partitions each: C0 gets `t0 [0, 2]` and `t1 [1]`, C1 gets `t0 [1]` and `t1 [0, 2]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(&self, members: &[AssignorMember<'_>], topics: &TopicMetadata) -> Vec<Assignment> {
        assert_sorted(members);
        let mut out = vec![Assignment::new(); members.len()];
        let mut turn = 0usize;
        for (topic, &partitions) in topics {
            if !members.iter().any(|m| m.topics.contains(topic)) {
                continue;
            }
            for partition in 0..partitions {
                // Terminates within one lap: some member subscribes to `topic`.
                while !members[turn].topics.contains(topic) {
                    turn = (turn + 1) % members.len();
                }
                out[turn].entry(topic.clone()).or_default().push(partition);
                turn = (turn + 1) % members.len();
            }
        }
        out
    }
}

/// Kafka's StickyAssignor (`sticky`, eager) and CooperativeStickyAssignor
/// (`cooperative-sticky`): a balanced assignment that keeps every partition with its
/// previous owner where balance allows.
///
/// 1. Each member keeps its previous partitions that still exist and that it still
///    subscribes to.
/// 2. Every other partition, in topic then partition order, goes to the subscribed member
///    with the fewest partitions (ties: lowest member id).
/// 3. While some member has at least two partitions more than another member that could
///    take one of them, its highest such partition moves (most loaded first, to the least
///    loaded). Each move lowers the sum of squared counts, so this ends; with equal
///    subscriptions the counts end within one of each other, and only the excess of the
///    overloaded members moves.
///
/// Kafka's implementation optimises the same goals with a different search, so the exact
/// assignment can differ from Kafka's in unbalanced-subscription cases. In the
/// cooperative variant the coordinator withholds a moved partition from its new owner
/// until the old owner has released it (see `GroupCoordinator`).
#[derive(Debug, Clone, Copy)]
pub struct StickyAssignor {
    pub cooperative: bool,
}

/// A partition as the sticky assignor tracks it.
type Tp<'a> = (&'a str, u32);

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        match self.cooperative {
            true => "cooperative-sticky",
            false => "sticky",
        }
    }

    fn cooperative(&self) -> bool {
        self.cooperative
    }

    fn assign(&self, members: &[AssignorMember<'_>], topics: &TopicMetadata) -> Vec<Assignment> {
        assert_sorted(members);
        let mut owned: Vec<BTreeSet<Tp<'_>>> = vec![BTreeSet::new(); members.len()];
        let mut taken: BTreeSet<Tp<'_>> = BTreeSet::new();
        keep_previous(members, topics, &mut owned, &mut taken);
        assign_free(members, topics, &mut owned, &mut taken);
        while move_one(members, &mut owned) {}
        owned
            .into_iter()
            .map(|set| {
                let mut out = Assignment::new();
                for (topic, p) in set {
                    out.entry(topic.to_owned()).or_default().push(p);
                }
                out
            })
            .collect()
    }
}

/// Step 1: previous partitions that are still valid stay (first claim in member order
/// wins should two members claim one).
fn keep_previous<'a>(
    members: &[AssignorMember<'_>],
    topics: &'a TopicMetadata,
    owned: &mut [BTreeSet<Tp<'a>>],
    taken: &mut BTreeSet<Tp<'a>>,
) {
    for (i, member) in members.iter().enumerate() {
        for (topic, partitions) in member.previous {
            let Some((name, &count)) = topics.get_key_value(topic) else {
                continue;
            };
            if !member.topics.contains(topic) {
                continue;
            }
            for &p in partitions.iter().filter(|&&p| p < count) {
                if taken.insert((name.as_str(), p)) {
                    owned[i].insert((name.as_str(), p));
                }
            }
        }
    }
}

/// Step 2: free partitions go to the least loaded subscriber.
fn assign_free<'a>(
    members: &[AssignorMember<'_>],
    topics: &'a TopicMetadata,
    owned: &mut [BTreeSet<Tp<'a>>],
    taken: &mut BTreeSet<Tp<'a>>,
) {
    for (topic, &count) in topics {
        let eligible: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(topic))
            .collect();
        for p in 0..count {
            if taken.contains(&(topic.as_str(), p)) {
                continue;
            }
            let Some(&i) = eligible.iter().min_by_key(|&&i| (owned[i].len(), i)) else {
                break;
            };
            taken.insert((topic.as_str(), p));
            owned[i].insert((topic.as_str(), p));
        }
    }
}

/// Step 3: one move from an overloaded member to a member with at least two fewer
/// partitions that subscribes to the moved partition's topic. `false` when balanced.
fn move_one(members: &[AssignorMember<'_>], owned: &mut [BTreeSet<Tp<'_>>]) -> bool {
    let mut by_load: Vec<usize> = (0..members.len()).collect();
    by_load.sort_by_key(|&i| (owned[i].len(), i));
    for &from in by_load.iter().rev() {
        for &to in &by_load {
            if owned[to].len() + 2 > owned[from].len() {
                break;
            }
            let candidate = owned[from]
                .iter()
                .rev()
                .find(|(topic, _)| members[to].topics.contains(*topic))
                .copied();
            if let Some(tp) = candidate {
                owned[from].remove(&tp);
                owned[to].insert(tp);
                return true;
            }
        }
    }
    false
}

fn assert_sorted(members: &[AssignorMember<'_>]) {
    assert!(
        members.windows(2).all(|w| w[0].member_id < w[1].member_id),
        "assignor input must be sorted by member id, without duplicates"
    );
}

/// The assignors a coordinator offers, looked up by protocol name.
pub struct Assignors {
    list: Vec<Box<dyn Assignor>>,
}

impl Default for Assignors {
    /// `range`, `roundrobin`, `sticky` and `cooperative-sticky`.
    fn default() -> Self {
        Assignors {
            list: vec![
                Box::new(RangeAssignor),
                Box::new(RoundRobinAssignor),
                Box::new(StickyAssignor { cooperative: false }),
                Box::new(StickyAssignor { cooperative: true }),
            ],
        }
    }
}

impl std::fmt::Debug for Assignors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Assignors {
    /// An empty set; add assignors with [`Assignors::register`].
    pub fn empty() -> Self {
        Assignors { list: Vec::new() }
    }

    /// Adds an assignor; one with the same name is replaced.
    pub fn register(&mut self, assignor: Box<dyn Assignor>) {
        self.list.retain(|a| a.name() != assignor.name());
        self.list.push(assignor);
    }

    pub fn get(&self, name: &str) -> Option<&dyn Assignor> {
        self.list
            .iter()
            .find(|a| a.name() == name)
            .map(|a| a.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.list.iter().map(|a| a.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subs(topics: &[&str]) -> BTreeSet<String> {
        topics.iter().map(|t| (*t).to_owned()).collect()
    }

    fn assignment(entries: &[(&str, &[u32])]) -> Assignment {
        entries
            .iter()
            .map(|(t, p)| ((*t).to_owned(), p.to_vec()))
            .collect()
    }

    fn run(
        assignor: &dyn Assignor,
        members: &[(&str, &[&str])],
        topics: &[(&str, u32)],
    ) -> Vec<Assignment> {
        let subs: Vec<BTreeSet<String>> = members.iter().map(|(_, t)| subs(t)).collect();
        let empty = Assignment::new();
        let input: Vec<AssignorMember<'_>> = members
            .iter()
            .zip(&subs)
            .map(|((id, _), topics)| AssignorMember {
                member_id: id,
                topics,
                previous: &empty,
            })
            .collect();
        let meta: TopicMetadata = topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
        assignor.assign(&input, &meta)
    }

    #[test]
    fn range_matches_kafka_docs() {
        let both: &[&str] = &["t0", "t1"];
        let out = run(
            &RangeAssignor,
            &[("C0", both), ("C1", both)],
            &[("t0", 3), ("t1", 3)],
        );
        assert_eq!(out[0], assignment(&[("t0", &[0, 1]), ("t1", &[0, 1])]));
        assert_eq!(out[1], assignment(&[("t0", &[2]), ("t1", &[2])]));
    }

    #[test]
    fn range_gives_extra_partitions_to_the_first_members() {
        let t: &[&str] = &["t"];
        let out = run(&RangeAssignor, &[("a", t), ("b", t), ("c", t)], &[("t", 7)]);
        assert_eq!(out[0], assignment(&[("t", &[0, 1, 2])]));
        assert_eq!(out[1], assignment(&[("t", &[3, 4])]));
        assert_eq!(out[2], assignment(&[("t", &[5, 6])]));
        // More members than partitions: the last ones get nothing.
        let out = run(&RangeAssignor, &[("a", t), ("b", t), ("c", t)], &[("t", 2)]);
        assert_eq!(out[2], Assignment::new());
    }

    #[test]
    fn roundrobin_matches_kafka_docs() {
        let both: &[&str] = &["t0", "t1"];
        let out = run(
            &RoundRobinAssignor,
            &[("C0", both), ("C1", both)],
            &[("t0", 3), ("t1", 3)],
        );
        assert_eq!(out[0], assignment(&[("t0", &[0, 2]), ("t1", &[1])]));
        assert_eq!(out[1], assignment(&[("t0", &[1]), ("t1", &[0, 2])]));
    }

    #[test]
    fn roundrobin_with_unequal_subscriptions_matches_kafka_docs() {
        // Kafka's RoundRobinAssignor javadoc: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2];
        // t0, t1, t2 with 1, 2, 3 partitions.
        let out = run(
            &RoundRobinAssignor,
            &[
                ("C0", &["t0"]),
                ("C1", &["t0", "t1"]),
                ("C2", &["t0", "t1", "t2"]),
            ],
            &[("t0", 1), ("t1", 2), ("t2", 3)],
        );
        assert_eq!(out[0], assignment(&[("t0", &[0])]));
        assert_eq!(out[1], assignment(&[("t1", &[0])]));
        assert_eq!(out[2], assignment(&[("t1", &[1]), ("t2", &[0, 1, 2])]));
    }

    #[test]
    fn registry_replaces_by_name() {
        let mut a = Assignors::empty();
        assert!(!a.contains("range"));
        a.register(Box::new(RangeAssignor));
        a.register(Box::new(RangeAssignor));
        assert_eq!(a.names().collect::<Vec<_>>(), ["range"]);
        assert_eq!(
            Assignors::default().names().collect::<Vec<_>>(),
            ["range", "roundrobin", "sticky", "cooperative-sticky"]
        );
    }

    const COOP: StickyAssignor = StickyAssignor { cooperative: true };

    /// Runs the sticky assignor with previous assignments.
    fn run_sticky(
        members: &[(&str, &[&str], Assignment)],
        topics: &[(&str, u32)],
    ) -> Vec<Assignment> {
        let subs: Vec<BTreeSet<String>> = members.iter().map(|(_, t, _)| subs(t)).collect();
        let input: Vec<AssignorMember<'_>> = members
            .iter()
            .zip(&subs)
            .map(|((id, _, previous), topics)| AssignorMember {
                member_id: id,
                topics,
                previous,
            })
            .collect();
        let meta: TopicMetadata = topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
        COOP.assign(&input, &meta)
    }

    #[test]
    fn sticky_keeps_owners_and_moves_only_the_excess() {
        let t: &[&str] = &["t"];
        let empty = Assignment::new();
        let first = run_sticky(
            &[
                ("a", t, empty.clone()),
                ("b", t, empty.clone()),
                ("c", t, empty.clone()),
            ],
            &[("t", 12)],
        );
        assert!(first.iter().all(|a| a["t"].len() == 4));
        // A fourth member: each old member gives up exactly one partition, keeps the rest.
        let second = run_sticky(
            &[
                ("a", t, first[0].clone()),
                ("b", t, first[1].clone()),
                ("c", t, first[2].clone()),
                ("d", t, empty),
            ],
            &[("t", 12)],
        );
        for (old, new) in first.iter().zip(&second) {
            assert_eq!(new["t"].len(), 3);
            assert!(
                new["t"].iter().all(|p| old["t"].contains(p)),
                "{old:?} -> {new:?}"
            );
        }
        assert_eq!(second[3]["t"].len(), 3);
        // A member leaves: its partitions are spread, nobody else loses any.
        let third = run_sticky(
            &[
                ("a", t, second[0].clone()),
                ("c", t, second[2].clone()),
                ("d", t, second[3].clone()),
            ],
            &[("t", 12)],
        );
        for (old, new) in [&second[0], &second[2], &second[3]].into_iter().zip(&third) {
            assert!(old["t"].iter().all(|p| new["t"].contains(p)));
            assert_eq!(new["t"].len(), 4);
        }
    }

    #[test]
    fn sticky_drops_partitions_that_no_longer_apply() {
        let previous = assignment(&[("t", &[0, 5]), ("gone", &[0])]);
        let out = run_sticky(&[("a", &["t"], previous)], &[("t", 2), ("gone", 1)]);
        assert_eq!(out[0], assignment(&[("t", &[0, 1])]));
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(Vec::len).sum()
    }

    proptest! {
        /// With equal subscriptions and disjoint previous assignments, the sticky assignor
        /// balances within one and a member keeps min(previous, floor(P / M)) partitions.
        #[test]
        fn sticky_is_balanced_and_sticky(
            members in 1usize..6,
            partitions in 0u32..30,
            owners in proptest::collection::vec(proptest::option::of(0usize..6), 30),
        ) {
            let topics: &[&str] = &["t"];
            let ids: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
            let mut previous = vec![Assignment::new(); members];
            for (p, owner) in (0..partitions).zip(&owners) {
                if let Some(o) = owner.filter(|o| *o < members) {
                    previous[o].entry("t".to_owned()).or_default().push(p);
                }
            }
            let input: Vec<(&str, &[&str], Assignment)> = ids.iter().zip(&previous)
                .map(|(id, prev)| (id.as_str(), topics, prev.clone())).collect();
            let out = run_sticky(&input, &[("t", partitions)]);
            let counts: Vec<usize> = out.iter().map(count).collect();
            let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            prop_assert!(hi - lo <= 1, "{:?}", counts);
            prop_assert_eq!(counts.iter().sum::<usize>(), partitions as usize);
            let floor = partitions as usize / members;
            for (prev, new) in previous.iter().zip(&out) {
                let kept = prev.get("t").into_iter().flatten()
                    .filter(|p| new.get("t").is_some_and(|n| n.contains(p))).count();
                prop_assert!(kept >= count(prev).min(floor), "{:?} -> {:?}", prev, new);
            }
        }

        /// Every assignor hands out every partition of a subscribed topic exactly once, to a
        /// subscriber, and balance counts within one per topic (range) or overall for
        /// equal subscriptions (roundrobin).
        #[test]
        fn every_partition_goes_to_one_subscriber(
            member_subs in proptest::collection::vec(proptest::collection::btree_set(0usize..4, 0..4), 1..6),
            counts in proptest::collection::vec(0u32..9, 4),
        ) {
            let names = ["t0", "t1", "t2", "t3"];
            let subs: Vec<BTreeSet<String>> = member_subs.iter()
                .map(|s| s.iter().map(|&i| names[i].to_owned()).collect()).collect();
            let ids: Vec<String> = (0..subs.len()).map(|i| format!("m{i}")).collect();
            let empty = Assignment::new();
            let input: Vec<AssignorMember<'_>> = ids.iter().zip(&subs)
                .map(|(id, topics)| AssignorMember { member_id: id, topics, previous: &empty }).collect();
            let meta: TopicMetadata = names.iter().zip(&counts)
                .filter(|(_, n)| **n > 0).map(|(t, n)| ((*t).to_owned(), *n)).collect();
            for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor, &COOP] {
                let out = assignor.assign(&input, &meta);
                prop_assert_eq!(out.len(), input.len());
                let mut seen = BTreeSet::new();
                for (member, assignment) in input.iter().zip(&out) {
                    for (topic, partitions) in assignment {
                        prop_assert!(member.topics.contains(topic));
                        prop_assert!(partitions.windows(2).all(|w| w[0] < w[1]));
                        for p in partitions {
                            prop_assert!(seen.insert((topic.clone(), *p)), "{} {} twice", topic, p);
                        }
                    }
                }
                let expected: BTreeSet<(String, u32)> = meta.iter()
                    .filter(|(t, _)| subs.iter().any(|s| s.contains(*t)))
                    .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p))).collect();
                prop_assert_eq!(seen, expected);
            }
            // Sticky: no member could hand a partition to one with two fewer.
            let out = COOP.assign(&input, &meta);
            for (x, ax) in out.iter().enumerate() {
                for (y, ay) in out.iter().enumerate() {
                    let (cx, cy) = (count(ax), count(ay));
                    if cx >= cy + 2 {
                        prop_assert!(ax.keys().all(|t| !input[y].topics.contains(t)), "{x} -> {y} possible");
                    }
                }
            }
            let out = RangeAssignor.assign(&input, &meta);
            for topic in meta.keys() {
                let sizes: Vec<usize> = input.iter().zip(&out)
                    .filter(|(m, _)| m.topics.contains(topic))
                    .map(|(_, a)| a.get(topic).map_or(0, Vec::len)).collect();
                if let (Some(lo), Some(hi)) = (sizes.iter().min(), sizes.iter().max()) {
                    prop_assert!(hi - lo <= 1);
                }
            }
        }
    }
}
