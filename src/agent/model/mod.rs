//! Chat models: the seam ([`ChatModel`]), the conversation it carries, and the providers
//! behind it — OpenAI-compatible chat completions ([`openai`]), Anthropic Messages
//! ([`anthropic`]), Gemini generateContent ([`gemini`]) and recorded replies ([`scripted`]).
//!
//! A provider only translates one request and one reply. What every provider needs is layered
//! around it by [`Model`] ([`layers`]): a time limit per request, retries with backoff,
//! token and cost accounting against the budgets ([`budget`]), the response cache in the
//! repository ([`cache`]) and the transcript ([`transcript`]).

pub mod anthropic;
pub mod budget;
pub mod cache;
pub mod gemini;
pub mod http;
pub mod layers;
pub mod openai;
pub mod retry;
pub mod scripted;
pub mod transcript;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use layers::{AskError, Model, Reply, open};

/// One tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name, e.g. `write_file`.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema of its arguments (an object).
    pub parameters: serde_json::Value,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (made up where a provider has none).
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments (an object).
    pub arguments: serde_json::Value,
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call it answers.
    pub call_id: String,
    /// The tool.
    pub name: String,
    /// The result as text.
    pub content: String,
    /// Whether the call failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// From the controller.
    User {
        /// The text.
        text: String,
    },
    /// From the model.
    Assistant {
        /// Its text (may be empty).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        /// Its tool calls.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<ToolCall>,
    },
    /// The results of the model's last calls.
    Tool {
        /// One per call.
        results: Vec<ToolResult>,
    },
}

/// What the scripted model looks replies up by; never sent to a provider, never hashed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplyKey {
    /// The workflow (empty for the planner).
    pub workflow: String,
    /// The task (empty for the planner).
    pub task: String,
    /// The attempt (the try, for the planner).
    pub attempt: u32,
}

/// One request: the whole conversation so far, provider-neutral.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The system prompt.
    pub system: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The tools offered.
    pub tools: Vec<ToolSpec>,
    /// Most tokens in the reply.
    pub max_output_tokens: u32,
    /// Sampling temperature, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// For recorded replies.
    #[serde(skip)]
    pub key: ReplyKey,
}

impl ChatRequest {
    /// The turn this request asks for: one more than the replies so far.
    pub fn turn(&self) -> u32 {
        1 + self.messages.iter().filter(|m| matches!(m, Message::Assistant { .. })).count() as u32
    }
}

/// Tokens a provider reports for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
    /// Whether the provider said nothing and these are estimates (4 bytes a token).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// The model's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Its text (may be empty).
    #[serde(default)]
    pub text: String,
    /// Its tool calls.
    #[serde(default)]
    pub calls: Vec<ToolCall>,
    /// What it cost.
    pub usage: Usage,
    /// Why it stopped, as the provider says (`tool_calls`, `end_turn`, `STOP`, ...).
    #[serde(default)]
    pub stop_reason: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The endpoint could not be reached.
    #[error("cannot reach {url}: {message}")]
    Connect {
        /// The endpoint (keys removed).
        url: String,
        /// Why.
        message: String,
    },
    /// No reply in time.
    #[error("{url}: no reply within {seconds}s")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// The endpoint answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status code.
        status: u16,
        /// The provider's error message.
        message: String,
        /// What `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// The reply is not what the provider's API returns.
    #[error("{url}: malformed reply: {why}")]
    Malformed {
        /// The endpoint.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The reply is larger than plancd takes from a model.
    #[error("{url}: the reply is larger than {} MiB, the most plancd takes from a model; ask for less (smaller files per tool call)", .limit >> 20)]
    TooLarge {
        /// The endpoint.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The configuration does not name a usable model.
    #[error("model `{model}`: {problem}")]
    Config {
        /// The model's name in plancd.yaml.
        model: String,
        /// What is wrong.
        problem: String,
    },
    /// The scripted model has no reply for a request.
    #[error("scripted replies {file}: {problem}")]
    Script {
        /// The replies file.
        file: String,
        /// What is missing or wrong.
        problem: String,
    },
}

impl ModelError {
    /// Whether trying again may help: 408, 409, 429, 5xx, connection errors and timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Connect { .. } | ModelError::Timeout { .. } => true,
            ModelError::Status { status, .. } => matches!(status, 408 | 409 | 429) || *status >= 500,
            _ => false,
        }
    }

    /// The delay the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A chat API: one request in, one reply out. Layers (retries, budgets, cache, transcript)
/// are added around it by [`Model`].
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Sends `req` and returns the reply.
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError>;
}

/// A tool call's id where the provider gives none: stable for the turn and position, so that
/// replays see the same ids.
pub fn made_up_call_id(turn: u32, index: usize) -> String {
    format!("call_{turn}_{index}")
}

/// Parses tool-call arguments that a provider sends as a JSON string (or already as an
/// object); an empty string is no arguments.
pub fn parse_arguments(raw: &serde_json::Value) -> Result<serde_json::Value, String> {
    match raw {
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(serde_json::json!({})),
        serde_json::Value::String(s) => serde_json::from_str(s).map_err(|e| format!("tool call arguments are not JSON: {e}")),
        serde_json::Value::Null => Ok(serde_json::json!({})),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod layer_tests;
#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_count_the_replies_so_far() {
        let mut req = ChatRequest {
            system: "s".into(),
            messages: vec![Message::User { text: "go".into() }],
            tools: vec![],
            max_output_tokens: 10,
            temperature: None,
            key: ReplyKey::default(),
        };
        assert_eq!(req.turn(), 1);
        req.messages.push(Message::Assistant { text: String::new(), calls: vec![] });
        req.messages.push(Message::User { text: "more".into() });
        assert_eq!(req.turn(), 2);
    }

    #[test]
    fn retryable_errors_are_the_passing_ones() {
        let status = |status| ModelError::Status { url: "u".into(), status, message: String::new(), retry_after: None };
        for code in [408, 429, 500, 502, 503, 529] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        assert!(!ModelError::Malformed { url: "u".into(), why: "x".into() }.is_retryable());
        assert!(ModelError::Timeout { url: "u".into(), seconds: 1 }.is_retryable());
    }

    #[test]
    fn arguments_come_as_strings_or_objects() {
        assert_eq!(parse_arguments(&serde_json::json!("{\"a\":1}")).unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(parse_arguments(&serde_json::json!({"a": 1})).unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(parse_arguments(&serde_json::json!("")).unwrap(), serde_json::json!({}));
        assert!(parse_arguments(&serde_json::json!("{oops")).is_err());
    }
}
