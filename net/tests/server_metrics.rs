//! The broker's Prometheus endpoint through the raw protocol: what is produced and fetched
//! shows up in the partition counters, fsyncs and requests are timed, consumer-group lag
//! follows commits (and survives a restart), and the endpoint answers only GET /metrics.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use cfa_engine::{BatchBuilder, BatchHeader, ProducerStamp};
use cfa_net::protocol::*;
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle};
use cfa_net::testing::RawClient as Raw;

fn start(dir: &std::path::Path, shards: usize) -> BrokerHandle {
    let mut c = BrokerConfig::for_tests(dir);
    c.shards = shards;
    c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
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

fn batch(records: usize, tag: &str) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    for i in 0..records {
        let v = format!("{tag}-{i}");
        b.push(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    b.finish(ProducerStamp::NONE).freeze()
}

fn produce(raw: &mut Raw, topic: &str, partition: u32, batches: Vec<Bytes>) -> ErrorCode {
    let r = raw.call(Request::Produce(ProduceRequest {
        acks: Acks::All,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            partitions: vec![ProducePartition { partition, batches }],
        }],
    }));
    match r {
        Response::Produce(mut p) => p.topics.remove(0).partitions.remove(0).error_code,
        other => panic!("{other:?}"),
    }
}

fn fetch(raw: &mut Raw, topic: &str, partition: u32, offset: u64) -> Vec<Bytes> {
    let r = raw.call(Request::Fetch(FetchRequest {
        replica_id: None,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
            }],
        }],
    }));
    match r {
        Response::Fetch(mut f) => {
            let p = f.topics.remove(0).partitions.remove(0);
            assert_eq!(p.error_code, ErrorCode::None, "{p:?}");
            p.batches
        }
        other => panic!("{other:?}"),
    }
}

fn commit(raw: &mut Raw, group: &str, topic: &str, partition: u32, offset: u64) {
    let r = raw.call(Request::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id: -1, // a standalone consumer: no membership needed
        member_id: String::new(),
        topics: vec![OffsetCommitTopic {
            name: topic.into(),
            partitions: vec![OffsetCommitPartition {
                partition,
                offset,
                leader_epoch: 0,
                metadata: String::new(),
            }],
        }],
    }));
    match r {
        Response::OffsetCommit(c) => assert_eq!(c.error_code, ErrorCode::None, "{c:?}"),
        other => panic!("{other:?}"),
    }
}

fn records_in(batches: &[Bytes]) -> u64 {
    batches
        .iter()
        .map(|b| u64::from(BatchHeader::parse(b).expect("header").record_count()))
        .sum()
}

/// One HTTP/1.1 request; returns the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, head.to_owned(), body.to_owned())
}

/// A sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'));
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Parses one sample line strictly (text format 0.0.4, no timestamps).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let (series, value) = line.rsplit_once(' ').ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}').ok_or("unclosed labels")?;
            (name, parse_labels(inner)?)
        }
    };
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"").ok_or("label without =\"")?;
        if !is_name(key, false) {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        s = &rest[end + 1..];
        s = match s.strip_prefix(',') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err("trailing comma".into()),
            None if s.is_empty() => s,
            None => return Err(format!("junk after a label: {s:?}")),
        };
    }
    Ok(labels)
}

/// Every sample of a scrape, checking the format on the way.
fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let (status, head, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut families = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(families.insert(name.to_owned()), "family {name} twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let s = parse_sample(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        samples.push(s);
    }
    assert!(body.ends_with('\n'));
    samples
}

/// The value of the one sample with this name and (at least) these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

/// The sum over every sample of this name.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

#[test]
fn counters_follow_produce_and_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 2);
    let maddr = broker.metrics_addr().expect("metrics endpoint");
    let mut raw = Raw::connect(broker.local_addr()).expect("connect");
    create(&mut raw, "m", 2);

    // Partition 0: 3 requests of 2 batches; partition 1: 1 request of one batch.
    let mut sent: [Vec<Bytes>; 2] = Default::default();
    for i in 0..3 {
        let batches = vec![batch(3, &format!("a{i}")), batch(5, &format!("b{i}"))];
        assert_eq!(produce(&mut raw, "m", 0, batches.clone()), ErrorCode::None);
        sent[0].extend(batches);
    }
    let one = vec![batch(7, "c")];
    assert_eq!(produce(&mut raw, "m", 1, one.clone()), ErrorCode::None);
    sent[1].extend(one);
    assert_eq!(
        produce(&mut raw, "nope", 0, vec![batch(1, "x")]),
        ErrorCode::UnknownTopic
    );
    let fetched = [fetch(&mut raw, "m", 0, 0), fetch(&mut raw, "m", 1, 0)];

    let s = scrape(maddr);
    for p in 0..2 {
        let part = [("topic", "m"), ("partition", &*p.to_string())];
        let bytes_sent: usize = sent[p].iter().map(Bytes::len).sum();
        let bytes_fetched: usize = fetched[p].iter().map(Bytes::len).sum();
        assert_eq!(
            records_in(&fetched[p]),
            records_in(&sent[p]),
            "all fetched back"
        );
        let records = records_in(&sent[p]) as f64;
        assert_eq!(
            value(&s, "cfa_partition_bytes_in_total", &part),
            bytes_sent as f64
        );
        assert_eq!(value(&s, "cfa_partition_records_in_total", &part), records);
        assert_eq!(
            value(&s, "cfa_partition_bytes_out_total", &part),
            bytes_fetched as f64
        );
        assert_eq!(value(&s, "cfa_partition_records_out_total", &part), records);
        assert_eq!(value(&s, "cfa_partition_log_end_offset", &part), records);
        assert_eq!(value(&s, "cfa_partition_log_start_offset", &part), 0.0);
    }
    assert!(
        total(&s, "cfa_fsync_duration_seconds_count") > 0.0,
        "acks=all fsyncs"
    );
    assert!(total(&s, "cfa_fsync_duration_seconds_sum") > 0.0);
    let produced = [("api", "Produce"), ("error", "None")];
    assert_eq!(value(&s, "cfa_requests_total", &produced), 4.0);
    let unknown = [("api", "Produce"), ("error", "UnknownTopic")];
    assert_eq!(value(&s, "cfa_requests_total", &unknown), 1.0);
    let api = [("api", "Produce")];
    assert_eq!(value(&s, "cfa_request_duration_seconds_count", &api), 5.0);
    let inf = [("api", "Produce"), ("le", "+Inf")];
    assert_eq!(value(&s, "cfa_request_duration_seconds_bucket", &inf), 5.0);
    assert_eq!(value(&s, "cfa_requests_total", &[("api", "Fetch")]), 2.0);
    assert_eq!(
        total(&s, "cfa_connections_open"),
        1.0,
        "the raw client only"
    );
    assert_eq!(value(&s, "cfa_connections_accepted_total", &[]), 1.0);

    // More traffic, on a second connection: every counter grows.
    let mut raw2 = Raw::connect(broker.local_addr()).expect("connect");
    assert_eq!(
        produce(&mut raw2, "m", 0, vec![batch(4, "d")]),
        ErrorCode::None
    );
    let more = fetch(&mut raw2, "m", 0, records_in(&sent[0]));
    assert_eq!(records_in(&more), 4);
    let s2 = scrape(maddr);
    let part = [("topic", "m"), ("partition", "0")];
    for name in [
        "cfa_partition_bytes_in_total",
        "cfa_partition_records_in_total",
        "cfa_partition_bytes_out_total",
        "cfa_partition_records_out_total",
        "cfa_partition_log_end_offset",
    ] {
        assert!(value(&s2, name, &part) > value(&s, name, &part), "{name}");
    }
    assert_eq!(
        value(&s2, "cfa_partition_records_in_total", &part),
        4.0 + 24.0
    );
    assert_eq!(value(&s2, "cfa_requests_total", &produced), 5.0);
    assert!(
        total(&s2, "cfa_fsync_duration_seconds_count")
            > total(&s, "cfa_fsync_duration_seconds_count")
    );
    assert_eq!(total(&s2, "cfa_connections_open"), 2.0);
    assert_eq!(value(&s2, "cfa_connections_accepted_total", &[]), 2.0);
    drop(raw2);

    let (status, _, _) = http_get(maddr, "/other");
    assert_eq!(status, 404);
    drop(raw);
    broker.shutdown().expect("clean shutdown");
    assert!(
        TcpStream::connect_timeout(&maddr, Duration::from_secs(1)).is_err(),
        "the endpoint stops with the broker"
    );
}

#[test]
fn group_lag_follows_commits_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), 1);
    let mut raw = Raw::connect(broker.local_addr()).expect("connect");
    create(&mut raw, "orders", 2);
    assert_eq!(
        produce(&mut raw, "orders", 0, vec![batch(10, "x")]),
        ErrorCode::None
    );
    commit(&mut raw, "billing", "orders", 0, 4);
    let lag = [
        ("group", "billing"),
        ("topic", "orders"),
        ("partition", "0"),
    ];
    let s = scrape(broker.metrics_addr().expect("endpoint"));
    assert_eq!(value(&s, "cfa_group_lag_records", &lag), 6.0);
    // More records raise the lag; a commit lowers it.
    assert_eq!(
        produce(&mut raw, "orders", 0, vec![batch(5, "y")]),
        ErrorCode::None
    );
    let s = scrape(broker.metrics_addr().expect("endpoint"));
    assert_eq!(value(&s, "cfa_group_lag_records", &lag), 11.0);
    commit(&mut raw, "billing", "orders", 0, 15);
    let s = scrape(broker.metrics_addr().expect("endpoint"));
    assert_eq!(value(&s, "cfa_group_lag_records", &lag), 0.0);
    commit(&mut raw, "billing", "orders", 0, 12);
    drop(raw);
    broker.shutdown().expect("shutdown");

    // After a restart the replayed commits and the reopened logs give the same lag.
    let broker = start(dir.path(), 1);
    let s = scrape(broker.metrics_addr().expect("endpoint"));
    assert_eq!(value(&s, "cfa_group_lag_records", &lag), 3.0);
    let part = [("topic", "orders"), ("partition", "0")];
    assert_eq!(value(&s, "cfa_partition_log_end_offset", &part), 15.0);
    broker.shutdown().expect("shutdown");
}

#[test]
fn a_taken_metrics_port_fails_the_start_and_none_means_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut c = BrokerConfig::for_tests(dir.path());
    c.metrics_listen = Some(addr);
    let err = Broker::start(c).err().expect("the port is taken");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let broker = Broker::start(BrokerConfig::for_tests(dir.path())).expect("starts");
    assert_eq!(broker.metrics_addr(), None);
    broker.shutdown().expect("shutdown");
}
