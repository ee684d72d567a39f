//! The table of operations: each row an operation on a task or workflow in one phase, and what
//! [`check`] makes of it.

use super::*;
use crate::state::BranchInfo;

fn hash(c: char) -> SpecHash {
    SpecHash::parse(&c.to_string().repeat(64)).expect("a valid hash")
}

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().expect("a timestamp")
}

fn key() -> TaskKey {
    TaskKey::new("wf", "t")
}

/// A record in `phase` for spec `h` after `attempt` attempts.
fn rec(phase: Phase, h: char, attempt: u32) -> TaskStatus {
    let mut s = TaskStatus::new("wf", "t", phase, now());
    s.spec_hash = Some(hash(h));
    s.attempt = attempt;
    s
}

fn approved(mut s: TaskStatus, h: char) -> TaskStatus {
    s.approved_spec_hash = Some(hash(h));
    s
}

fn held(phase: Phase, minutes: i64) -> TaskStatus {
    let mut s = rec(phase, 'a', 2);
    s.holder = Some("host:1:2:x".into());
    s.lease_expires_at = Some(now().checked_add(jiff::SignedDuration::from_mins(minutes)).expect("in range"));
    s
}

fn branch_todo() -> TaskStatus {
    let mut s = rec(Phase::Failed, 'a', 1);
    s.task_id = "t_branch_01".into();
    s.branch = Some(BranchInfo {
        id: "t_branch_01".into(),
        parent_id: "t".into(),
        parent_attempt: 1,
        branch_reason: "implementation_bug".into(),
        failure_type: crate::state::FailureType::ImplementationBug,
        depth: 1,
        role: "debugger".into(),
        debug_instructions: String::new(),
        max_debug_attempts: 2,
        base_tree: "0".repeat(40),
        missing: None,
    });
    s
}

fn revise() -> Operation {
    Operation::Revise { instructions: "handle empty input".into(), url: None }
}

/// What `check` makes of an operation on task `wf/t` (planned with spec `a`, gated or not).
fn task(op: &Operation, gated: Option<bool>, status: Option<TaskStatus>) -> String {
    let planned = gated.map(|g| Planned { spec_hash: hash('a'), requires_approval: g });
    let key = key();
    let target = Target::Task { key: &key, planned: planned.as_ref(), status: status.as_ref() };
    show(check(op, target, "ann@example.com", now()))
}

fn workflow(op: &Operation, planned: bool, suspended: Option<bool>) -> String {
    let record = suspended.map(|s| WorkflowRecord { workflow_id: "wf".into(), suspended: s, message: String::new(), by: None });
    show(check(op, Target::Workflow { id: "wf", planned, record: record.as_ref() }, "ann@example.com", now()))
}

fn show(outcome: Result<Record, Refusal>) -> String {
    match outcome {
        Ok(Record::Task(s)) => {
            let spec = s.spec_hash.as_ref().map_or("-".to_owned(), |h| h.short()[..1].to_owned());
            let approved = s.approved_spec_hash.as_ref().map_or("-".to_owned(), |h| h.short()[..1].to_owned());
            format!(
                "write {} {} spec={spec} approved={approved} base={} by={}",
                s.phase,
                s.reason.map(|r| r.to_string()).unwrap_or_default(),
                s.attempts_base,
                s.by.unwrap_or_default()
            )
        }
        Ok(Record::Workflow(r)) => format!("write suspended={} by={}", r.suspended, r.by.unwrap_or_default()),
        Err(refusal) => format!("refuse {}", refusal.reason()),
    }
}

#[test]
fn approvals() {
    use Operation::Approve;
    use Phase::*;
    let rows: Vec<(&str, String, &str)> = vec![
        (
            "a gated task that waits",
            task(&Approve, Some(true), Some(rec(NeedsApproval, 'a', 0))),
            "write Approved Approved spec=a approved=a base=0 by=ann@example.com",
        ),
        (
            "a gated task not yet reached (its dependencies run first)",
            task(&Approve, Some(true), None),
            "write Approved Approved spec=a approved=a base=0 by=ann@example.com",
        ),
        ("approving twice", task(&Approve, Some(true), Some(approved(rec(Approved, 'a', 0), 'a'))), "refuse AlreadyApproved"),
        (
            "a task that succeeded for this spec",
            task(&Approve, Some(true), Some(approved(rec(Succeeded, 'a', 1), 'a'))),
            "refuse AlreadySucceeded",
        ),
        ("a task that never needed approval", task(&Approve, Some(false), Some(rec(Succeeded, 'a', 1))), "refuse ApprovalNotRequired"),
        ("a never-gated task that waits for nothing", task(&Approve, Some(false), None), "refuse ApprovalNotRequired"),
        ("a running attempt", task(&Approve, Some(true), Some(held(Running, 10))), "refuse AttemptRunning"),
        ("a task no plan has", task(&Approve, None, None), "refuse UnknownTask"),
        ("a branch todo", task(&Approve, None, Some(branch_todo())), "refuse BranchTodo"),
        // A plan pull request's new spec, approved before merging: the result of the old spec stays.
        (
            "a new spec of a task that succeeded",
            task(&Approve, Some(true), Some(approved(rec(Succeeded, 'b', 1), 'b'))),
            "write Succeeded  spec=b approved=a base=0 by=ann@example.com",
        ),
        (
            "a new spec of a task that waits for the old one's approval",
            task(&Approve, Some(true), Some(rec(NeedsApproval, 'b', 0))),
            "write Approved Approved spec=a approved=a base=0 by=ann@example.com",
        ),
        (
            "a claim whose holder is gone",
            task(&Approve, Some(true), Some(held(Claimed, -5))),
            "write Approved Approved spec=a approved=a base=0 by=ann@example.com",
        ),
    ];
    assert_table(rows);
}

#[test]
fn retries_and_revisions() {
    use Operation::Retry;
    use Phase::*;
    let rows: Vec<(&str, String, &str)> = vec![
        (
            "a failed task",
            task(&Retry, Some(false), Some(rec(Failed, 'a', 3))),
            "write Pending RetryRequested spec=a approved=- base=3 by=ann@example.com",
        ),
        (
            "an escalated task",
            task(&Retry, Some(false), Some(rec(Escalated, 'a', 1))),
            "write Pending RetryRequested spec=a approved=- base=1 by=ann@example.com",
        ),
        (
            "a task out of budget",
            task(&Retry, Some(false), Some(rec(BudgetExceeded, 'a', 2))),
            "write Pending RetryRequested spec=a approved=- base=2 by=ann@example.com",
        ),
        ("a running attempt", task(&Retry, Some(false), Some(held(Running, 10))), "refuse AttemptRunning"),
        ("a claimed task", task(&Retry, Some(false), Some(held(Claimed, 10))), "refuse AttemptRunning"),
        ("a task that succeeded for this spec", task(&Retry, Some(false), Some(rec(Succeeded, 'a', 1))), "refuse AlreadySucceeded"),
        ("a task whose spec changed since it succeeded", task(&Retry, Some(false), Some(rec(Succeeded, 'b', 1))), "refuse RunsAnyway"),
        ("a task whose spec changed since it failed", task(&Retry, Some(false), Some(rec(Failed, 'b', 3))), "refuse RunsAnyway"),
        ("a task that never ran", task(&Retry, Some(false), None), "refuse RunsAnyway"),
        ("a task retried already", task(&Retry, Some(false), Some(rec(Pending, 'a', 3))), "refuse RunsAnyway"),
        ("a released claim", task(&Retry, Some(false), Some(rec(Released, 'a', 1))), "refuse RunsAnyway"),
        ("a task that waits for approval", task(&Retry, Some(true), Some(rec(NeedsApproval, 'a', 0))), "refuse NeedsApproval"),
        ("a task a branch todo debugs", task(&Retry, Some(false), Some(rec(Debugging, 'a', 1))), "refuse Debugging"),
        ("a closed branch todo", task(&Retry, None, Some(branch_todo())), "refuse BranchTodo"),
        ("a task no plan has", task(&Retry, None, Some(rec(Failed, 'a', 1))), "refuse UnknownTask"),
        // With instructions: a reviewer may ask a succeeded task for changes.
        (
            "changes to a succeeded result",
            task(&revise(), Some(false), Some(rec(Succeeded, 'a', 1))),
            "write Pending RevisionRequested spec=a approved=- base=1 by=ann@example.com",
        ),
        (
            "instructions for an escalated task",
            task(&revise(), Some(false), Some(rec(Escalated, 'a', 2))),
            "write Pending RevisionRequested spec=a approved=- base=2 by=ann@example.com",
        ),
        ("instructions while it runs", task(&revise(), Some(false), Some(held(Running, 10))), "refuse AttemptRunning"),
        ("instructions for a task that never ran", task(&revise(), Some(false), None), "refuse RunsAnyway"),
        ("instructions for a branch todo", task(&revise(), None, Some(branch_todo())), "refuse BranchTodo"),
    ];
    assert_table(rows);
}

#[test]
fn suspensions() {
    use Operation::{Resume, Suspend};
    let rows: Vec<(&str, String, &str)> = vec![
        ("suspend an active workflow", workflow(&Suspend, true, None), "write suspended=true by=ann@example.com"),
        ("suspend a resumed workflow", workflow(&Suspend, true, Some(false)), "write suspended=true by=ann@example.com"),
        ("suspend twice", workflow(&Suspend, true, Some(true)), "refuse AlreadySuspended"),
        ("suspend a workflow no plan has", workflow(&Suspend, false, None), "refuse UnknownWorkflow"),
        ("resume a suspended workflow", workflow(&Resume, true, Some(true)), "write suspended=false by=ann@example.com"),
        ("resume an active workflow", workflow(&Resume, true, None), "refuse NotSuspended"),
        ("resume a removed workflow left suspended", workflow(&Resume, false, Some(true)), "write suspended=false by=ann@example.com"),
        ("resume a workflow nobody knows", workflow(&Resume, false, None), "refuse UnknownWorkflow"),
        ("suspend a task", task(&Suspend, Some(false), None), "refuse WrongTarget"),
        ("approve a workflow", workflow(&Operation::Approve, true, None), "refuse WrongTarget"),
    ];
    assert_table(rows);
}

#[track_caller]
fn assert_table(rows: Vec<(&str, String, &str)>) {
    let wrong: Vec<String> =
        rows.iter().filter(|(_, got, want)| got != want).map(|(name, got, want)| format!("{name}:\n  want {want}\n  got  {got}")).collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_retry_carries_the_record_on_and_a_revision_the_instructions() {
    let mut failed = rec(Phase::Failed, 'a', 3);
    failed.accepted = 2;
    failed.holder = Some("h".into());
    let key = key();
    let planned = Planned { spec_hash: hash('a'), requires_approval: false };
    let target = Target::Task { key: &key, planned: Some(&planned), status: Some(&failed) };
    let Ok(Record::Task(r)) = check(&revise(), target, "bo", now()) else { panic!("a revision of a failed task is written") };
    assert_eq!((r.accepted, r.holder.as_deref(), r.message.as_str()), (2, None, "another attempt requested by bo"));
    assert_eq!(r.review, Some(Review { by: "bo".into(), instructions: "handle empty input".into(), url: None }));
}

#[test]
fn every_refusal_says_what_to_do_instead() {
    let key = key();
    let refusals = [
        Refusal::UnknownWorkflow("nosuch".into()),
        Refusal::UnknownTask(key.clone()),
        Refusal::BranchTodo { key: TaskKey::new("wf", "t_branch_01"), parent: "t".into() },
        Refusal::NotGated(key.clone()),
        Refusal::AlreadyApproved(key.clone()),
        Refusal::AlreadySucceeded { key: key.clone(), attempt: 1 },
        Refusal::Busy { key: key.clone(), phase: Phase::Running, attempt: 2 },
        Refusal::WillRun { key: key.clone(), phase: None },
        Refusal::NeedsApproval(key.clone()),
        Refusal::Debugging { key: key.clone(), branch: "t_branch_01".into() },
        Refusal::AlreadySuspended("wf".into()),
        Refusal::NotSuspended("wf".into()),
        Refusal::WrongTarget { verb: "suspend", target: "wf/t".into() },
    ];
    for r in &refusals {
        assert!(!r.to_string().is_empty() && !r.hint().is_empty(), "{r:?}");
    }
    assert_eq!(refusals[2].hint(), "retry the parent: plancd retry wf/t");
    assert_eq!(refusals[0].to_string(), "no plan defines workflow `nosuch`");
}
