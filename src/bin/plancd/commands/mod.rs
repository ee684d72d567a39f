//! One module per verb: argument types, a call into `plancd::ops`, and printing.

pub mod completions;
pub mod graph;
pub mod validate;

use std::process::ExitCode;

/// Exit code: bad input (plan, configuration, arguments).
pub const EXIT_INPUT: u8 = 2;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// Bad input: exit 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: EXIT_INPUT, error: error.into() }
    }
}

/// Prints `failure` with its causes and returns its exit code.
pub fn fail(failure: &Failure) -> ExitCode {
    eprintln!("error: {:#}", failure.error);
    ExitCode::from(failure.code)
}

/// How command output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
}
