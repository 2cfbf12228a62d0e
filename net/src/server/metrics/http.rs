//! The metrics endpoint: a plain std thread answering `GET /metrics` over HTTP/1.1, one
//! connection at a time (a Prometheus server scrapes every few seconds; nothing here is on
//! the broker's data path, so it stays off the shards' executors).
//!
//! The listener is non-blocking and polled with a short sleep, so that a stop flag is
//! seen within `METRICS_ACCEPT_POLL_MS` and no thread is ever left blocked in accept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Metrics;
use crate::constants::{
    METRICS_ACCEPT_POLL_MS, METRICS_CONNECTION_TIMEOUT_MS, METRICS_REQUEST_BYTES_MAX,
};
use crate::server::ServerError;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The running endpoint; dropping it stops the thread and waits for it.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, ServerError> {
        let io = |what: &str| {
            let what = format!("metrics endpoint {addr}: {what}");
            move |source| ServerError::Io { what, source }
        };
        let listener = TcpListener::bind(addr).map_err(io("cannot listen"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("setting the listener non-blocking"))?;
        let local = listener
            .local_addr()
            .map_err(io("reading the bound address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("cfa-metrics".into())
                .spawn(move || accept_loop(&listener, &metrics, &stop))
                .map_err(io("starting its thread"))?
        };
        tracing::info!(addr = %local, "metrics endpoint listening");
        Ok(MetricsServer {
            addr: local,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the metrics thread panicked");
            }
        }
    }
}

fn accept_loop(listener: &TcpListener, metrics: &Metrics, stop: &AtomicBool) {
    let poll = Duration::from_millis(METRICS_ACCEPT_POLL_MS);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = serve(stream, metrics) {
                    tracing::debug!(%peer, error = %e, "metrics scrape failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(poll),
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                std::thread::sleep(poll);
            }
        }
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("request head larger than {METRICS_REQUEST_BYTES_MAX} bytes")]
    TooLarge,
    #[error("malformed request line")]
    Malformed,
}

/// The parts of a request line the endpoint looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: &'a str,
    /// The target without its query string.
    pub path: &'a str,
}

/// Answers one connection: reads the request head, writes one response, closes.
fn serve(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let timeout = Duration::from_millis(METRICS_CONNECTION_TIMEOUT_MS);
    // Accepted sockets are blocking on Linux; set it anyway so the timeouts apply.
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(timeout))?;
    let deadline = Instant::now() + timeout;
    let head = read_head(&mut stream, deadline)?;
    let too_large = head == Err(HeadError::TooLarge);
    let response = match head {
        Err(e) => reply(status_for(e), "text/plain", e.to_string().as_bytes()),
        Ok(head) => match parse_request_line(&head) {
            Err(e) => reply(status_for(e), "text/plain", e.to_string().as_bytes()),
            Ok(RequestLine {
                method: "GET",
                path: "/metrics",
            }) => reply("200 OK", CONTENT_TYPE, metrics.render().as_bytes()),
            Ok(_) => reply(
                "404 Not Found",
                "text/plain",
                b"only GET /metrics is served\n",
            ),
        },
    };
    stream.write_all(&response)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if too_large {
        drain(&mut stream, deadline);
    }
    Ok(())
}

/// Reads (a bounded amount of) what the client still sends until it closes: closing a
/// socket with unread bytes makes the kernel reset the connection, and the client may
/// then lose the response it has not read yet.
fn drain(stream: &mut TcpStream, deadline: Instant) {
    let mut chunk = [0u8; 1024];
    let mut left = METRICS_REQUEST_BYTES_MAX;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn status_for(e: HeadError) -> &'static str {
    match e {
        HeadError::TooLarge => "431 Request Header Fields Too Large",
        HeadError::Malformed => "400 Bad Request",
    }
}

fn reply(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads until the blank line that ends the head, at most `METRICS_REQUEST_BYTES_MAX`
/// bytes and until `deadline`. The outer error is the socket's (timeout included).
fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
) -> std::io::Result<Result<Vec<u8>, HeadError>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Ok(head));
        }
        if head.len() >= METRICS_REQUEST_BYTES_MAX {
            return Ok(Err(HeadError::TooLarge));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let room = (METRICS_REQUEST_BYTES_MAX - head.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room])?;
        if n == 0 {
            // Closed before the blank line: answer what arrived if it has a request line.
            return Ok(if head.is_empty() {
                Err(HeadError::Malformed)
            } else {
                Ok(head)
            });
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// Where the head ends (after "\r\n\r\n", or "\n\n" from lenient clients).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses `METHOD TARGET HTTP/1.x` from the first line of a head.
pub(crate) fn parse_request_line(head: &[u8]) -> Result<RequestLine<'_>, HeadError> {
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..end]).map_err(|_| HeadError::Malformed)?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !token || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(RequestLine { method, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_lines() {
        let ok = parse_request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            ok,
            Ok(RequestLine {
                method: "GET",
                path: "/metrics"
            })
        );
        for bad in [
            &b""[..],
            b"GET /metrics",
            b"GET  /metrics HTTP/1.1",
            b"get /metrics HTTP/1.1",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"GET /metrics HTTP/1.1 extra",
            b"GET /\xff HTTP/1.1",
        ] {
            assert_eq!(
                parse_request_line(bad),
                Err(HeadError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn serves_metrics_404_and_stops() {
        let metrics = Arc::new(Metrics::new(1));
        let server =
            MetricsServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), metrics).expect("starts");
        let get = |req: &[u8]| {
            let mut s = TcpStream::connect(server.local_addr()).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s.write_all(req).expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            out
        };
        let r = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
        assert!(r.contains("cfa_connections_accepted_total 0\n"));
        assert!(get(b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(b"nonsense\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let huge = vec![b'a'; METRICS_REQUEST_BYTES_MAX + 10];
        assert!(get(&huge).starts_with("HTTP/1.1 431 "));
        let addr = server.local_addr();
        let t0 = Instant::now();
        drop(server);
        assert!(t0.elapsed() < Duration::from_secs(2), "stops promptly");
        assert!(TcpStream::connect(addr).is_err(), "the port is closed");
    }

    #[test]
    fn a_taken_port_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = MetricsServer::start(addr, Arc::new(Metrics::new(1)))
            .err()
            .expect("the port is taken");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(head in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request_line(&head);
            let _ = head_end(&head);
        }

        #[test]
        fn request_lines_round_trip(
            method in "[A-Z]{1,8}",
            path in "/[a-zA-Z0-9/._-]{0,40}",
            query in proptest::option::of("[a-z0-9=&]{0,20}"),
            minor in 0u8..2,
        ) {
            let target = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let head = format!("{method} {target} HTTP/1.{minor}\r\nHost: h\r\n\r\n");
            let line = parse_request_line(head.as_bytes());
            prop_assert_eq!(line, Ok(RequestLine { method: &method, path: &path }));
        }
    }
}
