//! `plancd events [WF[/TASK]] [--since DURATION|TIME]`: the audit trail of every state change,
//! read from the task refs' chains (each status commit is one change), oldest first, like
//! `kubectl events`. A branch todo's changes are shown under its parent's name.

use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use crate::state::{FailureType, Phase, Reason, StateError, Store, TaskKey};

/// One state change of one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    /// When the record was written.
    pub time: Timestamp,
    /// The workflow.
    pub workflow: String,
    /// The task (or branch todo).
    pub task: String,
    /// For a branch todo: the task it debugs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The attempt the record is about.
    pub attempt: u32,
    /// The phase before (`Pending` for a task's first record).
    pub from: Phase,
    /// The phase after.
    pub phase: Phase,
    /// Why, as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The reason in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
    /// The failure's type, when one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    /// The record's message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The person behind the record (an approval, a retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The holder of the claim, while held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// The status commit.
    pub commit: String,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions<'a> {
    /// A workflow, or `WF/TASK` (its branch todos included); everything when `None`.
    pub target: Option<&'a str>,
    /// Only the changes at or after this time.
    pub since: Option<Timestamp>,
}

/// Every state change of the tasks `opts` selects, oldest first.
pub fn events(repo: &Path, opts: &EventsOptions<'_>) -> Result<Vec<EventRow>, StateError> {
    events_in(&Store::open(repo)?, opts)
}

/// [`events`] read from `store`.
pub fn events_in(store: &Store, opts: &EventsOptions<'_>) -> Result<Vec<EventRow>, StateError> {
    let listed = store.list()?;
    let mut rows = Vec::new();
    for (key, state) in &listed {
        if !selected(opts.target, key, state.parent.as_deref()) {
            continue;
        }
        let mut from = Phase::Pending;
        for entry in store.history(key)? {
            let s = entry.status;
            let row = EventRow {
                time: s.updated_at,
                workflow: key.workflow.clone(),
                task: key.task.clone(),
                parent: s.branch.as_ref().map(|b| b.parent_id.clone()).or_else(|| state.parent.clone()),
                attempt: s.attempt,
                from,
                phase: s.phase,
                reason_text: s.reason.as_ref().map(|r| r.describe().to_owned()),
                reason: s.reason,
                failure_type: s.failure_type,
                message: s.message,
                by: s.by,
                holder: s.holder,
                commit: entry.commit.to_string(),
            };
            from = s.phase;
            if opts.since.is_none_or(|since| row.time >= since) {
                rows.push(row);
            }
        }
    }
    // Stable: changes of one task at the same instant keep their chain order.
    rows.sort_by_key(|r| r.time);
    Ok(rows)
}

/// Whether a task belongs to `target`: its workflow, itself, or a branch todo of it.
fn selected(target: Option<&str>, key: &TaskKey, parent: Option<&str>) -> bool {
    let Some(target) = target else { return true };
    match target.split_once('/') {
        None => key.workflow == target,
        Some((wf, task)) => key.workflow == wf && (key.task == task || parent == Some(task)),
    }
}

/// Parses `--since`: a duration back from `now` (`90s`, `10m`, `2h`, `1d`, `1h30m`), a time
/// (`2026-12-02T14:00:00Z`) or a day (`2026-12-02`, from midnight UTC).
pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(day) = text.parse::<jiff::civil::Date>()
        && let Ok(midnight) = format!("{day}T00:00:00Z").parse::<Timestamp>()
    {
        return Ok(midnight);
    }
    let seconds = compact_seconds(text)
        .ok_or_else(|| format!("`{text}` is neither a duration (90s, 10m, 2h, 1d, 1h30m) nor a time (2026-12-02T14:00:00Z, 2026-12-02)"))?;
    now.checked_sub(jiff::SignedDuration::from_secs(seconds)).map_err(|e| e.to_string())
}

/// `1h30m` in seconds; `None` unless the whole text is numbers with units (s, m, h, d, w).
fn compact_seconds(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: i64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && !text.is_empty()).then_some(total)
}

/// How long ago, as `kubectl` shows it: `12s`, `4m05s`, `38m`, `3h12m`, `2d4h`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The task as the table names it: `wf/task`, and `wf/parent ↳ branch_01` for a branch todo.
pub fn task_label(row: &EventRow) -> String {
    match &row.parent {
        Some(parent) => {
            let short = row.task.strip_prefix(parent.as_str()).map_or(row.task.as_str(), |s| s.trim_start_matches('_'));
            format!("{}/{parent} ↳ {short}", row.workflow)
        }
        None => format!("{}/{}", row.workflow, row.task),
    }
}

/// What a row says in words: the failure type, the message's first line (or the reason in
/// words when there is none), and who asked.
pub fn message_text(row: &EventRow) -> String {
    let first = row.message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let mut text = match (first.is_empty(), &row.reason) {
        (false, _) => first.to_owned(),
        (true, Some(reason)) => reason.describe().to_owned(),
        (true, None) => String::new(),
    };
    if let Some(t) = &row.failure_type {
        text = format!("[{t}] {text}");
    }
    // An operation's own message names who asked already ("retry requested by ann").
    if let Some(by) = row.by.as_ref().filter(|by| !text.contains(by.as_str())) {
        text.push_str(&format!(" (by {by})"));
    }
    const MAX: usize = 160;
    if text.chars().count() > MAX {
        text = format!("{}…", text.chars().take(MAX - 1).collect::<String>());
    }
    text.trim().to_owned()
}

/// The table `plancd events` prints.
pub fn table(rows: &[EventRow], now: Timestamp) -> String {
    let header = ["AGE", "TASK", "ATTEMPT", "PHASE", "REASON", "MESSAGE"].map(str::to_owned).to_vec();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                age(r.time, now),
                task_label(r),
                if r.attempt == 0 { "-".into() } else { r.attempt.to_string() },
                if r.from == r.phase { r.phase.to_string() } else { format!("{} → {}", r.from, r.phase) },
                r.reason.as_ref().map_or_else(|| "-".into(), ToString::to_string),
                message_text(r),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let pad = w.saturating_sub(c.chars().count());
                format!("{c}{}", " ".repeat(pad))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn since_reads_durations_times_and_days() {
        let now = at("2026-12-02T15:00:00Z");
        for (text, want) in [
            ("90s", "2026-12-02T14:58:30Z"),
            ("10m", "2026-12-02T14:50:00Z"),
            ("2h", "2026-12-02T13:00:00Z"),
            ("1h30m", "2026-12-02T13:30:00Z"),
            ("1d", "2026-12-01T15:00:00Z"),
            ("2026-12-02T14:00:00Z", "2026-12-02T14:00:00Z"),
            ("2026-12-01", "2026-12-01T00:00:00Z"),
        ] {
            assert_eq!(parse_since(text, now), Ok(at(want)), "{text}");
        }
        for bad in ["", "10", "ten minutes", "5y", "m"] {
            assert!(parse_since(bad, now).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn ages_read_as_kubectl_shows_them() {
        let now = at("2026-12-02T15:00:00Z");
        for (then, want) in [
            ("2026-12-02T14:59:48Z", "12s"),
            ("2026-12-02T14:55:55Z", "4m05s"),
            ("2026-12-02T14:22:00Z", "38m"),
            ("2026-12-02T11:48:00Z", "3h12m"),
            ("2026-11-30T11:00:00Z", "2d4h"),
            ("2026-12-02T15:00:03Z", "0s"),
        ] {
            assert_eq!(age(at(then), now), want, "{then}");
        }
    }

    fn row(task: &str, parent: Option<&str>, from: Phase, phase: Phase, reason: Option<Reason>) -> EventRow {
        EventRow {
            time: at("2026-12-02T14:59:50Z"),
            workflow: "wf".into(),
            task: task.into(),
            parent: parent.map(str::to_owned),
            attempt: 1,
            from,
            phase,
            reason_text: None,
            reason,
            failure_type: None,
            message: String::new(),
            by: None,
            holder: None,
            commit: "0".repeat(40),
        }
    }

    #[test]
    fn the_table_names_branch_todos_under_their_parent_and_reasons_in_words() {
        let claimed = row("t2", None, Phase::Pending, Phase::Running, Some(Reason::Claimed));
        let debugging = EventRow {
            failure_type: Some(FailureType::ImplementationBug),
            message: "1 of 1 acceptance test(s) failed\nmore".into(),
            ..row("t2", None, Phase::Running, Phase::Debugging, Some(Reason::BranchTodoOpened))
        };
        let branch = row("t2_branch_01", Some("t2"), Phase::Pending, Phase::Running, Some(Reason::Claimed));
        let retried = EventRow {
            by: Some("ann@example.com".into()),
            ..row("t2", None, Phase::Escalated, Phase::Pending, Some(Reason::RetryRequested))
        };
        let text = table(&[claimed, debugging, branch, retried], at("2026-12-02T15:00:00Z"));
        assert_eq!(
            text,
            "AGE  TASK               ATTEMPT  PHASE                REASON            MESSAGE\n\
             10s  wf/t2              1        Pending → Running    Claimed           a controller took the task and starts an attempt\n\
             10s  wf/t2              1        Running → Debugging  BranchTodoOpened  [implementation_bug] 1 of 1 acceptance test(s) failed\n\
             10s  wf/t2 ↳ branch_01  1        Pending → Running    Claimed           a controller took the task and starts an attempt\n\
             10s  wf/t2              1        Escalated → Pending  RetryRequested    a person asked for another attempt (by ann@example.com)\n"
        );
    }

    #[test]
    fn who_asked_is_named_once() {
        let by = |message: &str| EventRow {
            by: Some("ann@example.com".into()),
            message: message.into(),
            ..row("t2", None, Phase::Escalated, Phase::Pending, Some(Reason::RetryRequested))
        };
        assert_eq!(message_text(&by("retry requested by ann@example.com")), "retry requested by ann@example.com");
        assert_eq!(message_text(&by("another attempt requested")), "another attempt requested (by ann@example.com)");
        assert_eq!(message_text(&by("")), "a person asked for another attempt (by ann@example.com)");
    }

    #[test]
    fn a_target_selects_its_workflow_task_and_branch_todos() {
        let (t, b, other) = (TaskKey::new("wf", "t2"), TaskKey::new("wf", "t2_branch_01"), TaskKey::new("wf2", "t2"));
        assert!(selected(None, &other, None));
        assert!(selected(Some("wf"), &t, None) && !selected(Some("wf"), &other, None));
        assert!(selected(Some("wf/t2"), &t, None) && selected(Some("wf/t2"), &b, Some("t2")));
        assert!(!selected(Some("wf/t2"), &other, None) && !selected(Some("wf/t3"), &b, Some("t2")));
    }
}
