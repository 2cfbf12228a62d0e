//! The client SDK: what producers and consumers run on the client side.
//!
//! Pure pieces (no I/O) live in their own modules so they can be tested alone:
//! - [`partitioner`]: which partition a record goes to (Kafka's murmur2 for keys, sticky
//!   or round-robin for keyless records).
//!
//! Batch compression is the engine's (`cfa_engine::compression`, used through
//! `BatchBuilder::finish_with` and `batch::decode_records`), since the broker and clients
//! share the batch format.

pub mod partitioner;
