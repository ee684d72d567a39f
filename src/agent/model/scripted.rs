//! The scripted model: replies read from a file in the repository
//! (`schemas/scripted.schema.json`), by workflow, task, attempt and turn; the planner's by try
//! and turn. It spends nothing, needs no network, and is labelled `scripted` in provenance.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{ChatModel, ChatRequest, ChatResponse, ModelError, ToolCall, Usage, made_up_call_id};
use crate::spec::{Diagnostic, Schema, parse_checked};

/// Replies by attempt (`"1"`, `"2"`, ... or `"default"`).
type Attempts = BTreeMap<String, Vec<Turn>>;

/// The replies file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Script {
    /// Workflow -> task -> attempt -> replies.
    #[serde(default)]
    pub workflows: BTreeMap<String, BTreeMap<String, Attempts>>,
    /// The planner's replies, by try.
    #[serde(default)]
    pub planner: Attempts,
}

/// One recorded reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Turn {
    /// Its text.
    #[serde(default)]
    pub say: String,
    /// Its calls: `{tool: arguments}` each.
    #[serde(default)]
    pub calls: Vec<BTreeMap<String, Value>>,
}

impl Script {
    /// Parses and checks a replies file; problems come back with line and column.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Script, Vec<Diagnostic>> {
        let (parsed, diags) = parse_checked::<Script>(file, bytes, Schema::Scripted);
        match parsed {
            Some((script, _)) if !diags.iter().any(Diagnostic::is_error) => Ok(script),
            _ => Err(diags),
        }
    }

    fn replies(&self, workflow: &str, task: &str) -> Option<&Attempts> {
        if workflow.is_empty() && task.is_empty() {
            return Some(&self.planner);
        }
        self.workflows.get(workflow)?.get(task)
    }
}

/// A model that replays a [`Script`].
pub struct Scripted {
    file: String,
    script: Script,
}

impl Scripted {
    /// The model for the replies in `file` (its content `bytes`).
    pub fn new(file: &str, bytes: &[u8]) -> Result<Scripted, ModelError> {
        let script = Script::parse(file, bytes).map_err(|diags| ModelError::Script {
            file: file.to_owned(),
            problem: diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect::<Vec<_>>().join("; "),
        })?;
        Ok(Scripted { file: file.to_owned(), script })
    }

    fn missing(&self, req: &ChatRequest, what: String) -> ModelError {
        let whose = if req.key.workflow.is_empty() { "the planner".to_owned() } else { format!("{}/{}", req.key.workflow, req.key.task) };
        ModelError::Script { file: self.file.clone(), problem: format!("no reply for {whose}: {what}") }
    }
}

#[async_trait]
impl ChatModel for Scripted {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let key = &req.key;
        let attempts = self.script.replies(&key.workflow, &key.task).ok_or_else(|| self.missing(req, "nothing recorded".into()))?;
        let turns = attempts
            .get(&key.attempt.to_string())
            .or_else(|| attempts.get("default"))
            .ok_or_else(|| self.missing(req, format!("nothing recorded for attempt {} and no default", key.attempt)))?;
        let turn = req.turn();
        let recorded = turns
            .get(turn as usize - 1)
            .ok_or_else(|| self.missing(req, format!("{} repl(ies) recorded, turn {turn} asked for", turns.len())))?;
        let calls = recorded
            .calls
            .iter()
            .flat_map(|call| call.iter())
            .enumerate()
            .map(|(i, (name, arguments))| ToolCall { id: made_up_call_id(turn, i), name: name.clone(), arguments: arguments.clone() })
            .collect();
        Ok(ChatResponse { text: recorded.say.clone(), calls, usage: Usage::default(), stop_reason: "scripted".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::{Message, ReplyKey, testing};

    const FILE: &str = "workflows:\n  wf:\n    t:\n      default:\n        - say: writing\n          calls:\n            - write_file: { path: a.txt, content: \"hi\\n\" }\n        - calls: [{ finish: { summary: done } }]\n      \"2\":\n        - calls: [{ finish: { summary: second } }]\nplanner:\n  default:\n    - calls: [{ submit_plan: { plan: \"x\" } }]\n";

    async fn ask(model: &Scripted, attempt: u32, turns_done: usize) -> Result<ChatResponse, ModelError> {
        let mut req = testing::request(vec![Message::User { text: "go".into() }]);
        for _ in 0..turns_done {
            req.messages.push(Message::Assistant { text: String::new(), calls: vec![] });
        }
        req.key = ReplyKey { workflow: "wf".into(), task: "t".into(), attempt };
        model.complete(&req).await
    }

    #[tokio::test]
    async fn replies_follow_attempt_and_turn() {
        testing::timeout(async {
            let model = Scripted::new(".plancd/scripted.yaml", FILE.as_bytes()).unwrap();
            let first = ask(&model, 1, 0).await.unwrap();
            assert_eq!(first.text, "writing");
            assert_eq!(first.calls[0].name, "write_file");
            assert_eq!(first.calls[0].arguments["content"], "hi\n");
            assert_eq!(first.calls[0].id, "call_1_0");
            assert_eq!(ask(&model, 1, 1).await.unwrap().calls[0].arguments["summary"], "done");
            assert_eq!(ask(&model, 2, 0).await.unwrap().calls[0].arguments["summary"], "second");
            assert_eq!(ask(&model, 1, 0).await.unwrap().usage, Usage::default());
        })
        .await;
    }

    #[tokio::test]
    async fn what_is_not_recorded_is_named() {
        testing::timeout(async {
            let model = Scripted::new("r.yaml", FILE.as_bytes()).unwrap();
            let err = ask(&model, 1, 2).await.unwrap_err();
            assert_eq!(err.to_string(), "scripted replies r.yaml: no reply for wf/t: 2 repl(ies) recorded, turn 3 asked for");
        })
        .await;
    }

    #[test]
    fn a_broken_file_says_where() {
        let err = Scripted::new("r.yaml", b"workflows:\n  wf:\n    t:\n      first: []\n").err().unwrap();
        assert!(err.to_string().starts_with("scripted replies r.yaml: r.yaml:4:7: error[schema]"), "{err}");
    }
}
