//! Integration tests of the `plancd` binary: one test binary, a small harness in `util`.

#![allow(clippy::unwrap_used)] // tests say what they expect by failing loudly

mod action;
mod broken;
mod cli;
mod deploy;
mod docker_sessions;
mod examples;
mod fake_github;
mod github;
mod manage;
mod models;
mod reconcile;
mod replicas;
mod serve;
mod triage;
mod util;
