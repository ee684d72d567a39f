//! Live progress of a reconcile: a spinner line on a terminal, plain lines otherwise.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use plancd::ops::status::human_duration;
use plancd::reconcile::{AttemptEnd, Event, EventSink};

struct State {
    running: BTreeSet<String>,
    done: usize,
    failed: usize,
}

/// Prints events as they come.
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

impl Progress {
    /// A spinner when stderr is a terminal, lines when it is not.
    pub fn new() -> Arc<Progress> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("the template is valid"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Arc::new(Progress { bar, state: Mutex::new(State { running: BTreeSet::new(), done: 0, failed: 0 }) })
    }

    /// The sink to hand to the executor.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let me = self.clone();
        Arc::new(move |event: &Event| me.on(event))
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn on(&self, event: &Event) {
        if matches!(event, Event::Exec { .. } | Event::Queue { .. } | Event::Spent { .. } | Event::UpstreamFailed { .. }) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Started { key, attempt, .. } => {
                state.running.insert(key.to_string());
                if self.bar.is_none() {
                    eprintln!("started   {key} attempt {attempt}");
                }
            }
            Event::Finished { key, attempt, end, elapsed, .. } => {
                state.running.remove(&key.to_string());
                state.done += 1;
                let took = human_duration(elapsed.as_secs_f64());
                let text = match end {
                    AttemptEnd::Succeeded { tag, .. } => format!("succeeded {key} attempt {attempt} in {took} -> {tag}"),
                    AttemptEnd::Adopted { tag, .. } => format!("adopted   {key} attempt {attempt}: {tag} was already published"),
                    AttemptEnd::Failed { failure_type, message } => {
                        state.failed += 1;
                        format!("failed    {key} attempt {attempt} in {took} [{failure_type}]: {message}")
                    }
                    AttemptEnd::Debugging { branch, failure_type, message } => {
                        format!(
                            "failed    {key} attempt {attempt} in {took} [{failure_type}]: {message}\n          -> branch todo {branch} opened"
                        )
                    }
                    AttemptEnd::Escalated { message } => {
                        state.failed += 1;
                        format!("escalated {key} attempt {attempt}: {message}")
                    }
                    AttemptEnd::LostClaim => format!("skipped   {key}: another holder moved it first"),
                    AttemptEnd::Cancelled => format!("stopped   {key} attempt {attempt}: claim released"),
                    AttemptEnd::Infrastructure(why) => format!("stopped   {key} attempt {attempt}: {why}"),
                };
                self.line(text);
            }
            Event::Exec { .. } | Event::Queue { .. } | Event::Spent { .. } | Event::UpstreamFailed { .. } => {}
        }
        if let Some(bar) = &self.bar {
            let running: Vec<&str> = state.running.iter().map(String::as_str).collect();
            bar.set_message(format!(
                "{} done, {} failed, running: {}",
                state.done,
                state.failed,
                if running.is_empty() { "-".into() } else { running.join(", ") }
            ));
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
