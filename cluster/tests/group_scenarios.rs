//! Consumer-group scenarios, driven the way a server and Kafka-style clients would.

mod group_common;

use cfa_cluster::group::{Assignment, GroupError, GroupState, RemovalReason};
use group_common::{config, topics, Harness, REBALANCE_MS, SESSION_MS};

const G: &str = "website";

fn assignment(entries: &[(&str, &[u32])]) -> Assignment {
    entries
        .iter()
        .map(|(t, p)| ((*t).to_owned(), p.to_vec()))
        .collect()
}

/// Three consumers started together: one generation of three, after the initial delay.
/// Returns the harness, the generation and the member ids (in join order).
fn three_member_group() -> (Harness, i32, Vec<String>) {
    let mut h = Harness::new(config(3_000), topics(&[("t0", 3), ("t1", 4), ("other", 2)]));
    let tokens: Vec<u64> = (0..3)
        .map(|i| {
            let token = h.join(G, "", &format!("c{i}"), &["t0", "t1"]);
            h.advance(100);
            token
        })
        .collect();
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    assert!(h.answers.is_empty(), "joins wait for the initial delay");
    // The delay (3 s) is re-armed once because members kept arriving during it.
    h.advance(2_800);
    assert!(h.answers.is_empty());
    h.advance(3_000);
    let results: Vec<_> = tokens.iter().map(|t| h.joined(*t)).collect();
    let generation = results[0].generation_id;
    assert_eq!(generation, 1);
    assert!(results
        .iter()
        .all(|r| r.generation_id == 1 && r.leader_id == results[0].member_id));
    assert_eq!(
        results[0].members.len(),
        3,
        "the leader gets the member list"
    );
    assert!(results[1].members.is_empty() && results[2].members.is_empty());
    assert_eq!(h.state(G), GroupState::CompletingRebalance);
    let ids: Vec<String> = results.iter().map(|r| r.member_id.clone()).collect();
    // Member ids: client id, the coordinator's nonce, a sequence number.
    assert_eq!(ids, ["c0-abc-1", "c1-abc-2", "c2-abc-3"]);
    for id in &ids {
        h.sync(G, generation, id).expect("synced");
    }
    assert_eq!(h.state(G), GroupState::Stable);
    (h, generation, ids)
}

/// Sends a rejoin for every id (as clients do after RebalanceInProgress).
fn rejoin_all(h: &mut Harness, ids: &[String]) -> Vec<u64> {
    ids.iter()
        .map(|id| h.join(G, id, "c", &["t0", "t1"]))
        .collect()
}

fn sync_all(h: &mut Harness, generation: i32, ids: &[String]) {
    for id in ids {
        h.sync(G, generation, id).expect("synced");
    }
    assert_eq!(h.state(G), GroupState::Stable);
}

#[test]
fn three_members_form_one_generation_covering_every_partition() {
    let (h, _, ids) = three_member_group();
    let by_member = h.assert_complete_assignment(G);
    assert_eq!(by_member.len(), 3);
    // range over sorted ids: t0 (3) one each, t1 (4) 2/1/1.
    assert_eq!(
        by_member[&ids[0]],
        assignment(&[("t0", &[0]), ("t1", &[0, 1])])
    );
    assert_eq!(
        by_member[&ids[2]],
        assignment(&[("t0", &[2]), ("t1", &[3])])
    );
}

#[test]
fn a_fourth_member_triggers_a_rebalance_and_heartbeats_say_rejoin() {
    let (mut h, gen1, mut ids) = three_member_group();
    let t4 = h.join(G, "", "c3", &["t0", "t1"]);
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    assert!(
        h.answer(t4).is_none(),
        "the new member waits for the others"
    );
    for id in &ids {
        assert!(matches!(
            h.heartbeat(G, gen1, id),
            Err(GroupError::RebalanceInProgress { .. })
        ));
        assert!(matches!(
            h.sync(G, gen1, id),
            Err(GroupError::RebalanceInProgress { .. })
        ));
    }
    let tokens = rejoin_all(&mut h, &ids[..2]);
    assert!(h.answer(tokens[0]).is_none(), "still waiting for the third");
    let last = h.join(G, &ids[2], "c", &["t0", "t1"]);
    let gen2 = h.joined(last).generation_id;
    assert_eq!(gen2, gen1 + 1);
    assert_eq!(h.joined(t4).generation_id, gen2);
    ids.push(h.joined(t4).member_id);
    // A heartbeat or commit of the old generation is now refused.
    assert!(matches!(
        h.heartbeat(G, gen1, &ids[0]),
        Err(GroupError::IllegalGeneration { .. })
    ));
    sync_all(&mut h, gen2, &ids);
    let by_member = h.assert_complete_assignment(G);
    assert!(by_member
        .values()
        .all(|a| a.values().map(Vec::len).sum::<usize>() >= 1));
}

#[test]
fn a_leaving_member_triggers_a_rebalance_and_its_partitions_move() {
    let (mut h, gen1, ids) = three_member_group();
    h.leave(G, &ids[1]).expect("left");
    assert_eq!(h.removed, vec![(ids[1].clone(), RemovalReason::Left)]);
    assert!(matches!(
        h.heartbeat(G, gen1, &ids[0]),
        Err(GroupError::RebalanceInProgress { .. })
    ));
    let rest = [ids[0].clone(), ids[2].clone()];
    let tokens = rejoin_all(&mut h, &rest);
    let gen2 = h.joined(tokens[1]).generation_id;
    assert_eq!(gen2, 2);
    sync_all(&mut h, gen2, &rest);
    let by_member = h.assert_complete_assignment(G);
    assert_eq!(by_member.len(), 2);
    assert_eq!(
        by_member[&ids[0]],
        assignment(&[("t0", &[0, 1]), ("t1", &[0, 1])])
    );
}

#[test]
fn a_silent_member_is_removed_after_its_session_timeout() {
    let (mut h, generation, ids) = three_member_group();
    let step_ms = 3_000;
    let mut elapsed = 0;
    while elapsed < u64::from(SESSION_MS) - step_ms {
        h.advance(step_ms);
        elapsed += step_ms;
        for id in &ids[..2] {
            h.heartbeat(G, generation, id).expect("stable");
        }
    }
    assert!(
        h.removed.is_empty(),
        "not expired before its session timeout"
    );
    h.advance(step_ms);
    assert_eq!(
        h.removed,
        vec![(ids[2].clone(), RemovalReason::SessionExpired)]
    );
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    assert!(matches!(
        h.heartbeat(G, generation, &ids[0]),
        Err(GroupError::RebalanceInProgress { .. })
    ));
    let rest = [ids[0].clone(), ids[1].clone()];
    let tokens = rejoin_all(&mut h, &rest);
    let gen2 = h.joined(tokens[0]).generation_id;
    sync_all(&mut h, gen2, &rest);
    let by_member = h.assert_complete_assignment(G);
    assert!(!by_member.contains_key(&ids[2]));
    // The removed member's own requests are refused from now on.
    assert!(matches!(
        h.heartbeat(G, gen2, &ids[2]),
        Err(GroupError::UnknownMemberId { .. })
    ));
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped() {
    let (mut h, generation, ids) = three_member_group();
    h.set_metadata(topics(&[("t0", 6), ("t1", 4), ("other", 2)]));
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    let tokens = rejoin_all(&mut h, &ids[..2]);
    // The third keeps heartbeating (alive, but stuck in processing): not a session expiry.
    let step_ms = 5_000;
    for _ in 0..(u64::from(REBALANCE_MS) / step_ms - 1) {
        h.advance(step_ms);
        let hb = h.heartbeat(G, generation, &ids[2]);
        assert!(matches!(hb, Err(GroupError::RebalanceInProgress { .. })));
    }
    assert!(h.answer(tokens[0]).is_none());
    h.advance(step_ms);
    assert_eq!(
        h.removed,
        vec![(ids[2].clone(), RemovalReason::JoinTimeout)]
    );
    let gen2 = h.joined(tokens[0]).generation_id;
    assert_eq!(gen2, generation + 1);
    sync_all(&mut h, gen2, &ids[..2]);
    let by_member = h.assert_complete_assignment(G);
    assert_eq!(
        by_member[&ids[0]],
        assignment(&[("t0", &[0, 1, 2]), ("t1", &[0, 1])])
    );
    assert!(matches!(
        h.sync(G, gen2, &ids[2]),
        Err(GroupError::UnknownMemberId { .. })
    ));
}

#[test]
fn a_member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let (mut h, gen1, ids) = three_member_group();
    h.leave(G, &ids[2]).expect("left");
    let tokens = rejoin_all(&mut h, &ids[..2]);
    let gen2 = h.joined(tokens[0]).generation_id;
    h.sync(G, gen2, &ids[0]).expect("synced");
    assert_eq!(h.state(G), GroupState::CompletingRebalance);
    // Heartbeats keep both sessions alive, but ids[1] never fetches its assignment.
    let step_ms = 5_000;
    for _ in 0..(u64::from(REBALANCE_MS) / step_ms) {
        h.advance(step_ms);
        for id in &ids[..2] {
            let _ = h.heartbeat(G, gen2, id);
        }
    }
    assert!(h
        .removed
        .contains(&(ids[1].clone(), RemovalReason::SyncTimeout)));
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    assert!(gen1 < gen2);
}

#[test]
fn stale_generation_commits_are_refused() {
    let (mut h, gen1, ids) = three_member_group();
    h.commit(G, gen1, &ids[0], &[("t0", 0, 10)])
        .expect("current generation");
    h.leave(G, &ids[2]).expect("left");
    // During the rebalance the current generation may still commit (onPartitionsRevoked).
    h.commit(G, gen1, &ids[0], &[("t0", 0, 11)])
        .expect("revocation commit");
    let tokens = rejoin_all(&mut h, &ids[..2]);
    let gen2 = h.joined(tokens[0]).generation_id;
    let err = h
        .commit(G, gen1, &ids[1], &[("t0", 0, 5)])
        .expect_err("stale");
    assert_eq!(
        err,
        GroupError::IllegalGeneration {
            group_id: G.into(),
            generation_id: gen1,
            current: gen2
        }
    );
    assert_eq!(
        h.committed(G, "t0", 0),
        Some(11),
        "the refused commit changed nothing"
    );
    let err = h
        .commit(G, gen2, "stranger", &[("t0", 0, 5)])
        .expect_err("unknown");
    assert!(matches!(err, GroupError::UnknownMemberId { .. }));
    let err = h
        .commit(G, -1, "", &[("t0", 0, 5)])
        .expect_err("group has members");
    assert!(matches!(err, GroupError::UnknownMemberId { .. }));
    h.commit(G, gen2, &ids[1], &[("t0", 0, 12)])
        .expect("new generation");
    assert_eq!(h.committed(G, "t0", 0), Some(12));
}

#[test]
fn offsets_survive_the_group_becoming_empty() {
    let (mut h, generation, ids) = three_member_group();
    h.commit(G, generation, &ids[0], &[("t0", 0, 42), ("t1", 3, 7)])
        .expect("committed");
    for id in &ids {
        h.leave(G, id).expect("left");
    }
    assert_eq!(h.state(G), GroupState::Empty);
    h.advance(60_000);
    let d = h.c.describe_group(G).expect("kept for its offsets");
    assert_eq!(d.state, GroupState::Empty);
    assert!(d.members.is_empty());
    assert_eq!(d.offsets.len(), 2);
    assert_eq!(h.committed(G, "t0", 0), Some(42));
    // A standalone consumer (assign()) may now commit, and a new member resumes.
    h.commit(G, -1, "", &[("t0", 1, 3)])
        .expect("standalone commit on an Empty group");
    let t = h.join(G, "", "late", &["t0"]);
    h.advance(3_000);
    let r = h.joined(t);
    assert!(r.generation_id > generation);
    assert_eq!(h.committed(G, "t1", 3), Some(7));
}

#[test]
fn empty_groups_without_offsets_are_forgotten() {
    let mut h = Harness::new(config(0), topics(&[("t", 1)]));
    let t = h.join("brief", "", "c", &["t"]);
    let member = h.joined(t).member_id;
    h.leave("brief", &member).expect("left");
    assert_eq!(h.state("brief"), GroupState::Empty);
    h.advance(1);
    assert!(matches!(
        h.c.describe_group("brief"),
        Err(GroupError::GroupIdNotFound { .. })
    ));
    assert!(h.c.list_groups().is_empty());
}

#[test]
fn kafka_doc_examples_through_the_coordinator() {
    for (assignor, c0, c1) in [
        (
            "range",
            assignment(&[("t0", &[0, 1]), ("t1", &[0, 1])]),
            assignment(&[("t0", &[2]), ("t1", &[2])]),
        ),
        (
            "roundrobin",
            assignment(&[("t0", &[0, 2]), ("t1", &[1])]),
            assignment(&[("t0", &[1]), ("t1", &[0, 2])]),
        ),
    ] {
        let mut h = Harness::new(config(1_000), topics(&[("t0", 3), ("t1", 3)]));
        let a = h
            .try_join(G, "", "C0", &["t0", "t1"], &[assignor])
            .expect("ok");
        let b = h
            .try_join(G, "", "C1", &["t0", "t1"], &[assignor, "range"])
            .expect("ok");
        // The second join re-arms the initial delay once.
        h.advance(1_000);
        h.advance(1_000);
        let (a, b) = (h.joined(a), h.joined(b));
        assert_eq!(a.assignor, assignor);
        assert_eq!(h.sync(G, 1, &a.member_id).expect("ok"), c0, "{assignor}");
        assert_eq!(h.sync(G, 1, &b.member_id).expect("ok"), c1, "{assignor}");
    }
}

#[test]
fn the_assignor_is_the_leaders_first_choice_that_all_support() {
    let mut h = Harness::new(config(1_000), topics(&[("t", 4)]));
    let a = h
        .try_join(G, "", "a", &["t"], &["roundrobin", "range"])
        .expect("ok");
    let b = h
        .try_join(G, "", "b", &["t"], &["range", "roundrobin"])
        .expect("ok");
    let err = h
        .try_join(G, "", "c", &["t"], &["sticky"])
        .expect_err("no common assignor");
    assert!(matches!(err, GroupError::InconsistentGroupProtocol { .. }));
    h.advance(2_000);
    assert!(h.answer(a).is_none(), "the delay was re-armed for b");
    h.advance(1_000);
    assert_eq!(h.joined(a).assignor, "roundrobin");
    assert_eq!(h.joined(b).assignor, "roundrobin");
    // The leader asks for an assignor nobody else supports: refused, nothing changes.
    let leader = h.joined(a).member_id;
    let err = h
        .try_join(G, &leader, "a", &["t"], &["cooperative-sticky"])
        .expect_err("refused");
    assert!(matches!(err, GroupError::InconsistentGroupProtocol { .. }));
    assert_eq!(h.state(G), GroupState::CompletingRebalance);
}

#[test]
fn a_known_member_rejoining_unchanged_gets_the_current_generation() {
    let (mut h, generation, ids) = three_member_group();
    let t = h.join(G, &ids[1], "c1", &["t0", "t1"]);
    let r = h.joined(t);
    assert_eq!(
        (r.generation_id, r.member_id.as_str()),
        (generation, ids[1].as_str())
    );
    assert_eq!(h.state(G), GroupState::Stable);
    // Changed subscriptions do rebalance.
    let t = h.join(G, &ids[1], "c1", &["t0"]);
    assert!(h.answer(t).is_none());
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
    let tokens = rejoin_all(&mut h, &[ids[0].clone(), ids[2].clone()]);
    let gen2 = h.joined(tokens[0]).generation_id;
    assert_eq!(h.joined(t).generation_id, gen2);
    sync_all(&mut h, gen2, &ids);
    let by_member = h.assert_complete_assignment(G);
    assert!(by_member[&ids[1]].keys().all(|t| t == "t0"));
}

#[test]
fn a_second_join_from_the_same_member_replaces_the_first() {
    let (mut h, _, ids) = three_member_group();
    h.leave(G, &ids[2]).expect("left");
    let first = h.join(G, &ids[0], "c", &["t0", "t1"]);
    let second = h.join(G, &ids[0], "c", &["t0", "t1"]);
    assert!(matches!(
        h.answer(first),
        Some(Err(GroupError::RebalanceInProgress { .. }))
    ));
    assert!(h.answer(second).is_none());
    h.join(G, &ids[1], "c", &["t0", "t1"]);
    assert_eq!(h.joined(second).generation_id, 2);
}

#[test]
fn leader_leaving_hands_leadership_over() {
    let (mut h, _, ids) = three_member_group();
    assert_eq!(
        h.c.describe_group(G).expect("exists").leader_id.as_deref(),
        Some(ids[0].as_str())
    );
    h.leave(G, &ids[0]).expect("left");
    let tokens = rejoin_all(&mut h, &ids[1..]);
    let r = h.joined(tokens[0]);
    assert!(r.leader_id == ids[1] || r.leader_id == ids[2]);
    let leader_token = if r.leader_id == ids[1] {
        tokens[0]
    } else {
        tokens[1]
    };
    assert_eq!(h.joined(leader_token).members.len(), 2);
}

#[test]
fn topic_metadata_changes_rebalance_only_subscribed_groups() {
    let (mut h, generation, ids) = three_member_group();
    h.set_metadata(topics(&[("t0", 3), ("t1", 4), ("other", 9), ("new", 1)]));
    assert_eq!(
        h.state(G),
        GroupState::Stable,
        "no subscribed topic changed"
    );
    h.set_metadata(topics(&[("t0", 3), ("other", 9)]));
    assert_eq!(h.state(G), GroupState::PreparingRebalance, "t1 was deleted");
    let tokens = rejoin_all(&mut h, &ids);
    let gen2 = h.joined(tokens[0]).generation_id;
    assert_eq!(gen2, generation + 1);
    sync_all(&mut h, gen2, &ids);
    let by_member = h.assert_complete_assignment(G);
    assert!(by_member.values().all(|a| !a.contains_key("t1")));
    // Re-creating the topic brings its partitions back.
    h.set_metadata(topics(&[("t0", 3), ("t1", 2)]));
    assert_eq!(h.state(G), GroupState::PreparingRebalance);
}

#[test]
fn unknown_members_and_bad_requests_are_refused() {
    let (mut h, generation, ids) = three_member_group();
    let err = h
        .try_join(G, "ghost-1", "c", &["t0"], &["range"])
        .expect_err("unknown");
    assert!(matches!(err, GroupError::UnknownMemberId { .. }));
    let err = h
        .try_join("nowhere", "ghost-1", "c", &["t0"], &["range"])
        .expect_err("unknown");
    assert!(matches!(err, GroupError::UnknownMemberId { .. }));
    assert!(matches!(
        h.heartbeat(G, generation + 1, &ids[0]),
        Err(GroupError::IllegalGeneration { .. })
    ));
    assert!(matches!(
        h.sync(G, generation - 1, &ids[0]),
        Err(GroupError::IllegalGeneration { .. })
    ));
    assert!(matches!(
        h.heartbeat("nowhere", 1, &ids[0]),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert!(matches!(
        h.leave(G, "ghost"),
        Err(GroupError::UnknownMemberId { .. })
    ));
    let err = h
        .try_join("", "", "c", &["t0"], &["range"])
        .expect_err("empty group id");
    assert!(matches!(err, GroupError::InvalidGroupId { .. }));
    let err = h
        .try_join(&"g".repeat(256), "", "c", &["t0"], &["range"])
        .expect_err("long id");
    assert!(matches!(err, GroupError::InvalidGroupId { .. }));
    let err = h
        .try_join(G, "", "c", &["t0"], &[])
        .expect_err("no assignors");
    assert!(matches!(err, GroupError::InconsistentGroupProtocol { .. }));
    let err = h
        .commit(G, generation, &ids[0], &[("t9", 0, 1)])
        .expect_err("no such topic");
    assert!(matches!(err, GroupError::UnknownTopicOrPartition { .. }));
    let err = h
        .commit(G, generation, &ids[0], &[("t0", 3, 1)])
        .expect_err("no such partition");
    assert!(matches!(err, GroupError::UnknownTopicOrPartition { .. }));
    let err = h
        .commit("fresh", 3, "m", &[("t0", 0, 1)])
        .expect_err("no such group");
    assert!(matches!(err, GroupError::IllegalGeneration { .. }));
    assert_eq!(
        h.state(G),
        GroupState::Stable,
        "nothing above changed the group"
    );
}

#[test]
fn session_timeouts_outside_the_limits_are_refused() {
    use cfa_cluster::constants::{SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN};
    use cfa_cluster::group::JoinRequest;
    let mut h = Harness::new(config(0), topics(&[("t", 1)]));
    for bad in [SESSION_TIMEOUT_MS_MIN - 1, SESSION_TIMEOUT_MS_MAX + 1] {
        let req = JoinRequest {
            token: 0,
            group_id: G.into(),
            member_id: String::new(),
            client_id: "c".into(),
            session_timeout_ms: bad,
            rebalance_timeout_ms: 1_000,
            topics: vec!["t".into()],
            assignors: vec!["range".into()],
        };
        assert!(matches!(
            h.c.join(req, 0),
            Err(GroupError::InvalidSessionTimeout { .. })
        ));
    }
    assert!(
        h.c.list_groups().is_empty(),
        "a refused join creates no group"
    );
}

#[test]
fn member_and_group_limits_are_typed_errors() {
    let mut cfg = config(0);
    cfg.group_members_max = 2;
    cfg.groups_max = 2;
    let mut h = Harness::new(cfg, topics(&[("t", 4)]));
    h.join(G, "", "a", &["t"]);
    h.join(G, "", "b", &["t"]);
    let err = h
        .try_join(G, "", "c", &["t"], &["range"])
        .expect_err("full");
    assert_eq!(
        err,
        GroupError::GroupMaxSizeReached {
            group_id: G.into(),
            max: 2
        }
    );
    h.join("second", "", "a", &["t"]);
    let err = h
        .try_join("third", "", "a", &["t"], &["range"])
        .expect_err("too many groups");
    assert_eq!(err, GroupError::GroupLimitReached { max: 2 });
    let err = h
        .commit("third", -1, "", &[("t", 0, 1)])
        .expect_err("too many groups");
    assert_eq!(err, GroupError::GroupLimitReached { max: 2 });
}

#[test]
fn offset_metadata_above_the_limit_is_refused() {
    use cfa_cluster::group::{CommitEntry, CommitRequest, TopicPartition};
    let mut h = Harness::new(config(0), topics(&[("t", 1)]));
    let entry = |len: usize| CommitEntry {
        partition: TopicPartition::new("t", 0),
        offset: 1,
        leader_epoch: 3,
        metadata: "x".repeat(len),
    };
    let req = |len| CommitRequest {
        group_id: G.into(),
        generation_id: -1,
        member_id: String::new(),
        entries: vec![entry(len)],
    };
    let max = h.c.config().offset_metadata_bytes_max;
    let err = h.c.prepare_commit(req(max + 1), 0).expect_err("too large");
    assert!(matches!(err, GroupError::OffsetMetadataTooLarge { bytes, .. } if bytes == max + 1));
    let ok = h.c.prepare_commit(req(max), 5).expect("at the limit");
    h.c.complete_commit(ok.pending);
    let got = h.c.fetch_offsets(G, None).expect("ok");
    assert_eq!(got.len(), 1);
    let committed = got[0].1.clone().expect("committed");
    assert_eq!(
        (
            committed.leader_epoch,
            committed.commit_timestamp_ms,
            committed.metadata.len()
        ),
        (3, 5, max)
    );
}

#[test]
fn a_commit_is_not_visible_before_it_is_completed() {
    use cfa_cluster::group::{CommitEntry, CommitRequest, TopicPartition};
    let mut h = Harness::new(config(0), topics(&[("t", 1)]));
    let req = CommitRequest {
        group_id: G.into(),
        generation_id: -1,
        member_id: String::new(),
        entries: vec![CommitEntry {
            partition: TopicPartition::new("t", 0),
            offset: 9,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    let prepared = h.c.prepare_commit(req, 0).expect("ok");
    assert_eq!(h.committed(G, "t", 0), None, "not durable yet");
    drop(prepared); // the append failed
    assert_eq!(h.committed(G, "t", 0), None);
    h.advance(1);
    assert!(
        h.c.list_groups().is_empty(),
        "the empty group left behind is forgotten"
    );
}

#[test]
fn deleting_a_group_is_two_phase() {
    let mut h = Harness::new(config(0), topics(&[("t", 2)]));
    h.commit(G, -1, "", &[("t", 0, 1), ("t", 1, 2)])
        .expect("ok");
    let t = h.join(G, "", "c", &["t"]);
    let member = h.joined(t).member_id;
    assert!(matches!(
        h.c.prepare_delete_group(G, 0),
        Err(GroupError::NonEmptyGroup { members: 1, .. })
    ));
    h.leave(G, &member).expect("left");
    let prepared = h.c.prepare_delete_group(G, 0).expect("empty");
    assert_eq!(prepared.batches.len(), 1);
    assert_eq!(h.state(G), GroupState::Dead);
    assert!(matches!(
        h.try_join(G, "", "c", &["t"], &["range"]),
        Err(GroupError::GroupDeleting { .. })
    ));
    assert!(matches!(
        h.commit(G, -1, "", &[("t", 0, 5)]),
        Err(GroupError::GroupDeleting { .. })
    ));
    h.c.abort_delete_group(prepared.pending);
    assert_eq!(h.state(G), GroupState::Empty);
    assert_eq!(h.committed(G, "t", 1), Some(2));
    let prepared = h.c.prepare_delete_group(G, 0).expect("empty");
    for batch in prepared.batches {
        h.log.push(batch.freeze());
    }
    h.c.complete_delete_group(prepared.pending);
    assert!(matches!(
        h.c.describe_group(G),
        Err(GroupError::GroupIdNotFound { .. })
    ));
    assert_eq!(h.committed(G, "t", 0), None);
    let replayed = cfa_cluster::group::OffsetStore::replay(&h.log).expect("replays");
    assert_eq!(&replayed, h.c.offsets());
}

#[test]
fn committed_offsets_are_rebuilt_from_the_log_after_a_restart() {
    let (mut h, generation, ids) = three_member_group();
    h.commit(G, generation, &ids[0], &[("t0", 0, 10), ("t1", 1, 20)])
        .expect("ok");
    h.commit(G, generation, &ids[1], &[("t0", 0, 15)])
        .expect("ok");
    h.commit("solo", -1, "", &[("other", 1, 3)]).expect("ok");
    let store = cfa_cluster::group::OffsetStore::replay(&h.log).expect("replays");
    assert_eq!(&store, h.c.offsets());
    let restarted = Harness::with_store(config(3_000), topics(&[("t0", 3)]), store);
    let groups = restarted.c.list_groups();
    assert_eq!(
        groups
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["solo", G]
    );
    assert!(groups
        .iter()
        .all(|g| g.state == GroupState::Empty && g.members == 0));
    assert_eq!(restarted.committed(G, "t0", 0), Some(15));
    assert_eq!(restarted.committed(G, "t1", 1), Some(20));
}

#[test]
fn next_deadline_tells_when_to_tick() {
    let mut h = Harness::new(config(3_000), topics(&[("t", 1)]));
    assert_eq!(h.c.next_deadline_ms(), None);
    h.join(G, "", "c", &["t"]);
    assert_eq!(h.c.next_deadline_ms(), Some(3_000));
    h.advance(3_000);
    assert_eq!(h.c.next_deadline_ms(), Some(3_000 + u64::from(SESSION_MS)));
}

/// Cooperative rebalancing: a partition that moves stays with nobody until its old owner
/// has released it; then a follow-up rebalance hands it over, and nobody else ever stops
/// consuming.
#[test]
fn cooperative_sticky_withholds_a_moved_partition_until_it_is_released() {
    let coop: &[&str] = &["cooperative-sticky"];
    let mut h = Harness::new(config(1_000), topics(&[("t", 6)]));
    let tokens: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|c| h.try_join(G, "", c, &["t"], coop).expect("ok"))
        .collect();
    h.advance(1_000);
    h.advance(1_000);
    let ids: Vec<String> = tokens.iter().map(|t| h.joined(*t).member_id).collect();
    for id in &ids {
        let sync = h.c.sync(G, 1, id, h.now_ms).expect("synced");
        assert!(sync.cooperative);
        assert_eq!(sync.assignment["t"].len(), 2);
        h.heartbeat(G, 1, id).expect("stable");
    }
    let gen1 = h.assert_complete_assignment(G);

    // A fourth member: the others rejoin keeping their partitions.
    let td = h.try_join(G, "", "d", &["t"], coop).expect("ok");
    for id in &ids {
        assert!(matches!(
            h.heartbeat(G, 1, id),
            Err(GroupError::RebalanceInProgress { .. })
        ));
        h.try_join(G, id, "c", &["t"], coop).expect("ok");
    }
    let d = h.joined(td).member_id;
    assert_eq!(h.joined(td).generation_id, 2);
    let mut all = ids.clone();
    all.push(d.clone());
    let gen2: Vec<_> = all
        .iter()
        .map(|id| h.sync(G, 2, id).expect("synced"))
        .collect();
    assert_eq!(h.state(G), GroupState::Stable);
    // Only c gives up a partition (6 over 4: counts 2, 2, 1, 1), and d may not have it yet.
    assert_eq!(gen2[0], gen1[&ids[0]]);
    assert_eq!(gen2[1], gen1[&ids[1]]);
    assert_eq!(gen2[2]["t"].len(), 1);
    assert!(
        gen2[3].is_empty(),
        "the moved partition is withheld from d: {:?}",
        gen2[3]
    );
    let moved = *gen1[&ids[2]]["t"]
        .iter()
        .find(|p| !gen2[2]["t"].contains(p))
        .expect("moved");
    let desc = h.c.describe_group(G).expect("exists");
    assert_eq!(desc.members[2].revoking, assignment(&[("t", &[moved])]));
    assert!(desc
        .members
        .iter()
        .filter(|m| m.member_id != ids[2])
        .all(|m| m.revoking.is_empty()));

    // a's heartbeat changes nothing; c's confirms the release and starts the follow-up.
    h.heartbeat(G, 2, &ids[0]).expect("stable");
    let hb = h.heartbeat(G, 2, &ids[2]);
    assert!(matches!(hb, Err(GroupError::RebalanceInProgress { .. })));
    let before = h.rebalances;
    h.advance(1);
    assert_eq!(
        h.rebalances,
        before + 1,
        "the deferred RebalanceStarted comes out of tick"
    );
    let tokens: Vec<u64> = all
        .iter()
        .map(|id| h.try_join(G, id, "c", &["t"], coop).expect("ok"))
        .collect();
    assert_eq!(h.joined(tokens[0]).generation_id, 3);
    let gen3: Vec<_> = all
        .iter()
        .map(|id| h.sync(G, 3, id).expect("synced"))
        .collect();
    assert_eq!(gen3[3], assignment(&[("t", &[moved])]));
    assert_eq!(&gen3[..3], &gen2[..3], "nobody else moved");
    h.assert_complete_assignment(G);
}

/// An eager member releases everything before it rejoins, so an eager generation never
/// withholds anything.
#[test]
fn eager_rejoins_release_everything() {
    let (mut h, _, ids) = three_member_group();
    h.join(G, "", "c3", &["t0", "t1"]);
    let tokens = rejoin_all(&mut h, &ids);
    let gen2 = h.joined(tokens[0]).generation_id;
    let d = h.c.describe_group(G).expect("exists");
    assert!(d.members.iter().all(|m| m.revoking.is_empty()));
    let mut all = ids.clone();
    all.push(
        d.members
            .iter()
            .map(|m| m.member_id.clone())
            .find(|m| !ids.contains(m))
            .expect("new"),
    );
    sync_all(&mut h, gen2, &all);
    h.assert_complete_assignment(G);
}
