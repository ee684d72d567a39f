//! The transcript of a model agent (`attempts/<n>/transcript.jsonl`): one JSON object a line,
//! every request (the messages new since the previous one, which together are the whole
//! conversation) and every reply, retry, cache hit and stop. API keys never get in: requests
//! are recorded provider-neutral, without headers, and any key's text is scrubbed from every
//! line all the same.

use std::sync::Mutex;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{ChatRequest, ChatResponse, ToolResult};
use crate::state::Cost;

/// What replaces a key's text.
pub const REDACTED: &str = "[REDACTED]";

/// `text` with the text of every secret replaced by [`REDACTED`]: for anything a provider's
/// words may reach (a server may echo the key it was sent).
pub fn scrub(text: &str, secrets: &[SecretString]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        let secret = secret.expose_secret();
        if !secret.is_empty() {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

/// A transcript being written.
pub struct Transcript {
    lines: Mutex<Vec<u8>>,
    recorded: Mutex<usize>,
    secrets: Vec<SecretString>,
}

impl Transcript {
    /// An empty transcript that scrubs `secrets`.
    pub fn new(secrets: Vec<SecretString>) -> Transcript {
        Transcript { lines: Mutex::default(), recorded: Mutex::default(), secrets }
    }

    fn write(&self, mut event: Value) {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("at".into(), json!(jiff::Timestamp::now().to_string()));
        }
        let line = scrub(&event.to_string(), &self.secrets);
        let mut lines = self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.extend_from_slice(line.as_bytes());
        lines.push(b'\n');
    }

    /// An event of its own kind, e.g. the gateway's `request` and `reply` of an HTTP exchange.
    pub fn event(&self, name: &str, mut fields: Value) {
        if let Some(obj) = fields.as_object_mut() {
            obj.insert("event".into(), json!(name));
        }
        self.write(fields);
    }

    /// The first line: who is talking to what.
    pub fn start(&self, fields: Value) {
        self.write(json!({"event": "start", "agent": fields}));
    }

    /// A request; the system prompt and tools go in the first one only.
    pub fn request(&self, model: &str, cache_key: &str, req: &ChatRequest) {
        let mut recorded = self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = req.messages.get(*recorded..).unwrap_or_default();
        let mut event = json!({
            "event": "request", "turn": req.turn(), "model": model, "cache_key": cache_key,
            "message_count": req.messages.len(), "new_messages": new, "max_output_tokens": req.max_output_tokens,
        });
        if *recorded == 0 {
            event["system"] = json!(req.system);
            event["tools"] = json!(req.tools);
        }
        *recorded = req.messages.len();
        drop(recorded);
        self.write(event);
    }

    /// A reply, from the model or from the cache, and what it cost (nothing when cached).
    pub fn reply(&self, turn: u32, reply: &ChatResponse, cached: bool, cost: &Cost) {
        self.write(json!({"event": "reply", "turn": turn, "cached": cached, "reply": reply, "cost": cost}));
    }

    /// A failed request, and when it is tried again (never, when `retry_in` is `None`).
    pub fn error(&self, turn: u32, error: &str, retry_in: Option<Duration>) {
        self.write(json!({"event": "error", "turn": turn, "error": error, "retry_in_ms": retry_in.map(|d| d.as_millis() as u64)}));
    }

    /// Tool results that no later request carries (the last turn's).
    pub fn results(&self, turn: u32, results: &[ToolResult]) {
        self.write(json!({"event": "tool_results", "turn": turn, "results": results}));
    }

    /// How the agent ended.
    pub fn end(&self, turn: u32, outcome: &str, message: &str, spent: &Cost) {
        self.write(json!({"event": "end", "turn": turn, "outcome": outcome, "message": message, "spent": spent}));
    }

    /// The JSON lines.
    pub fn bytes(&self) -> Vec<u8> {
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::{Message, testing};

    #[test]
    fn requests_are_recorded_as_deltas_and_keys_are_scrubbed() {
        let t = Transcript::new(vec!["sk-canary-123".to_owned().into()]);
        let mut req = testing::request(vec![Message::User { text: "key is sk-canary-123".into() }]);
        t.request("openai/m", "k1", &req);
        req.messages.push(Message::Assistant { text: "ok".into(), calls: vec![] });
        req.messages.push(Message::User { text: "go on".into() });
        t.request("openai/m", "k2", &req);
        t.error(2, "HTTP 429: slow down (key sk-canary-123)", Some(Duration::from_millis(250)));
        let text = String::from_utf8(t.bytes()).unwrap();
        assert!(!text.contains("sk-canary-123"), "{text}");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["new_messages"][0]["text"], "key is [REDACTED]");
        assert_eq!(lines[0]["system"], "be brief");
        assert_eq!(lines[1]["new_messages"].as_array().unwrap().len(), 2);
        assert!(lines[1].get("system").is_none());
        assert_eq!(lines[2]["retry_in_ms"], 250);
    }
}
