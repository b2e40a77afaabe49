//! meshscope server library: the store, the writer thread, ingest, the HTTP
//! API and the CLI commands. `main.rs` only parses the command line and
//! dispatches here.

pub mod api;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod decoder;
pub mod ingest;
pub mod metrics;
pub mod migrate;
pub mod mqtt;
pub mod ratelimit;
pub mod seed;
pub mod serve;
pub mod status;
pub mod writer;
