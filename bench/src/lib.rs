//! The load generator behind `cfa bench`: workload files (bench/workloads/*.toml), the
//! open-loop driver that runs them against an embedded or external broker through the
//! client SDK, HDR-histogram reports, plots, and the side-by-side comparison with the
//! baseline brokers in ../shared/baselines. The storage engine alone is `engine_bench`.

pub mod baselines;
pub mod compare;
pub mod constants;
pub mod counting_storage;
pub mod disk_probe;
pub mod driver;
pub mod engine_bench;
pub mod floor;
pub mod gen;
pub mod machine;
pub mod plot;
pub mod report;
pub mod results;
pub mod stats;
pub mod workload;
