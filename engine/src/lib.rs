//! cfa storage engine: partition logs on disk.
//!
//! No sockets, no protocol, no knowledge of other brokers. See ARCHITECTURE.md.

pub mod batch;
pub mod batch_cache;
pub mod clock;
pub mod compression;
pub mod config;
pub mod constants;
pub mod error;
pub mod index;
pub mod log;
pub mod malloc_tuning;
pub mod manager;
pub mod segment;
pub mod staging;
pub mod storage;
pub mod tuning;

pub use crate::batch::{BatchBuilder, BatchHeader, Codec, ProducerStamp, Record};
pub use crate::clock::{Clock, ClockRef, ManualClock, SystemClock};
pub use crate::config::{FlushPolicy, LogConfig};
pub use crate::error::{BatchError, LogError, LogResult};
pub use crate::log::{AppendInfo, Durability, LogOffsets, PartitionLog, StopSignal};
pub use crate::manager::{LogManager, PartitionId};
