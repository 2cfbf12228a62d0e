//! The group coordinator service through the raw protocol (no client SDK): concurrent
//! joins, session expiry, commits that survive a restart, error codes, listing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cfa_net::protocol::*;
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};
use cfa_net::testing::RawClient as Raw;

/// The coordinator's smallest session timeout (cfa_cluster::constants::SESSION_TIMEOUT_MS_MIN).
const SESSION_MIN_MS: u32 = 6_000;

/// Reads wait up to 20 s: a join is answered after the initial rebalance delay (3 s,
/// re-armed once while members arrive, capped by the rebalance timeout).
fn connect(addr: SocketAddr) -> Raw {
    Raw::connect(addr)
        .and_then(|r| r.with_read_timeout(Duration::from_secs(20)))
        .expect("connect")
}

fn start(dir: &std::path::Path, shards: usize) -> BrokerHandle {
    let mut c = BrokerConfig::for_tests(dir);
    c.shards = shards;
    Broker::start(c).expect("broker starts")
}

fn create(raw: &mut Raw, name: &str, partitions: u32) {
    let r = raw.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            partitions: Some(partitions),
            replication_factor: None,
            configs: vec![],
        }],
        timeout_ms: 10_000,
    }));
    match r {
        Response::CreateTopics(c) => assert_eq!(c.topics[0].error_code, ErrorCode::None, "{c:?}"),
        other => panic!("{other:?}"),
    }
}

fn join(
    raw: &mut Raw,
    group: &str,
    member: &str,
    session_ms: u32,
    topics: &[&str],
) -> JoinGroupResponse {
    let r = raw.call(Request::JoinGroup(JoinGroupRequest {
        group_id: group.into(),
        member_id: member.into(),
        client_id: "test".into(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: 4_000,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        assignors: vec!["range".into()],
    }));
    match r {
        Response::JoinGroup(j) => j,
        other => panic!("{other:?}"),
    }
}

fn sync(raw: &mut Raw, group: &str, generation: i32, member: &str) -> SyncGroupResponse {
    let r = raw.call(Request::SyncGroup(SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
    }));
    match r {
        Response::SyncGroup(s) => s,
        other => panic!("{other:?}"),
    }
}

fn heartbeat(raw: &mut Raw, group: &str, generation: i32, member: &str) -> HeartbeatResponse {
    let r = raw.call(Request::Heartbeat(HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
    }));
    match r {
        Response::Heartbeat(h) => h,
        other => panic!("{other:?}"),
    }
}

fn commit(
    raw: &mut Raw,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(u32, u64)],
) -> OffsetCommitResponse {
    let r = raw.call(Request::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        topics: vec![OffsetCommitTopic {
            name: topic.into(),
            partitions: offsets
                .iter()
                .map(|&(partition, offset)| OffsetCommitPartition {
                    partition,
                    offset,
                    leader_epoch: 0,
                    metadata: format!("at {offset}"),
                })
                .collect(),
        }],
    }));
    match r {
        Response::OffsetCommit(c) => c,
        other => panic!("{other:?}"),
    }
}

/// Committed offsets of `group` as (topic, partition, offset, metadata), sorted.
fn fetch_offsets(
    raw: &mut Raw,
    group: &str,
    only: Option<Vec<TopicPartitions>>,
) -> Vec<(String, u32, Option<u64>, String)> {
    let r = raw.call(Request::OffsetFetch(OffsetFetchRequest {
        group_id: group.into(),
        topics: only,
    }));
    let Response::OffsetFetch(f) = r else {
        panic!("{r:?}")
    };
    assert_eq!(f.error_code, ErrorCode::None, "{f:?}");
    let mut out: Vec<_> = f
        .topics
        .into_iter()
        .flat_map(|t| {
            t.partitions
                .into_iter()
                .map(move |p| (t.name.clone(), p.partition, p.offset, p.metadata))
        })
        .collect();
    out.sort();
    out
}

fn list_groups(raw: &mut Raw) -> Vec<GroupListing> {
    match raw.call(Request::ListGroups(ListGroupsRequest {})) {
        Response::ListGroups(l) => l.groups,
        other => panic!("{other:?}"),
    }
}

fn describe(raw: &mut Raw, group: &str) -> DescribeGroupResponse {
    match raw.call(Request::DescribeGroup(DescribeGroupRequest {
        group_id: group.into(),
    })) {
        Response::DescribeGroup(d) => d,
        other => panic!("{other:?}"),
    }
}

fn partitions_of(assignment: &[TopicPartitions], topic: &str) -> Vec<u32> {
    assignment
        .iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

/// Two members join at once, each on its own connection; returns their join answers.
fn join_two(addr: SocketAddr, group: &str, session_ms: u32, topic: &str) -> [JoinGroupResponse; 2] {
    let joins: Vec<JoinGroupResponse> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    let mut raw = connect(addr);
                    join(&mut raw, group, "", session_ms, &[topic])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join thread"))
            .collect()
    });
    [joins[0].clone(), joins[1].clone()]
}

#[test]
fn two_members_join_concurrently_and_split_the_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two shards: the joins may arrive on either and travel to shard 0.
    let broker = start(dir.path(), 2);
    let addr = broker.local_addr();
    let mut admin = connect(addr);
    create(&mut admin, "soccer", 6);
    let [a, b] = join_two(addr, "website", 10_000, "soccer");
    for j in [&a, &b] {
        assert_eq!(j.error_code, ErrorCode::None, "{j:?}");
        assert!(!j.member_id.is_empty());
        assert_eq!(j.assignor, "range");
    }
    assert_eq!(a.generation_id, b.generation_id);
    assert!(a.generation_id >= 1);
    assert_ne!(a.member_id, b.member_id);
    assert_eq!(a.leader_id, b.leader_id);
    // Only the leader gets the member list.
    let (leader, other) = if a.leader_id == a.member_id {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!(leader.members.len(), 2);
    assert!(other.members.is_empty());

    let mut raw = connect(addr);
    let mut seen = BTreeSet::new();
    for j in [&a, &b] {
        let s = sync(&mut raw, "website", j.generation_id, &j.member_id);
        assert_eq!(s.error_code, ErrorCode::None, "{s:?}");
        let mine = partitions_of(&s.assignment, "soccer");
        assert!(!mine.is_empty(), "range gives each of 2 members 3 of 6");
        for p in mine {
            assert!(seen.insert(p), "partition {p} assigned twice");
        }
    }
    assert_eq!(seen, (0..6).collect::<BTreeSet<u32>>());
    broker.shutdown().expect("shutdown");
}

#[test]
fn a_silent_member_expires_and_the_survivor_takes_everything() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let addr = broker.local_addr();
    let mut raw = connect(addr);
    create(&mut raw, "events", 4);
    let [a, b] = join_two(addr, "g", SESSION_MIN_MS, "events");
    assert_eq!(a.generation_id, b.generation_id);
    let generation = a.generation_id;
    for j in [&a, &b] {
        let s = sync(&mut raw, "g", generation, &j.member_id);
        assert_eq!(s.error_code, ErrorCode::None, "{s:?}");
        assert_eq!(partitions_of(&s.assignment, "events").len(), 2);
    }
    // `b` falls silent; `a` heartbeats until the coordinator removes `b` and rebalances.
    let deadline = Instant::now() + Duration::from_millis(u64::from(SESSION_MIN_MS) + 4_000);
    loop {
        let h = heartbeat(&mut raw, "g", generation, &a.member_id);
        if h.error_code == ErrorCode::RebalanceInProgress {
            break;
        }
        assert_eq!(h.error_code, ErrorCode::None, "{h:?}");
        assert!(
            Instant::now() < deadline,
            "the silent member was never removed"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The silent member is gone for good.
    let h = heartbeat(&mut raw, "g", generation, &b.member_id);
    assert_eq!(h.error_code, ErrorCode::UnknownMemberId, "{h:?}");
    // The survivor is the only member: its rejoin forms the next generation at once.
    let j = join(&mut raw, "g", &a.member_id, SESSION_MIN_MS, &["events"]);
    assert_eq!(j.error_code, ErrorCode::None, "{j:?}");
    assert_eq!(j.generation_id, generation + 1);
    assert_eq!(j.leader_id, a.member_id);
    let s = sync(&mut raw, "g", j.generation_id, &a.member_id);
    assert_eq!(s.error_code, ErrorCode::None, "{s:?}");
    assert_eq!(partitions_of(&s.assignment, "events"), vec![0, 1, 2, 3]);
    let d = describe(&mut raw, "g");
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    broker.shutdown().expect("shutdown");
}

#[test]
fn committed_offsets_are_fetched_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let mut raw = connect(broker.local_addr());
    create(&mut raw, "orders", 3);
    // A standalone consumer (generation -1, no member id) commits while the group is empty.
    let c = commit(&mut raw, "billing", -1, "", "orders", &[(0, 5), (1, 7)]);
    assert_eq!(c.error_code, ErrorCode::None, "{c:?}");
    assert_eq!(c.topics[0].partitions.len(), 2);
    assert!(c.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == ErrorCode::None));
    let c = commit(&mut raw, "billing", -1, "", "orders", &[(1, 9)]);
    assert_eq!(c.error_code, ErrorCode::None, "{c:?}");
    // Another group's offsets are its own (and maybe on another offsets partition).
    let c = commit(&mut raw, "audit", -1, "", "orders", &[(2, 1)]);
    assert_eq!(c.error_code, ErrorCode::None, "{c:?}");
    // Unknown partitions are refused, whole.
    let c = commit(&mut raw, "billing", -1, "", "orders", &[(0, 6), (3, 1)]);
    assert_eq!(c.error_code, ErrorCode::UnknownPartition, "{c:?}");
    assert!(c
        .error_message
        .as_deref()
        .unwrap_or("")
        .contains("orders-3"));
    let c = commit(&mut raw, "billing", -1, "", "nosuch", &[(0, 1)]);
    assert_eq!(c.error_code, ErrorCode::UnknownPartition, "{c:?}");

    let expected = vec![
        ("orders".to_string(), 0, Some(5), "at 5".to_string()),
        ("orders".to_string(), 1, Some(9), "at 9".to_string()),
    ];
    assert_eq!(fetch_offsets(&mut raw, "billing", None), expected);
    let only = Some(vec![TopicPartitions {
        topic: "orders".into(),
        partitions: vec![1, 2],
    }]);
    assert_eq!(
        fetch_offsets(&mut raw, "billing", only.clone()),
        vec![
            ("orders".to_string(), 1, Some(9), "at 9".to_string()),
            ("orders".to_string(), 2, None, String::new()),
        ]
    );
    assert!(fetch_offsets(&mut raw, "nobody", None).is_empty());
    drop(raw);
    broker.shutdown().expect("shutdown");

    // The restart replays __consumer_offsets.
    let broker = start(dir.path(), 1);
    let mut raw = connect(broker.local_addr());
    assert_eq!(fetch_offsets(&mut raw, "billing", None), expected);
    assert_eq!(
        fetch_offsets(&mut raw, "audit", None),
        vec![("orders".to_string(), 2, Some(1), "at 1".to_string())]
    );
    let groups = list_groups(&mut raw);
    let names: Vec<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(names, ["audit", "billing"]);
    assert!(groups
        .iter()
        .all(|g| g.state == GroupState::Empty && g.member_count == 0));
    // Commits after the replay land after the replayed ones.
    let c = commit(&mut raw, "billing", -1, "", "orders", &[(0, 50)]);
    assert_eq!(c.error_code, ErrorCode::None, "{c:?}");
    drop(raw);
    broker.shutdown().expect("shutdown");
    let broker = start(dir.path(), 1);
    let mut raw = connect(broker.local_addr());
    assert_eq!(
        fetch_offsets(&mut raw, "billing", None)[0],
        ("orders".to_string(), 0, Some(50), "at 50".to_string())
    );
    broker.shutdown().expect("shutdown");
}

#[test]
fn member_errors_listing_and_new_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let mut raw = connect(broker.local_addr());
    create(&mut raw, "clicks", 2);
    // Refused at once: a session timeout below the minimum.
    let j = join(&mut raw, "web", "", SESSION_MIN_MS - 1, &["clicks"]);
    assert_eq!(j.error_code, ErrorCode::InvalidSessionTimeout, "{j:?}");
    assert!(j.error_message.as_deref().unwrap_or("").contains("6000"));
    // Subscribed to a topic that does not exist yet.
    let j = join(&mut raw, "web", "", 10_000, &["clicks", "later"]);
    assert_eq!(j.error_code, ErrorCode::None, "{j:?}");
    let (member, generation) = (j.member_id.clone(), j.generation_id);
    let s = sync(&mut raw, "web", generation, &member);
    assert_eq!(s.error_code, ErrorCode::None, "{s:?}");
    assert_eq!(partitions_of(&s.assignment, "clicks"), vec![0, 1]);

    let c = commit(&mut raw, "web", generation, &member, "clicks", &[(0, 3)]);
    assert_eq!(c.error_code, ErrorCode::None, "{c:?}");
    for stale in [generation - 1, generation + 1] {
        let c = commit(&mut raw, "web", stale, &member, "clicks", &[(0, 4)]);
        assert_eq!(c.error_code, ErrorCode::IllegalGeneration, "{c:?}");
        assert_eq!(
            c.topics[0].partitions[0].error_code,
            ErrorCode::IllegalGeneration
        );
    }
    let c = commit(&mut raw, "web", generation, "ghost", "clicks", &[(0, 4)]);
    assert_eq!(c.error_code, ErrorCode::UnknownMemberId, "{c:?}");
    let h = heartbeat(&mut raw, "web", generation, "ghost");
    assert_eq!(h.error_code, ErrorCode::UnknownMemberId, "{h:?}");
    let s = sync(&mut raw, "web", generation + 1, &member);
    assert_eq!(s.error_code, ErrorCode::IllegalGeneration, "{s:?}");
    // Refused commits changed nothing.
    assert_eq!(
        fetch_offsets(&mut raw, "web", None),
        vec![("clicks".to_string(), 0, Some(3), "at 3".to_string())]
    );

    let groups = list_groups(&mut raw);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (
            groups[0].group_id.as_str(),
            groups[0].state,
            groups[0].member_count
        ),
        ("web", GroupState::Stable, 1)
    );
    let d = describe(&mut raw, "web");
    assert_eq!(d.error_code, ErrorCode::None, "{d:?}");
    assert_eq!(d.generation_id, generation);
    assert_eq!(d.assignor.as_deref(), Some("range"));
    assert_eq!(d.leader_id.as_deref(), Some(member.as_str()));
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, member);
    assert_eq!(d.members[0].session_timeout_ms, 10_000);
    assert_eq!(
        partitions_of(&d.members[0].assignment, "clicks"),
        vec![0, 1]
    );
    let d = describe(&mut raw, "nosuch");
    assert_eq!(d.error_code, ErrorCode::GroupIdNotFound, "{d:?}");

    // Creating a subscribed topic rebalances the group; the rejoin picks it up.
    create(&mut raw, "later", 3);
    let h = heartbeat(&mut raw, "web", generation, &member);
    assert_eq!(h.error_code, ErrorCode::RebalanceInProgress, "{h:?}");
    let j = join(&mut raw, "web", &member, 10_000, &["clicks", "later"]);
    assert_eq!(j.error_code, ErrorCode::None, "{j:?}");
    assert_eq!(j.generation_id, generation + 1);
    let s = sync(&mut raw, "web", j.generation_id, &member);
    assert_eq!(partitions_of(&s.assignment, "later"), vec![0, 1, 2]);

    // Leaving empties the group; its offsets stay.
    let r = raw.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "web".into(),
        member_id: member.clone(),
    }));
    let Response::LeaveGroup(l) = r else {
        panic!("{r:?}")
    };
    assert_eq!(l.error_code, ErrorCode::None, "{l:?}");
    let d = describe(&mut raw, "web");
    assert_eq!((d.state, d.members.len()), (GroupState::Empty, 0));
    let h = heartbeat(&mut raw, "web", j.generation_id, &member);
    assert_eq!(h.error_code, ErrorCode::UnknownMemberId, "{h:?}");
    broker.shutdown().expect("shutdown");
}
