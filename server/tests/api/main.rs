//! Integration tests: the real router, a real socket, a real SQLite file.

#![allow(unreachable_pub)] // helpers are shared between this binary's modules only
#![allow(clippy::unwrap_used)] // test setup code outside #[test] functions

mod bench;
mod cli;
mod corescope;
mod counts;
mod crash;
mod engine;
mod estimate;
mod fairness;
mod faults;
mod helpers;
mod hostile;
mod index_build;
mod ingest;
mod legacy;
mod mesh;
mod mqtt;
mod nodes;
mod read;
mod retention;
mod status;
mod throttle;
mod wal;
