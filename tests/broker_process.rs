//! The `cfa broker` process: clean stop on SIGTERM, and `kill -9` under load loses no
//! acknowledged record (each is readable after a restart, in order, exactly once).

use std::process::Child;
use std::time::{Duration, Instant};

use cfa_engine::ProducerStamp;
use cfa_net::protocol::{Acks, ErrorCode};
use cfa_net::testing::{batch, RawClient};

mod common;

/// `cfa broker` with tuning/durable.toml on a free port.
fn start(dir: &std::path::Path) -> (common::Proc, std::net::SocketAddr) {
    common::start_with(dir, "durable")
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "broker did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_cleanly_and_data_is_back_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = start(dir.path());
    let mut c = RawClient::connect(addr).expect("connect");
    assert_eq!(c.create_topic("t", 3).error_code, ErrorCode::None);
    for i in 0..30 {
        let v = format!("v{i}");
        let r = c.produce(
            "t",
            i % 3,
            vec![batch(&[v.as_str()], ProducerStamp::NONE)],
            Acks::All,
        );
        assert_eq!(r.error_code, ErrorCode::None);
    }
    drop(c);
    // SAFETY: kill sends a signal to the child we started; it reads no memory of ours.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child.0, Duration::from_secs(20));
    assert!(status.success(), "clean exit: {status}");
    let (_child, addr) = start(dir.path());
    let mut c = RawClient::connect(addr).expect("connect");
    for p in 0..3 {
        assert_eq!(c.read_all("t", p).len(), 10);
    }
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = start(dir.path());
    let mut setup = RawClient::connect(addr).expect("connect");
    assert_eq!(setup.create_topic("load", 2).error_code, ErrorCode::None);
    // Two producers (one per partition) append with acks=all until the broker dies.
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut c) = RawClient::connect(addr) else {
                    return acked;
                };
                for i in 0..20_000u32 {
                    let v = format!("p{p}-{i}");
                    let req =
                        cfa_net::protocol::Request::Produce(cfa_net::protocol::ProduceRequest {
                            acks: Acks::All,
                            timeout_ms: 10_000,
                            topics: vec![cfa_net::protocol::ProduceTopic {
                                name: "load".into(),
                                partitions: vec![cfa_net::protocol::ProducePartition {
                                    partition: p,
                                    batches: vec![batch(&[v.as_str()], ProducerStamp::NONE)],
                                }],
                            }],
                        });
                    if c.send(&req).is_err() {
                        break;
                    }
                    match c.recv() {
                        Ok(Some(r)) => match r.response {
                            cfa_net::protocol::Response::Produce(resp)
                                if resp.topics[0].partitions[0].error_code == ErrorCode::None =>
                            {
                                acked.push(v)
                            }
                            _ => break,
                        },
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    let acked: Vec<Vec<String>> = producers
        .into_iter()
        .map(|h| h.join().expect("producer"))
        .collect();
    assert!(
        acked.iter().all(|a| !a.is_empty()),
        "both producers got acks before the kill"
    );
    let (_child, addr) = start(dir.path());
    let mut c = RawClient::connect(addr).expect("connect");
    for (p, acked) in acked.iter().enumerate() {
        let read: Vec<String> = c
            .read_all("load", p as u32)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        // Everything acknowledged is there, in order, once; at most the one in flight at
        // the kill may follow it.
        assert!(
            read.len() >= acked.len(),
            "partition {p}: {} read < {} acked",
            read.len(),
            acked.len()
        );
        assert_eq!(
            &read[..acked.len()],
            &acked[..],
            "partition {p}: acked records in order"
        );
        assert!(
            read.len() <= acked.len() + 1,
            "partition {p}: no duplicates"
        );
    }
}
