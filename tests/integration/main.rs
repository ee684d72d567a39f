//! Integration tests of the `plancd` binary: one test binary, a small harness in `util`.

#![allow(clippy::unwrap_used)] // tests say what they expect by failing loudly

mod broken;
mod cli;
mod examples;
mod manage;
mod models;
mod reconcile;
mod util;
