//! Live progress of a reconcile: on a terminal, a line per running task with its step and
//! elapsed time under a summary spinner; plain lines otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plancd::ops::status::human_duration;
use plancd::reconcile::{AttemptEnd, Event, EventSink};

/// The bars drawn now, if any: log lines are written around them.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Where log lines go: stderr, around the progress bars while there are any (a line written
/// through the bars' terminal would be drawn over).
#[derive(Clone, Copy)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log line, written when dropped.
pub struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &self.0);
        };
        let bars = BARS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }
}

struct State {
    running: BTreeSet<String>,
    /// Each running task's own line (on a terminal).
    tasks: BTreeMap<String, ProgressBar>,
    done: usize,
    failed: usize,
}

/// Prints events as they come.
pub struct Progress {
    bars: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

impl Progress {
    /// Spinners when stderr is a terminal, lines when it is not.
    pub fn new() -> Arc<Progress> {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        *BARS.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = bars.clone();
        let bar = bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("the template is valid"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let state = State { running: BTreeSet::new(), tasks: BTreeMap::new(), done: 0, failed: 0 };
        Arc::new(Progress { bars, bar, state: Mutex::new(state) })
    }

    /// A running task's line: its step and how long the attempt has run.
    fn task_line(&self, key: &str, attempt: u32) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let line = bars.add(ProgressBar::new_spinner());
        line.set_style(ProgressStyle::with_template("  {spinner} {prefix} {msg} [{elapsed}]").expect("the template is valid"));
        line.set_prefix(format!("{key} attempt {attempt}:"));
        line.set_message("preparing");
        line.enable_steady_tick(Duration::from_millis(120));
        Some(line)
    }

    /// The sink to hand to the executor.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let me = self.clone();
        Arc::new(move |event: &Event| me.on(event))
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn on(&self, event: &Event) {
        if !event.is_progress() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Started { key, attempt, .. } => {
                state.running.insert(key.to_string());
                match self.task_line(&key.to_string(), *attempt) {
                    Some(line) => {
                        state.tasks.insert(key.to_string(), line);
                    }
                    None => eprintln!("started   {key} attempt {attempt}"),
                }
            }
            Event::Step { key, attempt, step } => match state.tasks.get(&key.to_string()) {
                Some(line) => line.set_message(step.to_string()),
                None if self.bars.is_none() => eprintln!("          {key} attempt {attempt}: {step}"),
                None => {}
            },
            Event::Finished { key, attempt, end, elapsed, .. } => {
                state.running.remove(&key.to_string());
                if let Some(line) = state.tasks.remove(&key.to_string()) {
                    line.finish_and_clear();
                    if let Some(bars) = &self.bars {
                        bars.remove(&line);
                    }
                }
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
            _ => {}
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} done, {} failed, {} running", state.done, state.failed, state.running.len()));
        }
    }

    /// Removes the spinners.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, line) in std::mem::take(&mut state.tasks) {
            line.finish_and_clear();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        *BARS.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}
