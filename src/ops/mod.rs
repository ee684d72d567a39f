//! The operations behind the command line, one module per verb. Each takes an options struct
//! and returns a report; printing is the binary's job.

pub mod action;
pub mod approve;
pub mod demo;
pub mod describe;
pub mod drift;
pub mod events;
pub mod graph;
pub mod init;
pub mod logs;
pub mod manage;
pub mod plan;
pub mod reconcile;
pub mod retry;
pub mod sandbox;
pub mod serve;
pub mod status;
pub mod suspend;
pub mod triage;
pub mod validate;
