//! What a pass came to, classed as Flux classes reconcile errors: a problem is `Stalled` (a
//! person or a plan change must act), `Waiting` (on a dependency, an approval, another holder) or
//! `Transient` (an outside part failed; try again with backoff). [`error_policy`] turns a class
//! into when to look again, and [`PassReport::exit_code`] is the one place a pass's outcome
//! becomes an exit code.

use std::time::Duration;

use super::attempt::AttemptEnd;
use super::decide::{Action, Blocker};
use super::executor::PassReport;

/// How a problem is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Needs a person or a plan change: retrying changes nothing.
    Stalled,
    /// Waits for something that will happen on its own (a dependency, another holder).
    Waiting,
    /// An outside part failed; the same work may succeed later.
    Transient,
}

impl ErrorClass {
    /// The CamelCase word for status, logs and metric labels.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorClass::Stalled => "Stalled",
            ErrorClass::Waiting => "Waiting",
            ErrorClass::Transient => "Transient",
        }
    }
}

/// When to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Not until something changes (a commit, an operation): the controller's watch brings it.
    OnChange,
    /// After this long.
    After(Duration),
}

/// When to look again after a problem of `class`, the `failures`-th in a row: transient
/// problems back off exponentially from 5 s to 5 min; waiting ones are looked at every 30 s;
/// stalled ones wait for a change.
pub fn error_policy(class: ErrorClass, failures: u32) -> Requeue {
    match class {
        ErrorClass::Stalled => Requeue::OnChange,
        ErrorClass::Waiting => Requeue::After(Duration::from_secs(30)),
        ErrorClass::Transient => {
            let seconds = 5u64.saturating_mul(1 << failures.saturating_sub(1).min(6));
            Requeue::After(Duration::from_secs(seconds.min(300)))
        }
    }
}

impl AttemptEnd {
    /// The class of a problem this end is, if it is one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            AttemptEnd::Succeeded { .. } | AttemptEnd::Adopted { .. } | AttemptEnd::Debugging { .. } | AttemptEnd::Cancelled => None,
            AttemptEnd::Failed { .. } | AttemptEnd::Escalated { .. } => Some(ErrorClass::Stalled),
            AttemptEnd::LostClaim => Some(ErrorClass::Waiting),
            AttemptEnd::Infrastructure(_) => Some(ErrorClass::Transient),
        }
    }
}

impl Action {
    /// The class of the problem a final action stands for, if it is one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Action::Failed { .. }
            | Action::Escalated { .. }
            | Action::NeedsApproval { .. }
            | Action::Suspended { .. }
            | Action::Wait { blocker: Blocker::Environment { .. } | Blocker::Agent { .. }, .. } => Some(ErrorClass::Stalled),
            Action::Wait { blocker: Blocker::Held { .. } | Blocker::Debugging { .. } | Blocker::Dependency { .. }, .. } => {
                Some(ErrorClass::Waiting)
            }
            _ => None,
        }
    }
}

impl PassReport {
    /// The tasks (branch todos and orphans apart) and how many of them are satisfied, failed or
    /// escalated, and waiting for approval.
    pub fn counts(&self) -> Counts {
        let tasks: Vec<&Action> = self.actions.iter().filter(|a| a.is_task()).collect();
        let count = |f: fn(&Action) -> bool| tasks.iter().filter(|a| f(a)).count();
        Counts {
            total: tasks.len(),
            satisfied: count(|a| matches!(a, Action::UpToDate { .. })),
            // A task held by a failed environment, or by an agent that cannot start, needs a
            // person as much as a failed one.
            failed: count(|a| {
                matches!(
                    a,
                    Action::Failed { .. }
                        | Action::Escalated { .. }
                        | Action::Wait { blocker: Blocker::Environment { .. } | Blocker::Agent { .. }, .. }
                )
            }),
            approval: count(|a| matches!(a, Action::NeedsApproval { .. })),
        }
    }

    /// The class of the pass's worst problem: an outside failure first (the pass stopped), then
    /// a task a person must see to.
    pub fn class(&self) -> Option<ErrorClass> {
        if self.infrastructure.is_some() {
            return Some(ErrorClass::Transient);
        }
        // A task a person must see to, a workflow whose plan is invalid, a broken task ref.
        if self.counts().failed > 0 || !self.stalled.is_empty() || !self.broken.is_empty() {
            return Some(ErrorClass::Stalled);
        }
        None
    }

    /// The exit code: 130 stopped by a signal, 3 an outside part failed, 1 a task failed or was
    /// escalated, 0 otherwise (waiting for approval or for other holders is no failure).
    pub fn exit_code(&self) -> u8 {
        if self.cancelled {
            return 130;
        }
        match self.class() {
            Some(ErrorClass::Transient) => 3,
            Some(ErrorClass::Stalled) => 1,
            Some(ErrorClass::Waiting) | None => 0,
        }
    }
}

/// What a pass's tasks came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tasks in the plans (branch todos apart).
    pub total: usize,
    /// Satisfied.
    pub satisfied: usize,
    /// Failed for good or escalated.
    pub failed: usize,
    /// Waiting for approval.
    pub approval: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{FailureType, Phase, TaskKey};

    fn key(t: &str) -> TaskKey {
        TaskKey::new("wf", t)
    }

    #[test]
    fn transient_problems_back_off_and_stalled_ones_wait_for_a_change() {
        let after = |n| match error_policy(ErrorClass::Transient, n) {
            Requeue::After(d) => d.as_secs(),
            Requeue::OnChange => panic!("transient problems are retried"),
        };
        assert_eq!([after(1), after(2), after(3), after(7), after(30)], [5, 10, 20, 300, 300]);
        assert_eq!(error_policy(ErrorClass::Stalled, 3), Requeue::OnChange);
        assert_eq!(error_policy(ErrorClass::Waiting, 1), Requeue::After(Duration::from_secs(30)));
    }

    #[test]
    fn a_pass_maps_to_one_exit_code() {
        let mut report = PassReport { actions: vec![Action::UpToDate { key: key("a") }], ..PassReport::default() };
        assert_eq!(report.exit_code(), 0);
        report.actions.push(Action::NeedsApproval { key: key("b") });
        assert_eq!(report.exit_code(), 0, "waiting for a person's approval is no failure");
        report.actions.push(Action::BranchClosed { key: key("c_branch_01"), phase: Phase::Failed });
        assert_eq!(report.counts(), Counts { total: 2, satisfied: 1, failed: 0, approval: 1 }, "branch todos are not tasks");
        report.actions.push(Action::Escalated { key: key("c") });
        assert_eq!((report.exit_code(), report.class()), (1, Some(ErrorClass::Stalled)));
        report.infrastructure = Some("docker is gone".into());
        assert_eq!(report.exit_code(), 3);
        report.cancelled = true;
        assert_eq!(report.exit_code(), 130);
        let end = AttemptEnd::Failed { failure_type: FailureType::TestTampering, message: String::new() };
        assert_eq!(end.class(), Some(ErrorClass::Stalled));
        assert_eq!(AttemptEnd::Infrastructure(String::new()).class().map(ErrorClass::reason), Some("Transient"));
    }

    #[test]
    fn a_task_held_by_a_failed_environment_needs_a_person() {
        let blocker = Blocker::Environment { env: "env-1".into(), reporter: key("a"), reason: crate::state::Reason::EnvironmentFailed };
        let held = Action::Wait { key: key("b"), blocker };
        assert_eq!(held.class(), Some(ErrorClass::Stalled));
        let report = PassReport { actions: vec![Action::UpToDate { key: key("a") }, held], ..PassReport::default() };
        assert_eq!(report.counts(), Counts { total: 2, satisfied: 1, failed: 1, approval: 0 });
        assert_eq!(report.exit_code(), 1);
    }
}
