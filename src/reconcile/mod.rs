//! Reconciliation: a [`Snapshot`] of the desired state is compared with the actual state in the
//! refs by [`decide`]; the [`Executor`] performs the actions, one attempt per task at a time, in
//! dependency order, each attempt a claim, a sandboxed run and a commit point.

pub mod attempt;
mod decide;
pub mod door;
pub mod environment;
pub mod executor;
pub mod guard;
pub mod input;
pub mod lifecycle;
pub mod operations;
pub mod outcome;
pub mod preflight;
mod snapshot;
pub mod upstream;
pub mod workspace;

pub use attempt::{AttemptEnd, AttemptPlan, BranchPlan, PassContext};
pub use decide::{Action, Actual, Blocker, Context, Desired, DesiredTask, DesiredWorkflow, RunReason, decide};
pub use executor::{Event, EventSink, Executor, PassReport, UpstreamPart, read_actual};
pub use snapshot::{LoadError, Snapshot, StallReason, StalledWorkflow};
pub use upstream::Upstream;

#[cfg(test)]
mod tests;
