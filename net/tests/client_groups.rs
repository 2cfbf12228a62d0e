//! Consumer groups through the client SDK: several members sharing a topic, a member
//! that dies, commits that survive a restart, rebalance callbacks.
//!
//! Group rebalances wait for the coordinator's initial delay (3 s) and session timeouts
//! (6 s at least), so these tests take seconds; every wait is bounded by `WAIT`.

mod client_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cfa_net::client::{
    Consumer, ConsumerConfig, ConsumerRecord, ProducerRecord, RebalanceListener, TopicPartition,
};

use client_support::*;

fn member_config(broker: &TestBroker, group: &str) -> ConsumerConfig {
    ConsumerConfig {
        session_timeout_ms: 6_000,
        heartbeat_interval_ms: 300,
        auto_commit_interval_ms: 200,
        ..broker.consumer_config(Some(group))
    }
}

/// What a member thread shares with the test.
#[derive(Default)]
struct MemberView {
    records: Mutex<Vec<ConsumerRecord>>,
    assignment: Mutex<Vec<TopicPartition>>,
    events: Mutex<Vec<String>>,
    stop: AtomicBool,
    /// Stop by crashing (no commit, no LeaveGroup) instead of closing.
    crash: AtomicBool,
}

struct Recorder(Arc<MemberView>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0
            .events
            .lock()
            .expect("lock")
            .push(format!("revoked {}", names(partitions)));
    }

    fn on_partitions_assigned(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0
            .events
            .lock()
            .expect("lock")
            .push(format!("assigned {}", names(partitions)));
    }

    fn on_partitions_lost(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0
            .events
            .lock()
            .expect("lock")
            .push(format!("lost {}", names(partitions)));
    }
}

fn names(tps: &[TopicPartition]) -> String {
    let ps: Vec<String> = tps.iter().map(|tp| tp.partition.to_string()).collect();
    format!("[{}]", ps.join(","))
}

/// Starts a member polling `topic` in its own thread until told to stop.
fn spawn_member(
    config: ConsumerConfig,
    topic: &'static str,
) -> (Arc<MemberView>, thread::JoinHandle<()>) {
    let view = Arc::new(MemberView::default());
    let v = Arc::clone(&view);
    let handle = thread::spawn(move || {
        let mut consumer = Consumer::new(config).expect("consumer");
        consumer
            .subscribe(&[topic], Some(Box::new(Recorder(Arc::clone(&v)))))
            .expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !v.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let batch = consumer.poll(Duration::from_millis(100)).expect("poll");
            v.records.lock().expect("lock").extend(batch);
            *v.assignment.lock().expect("lock") = consumer.assignment();
        }
        if v.crash.load(Ordering::SeqCst) {
            consumer.simulate_crash();
        } else {
            consumer.close().expect("close");
        }
    });
    (view, handle)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn assigned(view: &MemberView) -> usize {
    view.assignment.lock().expect("lock").len()
}

fn produce(broker: &TestBroker, topic: &str, partitions: u32, n: usize) -> BTreeSet<String> {
    produce_named(broker, topic, partitions, topic, n)
}

/// Sends `n` records with values `{prefix}-{i}`, spread evenly over the partitions.
fn produce_named(
    broker: &TestBroker,
    topic: &str,
    partitions: u32,
    prefix: &str,
    n: usize,
) -> BTreeSet<String> {
    let producer = broker.producer();
    let values: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| ProducerRecord::new(topic, v.clone()).with_partition(i as u32 % partitions))
        .collect();
    send_all(&producer, records);
    producer.close();
    values.into_iter().collect()
}

fn values_of(view: &MemberView) -> Vec<String> {
    view.records
        .lock()
        .expect("lock")
        .iter()
        .map(value_str)
        .collect()
}

#[test]
fn three_members_each_record_goes_to_exactly_one() {
    let broker = TestBroker::start();
    broker.create_topic("events", 6);
    let members: Vec<_> = (0..3)
        .map(|_| spawn_member(member_config(&broker, "trio"), "events"))
        .collect();
    wait_until("three members with two partitions each", || {
        members.iter().all(|(v, _)| assigned(v) == 2)
    });
    let all: BTreeSet<TopicPartition> = members
        .iter()
        .flat_map(|(v, _)| v.assignment.lock().expect("lock").clone())
        .collect();
    assert_eq!(
        all.len(),
        6,
        "the assignments are disjoint and cover the topic"
    );
    let sent = produce(&broker, "events", 6, 600);
    wait_until("every record consumed", || {
        members
            .iter()
            .map(|(v, _)| values_of(v).len())
            .sum::<usize>()
            >= 600
    });
    thread::sleep(Duration::from_millis(500));
    for (v, _) in &members {
        v.stop.store(true, Ordering::SeqCst);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (v, h) in members {
        h.join().expect("member thread");
        let mine = values_of(&v);
        assert!(!mine.is_empty(), "every member consumed something");
        for value in mine {
            *seen.entry(value).or_default() += 1;
        }
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), sent);
    assert!(
        seen.values().all(|&n| n == 1),
        "a record went to two members"
    );
}

#[test]
fn a_dead_members_partitions_are_taken_over() {
    let broker = TestBroker::start();
    broker.create_topic("jobs", 4);
    let (a, a_thread) = spawn_member(member_config(&broker, "pair"), "jobs");
    let (b, b_thread) = spawn_member(member_config(&broker, "pair"), "jobs");
    wait_until("two members with two partitions each", || {
        assigned(&a) == 2 && assigned(&b) == 2
    });
    b.crash.store(true, Ordering::SeqCst);
    b.stop.store(true, Ordering::SeqCst);
    b_thread.join().expect("b crashed");
    let sent = produce(&broker, "jobs", 4, 200);
    // The coordinator notices after the session timeout and hands b's partitions to a.
    wait_until("a consumed everything", || {
        values_of(&a).iter().cloned().collect::<BTreeSet<_>>() == sent
    });
    assert_eq!(assigned(&a), 4);
    a.stop.store(true, Ordering::SeqCst);
    a_thread.join().expect("a");
    let events = a.events.lock().expect("lock").clone();
    // Eager (range): a revokes its half before rejoining, gets everything, and close
    // revokes everything.
    let n = events.len();
    assert!(n >= 4, "{events:?}");
    assert_eq!(
        events[n - 2..],
        ["assigned [0,1,2,3]", "revoked [0,1,2,3]"],
        "{events:?}"
    );
    assert!(events[n - 3].starts_with("revoked"), "{events:?}");
    assert!(
        b.records.lock().expect("lock").is_empty(),
        "b died before the records"
    );
}

#[test]
fn a_restarted_member_resumes_from_its_commit() {
    let broker = TestBroker::start();
    broker.create_topic("resume", 2);
    let sent = produce(&broker, "resume", 2, 100);
    let config = ConsumerConfig {
        enable_auto_commit: false,
        max_poll_records: 7,
        ..member_config(&broker, "restart")
    };
    let mut first = Consumer::new(config.clone()).expect("consumer");
    first.subscribe(&["resume"], None).expect("subscribe");
    let got_first = poll_n(&mut first, 40);
    first.commit_sync().expect("commit");
    let committed = first
        .committed(&partitions("resume", 2))
        .expect("committed offsets");
    let consumed_per_partition = by_partition(&got_first);
    for (tp, offset) in &committed {
        let n = consumed_per_partition
            .get(&tp.partition)
            .map_or(0, Vec::len);
        assert_eq!(*offset, n as u64, "{tp}: the commit is the position");
    }
    first.close().expect("close");

    let mut second = Consumer::new(config).expect("consumer");
    second.subscribe(&["resume"], None).expect("subscribe");
    let got_second = poll_n(&mut second, 100 - got_first.len());
    assert_quiet(&mut second, Duration::from_millis(300));
    second.close().expect("close");
    let a: BTreeSet<String> = got_first.iter().map(value_str).collect();
    let b: BTreeSet<String> = got_second.iter().map(value_str).collect();
    assert!(a.is_disjoint(&b), "nothing before the commit is read again");
    assert_eq!(a.union(&b).cloned().collect::<BTreeSet<_>>(), sent);
}

#[test]
fn manual_assignment_commits_with_generation_minus_one() {
    let broker = TestBroker::start();
    broker.create_topic("manual", 1);
    produce(&broker, "manual", 1, 20);
    let config = ConsumerConfig {
        enable_auto_commit: false,
        max_poll_records: 5,
        ..broker.consumer_config(Some("standalone"))
    };
    let tp = TopicPartition::new("manual", 0);
    let mut first = Consumer::new(config.clone()).expect("consumer");
    first.assign(vec![tp.clone()]).expect("assign");
    let got = first.poll(Duration::from_secs(5)).expect("poll");
    assert_eq!(got.len(), 5);
    first.commit_sync().expect("standalone commit");
    first.close().expect("close");
    let mut second = Consumer::new(config).expect("consumer");
    second.assign(vec![tp.clone()]).expect("assign");
    assert_eq!(second.position(&tp).expect("from the commit"), 5);
    let rest = poll_n(&mut second, 15);
    assert_eq!(rest[0].offset, 5);
    second.close().expect("close");
}

#[test]
fn consumers_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Consumer>();
    assert_send::<cfa_net::client::Producer>();
    fn assert_sync<T: Sync>() {}
    assert_sync::<cfa_net::client::Producer>();
}

#[test]
fn cooperative_members_keep_what_does_not_move() {
    let broker = TestBroker::start();
    broker.create_topic("coop", 4);
    let config = ConsumerConfig {
        assignors: vec!["cooperative-sticky".into()],
        ..member_config(&broker, "coop")
    };
    let (a, a_thread) = spawn_member(config.clone(), "coop");
    wait_until("a owns everything", || assigned(&a) == 4);
    let first = produce_named(&broker, "coop", 4, "first", 100);
    wait_until("a consumed the first records", || {
        values_of(&a).len() >= 100
    });
    let (b, b_thread) = spawn_member(config, "coop");
    wait_until("the partitions are split", || {
        assigned(&a) == 2 && assigned(&b) == 2
    });
    let a_events = a.events.lock().expect("lock").clone();
    assert_eq!(a_events[0], "assigned [0,1,2,3]", "{a_events:?}");
    assert!(
        a_events[1].starts_with("revoked [") && a_events[1].matches(',').count() == 1,
        "a gives up only the two partitions that move: {a_events:?}"
    );
    let second = produce_named(&broker, "coop", 4, "second", 100);
    wait_until("everything consumed", || {
        values_of(&a).len() + values_of(&b).len() >= 200
    });
    thread::sleep(Duration::from_millis(300));
    for v in [&a, &b] {
        v.stop.store(true, Ordering::SeqCst);
    }
    a_thread.join().expect("a");
    b_thread.join().expect("b");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in values_of(&a).into_iter().chain(values_of(&b)) {
        *seen.entry(v).or_default() += 1;
    }
    let sent: BTreeSet<String> = first.union(&second).cloned().collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let dups: Vec<&String> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(v, _)| v)
        .collect();
    assert!(
        dups.is_empty(),
        "records went to two members: {dups:?}; a: {:?}; b: {:?}",
        a.events.lock().expect("lock"),
        b.events.lock().expect("lock")
    );
}

#[test]
fn async_commits_report_in_a_later_poll() {
    let broker = TestBroker::start();
    broker.create_topic("async", 1);
    produce(&broker, "async", 1, 10);
    let config = ConsumerConfig {
        enable_auto_commit: false,
        ..broker.consumer_config(Some("async-group"))
    };
    let tp = TopicPartition::new("async", 0);
    let mut consumer = Consumer::new(config).expect("consumer");
    consumer.assign(vec![tp.clone()]).expect("assign");
    poll_n(&mut consumer, 10);
    let outcome = Arc::new(Mutex::new(None));
    let o = Arc::clone(&outcome);
    consumer.commit_async(Some(Box::new(move |r| *o.lock().expect("lock") = Some(r))));
    wait_until("the commit callback", || {
        consumer.poll(Duration::from_millis(50)).expect("poll");
        outcome.lock().expect("lock").is_some()
    });
    let committed = outcome
        .lock()
        .expect("lock")
        .take()
        .expect("set")
        .expect("committed");
    assert_eq!(committed.get(&tp), Some(&10));
    assert_eq!(
        consumer
            .committed(std::slice::from_ref(&tp))
            .expect("fetch")
            .get(&tp),
        Some(&10)
    );
    consumer.close().expect("close");
}
