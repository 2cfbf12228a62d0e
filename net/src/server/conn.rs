//! One client connection on one shard: read frames, start each request, write the
//! responses back in request order.
//!
//! Two tasks share the socket: the reader cuts and decodes frames and starts requests
//! (produce appends happen right there, in order); the writer awaits each request's
//! response in turn and writes it with one vectored write. The bytes of requests read but
//! not yet answered are bounded (`connection_inflight_bytes`): past it the reader stops
//! reading, TCP fills up, and the producer slows down instead of the broker growing.

use std::cell::Cell;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use event_listener::Event;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::constants::{
    CONNECTION_FIRST_READ_BYTES, CONNECTION_INFLIGHT_REQUESTS_MAX, CONNECTION_READ_BYTES,
    CONNECTION_WAIT_READ_BYTES,
};
use crate::protocol::{decode_request, ApiKey, Encoder, FrameSplitter, OutFrame};
use crate::read_buffer::ReadBuffer;
use crate::server::handlers::{dispatch, Pending};
use crate::server::metrics::{response_error, ShardMetrics};
use crate::server::shard::Shard;

/// Request bytes a connection may hold unanswered.
struct Budget {
    available: Cell<usize>,
    max: usize,
    freed: Event,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            available: Cell::new(max),
            max,
            freed: Event::new(),
        }
    }

    /// Takes `n` bytes (at most the whole budget, so one huge frame still passes alone).
    async fn acquire(&self, n: usize) -> usize {
        let n = n.min(self.max);
        loop {
            if self.available.get() >= n {
                self.available.set(self.available.get() - n);
                return n;
            }
            let listener = self.freed.listen();
            if self.available.get() >= n {
                continue;
            }
            listener.await;
        }
    }

    fn release(&self, n: usize) {
        self.available.set(self.available.get() + n);
        assert!(self.available.get() <= self.max, "released more than taken");
        self.freed.notify(usize::MAX);
    }
}

enum Reply {
    /// A request being served: its id and version, the bytes it holds, its response,
    /// and for the metrics its API and when it was decoded.
    Pending {
        id: u32,
        version: u16,
        held: usize,
        response: Pending,
        api: ApiKey,
        decoded: Instant,
    },
    /// An error answer built by the reader (undecodable request), then maybe close.
    Ready { frame: OutFrame, held: usize },
}

/// Serves one connection until the client closes it, sends garbage that has no header to
/// answer, or the broker shuts down.
pub(crate) async fn serve<S>(shard: Rc<Shard>, stream: S)
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin + 'static,
{
    let fd = stream.as_raw_fd();
    let metrics = shard.metrics.shard(shard.id).clone();
    let _open = metrics.connection_opened();
    let (reader, writer) = futures_lite::io::split(stream);
    let budget = Rc::new(Budget::new(shard.config.connection_inflight_bytes));
    let (tx, rx) = local_channel::new_bounded(CONNECTION_INFLIGHT_REQUESTS_MAX);
    let writer_task = {
        let budget = budget.clone();
        glommio::spawn_local(async move { write_loop(writer, rx, &budget, &metrics).await })
    };
    if let Err(e) = read_loop(&shard, fd, reader, &tx, &budget).await {
        tracing::debug!(error = %e, "connection read ended");
    }
    drop(tx);
    if let Err(e) = writer_task.await {
        tracing::debug!(error = %e, "connection write ended");
    }
}

/// Reads frames from `fd` (the socket `reader` reads too, for waiting) and serves them.
async fn read_loop<R: AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    fd: RawFd,
    mut reader: R,
    tx: &LocalSender<Reply>,
    budget: &Budget,
) -> std::io::Result<()> {
    // Sized by the first read: a connection that never sends holds a few KiB, not 64.
    let mut rb = ReadBuffer::default();
    let mut wait_buf = vec![0u8; CONNECTION_WAIT_READ_BYTES].into_boxed_slice();
    let mut read_bytes = CONNECTION_FIRST_READ_BYTES;
    let mut splitter = FrameSplitter::new();
    loop {
        loop {
            let buf = rb.bytes();
            let frame = match splitter.next_frame(buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    // Nothing after a bad length can be trusted: answer if the header can
                    // be read, then close.
                    shard.metrics.shard(shard.id).request_undecodable();
                    let mut enc = Encoder::new();
                    if let Some(frame) = enc.failure_reply(buf, &e) {
                        let _ = tx.send(Reply::Ready { frame, held: 0 }).await;
                    }
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    ));
                }
            };
            let held = budget.acquire(frame.len()).await;
            let reply = match decode_request(frame.clone()) {
                Ok(d) => Reply::Pending {
                    id: d.request_id,
                    version: d.api_version,
                    held,
                    api: d.request.api_key(),
                    decoded: Instant::now(),
                    response: dispatch(shard, d.request, frame.len()).await,
                },
                Err(e) => {
                    shard.metrics.shard(shard.id).request_undecodable();
                    let mut enc = Encoder::new();
                    match enc.failure_reply(&frame, &e) {
                        Some(frame) => Reply::Ready { frame, held },
                        None => {
                            budget.release(held);
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                e.to_string(),
                            ));
                        }
                    }
                }
            };
            if tx.send(reply).await.is_err() {
                return Ok(()); // the writer is gone (socket closed)
            }
        }
        if shard.shutting_down.get() {
            return Ok(());
        }
        let want = splitter.bytes_needed(rb.bytes()).max(read_bytes);
        read_bytes = CONNECTION_READ_BYTES;
        let n = match rb.recv(fd, want, libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Nothing there yet: wait through glommio's reactor with a small read
                // (copied), then go on reading directly.
                let n = reader.read(&mut wait_buf).await?;
                rb.extend(&wait_buf[..n]);
                n
            }
            read => read?,
        };
        if n == 0 {
            return Ok(()); // closed by the client
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    rx: LocalReceiver<Reply>,
    budget: &Budget,
    metrics: &Arc<ShardMetrics>,
) -> std::io::Result<()> {
    let mut enc = Encoder::new();
    while let Some(reply) = rx.recv().await {
        let (frame, held, done) = match reply {
            Reply::Ready { frame, held } => (Some(frame), held, None),
            Reply::Pending {
                id,
                version,
                held,
                response,
                api,
                decoded,
            } => {
                let resp = response.await;
                let error = response_error(resp.as_ref());
                let frame =
                    match resp {
                        None => None,
                        Some(r) => Some(enc.response(id, version, &r).map_err(|e| {
                            std::io::Error::other(format!("encoding a response: {e}"))
                        })?),
                    };
                (frame, held, Some((api, error, decoded)))
            }
        };
        let res = match &frame {
            Some(f) => write_frame(&mut writer, f).await,
            None => Ok(()),
        };
        budget.release(held);
        res?;
        if let Some((api, error, decoded)) = done {
            metrics.request_done(api, error, decoded.elapsed());
        }
    }
    writer.close().await
}

/// Writes a frame's chunks (header and body, then the record batches as stored) with
/// vectored writes.
async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &OutFrame,
) -> std::io::Result<()> {
    let chunks: Vec<&[u8]> = frame
        .chunks()
        .map(|b| &b[..])
        .filter(|c| !c.is_empty())
        .collect();
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = writer.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "socket closed while writing",
            ));
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}
