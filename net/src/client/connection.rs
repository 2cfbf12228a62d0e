//! One TCP connection to one broker: handshake, pipelined requests, a reader thread.
//!
//! - `connect` opens the socket (with a timeout), starts the reader thread and exchanges
//!   ApiVersions; every later request uses the negotiated version of its API.
//! - Requests are pipelined: each gets a request id and a waiter (a callback) in a table;
//!   at most `in_flight_max` wait at once, and a sender blocks for a free slot. Frames go
//!   out with one vectored write of `OutFrame::chunks()` (record batches are not copied).
//! - The reader thread cuts frames with `FrameSplitter`, decodes them and hands each
//!   response to its waiter, in whatever order the broker answers. It wakes every
//!   `CONNECTION_TICK_MS` to fail requests past their deadline with a timeout.
//! - Any I/O or framing error closes the connection and fails every waiter with that
//!   error; the connection is never reused after that (the owner opens a new one).
//!
//! Callbacks run on the reader thread: they must be short (send on a channel).

use std::collections::HashMap;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::error::ClientError;
use crate::constants::{CONNECTION_IN_FLIGHT_MAX, CONNECTION_READ_CHUNK_BYTES, CONNECTION_TICK_MS};
use crate::protocol::{
    decode_response, negotiate, supported_versions, ApiKey, ApiVersionsRequest, Encoder, ErrorCode,
    FrameSplitter, NegotiatedVersions, Request, Response,
};
use crate::read_buffer::ReadBuffer;

/// What a waiter receives: the response, or why there will be none.
pub type Callback = Box<dyn FnOnce(Result<Response, ClientError>) + Send>;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub connect_timeout: Duration,
    /// Bound on a socket write, and the timeout of the handshake.
    pub request_timeout: Duration,
    /// Requests in flight at once (at most `CONNECTION_IN_FLIGHT_MAX`).
    pub in_flight_max: usize,
}

/// Test hooks that break a connection on purpose. Shared by every connection of a client.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    /// Responses to Produce requests to swallow; each one swallowed closes its
    /// connection, as if the network failed after the broker appended the batch.
    drop_produce_responses: AtomicU32,
}

impl Faults {
    /// The next `n` Produce responses are dropped and their connections closed.
    pub fn drop_produce_responses(&self, n: u32) {
        self.drop_produce_responses.store(n, Ordering::SeqCst);
    }

    /// Produce responses still to drop.
    pub fn produce_responses_to_drop(&self) -> u32 {
        self.drop_produce_responses.load(Ordering::SeqCst)
    }

    fn take_produce_drop(&self) -> bool {
        self.drop_produce_responses
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A connection to one broker. Clones share it; the socket closes when the last clone
/// is dropped or [`Connection::close`] is called.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
    _owner: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(None);
    }
}

struct Inner {
    addr: SocketAddr,
    label: String,
    writer: Mutex<Writer>,
    table: Mutex<WaiterTable>,
    slot_freed: Condvar,
    in_flight_max: usize,
    closed: AtomicBool,
    next_id: AtomicU32,
    versions: OnceLock<NegotiatedVersions>,
    faults: Arc<Faults>,
    /// A second handle on the socket, for `shutdown` from any thread.
    control: TcpStream,
}

struct Writer {
    stream: TcpStream,
    encoder: Encoder,
}

struct Waiter {
    api: ApiKey,
    deadline: Instant,
    timeout: Duration,
    callback: Callback,
}

#[derive(Default)]
struct WaiterTable {
    waiters: HashMap<u32, Waiter>,
    /// Slots promised to senders that are encoding their frame.
    reserved: usize,
    /// Set once: why the connection closed.
    closed: Option<ClientError>,
}

/// Resolves `host:port` to its first socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, ClientError> {
    let unreachable = |cause: String| ClientError::Unreachable {
        addr: addr.to_owned(),
        cause,
    };
    addr.to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("the name resolves to no address".to_owned()))
}

impl Connection {
    /// Connects, starts the reader thread and negotiates API versions.
    pub fn connect(
        addr: SocketAddr,
        config: &ConnectionConfig,
        faults: Arc<Faults>,
    ) -> Result<Connection, ClientError> {
        let label = addr.to_string();
        let unreachable = |e: io::Error| ClientError::Unreachable {
            addr: label.clone(),
            cause: e.to_string(),
        };
        let stream =
            TcpStream::connect_timeout(&addr, config.connect_timeout).map_err(unreachable)?;
        stream.set_nodelay(true).map_err(unreachable)?;
        stream
            .set_write_timeout(Some(config.request_timeout.max(Duration::from_millis(1))))
            .map_err(unreachable)?;
        let reader = stream.try_clone().map_err(unreachable)?;
        let control = stream.try_clone().map_err(unreachable)?;
        reader
            .set_read_timeout(Some(Duration::from_millis(CONNECTION_TICK_MS)))
            .map_err(unreachable)?;
        let inner = Arc::new(Inner {
            addr,
            label: label.clone(),
            writer: Mutex::new(Writer {
                stream,
                encoder: Encoder::new(),
            }),
            table: Mutex::new(WaiterTable::default()),
            slot_freed: Condvar::new(),
            in_flight_max: config.in_flight_max.clamp(1, CONNECTION_IN_FLIGHT_MAX),
            closed: AtomicBool::new(false),
            next_id: AtomicU32::new(1),
            versions: OnceLock::new(),
            faults,
            control,
        });
        let for_reader = Arc::clone(&inner);
        thread::Builder::new()
            .name(format!("cfa-conn-{label}"))
            .spawn(move || read_loop(for_reader, reader))
            .map_err(unreachable)?;
        let conn = Connection {
            _owner: Arc::new(CloseOnDrop(Arc::clone(&inner))),
            inner,
        };
        conn.handshake(config)?;
        Ok(conn)
    }

    fn handshake(&self, config: &ConnectionConfig) -> Result<(), ClientError> {
        let request = ApiVersionsRequest {
            client_id: config.client_id.clone(),
            versions: supported_versions(),
        };
        let response = self.call(request.into(), config.request_timeout)?;
        let Response::ApiVersions(r) = response else {
            return Err(self.unexpected(ApiKey::ApiVersions, &response));
        };
        // UnsupportedVersion still lists the broker's ranges: negotiate from them.
        if r.error_code.is_error() && r.error_code != ErrorCode::UnsupportedVersion {
            return Err(ClientError::Broker {
                context: format!("ApiVersions with {}", self.inner.label),
                code: r.error_code,
                message: r.error_message,
            });
        }
        let versions =
            negotiate(&supported_versions(), &r.versions, &[ApiKey::Metadata]).map_err(|e| {
                ClientError::UnsupportedApi {
                    addr: self.inner.label.clone(),
                    api: e.api,
                }
            })?;
        // Set once per connection, here, before the connection is handed out.
        let _ = self.inner.versions.set(versions);
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Closes the socket; outstanding requests fail with "closed by client".
    pub fn close(&self) {
        self.inner.close(None);
    }

    /// Whether the broker speaks a version of `api` we speak too.
    pub fn supports(&self, api: ApiKey) -> bool {
        self.version(api).is_ok()
    }

    fn version(&self, api: ApiKey) -> Result<u16, ClientError> {
        if api == ApiKey::ApiVersions {
            return Ok(0);
        }
        self.inner
            .versions
            .get()
            .and_then(|v| v.get(api))
            .ok_or_else(|| ClientError::UnsupportedApi {
                addr: self.inner.label.clone(),
                api,
            })
    }

    /// Sends `request`; `callback` gets its response, or the error that ends the wait
    /// (timeout after `timeout`, connection closed). Returns `Err` only when the request
    /// was not sent and the callback dropped uncalled. Blocks while `in_flight_max`
    /// requests are outstanding, up to `timeout`.
    pub fn send(
        &self,
        request: &Request,
        timeout: Duration,
        callback: Callback,
    ) -> Result<(), ClientError> {
        let api = request.api_key();
        let version = self.version(api)?;
        self.reserve_slot(api, timeout)?;
        let mut writer = lock(&self.inner.writer);
        let id = self.next_request_id();
        let frame = match writer.encoder.request(id, version, request) {
            Ok(frame) => frame,
            Err(source) => {
                self.release_reservation();
                return Err(ClientError::Encode { api, source });
            }
        };
        {
            let mut table = lock(&self.inner.table);
            table.reserved -= 1;
            if let Some(err) = table.closed.clone() {
                drop(table);
                self.inner.slot_freed.notify_all();
                return Err(err);
            }
            let waiter = Waiter {
                api,
                deadline: Instant::now() + timeout,
                timeout,
                callback,
            };
            let previous = table.waiters.insert(id, waiter);
            assert!(previous.is_none(), "request id {id} reused while in flight");
        }
        if let Err(e) = write_frame(&mut writer.stream, frame.chunks()) {
            drop(writer);
            // Fails every waiter, ours included: the callback reports it.
            self.inner.close(Some(self.io_error(&e)));
        }
        Ok(())
    }

    /// Sends a request that gets no response (Produce with acks=0). Returns once the frame
    /// is written.
    pub fn send_oneway(&self, request: &Request) -> Result<(), ClientError> {
        let api = request.api_key();
        let version = self.version(api)?;
        let mut writer = lock(&self.inner.writer);
        if let Some(err) = lock(&self.inner.table).closed.clone() {
            return Err(err);
        }
        let id = self.next_request_id();
        let frame = writer
            .encoder
            .request(id, version, request)
            .map_err(|source| ClientError::Encode { api, source })?;
        if let Err(e) = write_frame(&mut writer.stream, frame.chunks()) {
            drop(writer);
            let err = self.io_error(&e);
            self.inner.close(Some(err.clone()));
            return Err(err);
        }
        Ok(())
    }

    /// Sends `request` and returns a handle to wait for its response.
    pub fn send_pending(
        &self,
        request: &Request,
        timeout: Duration,
    ) -> Result<PendingResponse, ClientError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(
            request,
            timeout,
            Box::new(move |result| {
                // The receiver may be gone (the caller gave up): nothing to do then.
                let _ = tx.send(result);
            }),
        )?;
        Ok(PendingResponse {
            rx,
            api: request.api_key(),
            timeout,
        })
    }

    /// Sends `request` and waits for its response (at most `timeout`).
    pub fn call(&self, request: Request, timeout: Duration) -> Result<Response, ClientError> {
        self.send_pending(&request, timeout)?.wait()
    }

    /// The error for a response of the wrong API.
    pub fn unexpected(&self, expected: ApiKey, got: &Response) -> ClientError {
        unexpected_response(&self.inner.label, expected, got)
    }

    fn next_request_id(&self) -> u32 {
        // Wrapping is fine: an id is reused only after 2^32 requests, long after the
        // previous holder completed (the table holds at most CONNECTION_IN_FLIGHT_MAX).
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn reserve_slot(&self, api: ApiKey, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        let mut table = lock(&self.inner.table);
        loop {
            if let Some(err) = table.closed.clone() {
                return Err(err);
            }
            if table.waiters.len() + table.reserved < self.inner.in_flight_max {
                table.reserved += 1;
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::timeout(
                    format!(
                        "waiting for an in-flight slot for {api} to {}",
                        self.inner.label
                    ),
                    timeout,
                ));
            }
            table = self
                .inner
                .slot_freed
                .wait_timeout(table, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn release_reservation(&self) {
        lock(&self.inner.table).reserved -= 1;
        self.inner.slot_freed.notify_all();
    }

    fn io_error(&self, e: &io::Error) -> ClientError {
        ClientError::Io {
            addr: self.inner.label.clone(),
            cause: e.to_string(),
        }
    }
}

/// The error for a response of another API than the request's.
pub(crate) fn unexpected_response(addr: &str, expected: ApiKey, got: &Response) -> ClientError {
    let got = match ApiKey::from_u16(got.api_key_raw()) {
        Some(api) => api.to_string(),
        None => format!("api key {}", got.api_key_raw()),
    };
    ClientError::UnexpectedResponse {
        addr: addr.to_owned(),
        expected,
        got,
    }
}

/// A response still to come.
pub struct PendingResponse {
    rx: mpsc::Receiver<Result<Response, ClientError>>,
    api: ApiKey,
    timeout: Duration,
}

impl PendingResponse {
    /// Waits for the response. The reader thread enforces the request's timeout; the
    /// extra second here only guards against a reader that died.
    pub fn wait(self) -> Result<Response, ClientError> {
        let bound = self.timeout + Duration::from_secs(1);
        match self.rx.recv_timeout(bound) {
            Ok(result) => result,
            Err(_) => Err(ClientError::timeout(format!("{} request", self.api), bound)),
        }
    }

    /// The response if it arrived within `timeout`, else `None` (ask again later).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Response, ClientError>> {
        match self.rx.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Some(Err(ClientError::Closed { what: "connection" }))
            }
        }
    }
}

impl Inner {
    /// Marks the connection closed, shuts the socket and fails every waiter with
    /// `cause` (or "closed by client"). Idempotent: the first cause wins.
    fn close(&self, cause: Option<ClientError>) {
        let err = cause.unwrap_or_else(|| ClientError::ConnectionClosed {
            addr: self.label.clone(),
            cause: Some("closed by the client".to_owned()),
        });
        let waiters = {
            let mut table = lock(&self.table);
            if table.closed.is_none() {
                table.closed = Some(err);
            }
            std::mem::take(&mut table.waiters)
        };
        self.closed.store(true, Ordering::SeqCst);
        // Wakes the reader thread; an error just means the socket is already gone.
        let _ = self.control.shutdown(Shutdown::Both);
        self.slot_freed.notify_all();
        let err = lock(&self.table).closed.clone();
        for (_, waiter) in waiters {
            if let Some(err) = err.clone() {
                (waiter.callback)(Err(err));
            }
        }
    }

    fn take_waiter(&self, id: u32) -> Option<Waiter> {
        let waiter = lock(&self.table).waiters.remove(&id);
        if waiter.is_some() {
            self.slot_freed.notify_all();
        }
        waiter
    }

    fn expire(&self, now: Instant) {
        let expired: Vec<Waiter> = {
            let mut table = lock(&self.table);
            let ids: Vec<u32> = table
                .waiters
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| table.waiters.remove(id))
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        self.slot_freed.notify_all();
        for w in expired {
            let what = format!("{} request to {}", w.api, self.label);
            (w.callback)(Err(ClientError::timeout(what, w.timeout)));
        }
    }

    /// Hands one received frame to its waiter. `Err` closes the connection.
    fn dispatch(&self, frame: Bytes) -> Result<(), ClientError> {
        let decoded = decode_response(frame).map_err(|source| ClientError::Protocol {
            addr: self.label.clone(),
            source,
        })?;
        let Some(waiter) = self.take_waiter(decoded.request_id) else {
            // The waiter timed out earlier: the late answer has no one to go to.
            return Ok(());
        };
        let response = decoded.response;
        if response.api_key_raw() != waiter.api.as_u16() {
            let err = unexpected_response(&self.label, waiter.api, &response);
            (waiter.callback)(Err(err.clone()));
            return Err(err);
        }
        if waiter.api == ApiKey::Produce && self.faults.take_produce_drop() {
            let err = ClientError::ConnectionClosed {
                addr: self.label.clone(),
                cause: Some("response dropped by fault injection".to_owned()),
            };
            (waiter.callback)(Err(err.clone()));
            return Err(err);
        }
        (waiter.callback)(Ok(response));
        Ok(())
    }
}

fn read_loop(inner: Arc<Inner>, mut stream: TcpStream) {
    let err = read_frames(&inner, &mut stream);
    inner.close(Some(err));
}

/// Reads until the connection fails; returns why.
fn read_frames(inner: &Inner, stream: &mut TcpStream) -> ClientError {
    let mut splitter = FrameSplitter::new();
    let mut rb = ReadBuffer::with_capacity(CONNECTION_READ_CHUNK_BYTES);
    loop {
        if inner.closed.load(Ordering::SeqCst) {
            return ClientError::ConnectionClosed {
                addr: inner.label.clone(),
                cause: Some("closed by the client".to_owned()),
            };
        }
        // Room for the rest of the frame being read, so a large fetch response lands in
        // one allocation rather than growing by doubling.
        let want = splitter
            .bytes_needed(rb.bytes())
            .max(CONNECTION_READ_CHUNK_BYTES);
        // The socket's receive timeout (CONNECTION_TICK_MS) applies: WouldBlock below.
        let read = rb.recv(stream.as_raw_fd(), want, 0);
        match read {
            Ok(0) => {
                return ClientError::ConnectionClosed {
                    addr: inner.label.clone(),
                    cause: None,
                }
            }
            Ok(_) => {}
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => {}
                _ => {
                    return ClientError::Io {
                        addr: inner.label.clone(),
                        cause: e.to_string(),
                    }
                }
            },
        }
        loop {
            match splitter.next_frame(rb.bytes()) {
                Ok(Some(frame)) => {
                    if let Err(err) = inner.dispatch(frame) {
                        return err;
                    }
                }
                Ok(None) => break,
                Err(source) => {
                    return ClientError::Protocol {
                        addr: inner.label.clone(),
                        source,
                    }
                }
            }
        }
        inner.expire(Instant::now());
    }
}

fn write_frame<'a>(
    stream: &mut TcpStream,
    chunks: impl Iterator<Item = &'a Bytes>,
) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.map(|c| IoSlice::new(c)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match stream.write_vectored(bufs) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the
/// state consistent before anything that can panic (callbacks run outside the locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::io::Read;
    use std::net::TcpListener;

    use crate::protocol::{
        decode_request, ApiVersionsResponse, DecodedRequest, MetadataRequest, MetadataResponse,
    };

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            client_id: "test".into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            in_flight_max: 4,
        }
    }

    /// Reads one request frame from a blocking socket.
    fn read_request(s: &mut TcpStream, buf: &mut BytesMut) -> Option<DecodedRequest> {
        let mut splitter = FrameSplitter::new();
        loop {
            if let Some(frame) = splitter.next_frame(buf).expect("valid frame") {
                return Some(decode_request(frame).expect("valid request"));
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn answer(s: &mut TcpStream, id: u32, response: Response) {
        let frame = crate::protocol::encode_response(id, 0, &response).expect("encode");
        s.write_all(&frame.to_bytes()).expect("write");
    }

    /// A fake broker that answers the handshake, then runs `script` on the socket.
    fn fake_broker(
        script: impl FnOnce(TcpStream, BytesMut) + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = BytesMut::new();
            let req = read_request(&mut s, &mut buf).expect("handshake");
            assert!(matches!(req.request, Request::ApiVersions(_)));
            let body = ApiVersionsResponse {
                error_code: ErrorCode::None,
                error_message: None,
                versions: supported_versions(),
            };
            answer(&mut s, req.request_id, body.into());
            script(s, buf);
        });
        (addr, handle)
    }

    fn metadata_response(controller: u32) -> Response {
        MetadataResponse {
            brokers: vec![],
            controller_id: Some(controller),
            topics: vec![],
        }
        .into()
    }

    #[test]
    fn responses_out_of_order_reach_their_waiters() {
        let (addr, broker) = fake_broker(|mut s, mut buf| {
            let a = read_request(&mut s, &mut buf).expect("first");
            let b = read_request(&mut s, &mut buf).expect("second");
            // Answer the second first; the controller id tells them apart.
            answer(&mut s, b.request_id, metadata_response(2));
            answer(&mut s, a.request_id, metadata_response(1));
            let _ = read_request(&mut s, &mut buf);
        });
        let conn = Connection::connect(addr, &config(), Arc::default()).expect("connect");
        let req: Request = MetadataRequest { topics: None }.into();
        let first = conn
            .send_pending(&req, Duration::from_secs(2))
            .expect("send");
        let second = conn
            .send_pending(&req, Duration::from_secs(2))
            .expect("send");
        let controller = |r: Result<Response, ClientError>| match r.expect("response") {
            Response::Metadata(m) => m.controller_id,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(controller(second.wait()), Some(2));
        assert_eq!(controller(first.wait()), Some(1));
        conn.close();
        broker.join().expect("broker");
    }

    #[test]
    fn a_closed_socket_fails_waiters_with_a_clear_error() {
        let (addr, broker) = fake_broker(|mut s, mut buf| {
            let _ = read_request(&mut s, &mut buf);
            drop(s);
        });
        let conn = Connection::connect(addr, &config(), Arc::default()).expect("connect");
        let err = conn
            .call(
                MetadataRequest { topics: None }.into(),
                Duration::from_secs(2),
            )
            .expect_err("closed");
        assert!(
            err.to_string().contains("closed by broker"),
            "unexpected error: {err}"
        );
        assert!(conn.is_closed());
        let again = conn.call(
            MetadataRequest { topics: None }.into(),
            Duration::from_secs(1),
        );
        assert!(again.is_err());
        broker.join().expect("broker");
    }

    #[test]
    fn a_request_without_answer_times_out() {
        let (addr, broker) = fake_broker(|mut s, mut buf| {
            let _ = read_request(&mut s, &mut buf);
            // Hold the connection open without answering until the client closes it.
            let _ = read_request(&mut s, &mut buf);
        });
        let conn = Connection::connect(addr, &config(), Arc::default()).expect("connect");
        let started = Instant::now();
        let err = conn
            .call(
                MetadataRequest { topics: None }.into(),
                Duration::from_millis(200),
            )
            .expect_err("times out");
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!conn.is_closed(), "a timeout alone keeps the connection");
        conn.close();
        broker.join().expect("broker");
    }

    #[test]
    fn unreachable_broker_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = Connection::connect(addr, &config(), Arc::default()).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("broker unreachable at {addr}: ")),
            "{text}"
        );
    }

    #[test]
    fn in_flight_bound_blocks_senders_until_a_slot_frees() {
        let (addr, broker) = fake_broker(|mut s, mut buf| {
            let mut ids = Vec::new();
            for _ in 0..2 {
                ids.push(read_request(&mut s, &mut buf).expect("request").request_id);
            }
            thread::sleep(Duration::from_millis(150));
            answer(&mut s, ids[0], metadata_response(0));
            let third = read_request(&mut s, &mut buf).expect("third");
            answer(&mut s, ids[1], metadata_response(0));
            answer(&mut s, third.request_id, metadata_response(0));
            let _ = read_request(&mut s, &mut buf);
        });
        let mut cfg = config();
        cfg.in_flight_max = 2;
        let conn = Connection::connect(addr, &cfg, Arc::default()).expect("connect");
        let req: Request = MetadataRequest { topics: None }.into();
        let a = conn.send_pending(&req, Duration::from_secs(2)).expect("a");
        let b = conn.send_pending(&req, Duration::from_secs(2)).expect("b");
        let started = Instant::now();
        let c = conn.send_pending(&req, Duration::from_secs(2)).expect("c");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "the third send waited for a slot"
        );
        for p in [a, b, c] {
            p.wait().expect("answered");
        }
        conn.close();
        broker.join().expect("broker");
    }
}
