//! The words a record gives for itself: [`Reason`] (CamelCase, Flux style, why a record's phase
//! is what it is) and [`FailureType`] (snake_case, the seed's failure types). Both are enums in
//! code and strings only in `status.json`, trailers, PR bodies and metric labels. A word written
//! by a later version is kept as it is (`Other`), so old readers never drop it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string-backed enum with a catch-all `Other(String)` variant.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A word this version does not know (written by a later one, or configured).
            Other(String),
        }

        impl $name {
            /// Every known word, for tables and tests.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The word as written in records.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)*
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Reads a word; an unknown one is kept as `Other`.
            pub fn parse(s: &str) -> $name {
                match s {
                    $($word => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

words! {
    /// Why a record says what it says.
    Reason {
        /// A holder took the task.
        Claimed = "Claimed",
        /// A holder took the task over from a dead or expired one.
        TakenOver = "TakenOver",
        /// The acceptance tests passed on a candidate; it is being published.
        Verified = "Verified",
        /// The result is published and accepted.
        Succeeded = "Succeeded",
        /// A result that an interrupted run of this same attempt verified and published is recorded.
        Adopted = "Adopted",
        /// The attempt did not pass.
        AttemptFailed = "AttemptFailed",
        /// Its acceptance tests failed and a branch todo debugs it.
        BranchTodoOpened = "BranchTodoOpened",
        /// A branch todo's work still fails; a deeper branch goes on from it.
        Deepened = "Deepened",
        /// A branch todo's work passed the parent's tests.
        Resolved = "Resolved",
        /// A branch todo is closed because its parent moved on (a new spec, a new dependency
        /// result, a retry).
        Superseded = "Superseded",
        /// A branch todo used up its attempts.
        BranchAttemptsExhausted = "BranchAttemptsExhausted",
        /// No branch depth is left.
        MaxBranchDepth = "MaxBranchDepth",
        /// The tests and the specification disagree.
        SpecMismatch = "SpecMismatch",
        /// A spending limit was reached.
        BudgetExceeded = "BudgetExceeded",
        /// The pass was stopped; the claim is given back.
        Cancelled = "Cancelled",
        /// The sandbox failed; the claim is given back.
        SandboxError = "SandboxError",
        /// The model's API failed; the claim is given back.
        ModelError = "ModelError",
        /// Git failed while recording the work; the claim is given back.
        GitError = "GitError",
        /// The remote refused or could not be reached; the claim is given back.
        RemoteError = "RemoteError",
        /// The agent wrote what cannot be committed (under `.git/`, a name git refuses).
        UncommittableWork = "UncommittableWork",
        /// The result would add or change a protected path.
        ProtectedPath = "ProtectedPath",
        /// The tests could be made to pass without the code under test being right.
        TestTampering = "TestTampering",
        /// A declared output is missing from the work.
        MissingOutputs = "MissingOutputs",
        /// A person asked for another attempt.
        RetryRequested = "RetryRequested",
        /// A reviewer asked for changes.
        RevisionRequested = "RevisionRequested",
        /// A person approved the spec.
        Approved = "Approved",
        /// The task waits for a person's approval.
        NeedsApproval = "NeedsApproval",
        /// No plan names the task any more.
        Orphaned = "Orphaned",
        /// The workflow's plan is invalid.
        PlanInvalid = "PlanInvalid",
        /// The result is published; its pull request waits for the forge (a cap or a failure).
        PullRequestPending = "PullRequestPending",
        /// The environment's setup failed: the task waits for `environment.setup` to change.
        EnvironmentFailed = "EnvironmentFailed",
        /// The environment lacks what the tests need (their runner, a package that is not a
        /// module of the repository): the task waits for `environment.setup` to change.
        EnvironmentIncomplete = "EnvironmentIncomplete",
    }
}

words! {
    /// What kind of failure an attempt met (the seed's `failure_type`s and plancd's own).
    FailureType {
        /// The agent did not finish.
        AgentError = "agent_error",
        /// The agent repeated itself or went idle.
        Stuck = "stuck",
        /// A deadline was reached.
        Timeout = "timeout",
        /// A declared output is missing.
        MissingOutputs = "missing_outputs",
        /// A configured check failed.
        CheckFailed = "check_failed",
        /// An acceptance test failed (before triage).
        TestFailure = "test_failure",
        /// The code is wrong.
        ImplementationBug = "implementation_bug",
        /// The tests and the specification disagree.
        SpecMismatch = "spec_mismatch",
        /// A package is missing.
        MissingDependency = "missing_dependency",
        /// The test passes on a second run.
        FlakyTest = "flaky_test",
        /// A crash.
        Segfault = "segfault",
        /// Nothing says why.
        Unknown = "unknown",
        /// Something outside the work failed.
        Infrastructure = "infrastructure",
        /// A spending limit.
        BudgetExceeded = "budget_exceeded",
        /// The work touched a protected path.
        ProtectedPath = "protected_path",
        /// The work changed how the tests run.
        TestTampering = "test_tampering",
        /// The work cannot be committed.
        Uncommittable = "uncommittable",
        /// The environment (not the code) is incomplete.
        Environment = "environment",
        /// The acceptance tests pass but cover less of the code than the task's
        /// `acceptance_criteria.coverage_min` (or the coverage could not be measured).
        CoverageBelowMinimum = "coverage_below_minimum",
    }
}

impl Reason {
    /// Whether the record says the environment, not the work, failed: such a task, and every
    /// task with the same environment, waits until the environment changes.
    pub fn is_environment(&self) -> bool {
        matches!(self, Reason::EnvironmentFailed | Reason::EnvironmentIncomplete)
    }
}

impl Reason {
    /// The reason in words, for people reading an audit trail.
    pub fn describe(&self) -> &str {
        match self {
            Reason::Claimed => "a controller took the task and starts an attempt",
            Reason::TakenOver => "taken over from a holder that died or whose lease ran out",
            Reason::Verified => "the acceptance tests passed; the result is being published",
            Reason::Succeeded => "the result is published and accepted",
            Reason::Adopted => "a result this attempt published before an interruption is recorded",
            Reason::AttemptFailed => "the attempt did not pass",
            Reason::BranchTodoOpened => "the acceptance tests failed; a branch todo debugs the work",
            Reason::Deepened => "the branch todo's work still fails; a deeper branch goes on from it",
            Reason::Resolved => "the branch todo's work passed the parent's tests",
            Reason::Superseded => "closed: the parent moved on (new spec, new dependency result or a retry)",
            Reason::BranchAttemptsExhausted => "the branch todo used up its attempts",
            Reason::MaxBranchDepth => "no branch depth is left; handed to a person",
            Reason::SpecMismatch => "the tests and the specification disagree",
            Reason::BudgetExceeded => "a spending limit was reached",
            Reason::Cancelled => "the pass was stopped; the claim is given back",
            Reason::SandboxError => "the sandbox failed; the claim is given back",
            Reason::ModelError => "the model's API failed; the claim is given back",
            Reason::GitError => "git failed while recording the work; the claim is given back",
            Reason::RemoteError => "the remote refused or could not be reached; the claim is given back",
            Reason::UncommittableWork => "the agent wrote what cannot be committed",
            Reason::ProtectedPath => "the result would add or change a protected path",
            Reason::TestTampering => "the tests could be made to pass without the code being right",
            Reason::MissingOutputs => "a declared output is missing from the work",
            Reason::RetryRequested => "a person asked for another attempt",
            Reason::RevisionRequested => "a reviewer asked for changes",
            Reason::Approved => "a person approved the spec",
            Reason::NeedsApproval => "waits for a person's approval (plancd approve)",
            Reason::Orphaned => "no plan names the task any more",
            Reason::PlanInvalid => "the workflow's plan is invalid",
            Reason::PullRequestPending => "the result is published; its pull request waits for the forge",
            Reason::EnvironmentFailed => "the environment's setup failed; the task waits for environment.setup to change",
            Reason::EnvironmentIncomplete => "the environment lacks what the tests need; the task waits for environment.setup to change",
            Reason::Other(word) => word,
        }
    }
}

impl FailureType {
    /// Whether a branch todo can help: a failure of the work that an agent could fix. A refused
    /// result (protected path, tampering), a spent budget or a broken environment is not one.
    pub fn is_debuggable(&self) -> bool {
        !matches!(
            self,
            FailureType::BudgetExceeded
                | FailureType::ProtectedPath
                | FailureType::TestTampering
                | FailureType::Uncommittable
                | FailureType::Infrastructure
                | FailureType::Environment
                | FailureType::AgentError
                | FailureType::Stuck
        )
    }

    /// The seed's `branch_reason` for this type (its finer types folded into `test_failure`).
    pub fn branch_reason(&self) -> &'static str {
        match self {
            FailureType::SpecMismatch => "spec_mismatch",
            FailureType::Timeout => "timeout",
            FailureType::ImplementationBug => "implementation_bug",
            FailureType::MissingDependency => "missing_dependency",
            FailureType::FlakyTest => "flaky_test",
            _ => "test_failure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_kept() {
        for r in Reason::ALL {
            assert_eq!(&Reason::parse(r.as_str()), r);
            assert!(r.as_str().chars().next().is_some_and(|c| c.is_ascii_uppercase()), "{r} is CamelCase");
        }
        for f in FailureType::ALL {
            assert_eq!(&FailureType::parse(f.as_str()), f);
            assert!(f.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{f} is snake_case");
        }
        for r in Reason::ALL {
            assert!(!r.describe().is_empty() && r.describe() != r.as_str(), "{r} has words for people");
        }
        let later: Reason = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(later, Reason::Other("SomethingNew".into()));
        assert_eq!(serde_json::to_string(&later).unwrap(), "\"SomethingNew\"");
        assert_eq!(serde_json::to_string(&FailureType::SpecMismatch).unwrap(), "\"spec_mismatch\"");
    }
}
