//! The client SDK: what producers and consumers run on the client side.
//!
//! A plain blocking API with background threads inside (no async runtime asked of the
//! user), on `std::net` sockets:
//! - [`Producer`]: batches records per partition, compresses, sends with acks 0/1/all,
//!   retries idempotently (per-partition sequence numbers), reports each delivery.
//! - [`Consumer`]: consumer groups (join/sync/heartbeat, rebalance callbacks from `poll`)
//!   or manual assignment; fetch with long polling; offsets, seeks and commits.
//! - [`Admin`]: topics, groups and offsets (what the CLI's `topic` and `group` commands
//!   call).
//!
//! ```no_run
//! use std::time::Duration;
//! use cfa_net::client::{Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};
//!
//! # fn main() -> Result<(), cfa_net::client::ClientError> {
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9192"))?;
//! let report = producer.send(ProducerRecord::new("soccer", "goal").with_key("game-42"))?;
//! println!("stored at {:?}", report.wait()?.offset);
//! producer.close();
//!
//! let mut consumer = Consumer::new(ConsumerConfig::new("127.0.0.1:9192", Some("website")))?;
//! consumer.subscribe(&["soccer"], None)?;
//! for record in consumer.poll(Duration::from_secs(1))? {
//!     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//! }
//! consumer.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Layers: [`connection`] (one socket, pipelined requests, a reader thread),
//! [`metadata`] (brokers, topics, leaders, one connection per broker), then the clients.
//! Pure pieces (no I/O) live in their own modules so they can be tested alone:
//! - [`partitioner`]: which partition a record goes to (Kafka's murmur2 for keys, sticky
//!   or round-robin for keyless records).
//! - [`retry`]: the exponential back-off with jitter.
//! - the producer's accumulator and sequence bookkeeping, the consumer's positions and
//!   rebalance sequencing (private submodules, unit-tested).
//!
//! Batch compression is the engine's (`cfa_engine::compression`, used through
//! `BatchBuilder::finish_with` and `batch::decode_records`), since the broker and clients
//! share the batch format.

pub mod admin;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod metadata;
pub mod partitioner;
pub mod producer;
mod requests;
pub mod retry;
pub mod tuning;

pub use admin::{Admin, AdminConfig, GroupDescription, PartitionLag, TopicDescription};
pub use cfa_cluster::group::TopicPartition;
pub use cfa_engine::batch::Header as RecordHeader;
pub use cfa_engine::compression::Compression;
pub use cfa_engine::Codec;
pub use consumer::{
    CommitCallback, CommitResult, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset,
    RebalanceListener,
};
pub use error::ClientError;
pub use metadata::parse_bootstrap;
pub use producer::{
    Acks, DeliveryFuture, DeliveryHandler, DeliveryResult, Producer, ProducerConfig,
    ProducerRecord, ProducerRecordRef, RecordMetadata,
};
