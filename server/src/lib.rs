//! meshscope server library: the store, the writer thread, ingest, online
//! migrations and the HTTP API. The `meshscope` binary (`main.rs`, with its
//! other commands in `cmd/`) parses the command line and dispatches here.

pub mod api;
pub mod backoff;
pub mod cache;
pub mod clock;
pub mod config;
pub mod db;
pub mod decoder;
mod fields;
pub mod health;
pub mod heard;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod latency;
pub mod logging;
pub mod mesh;
pub mod metrics;
pub mod migrate;
pub mod mqtt;
mod panics;
pub mod ratelimit;
pub mod serve;
pub mod settings;
pub mod status;
pub mod store;
pub mod writer;
