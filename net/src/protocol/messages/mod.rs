//! Domain types of every API (plain Rust, never flatbuffers types) and their bodies.

pub mod common;
pub mod fetch;
pub mod groups;
pub mod handshake;
pub mod produce;
pub mod topics;

pub use common::*;
pub use fetch::*;
pub use groups::*;
pub use handshake::*;
pub use produce::*;
pub use topics::*;
