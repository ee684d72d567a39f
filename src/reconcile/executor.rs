//! The executor: decides, starts attempts for ready tasks (at most `concurrency` at once), and
//! decides again as they finish, until nothing is left to run. Level-triggered: it works from
//! what the refs say, and keeps its view fresh by re-reading what it did not write itself.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::attempt::{self, AttemptEnd, AttemptError, AttemptPlan, BranchPlan, PassContext};
use super::decide::{Action, Actual, Context, Desired, decide};
use crate::publish::branch_name;
use crate::state::{Holder, Phase, StateError, Store, TaskKey, TaskStatus, cas_ref};

/// What happened to a task during the pass, for progress displays.
#[derive(Debug, Clone)]
pub enum Event {
    /// An attempt started.
    Started {
        /// The task.
        key: TaskKey,
        /// The attempt's number.
        attempt: u32,
        /// The role that plays it.
        role: String,
        /// Whether it is not the task's first attempt (a later one, or a branch todo's).
        retry: bool,
    },
    /// A sandboxed command ran.
    Exec {
        /// agent, check or test.
        kind: &'static str,
        /// How long it took.
        duration: Duration,
    },
    /// How many tasks are ready to run and not yet started (after each decision).
    Queue {
        /// That many.
        ready: usize,
    },
    /// An attempt ended.
    Finished {
        /// The task.
        key: TaskKey,
        /// The attempt's number.
        attempt: u32,
        /// The role that played it.
        role: String,
        /// How.
        end: AttemptEnd,
        /// How long it took.
        elapsed: Duration,
    },
    /// An agent's model calls spent something (or were answered from the cache).
    Spent {
        /// The task.
        key: TaskKey,
        /// The role.
        role: String,
        /// The model (the configured name, or `none`).
        model: String,
        /// Tokens and dollars.
        cost: crate::state::Cost,
        /// Replies from the response cache.
        cache_hits: u32,
    },
    /// A running attempt moved to its next step.
    Step {
        /// The task.
        key: TaskKey,
        /// The attempt's number.
        attempt: u32,
        /// The step it is in now.
        step: crate::live::Step,
    },
    /// Publishing beyond the repository failed.
    UpstreamFailed {
        /// Which part.
        part: UpstreamPart,
    },
    /// A task succeeded (on its own or through a branch todo): what it took.
    Satisfied {
        /// The task (a branch todo's parent when the branch todo's work was accepted).
        key: TaskKey,
        /// The task's role.
        role: String,
        /// Its attempts since the last retry, and its branch todos'.
        attempts: u32,
        /// The depth of the branch todo whose work was accepted; 0 for the task's own.
        branch_depth: u32,
    },
    /// The forge's request budget after the pass's last call to it.
    ForgeRateLimit(crate::forge::RateLimit),
}

impl Event {
    /// Whether the event tells how an attempt moves (started, a step, finished): what people
    /// follow live; the others feed metrics.
    pub fn is_progress(&self) -> bool {
        matches!(self, Event::Started { .. } | Event::Step { .. } | Event::Finished { .. })
    }
}

/// An outside part whose failure a pass met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPart {
    /// The git remote (a push or a look at its refs).
    Remote,
    /// The forge (pull requests, issues, commit statuses).
    Forge,
}

impl UpstreamPart {
    /// The word in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamPart::Remote => "remote",
            UpstreamPart::Forge => "forge",
        }
    }
}

/// Receives events; must be quick.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// The outcome of a pass.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Every task's final action (what `decide` says once the pass is over).
    pub actions: Vec<Action>,
    /// Every attempt that ran, in the order they ended.
    pub attempts: Vec<(TaskKey, u32, AttemptEnd)>,
    /// The sandbox failed, and the pass stopped early.
    pub infrastructure: Option<String>,
    /// A signal stopped the pass.
    pub cancelled: bool,
    /// The shared remote's watched branch moved during the pass: no new work was started on
    /// the plans this pass loaded, and the next pass takes the new ones.
    pub superseded: bool,
    /// The workflows that did not run because their plans are invalid.
    pub stalled: Vec<super::StalledWorkflow>,
    /// Task refs that cannot be read: their workflows were left alone.
    pub broken: Vec<crate::state::BrokenTask>,
    /// What the operator should know that did not stop the pass, one sentence each.
    pub warnings: Vec<String>,
}

/// Reads every task's and workflow's state from the refs, and which holders are dead.
/// A workflow with a task ref that cannot be read ([`Store::scan`]) is held as if suspended:
/// its other tasks wait until the ref is repaired, and every other workflow goes on.
pub fn read_actual(store: &Store) -> Result<Actual, StateError> {
    let (tasks, broken) = store.scan()?;
    let mut suspended: HashSet<String> = store.workflows()?.into_iter().filter(|(_, (_, r))| r.suspended).map(|(wf, _)| wf).collect();
    suspended.extend(broken.into_iter().map(|b| b.key.workflow));
    let dead_holders = tasks
        .values()
        .filter(|s| s.phase.is_held())
        .filter_map(|s| s.holder.clone())
        .filter(|h| Holder::parse(h).is_some_and(|h| h.is_dead_here()))
        .collect();
    Ok(Actual { tasks, suspended, dead_holders })
}

/// An attempt that ended: its task, number, start, the parent whose status it may have
/// written (branch todos), and how it ended.
type Finished = (TaskKey, u32, Instant, Option<TaskKey>, Result<AttemptEnd, AttemptError>);

/// Runs one pass.
pub struct Executor {
    cx: Arc<PassContext>,
    concurrency: usize,

    /// How often to look again while other holders have work in flight.
    pub poll: Duration,
}

impl Executor {
    /// An executor over `cx`.
    pub fn new(cx: Arc<PassContext>) -> Executor {
        let concurrency = usize::try_from(cx.snapshot.config.concurrency).unwrap_or(1).max(1);
        // Looking at a shared remote costs a fetch: less often than at the local refs.
        let poll = Duration::from_millis(if cx.store.is_shared() { 1000 } else { 250 });
        Executor { cx, concurrency, poll }
    }

    fn emit(&self, event: Event) {
        self.cx.emit(event);
    }

    /// The role that plays `key`: the plan's, or a branch todo's own (from its record).
    fn role_of(&self, key: &TaskKey) -> String {
        if let Some(task) = self.cx.snapshot.task(key) {
            return task.agent_role.to_string();
        }
        let record = self.cx.store.status(key).ok().flatten().map(|(_, s)| s);
        record.and_then(|s| s.branch.map(|b| b.role).or(s.role)).unwrap_or_else(|| "unknown".into())
    }

    /// What the success of `key`'s attempt took, from the records: the task it satisfied (the
    /// parent of a branch todo), the attempts of that task since its last retry and of its branch
    /// todos, and the accepted branch todo's depth. `None` when a record cannot be read.
    fn satisfied(&self, key: &TaskKey) -> Option<Event> {
        let status = |k: &TaskKey| self.cx.store.status(k).ok().flatten().map(|(_, s)| s);
        let own = status(key)?;
        let (task, branch_depth) = match &own.branch {
            Some(b) => (TaskKey::new(&key.workflow, &b.parent_id), b.depth),
            None => (key.clone(), 0),
        };
        let parent = if task == *key { own } else { status(&task)? };
        let branches: u32 = parent.branch_todos.iter().filter_map(|id| status(&TaskKey::new(&key.workflow, id))).map(|b| b.attempt).sum();
        Some(Event::Satisfied { role: self.role_of(&task), key: task, attempts: parent.attempts_used() + branches, branch_depth })
    }

    /// What the refs say, less the tasks of stalled workflows, which no decision may touch.
    fn read_actual(&self) -> Result<Actual, StateError> {
        read_actual(&self.cx.store).map(|actual| self.cx.snapshot.screen(actual))
    }

    fn context(&self) -> Context {
        Context { now: Timestamp::now(), prune: self.cx.snapshot.config.prune }
    }

    /// Runs until no task can make progress. On an error, the attempts already started run to
    /// their end before it is returned: dropping them would leave their claims held until the
    /// leases ran out.
    pub async fn run(&self) -> Result<PassReport, AttemptError> {
        let mut inflight: JoinSet<Finished> = JoinSet::new();
        let result = self.drive(&mut inflight).await;
        if result.is_err() {
            while let Some(joined) = inflight.join_next().await {
                if let Ok((key, attempt, started, _, Ok(end))) = joined {
                    let role = self.role_of(&key);
                    self.emit(Event::Finished { key, attempt, role, end, elapsed: started.elapsed() });
                }
            }
        }
        result
    }

    async fn drive(&self, inflight: &mut JoinSet<Finished>) -> Result<PassReport, AttemptError> {
        let desired = self.cx.snapshot.desired();
        let heights: HashMap<TaskKey, usize> = self
            .cx
            .snapshot
            .graphs
            .iter()
            .flat_map(|(wf, g)| g.heights().into_iter().map(move |(id, h)| (TaskKey::new(wf, id), h)))
            .collect();
        let mut actual = self.read_actual()?;
        let mut report = PassReport::default();
        let mut running: HashSet<TaskKey> = HashSet::new();
        let mut cancel = self.cx.cancel.clone();
        // With a shared remote, what the other controllers write is looked at now and then, so
        // that their results unblock work here within the pass.
        let shared = self.cx.store.is_shared();
        let mut looked = Instant::now();
        loop {
            if shared && looked.elapsed() >= self.poll {
                self.look_again(&mut actual, &mut report)?;
                looked = Instant::now();
            }
            let stopping = report.cancelled || report.infrastructure.is_some() || report.superseded;
            let actions = decide(&desired, &actual, &self.context());
            if !stopping {
                self.apply_marks(&actions, &mut actual)?;
                // Critical path first: of the tasks ready now, start those with the longest chain
                // of work behind them. Controllers sharing a remote break ties each their own way,
                // so that they reach for different tasks rather than race for the same.
                let mut runnable: Vec<&Action> = actions.iter().filter(|a| matches!(a, Action::Run { .. })).collect();
                runnable.sort_by_key(|a| {
                    let spread = if shared { self.spread(a.key()) } else { 0 };
                    (std::cmp::Reverse(heights.get(a.key()).copied().unwrap_or(0)), spread)
                });
                let waiting = runnable.iter().filter(|a| !running.contains(a.key())).count();
                self.emit(Event::Queue { ready: waiting.saturating_sub(self.concurrency.saturating_sub(running.len())) });
                for action in runnable {
                    if running.len() >= self.concurrency {
                        break;
                    }
                    if let Action::Run { key, attempt, attempts_base, .. } = action
                        && !running.contains(key)
                    {
                        let Some(plan) = self.plan(action, &desired, &actual)? else { continue };
                        running.insert(key.clone());
                        let retry = *attempt > attempts_base + 1 || plan.branch.is_some();
                        // A branch todo has no record of its own before its first attempt: its role is in the plan.
                        let role = plan.branch.as_ref().map_or_else(|| self.role_of(key), |b| b.info.role.clone());
                        self.emit(Event::Started { key: key.clone(), attempt: *attempt, role, retry });
                        // A branch todo writes its parent's status too.
                        let parent = plan.branch.as_ref().map(|b| b.parent.clone());
                        let (cx, key, attempt) = (self.cx.clone(), key.clone(), *attempt);
                        inflight
                            .spawn(async move { (key, attempt, Instant::now(), parent, attempt::run(cx, plan).await) }.in_current_span());
                    }
                }
            }
            if inflight.is_empty() {
                if !stopping && self.others_hold(&actual) {
                    tokio::select! {
                        _ = tokio::time::sleep(self.poll) => {}
                        _ = cancel.wait_for(|c| *c) => report.cancelled = true,
                    }
                    if shared {
                        self.look_again(&mut actual, &mut report)?;
                        looked = Instant::now();
                    } else {
                        actual = self.read_actual()?;
                    }
                    continue;
                }
                report.actions = decide(&desired, &actual, &self.context());
                return Ok(report);
            }
            tokio::select! {
                joined = inflight.join_next() => {
                    let mut done = vec![joined.expect("the set is not empty")];
                    // Take every attempt that has finished meanwhile, then decide once for all.
                    while let Some(more) = inflight.try_join_next() {
                        done.push(more);
                    }
                    for joined in done {
                        let (key, attempt, started, parent, end) = joined.expect("attempts do not panic");
                        running.remove(&key);
                        if let Some(parent) = parent {
                            self.refresh(&parent, &mut actual)?;
                        }
                        self.finished(key, attempt, started, end?, &mut actual, &mut report)?;
                    }
                }
                _ = cancel.wait_for(|c| *c), if !report.cancelled => report.cancelled = true,
                _ = tokio::time::sleep(self.poll.saturating_sub(looked.elapsed())), if shared && !stopping => {}
            }
        }
    }

    /// This controller's own order among tasks of equal priority.
    fn spread(&self, key: &TaskKey) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (self.cx.holder.as_str(), key.workflow.as_str(), key.task.as_str()).hash(&mut h);
        h.finish()
    }

    /// Brings the state in from the shared remote and reads it again. A fetch that fails (the
    /// remote out of reach for a moment) leaves the state as it was: every write is checked
    /// against the remote anyway. When the watched branch has moved there, the others are on
    /// newer plans, and working on this pass's would undo what they do: the pass is superseded.
    fn look_again(&self, actual: &mut Actual, report: &mut PassReport) -> Result<(), StateError> {
        if let Err(e) = self.cx.store.refresh() {
            tracing::warn!(error = %e, "could not bring the state in from the remote");
        }
        *actual = self.read_actual()?;
        let snapshot = &self.cx.snapshot;
        match self.cx.store.authority_tip(&format!("refs/heads/{}", snapshot.branch)) {
            Ok(Some(tip)) if tip != snapshot.plan_commit && !report.superseded => {
                tracing::info!(branch = %snapshot.branch, %tip, "the watched branch moved on the remote; this pass starts nothing more");
                report.superseded = true;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look at the watched branch on the remote"),
        }
        Ok(())
    }

    /// Takes in one finished attempt: its new state, and what it means for the pass.
    fn finished(
        &self,
        key: TaskKey,
        attempt: u32,
        started: Instant,
        end: AttemptEnd,
        actual: &mut Actual,
        report: &mut PassReport,
    ) -> Result<(), StateError> {
        match &end {
            AttemptEnd::LostClaim => *actual = self.read_actual()?,
            AttemptEnd::Infrastructure(why) => report.infrastructure = Some(why.clone()),
            AttemptEnd::Cancelled => report.cancelled = true,
            _ => {}
        }
        self.refresh(&key, actual)?;
        let role = self.role_of(&key);
        self.emit(Event::Finished { key: key.clone(), attempt, role, end: end.clone(), elapsed: started.elapsed() });
        if matches!(end, AttemptEnd::Succeeded { .. } | AttemptEnd::Adopted { .. })
            && let Some(satisfied) = self.satisfied(&key)
        {
            self.emit(satisfied);
        }
        report.attempts.push((key, attempt, end));
        Ok(())
    }

    fn refresh(&self, key: &TaskKey, actual: &mut Actual) -> Result<(), StateError> {
        match self.cx.store.state(key)? {
            Some(state) => actual.tasks.insert(key.clone(), state),
            None => actual.tasks.remove(key),
        };
        Ok(())
    }

    /// Whether another live holder has a claim: then its results may unblock more work here.
    fn others_hold(&self, actual: &Actual) -> bool {
        actual.tasks.values().any(|s| {
            s.phase.is_held()
                && s.holder.as_deref() != Some(self.cx.holder.as_str())
                && !s.holder.as_ref().is_some_and(|h| actual.dead_holders.contains(h))
                && s.lease_expires_at.is_some_and(|t| t > Timestamp::now())
        })
    }

    /// What an attempt needs; `None` for a branch todo its parent no longer waits on.
    fn plan(&self, action: &Action, desired: &Desired, actual: &Actual) -> Result<Option<AttemptPlan>, StateError> {
        let Action::Run { key, attempt, attempts_base, expected, takeover, branch_of, .. } = action else {
            unreachable!("only Run actions are planned")
        };
        // A branch todo works for its parent: the parent's dependencies are the ones that count.
        let owner = branch_of.as_deref().unwrap_or(&key.task);
        let branch = match branch_of {
            Some(parent) => {
                let parent = TaskKey::new(&key.workflow, parent);
                let info = self.cx.store.status(&parent)?.and_then(|(_, s)| s.open_branch).filter(|b| b.id == key.task);
                let Some(info) = info else { return Ok(None) };
                Some(BranchPlan { parent, info })
            }
            None => None,
        };
        let graph = &self.cx.snapshot.graphs[&key.workflow];
        let upstream: HashSet<&str> = graph.upstream(owner).into_iter().collect();
        let direct: HashSet<&str> = graph.dependencies(owner).into_iter().collect();
        let order = desired.workflows.iter().find(|w| w.id == key.workflow).map(|w| w.tasks.as_slice()).unwrap_or_default();
        let result = |id: &str| actual.tasks.get(&TaskKey::new(&key.workflow, id)).and_then(|s| s.result);
        let results = |set: &HashSet<&str>| -> Vec<(String, Oid)> {
            order.iter().filter(|t| set.contains(t.id.as_str())).filter_map(|t| Some((t.id.clone(), result(&t.id)?))).collect()
        };
        Ok(Some(AttemptPlan {
            key: key.clone(),
            attempt: *attempt,
            attempts_base: *attempts_base,
            expected: *expected,
            takeover: takeover.clone(),
            upstream: results(&upstream),
            direct: results(&direct),
            branch,
        }))
    }

    /// The writes that need no sandbox: NeedsApproval and Orphaned marks, and pruning.
    fn apply_marks(&self, actions: &[Action], actual: &mut Actual) -> Result<(), StateError> {
        let hashes: &HashMap<TaskKey, _> = &self.cx.snapshot.hashes;
        for action in actions {
            if !matches!(action, Action::NeedsApproval { .. } | Action::Orphaned { prune: true, .. } | Action::Orphaned { mark: true, .. })
            {
                continue;
            }
            let key = action.key();
            let state = actual.tasks.get(key).cloned();
            let state = state.as_ref();
            let write = match action {
                Action::NeedsApproval { .. } => {
                    let hash = hashes.get(key);
                    (state.is_none_or(|s| s.phase != Phase::NeedsApproval || s.spec_hash.as_ref() != hash))
                        .then(|| (Phase::NeedsApproval, hash.cloned()))
                }
                Action::Orphaned { prune: true, .. } => {
                    if let Some(tip) = state.map(|s| s.tip) {
                        self.prune(key, tip)?;
                        actual.tasks.remove(key);
                    }
                    None
                }
                Action::Orphaned { mark: true, .. } => Some((Phase::Orphaned, state.and_then(|s| s.spec_hash.clone()))),
                _ => None,
            };
            let Some((phase, hash)) = write else { continue };
            let expected = state.map(|s| s.tip);
            let mut status = match self.cx.store.status(key)? {
                Some((tip, prev)) if Some(tip) == expected => prev.next(phase, Timestamp::now()),
                Some(_) => continue, // moved under us: the next decision sees it
                None => TaskStatus::new(&key.workflow, &key.task, phase, Timestamp::now()),
            };
            status.spec_hash = hash;
            status.reason = Some(crate::state::Reason::parse(phase.as_str()));
            match self.cx.store.append(key, expected, &status, &[]) {
                Ok(_) | Err(StateError::Conflict { .. }) => self.refresh(key, actual)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes an orphan's task ref and result branch (tags stay: they are immutable history).
    fn prune(&self, key: &TaskKey, tip: Oid) -> Result<(), StateError> {
        let branch = format!("refs/heads/{}", branch_name(key));
        {
            let repo = self.cx.store.repo();
            if let Some(target) = repo.find_reference(&branch).ok().and_then(|r| r.target()) {
                cas_ref(&repo, &branch, Some(target), None, "plancd: prune")?;
            }
        }
        match self.cx.store.delete(key, tip) {
            Ok(()) | Err(StateError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
