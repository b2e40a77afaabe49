//! Types and pure logic shared by the meshscope server and its dashboard.
//!
//! Everything here builds for `wasm32-unknown-unknown`: no tokio, rusqlite or
//! axum, and no clock reads — functions that depend on time take `now` as an
//! argument so both sides (and the tests) compute the same answer.

pub mod api;
pub mod banner;
pub mod fmt;
pub mod liveness;
pub mod migration;
pub mod packet;
pub mod timefmt;
