//! Anthropic Messages with tool use: `POST {base_url}/v1/messages`, the key in `x-api-key`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{self, Auth};
use super::{ChatModel, ChatRequest, ChatResponse, Message, ModelError, ToolCall, Usage};

/// The default endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The API version plancd speaks.
pub const API_VERSION: &str = "2023-06-01";

/// A model behind the Messages API.
pub struct Anthropic {
    url: String,
    model: String,
    auth: Auth,
}

impl Anthropic {
    /// `model` at `base_url`.
    pub fn new(base_url: &str, model: &str, auth: Auth) -> Anthropic {
        Anthropic { url: format!("{}/v1/messages", base_url.trim_end_matches('/')), model: model.to_owned(), auth }
    }

    /// The request body.
    pub fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| match m {
                Message::User { text } => json!({"role": "user", "content": text}),
                Message::Assistant { text, calls } => {
                    let mut content: Vec<Value> = Vec::new();
                    if !text.is_empty() {
                        content.push(json!({"type": "text", "text": text}));
                    }
                    content.extend(calls.iter().map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})));
                    json!({"role": "assistant", "content": content})
                }
                Message::Tool { results } => {
                    let content: Vec<Value> = results
                        .iter()
                        .map(|r| json!({"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}))
                        .collect();
                    json!({"role": "user", "content": content})
                }
            })
            .collect();
        let mut body = json!({"model": self.model, "max_tokens": req.max_output_tokens, "system": req.system, "messages": messages});
        if !req.tools.is_empty() {
            body["tools"] =
                req.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters})).collect();
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        body
    }
}

#[async_trait]
impl ChatModel for Anthropic {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let headers = [("anthropic-version", API_VERSION)];
        let reply = http::post_json(&self.url, &self.auth, &headers, &self.body(req)).await?;
        parse(&reply).map_err(|why| ModelError::Malformed { url: http::redact_url(&self.url), why })
    }
}

/// Reads a Messages reply: text blocks, `tool_use` blocks and `usage` (cache reads and writes
/// count as input).
pub fn parse(reply: &Value) -> Result<ChatResponse, String> {
    let blocks = reply.get("content").and_then(Value::as_array).ok_or("no content in the reply")?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("tool_use") => {
                let id = block.get("id").and_then(Value::as_str).ok_or("a tool_use block has no id")?;
                let name = block.get("name").and_then(Value::as_str).ok_or("a tool_use block has no name")?;
                let arguments = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(ToolCall { id: id.to_owned(), name: name.to_owned(), arguments });
            }
            _ => {} // thinking and other blocks carry nothing the loop uses
        }
    }
    let usage = match reply.get("usage") {
        Some(u) => {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            Usage {
                input_tokens: n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens"),
                output_tokens: n("output_tokens"),
                estimated: false,
            }
        }
        None => Usage { estimated: true, ..Usage::default() },
    };
    let stop_reason = reply.get("stop_reason").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(ChatResponse { text, calls, usage, stop_reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::ToolResult;
    use crate::agent::model::testing::{self, Server};

    /// What the Messages API returns for a tool use.
    const REPLY: &str = r#"{
      "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
      "content": [
        {"type": "text", "text": "I'll write the file."},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "write_file", "input": {"path": "hello.py", "content": "print('hi')\n"}}
      ],
      "stop_reason": "tool_use", "stop_sequence": null,
      "usage": {"input_tokens": 512, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 64, "service_tier": "standard"}
    }"#;

    fn request() -> ChatRequest {
        testing::request(vec![
            Message::User { text: "go".into() },
            Message::Assistant {
                text: String::new(),
                calls: vec![ToolCall { id: "toolu_1".into(), name: "read_file".into(), arguments: json!({"path": "a"}) }],
            },
            Message::Tool {
                results: vec![ToolResult {
                    call_id: "toolu_1".into(),
                    name: "read_file".into(),
                    content: "no such file".into(),
                    is_error: true,
                }],
            },
        ])
    }

    #[test]
    fn requests_put_tool_results_in_user_turns() {
        let body = Anthropic::new("http://h", "claude", Auth::None).body(&request());
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], 1024);
        assert_eq!(
            body["messages"][1]["content"][0],
            json!({"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"}})
        );
        assert_eq!(body["messages"][2]["role"], "user");
        assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(body["messages"][2]["content"][0]["is_error"], true);
        assert!(body["tools"][0]["input_schema"].is_object());
    }

    #[test]
    fn replies_give_text_calls_and_all_input_tokens() {
        let parsed = parse(&serde_json::from_str(REPLY).unwrap()).unwrap();
        assert_eq!(parsed.text, "I'll write the file.");
        assert_eq!(parsed.calls[0].id, "toolu_01A09q90qw90lq917835lq9");
        assert_eq!(parsed.calls[0].arguments["path"], "hello.py");
        assert_eq!((parsed.usage.input_tokens, parsed.usage.output_tokens), (612, 64));
        assert_eq!(parsed.stop_reason, "tool_use");
    }

    #[tokio::test]
    async fn it_sends_the_key_and_version_headers() {
        testing::timeout(async {
            let server = Server::start().await;
            server.reply_json("/v1/messages", Some(("x-api-key", "sk-ant-test")), REPLY).await;
            let model =
                Anthropic::new(&server.uri(), "claude-sonnet-4-20250514", Auth::Header("x-api-key", "sk-ant-test".to_owned().into()));
            let reply = model.complete(&request()).await.unwrap();
            assert_eq!(reply.calls.len(), 1);
            let received = server.inner.received_requests().await.unwrap();
            assert_eq!(received[0].headers.get("anthropic-version").unwrap(), API_VERSION);
        })
        .await;
    }

    #[tokio::test]
    async fn overloaded_is_retryable_and_bad_requests_are_not() {
        testing::timeout(async {
            let server = Server::start().await;
            server
                .reply_status("/v1/messages", 529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
                .await;
            let err = Anthropic::new(&server.uri(), "m", Auth::None).complete(&request()).await.unwrap_err();
            assert!(err.is_retryable(), "{err}");
            assert!(err.to_string().ends_with("HTTP 529: Overloaded"), "{err}");
        })
        .await;
    }
}
