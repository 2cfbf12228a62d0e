//! The receive buffer of a connection (broker and client side): bytes read from a socket
//! accumulate at its end and frames are cut off its front ([`FrameSplitter`]).
//!
//! Reads go straight from the socket into the buffer's uninitialised spare capacity
//! (`recv(2)` on the descriptor). `std::io::Read` and glommio's `AsyncRead` take an
//! initialised `&mut [u8]`, so the spare room had to be zero-filled first: 2.6% of a
//! max-rate run's CPU even when each byte of an allocation was zeroed only once, because
//! a frame's memory leaves with the frame and every large frame lands in a fresh
//! allocation.
//!
//! [`FrameSplitter`]: crate::protocol::FrameSplitter

use std::io;
use std::os::fd::RawFd;

use bytes::BytesMut;

#[derive(Debug, Default)]
pub struct ReadBuffer {
    buf: BytesMut,
}

impl ReadBuffer {
    pub fn with_capacity(bytes: usize) -> ReadBuffer {
        ReadBuffer {
            buf: BytesMut::with_capacity(bytes),
        }
    }

    /// The received bytes not yet cut into frames.
    pub fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// One `recv(2)` of up to `want` bytes from `fd` with `flags` (e.g.
    /// `libc::MSG_DONTWAIT`) appended to the buffer; retried on EINTR. `Ok(0)` is the
    /// peer's end of stream; a socket with nothing to read gives `WouldBlock` (or the
    /// receive timeout's `WouldBlock`).
    pub fn recv(&mut self, fd: RawFd, want: usize, flags: libc::c_int) -> io::Result<usize> {
        assert!(want > 0, "a read wants at least one byte");
        self.make_room(want);
        let len = self.buf.len();
        let spare = self.buf.spare_capacity_mut();
        assert!(spare.len() >= want, "reserve made room");
        let n = loop {
            // SAFETY: `spare` is memory owned by `buf`, at least `want` bytes long and
            // borrowed mutably for the call: the kernel writes at most `want` bytes
            // into it through the pointer and nothing else aliases it. Writing into
            // uninitialised bytes through a raw pointer is allowed.
            let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), want, flags) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        assert!(n <= want, "recv returns at most what it was given");
        // SAFETY: recv initialised the first `n` bytes of the spare capacity, which
        // follows the `len` initialised bytes of the buffer.
        unsafe { self.buf.set_len(len + n) };
        Ok(n)
    }

    /// Appends bytes read elsewhere (a read that had to wait through the runtime).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Room for `n` more bytes. When there is not enough, the bytes held move to a new
    /// allocation of exactly what they and the `n` need: `BytesMut::reserve` may double a
    /// buffer it holds alone, and the frames cut from it (whose record batches the broker
    /// keeps, uncopied) would then keep up to twice their size alive. So a read of the rest
    /// of a frame (`n` = what it lacks) ends its allocation at the frame's end.
    fn make_room(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() >= n {
            return;
        }
        let mut fresh = BytesMut::with_capacity(self.buf.len() + n);
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
    }

    /// Bytes the current allocation can still take without moving.
    #[cfg(test)]
    fn spare_bytes(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    proptest! {
        /// Random writes, reads of random sizes, frame cuts and clears against a plain
        /// `Vec` model: the buffer always holds exactly the bytes read and not cut.
        #[test]
        fn matches_a_vec_model(ops in proptest::collection::vec((0u8..3, 1usize..5000, 0usize..5000), 1..200)) {
            let (mut peer, socket) = UnixStream::pair().expect("socket pair");
            let fd = socket.as_raw_fd();
            let mut rb = ReadBuffer::with_capacity(64);
            let mut model: Vec<u8> = Vec::new();
            let mut next = 0u8;
            for (op, want, n) in ops {
                match op {
                    0 => {
                        let sent: Vec<u8> = (0..n.min(want)).map(|_| {
                            next = next.wrapping_add(1);
                            next
                        }).collect();
                        peer.write_all(&sent).expect("write");
                        let mut got = 0;
                        while got < sent.len() {
                            got += rb.recv(fd, want, 0).expect("recv");
                        }
                        model.extend_from_slice(&sent);
                        if sent.is_empty() {
                            let empty = rb.recv(fd, want, libc::MSG_DONTWAIT);
                            prop_assert_eq!(empty.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
                        }
                    }
                    1 => {
                        let cut = n.min(model.len());
                        let front = rb.bytes().split_to(cut);
                        prop_assert_eq!(&front[..], &model[..cut]);
                        model.drain(..cut);
                    }
                    _ => {
                        if n % 7 == 0 {
                            rb.bytes().clear();
                            model.clear();
                        }
                    }
                }
                prop_assert_eq!(&rb.bytes()[..], &model[..]);
            }
        }
    }

    #[test]
    fn a_read_takes_at_most_what_it_asks_and_grows_the_buffer() {
        let (mut peer, socket) = UnixStream::pair().expect("socket pair");
        let fd = socket.as_raw_fd();
        let mut rb = ReadBuffer::with_capacity(4);
        let data: Vec<u8> = (0..100).collect();
        peer.write_all(&data).expect("write");
        assert_eq!(rb.recv(fd, 30, 0).expect("recv"), 30);
        assert_eq!(&rb.bytes()[..], &data[..30]);
        let front = rb.bytes().split_to(10);
        assert_eq!(&front[..], &data[..10]);
        assert_eq!(rb.recv(fd, 1000, 0).expect("recv"), 70);
        assert_eq!(&rb.bytes()[..], &data[10..]);
        rb.extend(b"xy");
        assert_eq!(&rb.bytes()[90..], b"xy");
    }

    /// The allocation a frame is read into ends where the frame ends, so the frame pins
    /// no more memory than its own length (the broker charges batches by it).
    #[test]
    fn reading_the_rest_of_a_frame_ends_its_allocation_at_the_frame() {
        let (mut peer, socket) = UnixStream::pair().expect("socket pair");
        let fd = socket.as_raw_fd();
        let mut rb = ReadBuffer::with_capacity(64);
        let data: Vec<u8> = (0..200u8).collect();
        peer.write_all(&data).expect("write");
        assert_eq!(rb.recv(fd, 30, 0).expect("recv"), 30);
        // A 100-byte frame lacks 70 bytes; the buffer holds 30 and has room for 34.
        assert_eq!(rb.recv(fd, 70, 0).expect("recv"), 70);
        assert_eq!(rb.spare_bytes(), 0, "allocated exactly the frame");
        let frame = rb.bytes().split_to(100);
        assert_eq!(&frame[..], &data[..100]);
        assert_eq!(rb.recv(fd, 100, 0).expect("recv"), 100);
        assert_eq!(&rb.bytes()[..], &data[100..]);
        assert_eq!(&frame[..], &data[..100], "the cut frame is untouched");
    }

    #[test]
    fn end_of_stream_and_errors_leave_the_data() {
        let (mut peer, socket) = UnixStream::pair().expect("socket pair");
        let fd = socket.as_raw_fd();
        let mut rb = ReadBuffer::default();
        peer.write_all(b"abc").expect("write");
        assert_eq!(rb.recv(fd, 8, 0).expect("recv"), 3);
        let empty = rb.recv(fd, 8, libc::MSG_DONTWAIT);
        assert_eq!(empty.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        drop(peer);
        assert_eq!(rb.recv(fd, 8, 0).expect("end of stream"), 0);
        assert_eq!(&rb.bytes()[..], b"abc");
        let bad = rb.recv(-1, 8, 0);
        assert_eq!(bad.map_err(|e| e.raw_os_error()), Err(Some(libc::EBADF)));
        assert_eq!(&rb.bytes()[..], b"abc");
    }
}
