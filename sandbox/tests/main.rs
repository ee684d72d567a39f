//! Integration tests of the sandbox backends against the real thing: bubblewrap, cgroups and
//! seccomp on this host, and a real Docker engine when one answers.

mod util;

mod docker;
mod egress;
mod process;
mod reports;
mod suite;
