//! Integration tests of the `plancd` binary: one test binary, a small harness in `util`.

#![allow(clippy::unwrap_used)] // tests say what they expect by failing loudly

mod action;
mod broken;
mod browser;
mod cli;
mod cli_clients;
mod commands;
mod damage;
mod dashboard;
mod deploy;
mod docker_sessions;
mod egress;
mod environments;
mod examples;
mod fake_github;
mod gateway;
mod github;
mod guard;
mod init;
mod lifecycle;
mod live;
mod manage;
mod models;
mod observe;
mod operations;
mod pypi_agents;
mod quality;
mod reconcile;
mod replicas;
mod sandbox;
mod serve;
mod stalled;
mod stress;
mod traces;
mod triage;
mod util;
