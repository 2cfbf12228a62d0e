//! cfa cluster layer: consumer-group coordination (this crate will also hold the metadata
//! controller, partition placement and replication).
//!
//! Logic and state machines only: no sockets, no files, no async. The network layer
//! drives them and turns their outputs into responses and log appends.

pub mod constants;
pub mod group;
