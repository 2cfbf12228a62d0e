//! The receive buffer of a connection (broker and client side): bytes read from a socket
//! accumulate at its end and frames are cut off its front ([`FrameSplitter`]).
//!
//! A socket read needs an initialised `&mut [u8]`. Zero-filling the spare room before
//! every read (`BytesMut::resize`) cost as much as the read itself: a read asks for the
//! rest of a large frame (up to 32 MiB), gets 64 KiB, and the next read zeroed the rest
//! again, 2.8% of a max-rate run's CPU. This buffer remembers how far past its end the
//! memory of the current allocation is already initialised, so each byte of an
//! allocation is zeroed at most once; cutting frames off the front (`split_to`) and
//! truncating never de-initialise memory, and a move to a new allocation resets it.
//!
//! [`FrameSplitter`]: crate::protocol::FrameSplitter

use bytes::BytesMut;

#[derive(Debug, Default)]
pub struct ReadBuffer {
    buf: BytesMut,
    /// Bytes right after `buf.len()`, inside `buf`'s allocation, that hold initialised
    /// memory (zeroes or stale data) and may be handed to a read without zeroing.
    initialised_spare: usize,
}

impl ReadBuffer {
    pub fn with_capacity(bytes: usize) -> ReadBuffer {
        ReadBuffer {
            buf: BytesMut::with_capacity(bytes),
            initialised_spare: 0,
        }
    }

    /// The received bytes not yet cut into frames.
    pub fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Room for a read of up to `want` bytes at the end, initialised. Call
    /// [`ReadBuffer::filled`] with the count the read returned before anything else.
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        assert!(want > 0, "a read wants at least one byte");
        let len = self.buf.len();
        let before = self.buf.as_ptr();
        self.buf.reserve(want);
        if self.buf.as_ptr() != before {
            // New memory (or the data moved within it): nothing past the end is known.
            self.initialised_spare = 0;
        }
        let reuse = self.initialised_spare.min(want);
        assert!(len + reuse <= self.buf.capacity());
        // SAFETY: the `reuse` bytes after `len` lie in the same allocation at the same
        // address as when an earlier `resize` initialised them (the pointer check
        // above), and neither `split_to` nor `truncate` de-initialises memory, so the
        // slice below covers initialised bytes only.
        unsafe { self.buf.set_len(len + reuse) };
        self.buf.resize(len + want, 0); // zeroes only the part never initialised
        self.initialised_spare = self.initialised_spare.max(want);
        &mut self.buf[len..]
    }

    /// A read into [`ReadBuffer::spare`] of `want` bytes returned `n`.
    pub fn filled(&mut self, want: usize, n: usize) {
        assert!(n <= want, "a read returns at most what it was given");
        let len = self.buf.len() - want;
        self.buf.truncate(len + n);
        self.initialised_spare -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random reads (with random counts), frame cuts and clears against a plain
        /// `Vec` model: the buffer always holds exactly the bytes read and not cut.
        #[test]
        fn matches_a_vec_model(ops in proptest::collection::vec((0u8..3, 1usize..5000, 0usize..5000), 1..200)) {
            let mut rb = ReadBuffer::with_capacity(64);
            let mut model: Vec<u8> = Vec::new();
            let mut next = 0u8;
            for (op, want, n) in ops {
                match op {
                    0 => {
                        let n = n.min(want);
                        let spare = rb.spare(want);
                        prop_assert_eq!(spare.len(), want);
                        for b in &mut spare[..n] {
                            *b = next;
                            model.push(next);
                            next = next.wrapping_add(1);
                        }
                        rb.filled(want, n);
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
                prop_assert!(rb.bytes().len() + rb.initialised_spare <= rb.bytes().capacity());
            }
        }
    }

    #[test]
    fn reads_accumulate_and_frames_cut_from_the_front() {
        let mut rb = ReadBuffer::with_capacity(16);
        let spare = rb.spare(8);
        assert_eq!(spare.len(), 8);
        spare[..3].copy_from_slice(b"abc");
        rb.filled(8, 3);
        let spare = rb.spare(8);
        spare[..2].copy_from_slice(b"de");
        rb.filled(8, 2);
        assert_eq!(&rb.bytes()[..], b"abcde");
        let front = rb.bytes().split_to(2);
        assert_eq!(&front[..], b"ab");
        let spare = rb.spare(4);
        spare.copy_from_slice(b"fghi");
        rb.filled(4, 4);
        assert_eq!(&rb.bytes()[..], b"cdefghi");
    }

    #[test]
    fn grows_past_the_capacity_and_keeps_the_data() {
        let mut rb = ReadBuffer::with_capacity(4);
        for round in 0..100u8 {
            let spare = rb.spare(1000);
            spare[0] = round;
            rb.filled(1000, 1);
        }
        let want: Vec<u8> = (0..100).collect();
        assert_eq!(&rb.bytes()[..], &want[..]);
        // Zero bytes read (a closed socket) leave the data as it was.
        rb.spare(10);
        rb.filled(10, 0);
        assert_eq!(rb.bytes().len(), 100);
    }

    #[test]
    fn spare_never_exceeds_the_initialised_count() {
        let mut rb = ReadBuffer::with_capacity(64);
        rb.spare(64);
        rb.filled(64, 10);
        assert_eq!(rb.initialised_spare, 54);
        rb.spare(20);
        rb.filled(20, 20);
        assert_eq!(rb.initialised_spare, 34);
        rb.bytes().clear();
        // Still the same allocation after clear: the spare count stands.
        assert!(rb.initialised_spare <= rb.bytes().capacity());
    }
}
