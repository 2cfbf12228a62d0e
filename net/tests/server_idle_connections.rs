//! 10,000 idle connections do not stop a normal client from being served.
//!
//! A test binary of its own: it raises the process's open-file limit and then uses most of
//! it, which would starve any test running beside it in the same process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cfa_engine::ProducerStamp;
use cfa_net::protocol::{Acks, ErrorCode};
use cfa_net::server::{Broker, BrokerConfig};
use cfa_net::testing::{batch, values, RawClient};

const IDLE_WANTED: usize = 10_000;
/// Descriptors left for the broker's files, the executor's rings and the test itself.
const FD_MARGIN: usize = 100;

fn rlimit_nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a live local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    lim
}

fn set_rlimit_nofile(cur: libc::rlim_t, max: libc::rlim_t) -> bool {
    let lim = libc::rlimit {
        rlim_cur: cur,
        rlim_max: max,
    };
    // SAFETY: setrlimit reads one rlimit through a pointer to a live local.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// Raises the soft open-file limit to the hard one (and the hard one to what the test
/// needs, when the process may: root or CAP_SYS_RESOURCE); returns the soft limit.
fn raise_fd_limit(needed: usize) -> usize {
    let lim = rlimit_nofile();
    let needed = needed as libc::rlim_t;
    if lim.rlim_max < needed && set_rlimit_nofile(needed, needed) {
        return needed as usize;
    }
    assert!(
        set_rlimit_nofile(lim.rlim_max, lim.rlim_max),
        "setrlimit: {}",
        std::io::Error::last_os_error()
    );
    lim.rlim_max as usize
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The broker's resident memory is this process's (it runs in-process).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn connections_open(metrics: SocketAddr) -> Option<u64> {
    let mut s = TcpStream::connect(metrics).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|l| l.starts_with("cfa_connections_open{"))
        .map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn ten_thousand_idle_connections_leave_room_for_a_normal_client() {
    let t0 = Instant::now();
    // Each connection costs two descriptors here: the client's and the broker's.
    let limit = raise_fd_limit(2 * IDLE_WANTED + 2 * FD_MARGIN);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let broker = Broker::start(config).expect("broker starts");
    let addr = broker.local_addr();
    let metrics = broker.metrics_addr().expect("metrics endpoint");
    let mut normal = RawClient::connect(addr).expect("connect");
    assert_eq!(normal.create_topic("warmup", 1).error_code, ErrorCode::None);
    let room = limit.saturating_sub(open_fds() + FD_MARGIN) / 2;
    let count = IDLE_WANTED.min(room);
    println!("open-file limit {limit}: opening {count} idle connections");
    assert!(count > 0, "the open-file limit leaves no room: {limit}");
    let rss_before = rss_mib();
    let mut idle = Vec::with_capacity(count);
    for i in 0..count {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        idle.push(s);
    }
    let accepted = (|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let open = connections_open(metrics).unwrap_or(0);
            if open as usize > count || Instant::now() >= deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })();
    let rss_with = rss_mib();
    println!(
        "{count} idle connections open after {:?}; the broker counts {accepted} open; \
         RSS {rss_before} MiB before, {rss_with} MiB with them",
        t0.elapsed(),
    );
    // Both ends live in this process: ~16 KiB per connection measured. A connection that
    // zero-filled a 64 KiB read buffer before its first byte cost ~75 KiB.
    // (Only with enough of them to rise above the allocator's noise.)
    let per_connection_kib = (rss_with.saturating_sub(rss_before) << 10) / count as u64;
    assert!(
        count < 2000 || per_connection_kib < 40,
        "idle connections cost {per_connection_kib} KiB each"
    );
    assert!(
        accepted as usize > count,
        "the broker accepted every idle connection and the normal one: {accepted}"
    );

    // A client that connects now is served like on an idle broker.
    let t1 = Instant::now();
    let mut late = RawClient::connect(addr).expect("connect beside the idle ones");
    assert_eq!(late.create_topic("busy", 2).error_code, ErrorCode::None);
    for p in 0..2 {
        let r = late.produce(
            "busy",
            p,
            vec![batch(&["one", "two"], ProducerStamp::NONE)],
            Acks::All,
        );
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::None, 0));
        assert_eq!(values(&late.fetch("busy", p, 0, 0).batches), ["one", "two"]);
    }
    let r = normal.produce(
        "warmup",
        0,
        vec![batch(&["still"], ProducerStamp::NONE)],
        Acks::Leader,
    );
    assert_eq!(r.error_code, ErrorCode::None);
    println!("create + produce + fetch took {:?}", t1.elapsed());
    assert!(t1.elapsed() < Duration::from_secs(5), "{:?}", t1.elapsed());

    // Closing them frees them on the broker too.
    drop(idle);
    let left = (|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let open = connections_open(metrics).unwrap_or(u64::MAX);
            if open <= 2 || Instant::now() >= deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })();
    assert_eq!(left, 2, "only the two normal clients remain");
    drop((normal, late));
    broker.shutdown().expect("clean shutdown");
    println!("total {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}
