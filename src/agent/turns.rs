//! The agent loop: ask the model, run its tool calls in the session, hand back the results,
//! until it finishes — or is stuck (the same call with the same result three times, or too
//! many turns without changing a file), out of turns, time or budget.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Instant;

use plancd_sandbox::SandboxError;

use super::model::budget::Meter;
use super::model::transcript::{Transcript, scrub};
use super::model::{AskError, ChatRequest, Message, Model, ModelError, Reply, ToolCall, ToolResult};
use super::tools::{Effect, Workspace};
use crate::spec::{canonical_json, load_contract, sha256_hex};

/// The bounds of one conversation.
#[derive(Debug, Clone, Copy)]
pub struct TurnLimits {
    /// Most replies.
    pub max_turns: u32,
    /// Replies in a row without a file change before the agent counts as stuck.
    pub max_idle_turns: u32,
    /// How often `finish` may be refused for an invalid contract.
    pub validation_tries: u32,
    /// When time is up.
    pub deadline: Instant,
}

/// What a conversation works with.
pub struct Conversation<'a> {
    /// The model.
    pub model: &'a Model,
    /// The budgets.
    pub meter: &'a Meter,
    /// Where every request and reply is recorded.
    pub transcript: &'a Transcript,
    /// Where tools run.
    pub workspace: &'a Workspace<'a>,
    /// Its bounds.
    pub limits: TurnLimits,
    /// Contract files that must validate before `finish` is accepted (the architect's).
    pub contracts: Vec<String>,
    /// Where each reply and call is told as it happens, with the spend so far.
    pub live: Option<&'a crate::live::LiveAttempt>,
}

/// How a conversation ended.
#[derive(Debug)]
pub enum End {
    /// The agent finished, with its summary.
    Finished(String),
    /// The debugger found the spec inconsistent.
    SpecMismatch(String),
    /// Stuck, and why.
    Stuck(String),
    /// A budget is spent.
    Budget(String),
    /// The attempt's time is up.
    TimedOut,
    /// The contract never validated.
    InvalidContract(String),
    /// The model's API failed.
    Model(ModelError),
}

/// The end, the turns taken and a log for people.
#[derive(Debug)]
pub struct LoopReport {
    /// How it ended.
    pub end: End,
    /// Replies received.
    pub turns: u32,
    /// One line per reply and per call.
    pub log: String,
}

/// What the loop remembers between turns.
#[derive(Default)]
struct Memory {
    repeats: HashMap<String, u32>,
    written: HashMap<String, String>,
    idle: u32,
    refused: u32,
    log: String,
}

impl Conversation<'_> {
    /// Talks until the conversation ends. A sandbox failure is the only error.
    pub async fn run(&self, mut req: ChatRequest) -> Result<LoopReport, SandboxError> {
        let mut mem = Memory::default();
        for turn in 1..=self.limits.max_turns {
            let reply = match self.model.ask(&req, self.meter, self.transcript, self.limits.deadline).await {
                Ok(reply) => reply,
                Err(AskError::Budget(why)) => return Ok(mem.report(End::Budget(why), turn - 1)),
                Err(AskError::Deadline) => return Ok(mem.report(End::TimedOut, turn - 1)),
                Err(AskError::Model(e)) => return Ok(mem.report(End::Model(e), turn - 1)),
            };
            mem.log_reply(turn, &reply);
            if let Some(live) = self.live {
                let spent = self.meter.spent();
                let line = mem.log.lines().last().unwrap_or_default();
                live.note(&scrub(&format!("{line}  [so far: {} tokens, ${:.4}]", spent.tokens(), spent.usd), &self.model.secrets));
            }
            let calls = reply.response.calls.clone();
            req.messages.push(Message::Assistant { text: reply.response.text, calls: calls.clone() });
            if calls.is_empty() {
                req.messages.push(Message::User { text: "Use the tools to do the task, and call `finish` when it is done.".into() });
            }
            let (results, end) = self.calls(&calls, &mut mem).await?;
            if let Some(end) = end {
                self.transcript.results(turn, &results);
                return Ok(mem.report(end, turn));
            }
            if !results.is_empty() {
                req.messages.push(Message::Tool { results });
            }
            if mem.idle >= self.limits.max_idle_turns {
                let why = format!("{} turns in a row without changing a file", mem.idle);
                return Ok(mem.report(End::Stuck(why), turn));
            }
        }
        let max = self.limits.max_turns;
        Ok(mem.report(End::Stuck(format!("no `finish` after {max} turns (roles.<role>.max_turns)")), max))
    }

    /// Runs one reply's calls in order; a `finish` that is accepted, or a repeat too many,
    /// ends the conversation.
    async fn calls(&self, calls: &[ToolCall], mem: &mut Memory) -> Result<(Vec<ToolResult>, Option<End>), SandboxError> {
        let mut results = Vec::new();
        let mut changed = false;
        for call in calls {
            let (mut result, effect) = self.workspace.call(call).await?;
            let mut end = None;
            match effect {
                Effect::Wrote { path, content } => changed |= mem.wrote(path, &content),
                Effect::Finish { summary, spec_mismatch: true } => end = Some(End::SpecMismatch(summary)),
                Effect::Finish { summary, .. } => match self.invalid_contracts().await? {
                    None => end = Some(End::Finished(summary)),
                    Some(problems) => {
                        mem.refused += 1;
                        result.is_error = true;
                        result.content =
                            format!("not finished: the contract does not validate:\n{problems}\nFix it and call `finish` again.");
                        if mem.refused >= self.limits.validation_tries {
                            end = Some(End::InvalidContract(problems));
                        }
                    }
                },
                Effect::None => {}
            }
            let _ = writeln!(mem.log, "  {} -> {}", describe(call), first_line(&result.content));
            if let Some(live) = self.live {
                live.note(&scrub(mem.log.lines().last().unwrap_or_default(), &self.model.secrets));
            }
            if end.is_none() && call.name != "finish" && mem.repeated(call, &result) >= 3 {
                end = Some(End::Stuck(format!("`{}` called 3 times with the same arguments and the same result", describe(call))));
            }
            results.push(result);
            if end.is_some() {
                return Ok((results, end));
            }
        }
        mem.idle = if changed { 0 } else { mem.idle + 1 };
        Ok((results, None))
    }

    /// The schema problems of the contracts the agent must produce, if any.
    async fn invalid_contracts(&self) -> Result<Option<String>, SandboxError> {
        let mut problems = Vec::new();
        for path in &self.contracts {
            match self.workspace.read_bytes(path).await? {
                None => problems.push(format!("{path}: not written yet")),
                Some(bytes) => {
                    let (_, diags) = load_contract(path, &bytes);
                    problems.extend(diags.iter().filter(|d| d.is_error()).map(ToString::to_string));
                }
            }
        }
        Ok((!problems.is_empty()).then(|| problems.join("\n")))
    }
}

impl Memory {
    /// Whether writing `content` at `path` changes what the agent last wrote there.
    fn wrote(&mut self, path: String, content: &str) -> bool {
        let hash = sha256_hex(content.as_bytes());
        self.written.insert(path, hash.clone()).is_none_or(|old| old != hash)
    }

    /// How often this call has had this result.
    fn repeated(&mut self, call: &ToolCall, result: &ToolResult) -> u32 {
        let key = sha256_hex(&[call.name.as_bytes(), &canonical_json(&call.arguments)[..], result.content.as_bytes()].join(&0u8));
        let count = self.repeats.entry(key).or_default();
        *count += 1;
        *count
    }

    fn log_reply(&mut self, turn: u32, reply: &Reply) {
        let usage = reply.response.usage;
        let source = match (reply.cached, usage.input_tokens + usage.output_tokens) {
            (true, _) => "from the cache".to_owned(),
            (false, 0) => "no tokens".to_owned(),
            (false, _) => format!("{}+{} tokens", usage.input_tokens, usage.output_tokens),
        };
        let said = first_line(&reply.response.text);
        let _ = writeln!(self.log, "turn {turn} ({source}){}{said}", if said.is_empty() { "" } else { ": " });
    }

    fn report(self, end: End, turns: u32) -> LoopReport {
        LoopReport { end, turns, log: self.log }
    }
}

/// A call in a few words: `write_file a.py`, `run python3 -m unittest`.
pub fn describe(call: &ToolCall) -> String {
    let arg = ["path", "cmd", "summary"].iter().find_map(|k| call.arguments.get(*k).and_then(|v| v.as_str()));
    match arg {
        Some(a) => format!("{} {}", call.name, first_line(a)),
        None => call.name.clone(),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let short: String = line.chars().take(100).collect();
    if short.len() < text.len() { format!("{short}…") } else { short }
}
