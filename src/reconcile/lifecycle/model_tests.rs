//! A model-based property test of the lifecycle: random sequences of events (the ones an executor
//! sends, people's retries, crashes, and events that mean nothing in the current state) are run
//! against a small reference model of the chains, and the invariants DESIGN.md names are checked
//! after every step.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{candidate, claim, failure, now, passed, publication, rules};
use super::*;
use crate::state::Acceptance;

/// Every record ever written, per chain (the task's own and each branch todo's), oldest first.
#[derive(Default)]
struct Chains {
    task: Vec<TaskStatus>,
    branches: BTreeMap<String, Vec<TaskStatus>>,
}

impl Chains {
    fn tip(&self) -> Option<&TaskStatus> {
        self.task.last()
    }

    fn branch_tip(&self, id: &str) -> Option<&TaskStatus> {
        self.branches.get(id).and_then(|c| c.last())
    }

    fn write(&mut self, step: &Step, branch: Option<&str>) {
        for (whom, record) in &step.records {
            match (whom, branch) {
                (Whom::Task, _) => self.task.push(record.clone()),
                (Whom::Branch, Some(id)) => self.branches.entry(id.to_owned()).or_default().push(record.clone()),
                (Whom::Branch, None) => panic!("a task's event wrote a branch record"),
            }
        }
    }
}

/// What a random byte asks for.
#[derive(Debug, Clone, Copy)]
enum Op {
    Claim,
    Takeover,
    Verify,
    VerifyBad,
    Publish,
    PublishOther,
    FailTests,
    FailAgent,
    FailBudget,
    FailSpecMismatch,
    Release,
    Retry,
    NewInputs,
}

const OPS: [Op; 13] = [
    Op::Claim,
    Op::Takeover,
    Op::Verify,
    Op::VerifyBad,
    Op::Publish,
    Op::PublishOther,
    Op::FailTests,
    Op::FailAgent,
    Op::FailBudget,
    Op::FailSpecMismatch,
    Op::Release,
    Op::Retry,
    Op::NewInputs,
];

struct World {
    chains: Chains,
    inputs: u32,
    commits: u32,
    rules: Rules,
}

impl World {
    /// The subject the next attempt event concerns: the open branch todo while the task debugs.
    fn subject(&self) -> (Option<BranchInfo>, Option<TaskStatus>) {
        let tip = self.chains.tip();
        match tip.filter(|t| t.phase == Phase::Debugging).and_then(|t| t.open_branch.clone()) {
            Some(info) => {
                let own = self.chains.branch_tip(&info.id).cloned();
                (Some(info), own)
            }
            None => (None, tip.cloned()),
        }
    }

    fn inputs(&self) -> Vec<(String, String)> {
        vec![("dep".to_owned(), format!("{:040}", self.inputs))]
    }

    fn event(&mut self, op: Op) -> Option<Event> {
        let (branch, own) = self.subject();
        let next_attempt = own.as_ref().map_or(1, |s| s.attempt + 1);
        let id = branch.as_ref().map_or("t".to_owned(), |b| b.id.clone());
        let inputs: Vec<(String, String)> = self.inputs();
        let inputs: Vec<(&str, &str)> = inputs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Some(match op {
            Op::Claim | Op::Takeover => {
                let mut e = claim(&id, next_attempt, &inputs);
                if let (Event::Claim(c), Op::Takeover) = (&mut e, op) {
                    c.takeover = Some("dead:1:1:x".into());
                }
                if let (Event::Claim(c), Some(s)) = (&mut e, own.as_ref()) {
                    c.attempts_base = s.attempts_base;
                }
                e
            }
            Op::Verify => {
                self.commits += 1;
                let mut c = candidate('c');
                c.commit = format!("{:040x}", self.commits);
                Event::Verified(c)
            }
            Op::VerifyBad => Event::Verified(Candidate { tests: passed(0), missing_outputs: vec!["out.py".into()], ..candidate('c') }),
            Op::Publish => {
                let commit = own.as_ref().and_then(|s| s.verified.as_ref()).map(|v| v.commit.clone())?;
                let n = self.chains.tip().map_or(0, |t| t.accepted) + 1;
                Event::Published(Publication { commit, ..publication('c', n) })
            }
            Op::PublishOther => Event::Published(publication('9', 1)),
            Op::FailTests => Event::Failed(failure(FailureType::ImplementationBug, true)),
            Op::FailAgent => Event::Failed(failure(FailureType::AgentError, false)),
            Op::FailBudget => Event::Failed(failure(FailureType::BudgetExceeded, false)),
            Op::FailSpecMismatch => Event::Failed(failure(FailureType::SpecMismatch, false)),
            Op::Release => Event::Released { reason: Reason::SandboxError, message: "sandbox".into() },
            Op::Retry | Op::NewInputs => return None,
        })
    }

    /// A person's retry, or a new upstream result: what operations and `decide` do outside the
    /// step function (a record that hands the task back to work).
    fn outside(&mut self, op: Op) {
        match op {
            Op::Retry => {
                if let Some(tip) = self.chains.tip().filter(|t| !t.phase.is_held()) {
                    let mut r = tip.next(Phase::Pending, now());
                    r.attempts_base = r.attempt;
                    r.reason = Some(Reason::RetryRequested);
                    self.chains.task.push(r);
                }
            }
            Op::NewInputs => self.inputs += 1,
            _ => {}
        }
    }

    fn apply(&mut self, op: Op) {
        if matches!(op, Op::Retry | Op::NewInputs) {
            return self.outside(op);
        }
        let Some(event) = self.event(op) else { return };
        let (branch, own) = self.subject();
        let before = (self.chains.task.len(), self.chains.branches.values().map(Vec::len).sum::<usize>());
        let result = match &branch {
            Some(info) => {
                let parent = self.chains.tip().expect("a branch has a parent").clone();
                step(Subject::Branch { parent: &parent, info, own: own.as_ref() }, &event, &self.rules, now())
            }
            None => step(Subject::Task(own.as_ref()), &event, &self.rules, now()),
        };
        match result {
            Ok(step) => {
                assert!(!step.records.is_empty() && step.records.len() <= 2, "one operation, one or two records: {step:?}");
                self.chains.write(&step, branch.as_ref().map(|b| b.id.as_str()));
                self.check_written(&step);
            }
            Err(refusal) => {
                // A refused event writes nothing, and only events that mean nothing are refused.
                let after = (self.chains.task.len(), self.chains.branches.values().map(Vec::len).sum::<usize>());
                assert_eq!(before, after);
                assert!(
                    matches!(op, Op::VerifyBad | Op::PublishOther)
                        || !matches!(refusal, Refusal::NotVerified(_) | Refusal::Unacceptable(_)),
                    "{op:?} refused: {refusal}"
                );
            }
        }
        self.check_invariants();
    }

    fn check_written(&self, step: &Step) {
        for (_, r) in &step.records {
            assert!(r.conditions.iter().any(|c| c.kind == "Ready"), "every record says whether it is ready");
        }
    }

    /// The invariants, over everything written so far.
    fn check_invariants(&self) {
        for (i, s) in self.chains.task.iter().enumerate() {
            if s.phase == Phase::Succeeded {
                self.succeeded_was_verified(i, s);
            }
            if s.phase == Phase::Debugging {
                let b = s.open_branch.as_ref().expect("a debugging task names its branch");
                assert!(s.branch_todos.contains(&b.id));
                assert!(b.depth >= 1 && b.depth <= self.rules.max_branch_depth, "depth {}", b.depth);
            }
            if s.phase == Phase::Escalated {
                assert!(matches!(
                    s.reason,
                    Some(Reason::MaxBranchDepth | Reason::SpecMismatch | Reason::BudgetExceeded | Reason::BranchAttemptsExhausted)
                ));
            }
        }
        for chain in self.chains.branches.values() {
            for pair in chain.windows(2) {
                if pair[1].phase == Phase::Running && pair[1].reason != Some(Reason::Verified) {
                    assert!(pair[1].attempt > pair[0].attempt, "claims number their attempts upwards");
                }
            }
        }
    }

    /// `Succeeded` for spec H names a commit whose tests passed in an attempt recorded under H in
    /// this task's chains, with those counts, built on the inputs that attempt claimed.
    fn succeeded_was_verified(&self, i: usize, s: &TaskStatus) {
        let result = s.result.as_ref().expect("Succeeded names a result");
        let acceptance = result.accepted_in.as_ref().expect("Succeeded says which attempt accepted it");
        let chain: &[TaskStatus] = if acceptance.task_id == s.task_id {
            &self.chains.task[..i]
        } else {
            self.chains.branches.get(&acceptance.task_id).map(Vec::as_slice).expect("the accepting branch has a chain")
        };
        let verified = chain
            .iter()
            .rev()
            .find(|r| r.reason == Some(Reason::Verified) && r.verified.as_ref().is_some_and(|v| v.commit == result.commit))
            .expect("a Verified record of this chain names the published commit");
        assert_eq!(verified.attempt, acceptance.attempt);
        assert_eq!(verified.spec_hash.as_ref(), Some(&self.rules.spec_hash));
        assert_eq!(verified.inputs, s.inputs, "built on the inputs its verifying attempt claimed");
        let tests = s.tests.as_ref().expect("Succeeded carries the accepting tests' counts");
        assert!(tests.passed > 0 && tests.failed == 0, "never 0 of 0 for a task with tests");
        assert!(verified.verified.as_ref().is_some_and(|v| v.files.contains(&"out.py".to_owned())) || self.rules.outputs.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// 10,000 random sequences of up to 40 events each; the invariants hold after every step.
    #[test]
    fn invariants_hold_after_every_step(ops in proptest::collection::vec(0..OPS.len(), 1..40)) {
        let mut world = World { chains: Chains::default(), inputs: 0, commits: 0, rules: rules() };
        for i in ops {
            world.apply(OPS[i]);
        }
    }
}

#[test]
fn the_invariant_check_catches_a_success_adopted_from_an_earlier_attempt() {
    // Break the invariant on purpose: a Succeeded record that names attempt 1's commit after a
    // retry whose own attempt never verified it, as the old branch todo adoption wrote.
    let mut world = World { chains: Chains::default(), inputs: 0, commits: 0, rules: rules() };
    for op in [Op::Claim, Op::Verify, Op::Publish, Op::Retry, Op::Claim] {
        world.apply(op);
    }
    let mut forged = world.chains.tip().unwrap().next(Phase::Succeeded, now());
    forged.result = world.chains.task[2].result.clone();
    forged.result.as_mut().unwrap().accepted_in = Some(Acceptance { task_id: "t".into(), attempt: 2 });
    forged.tests = Some(passed(0));
    world.chains.task.push(forged);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.check_invariants()));
    assert!(caught.is_err(), "a success not verified by its own attempt must be caught");
}

#[test]
fn random_sequences_reach_every_outcome() {
    // The property test is only as good as the states it visits: sample sequences the way it
    // does and check that successes (own and by branch todos), adoptions, escalations and
    // retried tasks all occur.
    let mut seen = BTreeSet::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2_000 {
        let mut world = World { chains: Chains::default(), inputs: 0, commits: 0, rules: rules() };
        for _ in 0..rng.usize(1..40) {
            world.apply(OPS[rng.usize(..OPS.len())]);
        }
        for s in &world.chains.task {
            let by_branch = s.result.as_ref().and_then(|r| r.accepted_in.as_ref()).is_some_and(|a| a.task_id != "t");
            seen.insert(format!("{:?}/{:?}/{by_branch}", s.phase, s.reason));
        }
    }
    for wanted in [
        "Succeeded/Some(Succeeded)/false",
        "Succeeded/Some(Succeeded)/true",
        "Succeeded/Some(Adopted)/false",
        "Escalated/Some(MaxBranchDepth)/false",
        "Escalated/Some(BranchAttemptsExhausted)/false",
        "Debugging/Some(BranchTodoOpened)/false",
        "Pending/Some(RetryRequested)/false",
    ] {
        assert!(seen.contains(wanted), "{wanted} never reached: {seen:?}");
    }
}
