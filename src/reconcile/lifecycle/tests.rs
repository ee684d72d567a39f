//! Table tests of the lifecycle: one row per transition.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::state::{Acceptance, Review, TaskKey, TestSummary};

pub(super) fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

pub(super) fn hash(c: char) -> SpecHash {
    SpecHash::parse(&c.to_string().repeat(64)).unwrap()
}

pub(super) fn rules() -> Rules {
    Rules {
        spec_hash: hash('a'),
        max_attempts: 3,
        max_debug_attempts: 2,
        max_branch_depth: 2,
        outputs: vec!["out.py".into()],
        tests: 1,
        routing: Routing {
            task_role: Some(Role::Coder),
            routes: BTreeMap::from([("timeout".to_owned(), Role::Tester)]),
            available: [Role::Architect, Role::Coder, Role::Debugger].into_iter().collect(),
        },
    }
}

pub(super) fn claim(task: &str, attempt: u32, inputs: &[(&str, &str)]) -> Event {
    Event::Claim(Claim {
        key: TaskKey::new("wf", task),
        attempt,
        attempts_base: 0,
        holder: "h:1:1:x".into(),
        lease_expires_at: None,
        takeover: None,
        inputs: inputs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        plan_commit: "p".repeat(40),
        role: Role::Coder,
        candidate_present: true,
    })
}

pub(super) fn passed(n: u32) -> TestSummary {
    TestSummary { passed: n, ..TestSummary::default() }
}

pub(super) fn candidate(commit: char) -> Candidate {
    Candidate { commit: commit.to_string().repeat(40), tests: passed(1), files: vec!["out.py".into()], missing_outputs: Vec::new() }
}

pub(super) fn publication(commit: char, n: u32) -> Publication {
    Publication {
        commit: commit.to_string().repeat(40),
        branch: "ai/generated/wf/t".into(),
        tag: format!("ai/wf/t/{n}"),
        n,
        pull_request: None,
        pull_request_pending: None,
    }
}

pub(super) fn failure(t: FailureType, work: bool) -> Failure {
    Failure { work: work.then(|| "e".repeat(40)), suggested: Role::Coder, ..Failure::new(t, "1 of 1 acceptance test(s) failed") }
}

/// Applies `events` to a task's own chain, returning its last record.
fn run(events: &[Event]) -> TaskStatus {
    let mut record: Option<TaskStatus> = None;
    for e in events {
        let step = step(Subject::Task(record.as_ref()), e, &rules(), now()).unwrap_or_else(|r| panic!("{e:?}: {r}"));
        record = step.records.last().map(|(_, s)| s.clone());
    }
    record.unwrap()
}

fn refusal(record: &TaskStatus, e: &Event) -> Refusal {
    step(Subject::Task(Some(record)), e, &rules(), now()).expect_err("refused")
}

#[test]
fn a_claim_starts_the_attempt_on_its_inputs() {
    let s = run(&[claim("t", 1, &[("dep", "d1")])]);
    assert_eq!((s.phase, s.attempt, s.reason.clone()), (Phase::Running, 1, Some(Reason::Claimed)));
    assert_eq!(s.inputs, Some(BTreeMap::from([("dep".to_owned(), "d1".to_owned())])));
    assert_eq!(s.spec_hash, Some(hash('a')));
    let step = step(Subject::Task(None), &claim("t", 1, &[]), &rules(), now()).unwrap();
    assert_eq!(step.next, Next::Work);
}

#[test]
fn tests_that_passed_lead_to_verified_then_succeeded_naming_that_attempt() {
    let verified = run(&[claim("t", 1, &[]), Event::Verified(candidate('c'))]);
    assert_eq!((verified.phase, verified.reason.clone()), (Phase::Running, Some(Reason::Verified)));
    let done = run(&[claim("t", 1, &[]), Event::Verified(candidate('c')), Event::Published(publication('c', 1))]);
    assert_eq!((done.phase, done.reason.clone(), done.accepted), (Phase::Succeeded, Some(Reason::Succeeded), 1));
    let result = done.result.unwrap();
    assert_eq!(result.accepted_in, Some(Acceptance { task_id: "t".into(), attempt: 1 }));
    assert_eq!(done.tests.unwrap().passed, 1);
    assert_eq!(done.message, "1 acceptance test(s) passed");
    assert!(done.conditions.iter().any(|c| c.kind == "Ready" && c.status == "True"));
}

#[test]
fn only_the_verified_commit_can_be_published() {
    let running = run(&[claim("t", 1, &[])]);
    assert_eq!(refusal(&running, &Event::Published(publication('c', 1))), Refusal::NotVerified("c".repeat(40)));
    let verified = run(&[claim("t", 1, &[]), Event::Verified(candidate('c'))]);
    assert_eq!(refusal(&verified, &Event::Published(publication('d', 1))), Refusal::NotVerified("d".repeat(40)));
}

#[test]
fn a_candidate_without_its_outputs_or_a_passed_test_is_refused() {
    let running = run(&[claim("t", 1, &[])]);
    let no_output = Candidate { missing_outputs: vec!["out.py".into()], ..candidate('c') };
    assert!(matches!(refusal(&running, &Event::Verified(no_output)), Refusal::Unacceptable(_)));
    let no_test = Candidate { tests: passed(0), ..candidate('c') };
    assert!(matches!(refusal(&running, &Event::Verified(no_test)), Refusal::Unacceptable(_)));
}

#[test]
fn a_takeover_of_a_verified_attempt_publishes_its_candidate_and_says_so() {
    let verified = run(&[claim("t", 1, &[]), Event::Verified(candidate('c'))]);
    let step = step(Subject::Task(Some(&verified)), &claim("t", 2, &[]), &rules(), now()).unwrap();
    assert_eq!(step.next, Next::Publish("c".repeat(40)));
    let claim2 = &step.records[0].1;
    let done = super::step(Subject::Task(Some(claim2)), &Event::Published(publication('c', 1)), &rules(), now()).unwrap();
    let s = &done.records[0].1;
    assert_eq!((s.phase, s.reason.clone(), s.attempt), (Phase::Succeeded, Some(Reason::Adopted), 2));
    assert_eq!(s.result.as_ref().unwrap().accepted_in, Some(Acceptance { task_id: "t".into(), attempt: 1 }));
    assert_eq!(s.tests.as_ref().unwrap().passed, 1, "the verified attempt's counts, never 0 of 0");
}

#[test]
fn a_candidate_another_clone_verified_and_this_one_lacks_is_worked_again() {
    let verified = run(&[claim("t", 1, &[]), Event::Verified(candidate('c'))]);
    let mut e = claim("t", 2, &[]);
    if let Event::Claim(c) = &mut e {
        c.candidate_present = false;
    }
    let step = step(Subject::Task(Some(&verified)), &e, &rules(), now()).unwrap();
    assert_eq!((step.next, step.records[0].1.verified.clone()), (Next::Work, None));
}

#[test]
fn nothing_is_carried_over_from_another_spec_other_inputs_or_an_earlier_success() {
    let verified = run(&[claim("t", 1, &[("dep", "d1")]), Event::Verified(candidate('c'))]);
    let other_inputs = step(Subject::Task(Some(&verified)), &claim("t", 2, &[("dep", "d2")]), &rules(), now()).unwrap();
    assert_eq!(other_inputs.next, Next::Work);
    let other_spec = Rules { spec_hash: hash('b'), ..rules() };
    assert_eq!(step(Subject::Task(Some(&verified)), &claim("t", 2, &[("dep", "d1")]), &other_spec, now()).unwrap().next, Next::Work);
    // A retry of a succeeded task: the old result stays recorded, but the new attempt works.
    let done = run(&[claim("t", 1, &[]), Event::Verified(candidate('c')), Event::Published(publication('c', 1))]);
    let mut retried = done.next(Phase::Pending, now());
    retried.attempts_base = retried.attempt;
    retried.reason = Some(Reason::RevisionRequested);
    retried.review = Some(Review { by: "bo".into(), instructions: "handle empty input".into(), url: None });
    let again = step(Subject::Task(Some(&retried)), &claim("t", 2, &[]), &rules(), now()).unwrap();
    assert_eq!(again.next, Next::Work);
    assert_eq!(again.records[0].1.review.as_ref().unwrap().instructions, "handle empty input");
    assert_eq!(refusal(&again.records[0].1, &Event::Published(publication('c', 2))), Refusal::NotVerified("c".repeat(40)));
}

#[test]
fn failing_tests_on_finished_work_open_a_routed_branch_todo() {
    let s = run(&[claim("t", 1, &[]), Event::Failed(failure(FailureType::ImplementationBug, true))]);
    assert_eq!((s.phase, s.reason.clone()), (Phase::Debugging, Some(Reason::BranchTodoOpened)));
    let b = s.open_branch.unwrap();
    assert_eq!((b.id.as_str(), b.role.as_str(), b.depth, b.parent_attempt), ("t_branch_01", "coder", 1, 1));
    assert_eq!(s.branch_todos, ["t_branch_01"]);
    let timed = run(&[claim("t", 1, &[]), Event::Failed(failure(FailureType::Timeout, true))]);
    // failure_routing sends timeouts to the tester, who has no agent: the debugger takes it.
    assert_eq!(timed.open_branch.unwrap().role, "debugger");
}

#[test]
fn failures_no_agent_can_fix_do_not_open_branch_todos() {
    for (t, phase, reason) in [
        (FailureType::ProtectedPath, Phase::Failed, Reason::ProtectedPath),
        (FailureType::TestTampering, Phase::Failed, Reason::TestTampering),
        (FailureType::Uncommittable, Phase::Failed, Reason::UncommittableWork),
        (FailureType::BudgetExceeded, Phase::BudgetExceeded, Reason::BudgetExceeded),
        (FailureType::AgentError, Phase::Failed, Reason::AttemptFailed),
    ] {
        let s = run(&[claim("t", 1, &[]), Event::Failed(failure(t.clone(), true))]);
        assert_eq!((s.phase, s.reason.clone(), s.open_branch.is_none()), (phase, Some(reason), true), "{t}");
    }
    let no_work = run(&[claim("t", 1, &[]), Event::Failed(failure(FailureType::ImplementationBug, false))]);
    assert_eq!(no_work.phase, Phase::Failed);
}

#[test]
fn the_last_attempt_stalls_the_task() {
    let mut events = Vec::new();
    for n in 1..=3 {
        events.push(claim("t", n, &[]));
        events.push(Event::Failed(failure(FailureType::AgentError, false)));
    }
    let s = run(&events);
    let stalled = s.conditions.iter().find(|c| c.kind == "Stalled").unwrap();
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "AttemptFailed"));
    assert!(s.message.contains("plancd retry wf/t"), "{}", s.message);
    let early = run(&events[..2]);
    assert_eq!(early.conditions.iter().find(|c| c.kind == "Stalled").unwrap().status, "False");
}

#[test]
fn a_released_claim_does_not_count() {
    let s = run(&[claim("t", 1, &[]), Event::Released { reason: Reason::SandboxError, message: "docker is gone".into() }]);
    assert_eq!((s.phase, s.attempts_used(), s.failure_type.clone()), (Phase::Released, 0, Some(FailureType::Infrastructure)));
    let c = run(&[claim("t", 1, &[]), Event::Released { reason: Reason::Cancelled, message: "stopped".into() }]);
    assert_eq!(c.failure_type, None);
}

#[test]
fn events_of_an_attempt_that_is_not_running_are_refused() {
    let failed = run(&[claim("t", 1, &[]), Event::Failed(failure(FailureType::AgentError, false))]);
    assert_eq!(refusal(&failed, &Event::Verified(candidate('c'))), Refusal::NotRunning(Phase::Failed));
    assert_eq!(refusal(&failed, &claim("t", 1, &[])), Refusal::AttemptOrder { attempt: 1, previous: 1 });
}

#[test]
fn a_pull_request_the_forge_did_not_take_leaves_the_result_published_and_waiting() {
    let verified = run(&[claim("t", 1, &[]), Event::Verified(candidate('c'))]);
    let p = Publication { pull_request_pending: Some("max_prs_per_hour reached".into()), ..publication('c', 1) };
    let s = step(Subject::Task(Some(&verified)), &Event::Published(p), &rules(), now()).unwrap().records.remove(0).1;
    assert_eq!(s.phase, Phase::Succeeded);
    let pr = s.conditions.iter().find(|c| c.kind == "PullRequest").unwrap();
    assert_eq!((pr.status.as_str(), pr.reason.as_str()), ("False", "PullRequestPending"));
}

/// A parent debugging in `t_branch_01`, and that branch's claim.
pub(super) fn debugging_parent(depth: u32) -> (TaskStatus, BranchInfo) {
    let mut parent = run(&[claim("t", 1, &[]), Event::Failed(failure(FailureType::ImplementationBug, true))]);
    let mut info = parent.open_branch.clone().unwrap();
    info.depth = depth;
    parent.open_branch = Some(info.clone());
    (parent, info)
}

fn branch_step(parent: &TaskStatus, info: &BranchInfo, own: Option<&TaskStatus>, e: &Event) -> Step {
    step(Subject::Branch { parent, info, own }, e, &rules(), now()).unwrap_or_else(|r| panic!("{e:?}: {r}"))
}

fn branch_claim(parent: &TaskStatus, info: &BranchInfo, attempt: u32) -> TaskStatus {
    branch_step(parent, info, None, &claim(&info.id, attempt, &[])).records.remove(0).1
}

fn shape(step: &Step) -> Vec<(Whom, Phase, Option<Reason>)> {
    step.records.iter().map(|(w, s)| (*w, s.phase, s.reason.clone())).collect()
}

#[test]
fn a_branch_fix_publishes_the_parent_first_then_closes_the_branch() {
    let (parent, info) = debugging_parent(1);
    let claim = branch_claim(&parent, &info, 1);
    assert_eq!(claim.branch.as_ref().unwrap().id, "t_branch_01");
    let verified = branch_step(&parent, &info, Some(&claim), &Event::Verified(candidate('f'))).records.remove(0).1;
    let done = branch_step(&parent, &info, Some(&verified), &Event::Published(publication('f', 1)));
    assert_eq!(
        shape(&done),
        [(Whom::Task, Phase::Succeeded, Some(Reason::Succeeded)), (Whom::Branch, Phase::Succeeded, Some(Reason::Resolved))]
    );
    let p = &done.records[0].1;
    assert_eq!(p.result.as_ref().unwrap().accepted_in, Some(Acceptance { task_id: "t_branch_01".into(), attempt: 1 }));
    assert_eq!(p.message, "1 acceptance test(s) passed after t_branch_01");
}

#[test]
fn a_branch_cannot_publish_what_it_did_not_verify() {
    // The reviewer's retry case: the parent holds attempt 1's result, its new attempt failed.
    let (mut parent, info) = debugging_parent(1);
    parent.accepted = 1;
    let claim = branch_claim(&parent, &info, 1);
    let refused =
        step(Subject::Branch { parent: &parent, info: &info, own: Some(&claim) }, &Event::Published(publication('c', 2)), &rules(), now());
    assert_eq!(refused.unwrap_err(), Refusal::NotVerified("c".repeat(40)));
}

#[test]
fn a_branch_still_failing_deepens_until_the_depth_runs_out() {
    let (parent, info) = debugging_parent(1);
    let claim = branch_claim(&parent, &info, 1);
    let deeper = branch_step(&parent, &info, Some(&claim), &Event::Failed(failure(FailureType::ImplementationBug, true)));
    assert_eq!(
        shape(&deeper),
        [(Whom::Branch, Phase::Failed, Some(Reason::Deepened)), (Whom::Task, Phase::Debugging, Some(Reason::BranchTodoOpened))]
    );
    let next = deeper.records[1].1.open_branch.clone().unwrap();
    assert_eq!((next.id.as_str(), next.depth, next.parent_attempt), ("t_branch_02", 2, 1));
    let (parent, info) = debugging_parent(2);
    let claim = branch_claim(&parent, &info, 1);
    let out = branch_step(&parent, &info, Some(&claim), &Event::Failed(failure(FailureType::ImplementationBug, true)));
    assert_eq!(
        shape(&out),
        [(Whom::Task, Phase::Escalated, Some(Reason::MaxBranchDepth)), (Whom::Branch, Phase::Escalated, Some(Reason::MaxBranchDepth))]
    );
}

#[test]
fn a_spec_mismatch_goes_to_the_architect_or_to_a_person() {
    let (parent, info) = debugging_parent(1);
    let claim = branch_claim(&parent, &info, 1);
    let mismatch = failure(FailureType::SpecMismatch, false);
    let to_architect = branch_step(&parent, &info, Some(&claim), &Event::Failed(mismatch.clone()));
    let b = to_architect.records[1].1.open_branch.clone().unwrap();
    assert_eq!((b.role.as_str(), b.base_tree.as_str()), ("architect", info.base_tree.as_str()));
    let mut no_architect = rules();
    no_architect.routing.available.remove(&Role::Architect);
    let out =
        step(Subject::Branch { parent: &parent, info: &info, own: Some(&claim) }, &Event::Failed(mismatch), &no_architect, now()).unwrap();
    assert_eq!(out.records[0].1.reason, Some(Reason::SpecMismatch));
    assert_eq!(out.records[0].1.phase, Phase::Escalated);
}

#[test]
fn a_branch_whose_agent_keeps_failing_escalates_after_its_attempts() {
    let (parent, info) = debugging_parent(1);
    let claim1 = branch_claim(&parent, &info, 1);
    let first = branch_step(&parent, &info, Some(&claim1), &Event::Failed(failure(FailureType::AgentError, false)));
    assert_eq!(shape(&first), [(Whom::Branch, Phase::Failed, Some(Reason::AttemptFailed))]);
    let claim2 = branch_step(&parent, &info, Some(&first.records[0].1), &claim(&info.id, 2, &[])).records.remove(0).1;
    let last = branch_step(&parent, &info, Some(&claim2), &Event::Failed(failure(FailureType::AgentError, false)));
    assert_eq!(
        shape(&last),
        [
            (Whom::Task, Phase::Escalated, Some(Reason::BranchAttemptsExhausted)),
            (Whom::Branch, Phase::Escalated, Some(Reason::BranchAttemptsExhausted))
        ]
    );
    // A claim past the last attempt (an interrupted run stopped between the two writes) only
    // escalates.
    let mut spent = first.records[0].1.clone();
    spent.attempt = 2;
    let over = branch_step(&parent, &info, Some(&spent), &claim(&info.id, 3, &[]));
    assert_eq!(over.next, Next::Done);
    assert_eq!(over.records[0].1.phase, Phase::Escalated);
}

#[test]
fn a_branch_whose_parent_moved_on_is_closed() {
    let (parent, info) = debugging_parent(1);
    let mut moved = parent.next(Phase::Pending, now());
    moved.reason = Some(Reason::RetryRequested);
    let e = claim(&info.id, 1, &[]);
    assert_eq!(
        step(Subject::Branch { parent: &moved, info: &info, own: None }, &e, &rules(), now()).unwrap_err(),
        Refusal::BranchClosed("t_branch_01".into())
    );
}

#[test]
fn an_environment_failure_fails_the_attempt_with_its_reason_and_opens_no_branch() {
    let rows: [(Option<Reason>, bool, Reason); 3] = [
        (Some(Reason::EnvironmentFailed), false, Reason::EnvironmentFailed),
        // Even with work left (the tests ran and said a package is missing): no branch todo.
        (Some(Reason::EnvironmentIncomplete), true, Reason::EnvironmentIncomplete),
        (None, false, Reason::AttemptFailed),
    ];
    for (reason, work, expected) in rows {
        let f = Failure { reason: reason.clone(), ..failure(FailureType::Environment, work) };
        let s = run(&[claim("t", 1, &[]), Event::Failed(f)]);
        assert_eq!((s.phase, s.reason.clone(), s.failure_type.clone()), (Phase::Failed, Some(expected), Some(FailureType::Environment)));
        assert!(s.open_branch.is_none() && s.branch_todos.is_empty(), "{reason:?}");
    }
    // An attempt held by another's failed setup gives its claim back, typed as the environment's.
    let released = run(&[claim("t", 1, &[]), Event::Released { reason: Reason::EnvironmentFailed, message: "held".into() }]);
    assert_eq!((released.phase, released.failure_type.clone()), (Phase::Released, Some(FailureType::Environment)));
}

#[test]
fn a_branch_whose_environment_fails_is_held_and_spends_no_debug_attempt() {
    let (parent, info) = debugging_parent(1);
    let env_failed = |reason| Event::Failed(Failure { reason: Some(reason), ..failure(FailureType::Environment, true) });
    let mut own = branch_claim(&parent, &info, 1);
    // max_debug_attempts is 2: a third environment failure would have escalated a code failure.
    for (attempt, reason) in [(1, Reason::EnvironmentFailed), (2, Reason::EnvironmentIncomplete), (3, Reason::EnvironmentFailed)] {
        let out = branch_step(&parent, &info, Some(&own), &env_failed(reason.clone()));
        assert_eq!(shape(&out), [(Whom::Branch, Phase::Failed, Some(reason))], "attempt {attempt}: the parent keeps debugging");
        let failed = &out.records[0].1;
        assert_eq!((failed.failure_type.clone(), failed.attempts_used()), (Some(FailureType::Environment), 0), "attempt {attempt}");
        // The next claim carries the record's base, as `decide` gives it.
        let Event::Claim(mut next) = claim(&info.id, attempt + 1, &[]) else { unreachable!() };
        next.attempts_base = failed.attempts_base;
        own = branch_step(&parent, &info, Some(failed), &Event::Claim(next)).records.remove(0).1;
        assert_eq!(own.phase, Phase::Running, "attempt {attempt}: the branch may run again once its environment is fixed");
    }
}
