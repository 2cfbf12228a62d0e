//! flatc output for net/schema/*.fbs (namespace `cfa.wire`), re-exported flat.
//!
//! Everything under `fb/` is written by net/schema/generate.sh and checked by
//! net/schema/check-generated.sh; never edit it by hand. This wrapper is the only place that
//! relaxes lints for it: flatc's style (unwraps on verified tables, unsafe accessors with
//! its own safety comments, its own formatting) is not ours, and only
//! `crate::protocol` uses these types.

#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    unsafe_op_in_unsafe_fn,
    unused_imports
)]
mod fb;

pub(crate) use fb::cfa::wire::*;
