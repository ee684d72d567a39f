//! Token and cost accounting against budgets per attempt, task and workflow. Spending is
//! counted from the providers' usage fields and priced by the model's price table; once a
//! budget is spent, no further request is sent (a hard stop).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Usage;
use crate::config::{Budget, ModelConfig, Prices};
use crate::state::Cost;

/// A cap on tokens and dollars; `None` is no cap.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cap {
    /// Tokens, in and out together.
    pub tokens: Option<u64>,
    /// Dollars.
    pub usd: Option<f64>,
}

impl Cap {
    fn exceeded_by(&self, spent: &Cost) -> Option<String> {
        if let Some(max) = self.tokens.filter(|max| spent.tokens() >= *max) {
            return Some(format!("{} of {max} tokens", spent.tokens()));
        }
        if let Some(max) = self.usd.filter(|max| spent.usd >= *max) {
            return Some(format!("${:.4} of ${max:.4}", spent.usd));
        }
        None
    }
}

/// The caps one attempt runs under.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// This attempt.
    pub attempt: Cap,
    /// The task, over all its attempts.
    pub task: Cap,
    /// The workflow, over all its tasks.
    pub workflow: Cap,
}

fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Limits {
    /// The caps of `budget:` combined with the model's own token limits (the lower wins).
    pub fn new(budget: &Budget, model: &ModelConfig) -> Limits {
        Limits {
            attempt: Cap { tokens: min(budget.tokens_per_attempt, model.max_tokens_per_attempt), usd: budget.usd_per_attempt },
            task: Cap { tokens: min(budget.tokens_per_task, model.max_tokens_per_task), usd: budget.usd_per_task },
            workflow: Cap { tokens: budget.tokens_per_workflow, usd: budget.usd_per_workflow },
        }
    }
}

/// What `usage` costs at `prices`.
pub fn price(usage: &Usage, prices: Option<&Prices>) -> Cost {
    let usd = prices
        .map_or(0.0, |p| (usage.input_tokens as f64 * p.input_per_mtok + usage.output_tokens as f64 * p.output_per_mtok) / 1_000_000.0);
    Cost { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, usd }
}

/// What a pass knows each workflow has spent: what its task refs said when first asked, plus
/// what this process spent since. Shared by the pass's attempts, so that tasks running at once
/// stop at one workflow budget. A clone is the same ledger (the gateway's attempts hold one).
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    workflows: Arc<Mutex<HashMap<String, Cost>>>,
}

impl Ledger {
    /// The workflow's spending, read with `seed` the first time.
    pub fn get_or_seed(&self, workflow: &str, seed: impl FnOnce() -> Cost) -> Cost {
        let mut map = self.workflows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(workflow.to_owned()).or_insert_with(seed)
    }

    fn add(&self, workflow: &str, cost: Cost) -> Cost {
        let mut map = self.workflows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(workflow.to_owned()).or_default();
        *entry += cost;
        *entry
    }
}

/// The account of one attempt.
#[derive(Debug)]
pub struct Meter {
    limits: Limits,
    ledger: Ledger,
    workflow: String,
    task_before: Cost,
    attempt: Mutex<Cost>,
    cache_hits: std::sync::atomic::AtomicU32,
}

impl Meter {
    /// An attempt of a task in `workflow` that had spent `task_before` in earlier attempts.
    pub fn new(limits: Limits, ledger: &Ledger, workflow: &str, task_before: Cost) -> Meter {
        Meter {
            limits,
            ledger: ledger.clone(),
            workflow: workflow.to_owned(),
            task_before,
            attempt: Mutex::new(Cost::default()),
            cache_hits: Default::default(),
        }
    }

    /// What this attempt spent.
    pub fn spent(&self) -> Cost {
        *self.attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a reply that came from the response cache.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Replies this attempt got from the response cache.
    pub fn cache_hits(&self) -> u32 {
        self.cache_hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts what a request cost.
    pub fn charge(&self, cost: Cost) {
        *self.attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += cost;
        self.ledger.add(&self.workflow, cost);
    }

    /// Whether another request may be sent; if not, which budget is spent.
    pub fn check(&self) -> Result<(), String> {
        let attempt = self.spent();
        let workflow = self.ledger.get_or_seed(&self.workflow, Cost::default);
        for (scope, cap, spent) in [
            ("attempt", self.limits.attempt, attempt),
            ("task", self.limits.task, self.task_before + attempt),
            ("workflow", self.limits.workflow, workflow),
        ] {
            if let Some(what) = cap.exceeded_by(&spent) {
                return Err(format!("the {scope}'s budget is spent: {what}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(tokens: u64, usd: f64) -> Cost {
        Cost { input_tokens: tokens, output_tokens: 0, usd }
    }

    #[test]
    fn prices_are_per_million_tokens() {
        let usage = Usage { input_tokens: 2_000_000, output_tokens: 500_000, estimated: false };
        let c = price(&usage, Some(&Prices { input_per_mtok: 0.15, output_per_mtok: 0.60 }));
        assert!((c.usd - 0.6).abs() < 1e-9, "{c:?}");
        assert_eq!(price(&usage, None).usd, 0.0);
    }

    #[test]
    fn the_lower_of_budget_and_model_limits_wins() {
        let budget = Budget { tokens_per_attempt: Some(500), usd_per_workflow: Some(1.0), ..Budget::default() };
        let model: ModelConfig =
            serde_json::from_value(serde_json::json!({"provider": "openai", "max_tokens_per_attempt": 300, "max_tokens_per_task": 900}))
                .unwrap();
        let limits = Limits::new(&budget, &model);
        assert_eq!((limits.attempt.tokens, limits.task.tokens, limits.workflow.usd), (Some(300), Some(900), Some(1.0)));
    }

    #[test]
    fn each_scope_stops_spending_once_spent() {
        let ledger = Ledger::default();
        let limits = Limits {
            attempt: Cap { tokens: Some(100), usd: None },
            task: Cap { tokens: Some(150), usd: None },
            workflow: Cap { tokens: None, usd: Some(1.0) },
        };
        let meter = Meter::new(limits, &ledger, "wf", cost(60, 0.0));
        assert!(meter.check().is_ok());
        meter.charge(cost(90, 0.1));
        assert_eq!(meter.check().unwrap_err(), "the task's budget is spent: 150 of 150 tokens");
        let other = Meter::new(Limits { workflow: limits.workflow, ..Limits::default() }, &ledger, "wf", Cost::default());
        other.charge(cost(10, 0.95));
        assert_eq!(meter.check().unwrap_err(), "the task's budget is spent: 150 of 150 tokens");
        assert_eq!(other.check().unwrap_err(), "the workflow's budget is spent: $1.0500 of $1.0000");
        assert_eq!(meter.spent(), cost(90, 0.1));
    }

    #[test]
    fn the_ledger_is_seeded_once() {
        let ledger = Ledger::default();
        assert_eq!(ledger.get_or_seed("wf", || cost(5, 0.0)).tokens(), 5);
        assert_eq!(ledger.get_or_seed("wf", || cost(500, 0.0)).tokens(), 5);
    }
}
