//! The load generator behind `cfa bench`.
//!
//! Today it drives the storage engine directly (an embedded engine in a temp dir); the
//! network issue widens it to drive a broker over loopback through the client SDK.

pub mod broker_bench;
pub mod counting_storage;
pub mod disk_probe;
pub mod engine_bench;
pub mod report;
