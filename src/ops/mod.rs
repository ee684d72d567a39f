//! The operations behind the command line, one module per verb. Each takes an options struct
//! and returns a report; printing is the binary's job.

pub mod graph;
pub mod sandbox;
pub mod validate;
