//! One module per verb: argument types, a call into `plancd::ops`, and printing.

pub mod completions;
pub mod graph;
pub mod sandbox;
pub mod validate;

use std::process::ExitCode;

/// Exit code: bad input (plan, configuration, arguments).
pub const EXIT_INPUT: u8 = 2;

/// Exit code: an outside part (git remote, sandbox engine, model API, forge) failed.
pub const EXIT_OUTSIDE: u8 = 3;

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

    /// An outside part failed: exit 3.
    pub fn outside(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: EXIT_OUTSIDE, error: error.into() }
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
