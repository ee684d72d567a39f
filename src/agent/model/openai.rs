//! OpenAI-compatible chat completions with tool calling: OpenAI, Gemini's compatible
//! endpoint, Ollama, vLLM, llama.cpp's server, OpenRouter. `POST {base_url}/chat/completions`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{self, Auth};
use super::{ChatModel, ChatRequest, ChatResponse, Message, ModelError, ToolCall, Usage, made_up_call_id, parse_arguments};

/// The default endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A model behind an OpenAI-compatible endpoint.
pub struct OpenAi {
    url: String,
    model: String,
    auth: Auth,
}

impl OpenAi {
    /// `model` at `base_url` (e.g. `http://localhost:11434/v1` for Ollama).
    pub fn new(base_url: &str, model: &str, auth: Auth) -> OpenAi {
        OpenAi { url: format!("{}/chat/completions", base_url.trim_end_matches('/')), model: model.to_owned(), auth }
    }

    /// The request body.
    pub fn body(&self, req: &ChatRequest) -> Value {
        let mut messages = vec![json!({"role": "system", "content": req.system})];
        for m in &req.messages {
            match m {
                Message::User { text } => messages.push(json!({"role": "user", "content": text})),
                Message::Assistant { text, calls } => {
                    let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                    if !calls.is_empty() {
                        msg["tool_calls"] = calls
                            .iter()
                            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments.to_string()}}))
                            .collect();
                    }
                    messages.push(msg);
                }
                Message::Tool { results } => {
                    for r in results {
                        messages.push(json!({"role": "tool", "tool_call_id": r.call_id, "content": r.content}));
                    }
                }
            }
        }
        let mut body = json!({"model": self.model, "messages": messages, "max_tokens": req.max_output_tokens});
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(
                    |t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}),
                )
                .collect();
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        body
    }
}

#[async_trait]
impl ChatModel for OpenAi {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let reply = http::post_json(&self.url, &self.auth, &[], &self.body(req)).await?;
        parse(&reply, req.turn()).map_err(|why| ModelError::Malformed { url: http::redact_url(&self.url), why })
    }
}

/// Reads a chat completion: the first choice's text and tool calls, and `usage`.
pub fn parse(reply: &Value, turn: u32) -> Result<ChatResponse, String> {
    let choice = reply.pointer("/choices/0").ok_or("no choices in the reply")?;
    let message = choice.get("message").ok_or("the choice has no message")?;
    let text = message.get("content").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut calls = Vec::new();
    for (i, call) in message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
        let function = call.get("function").ok_or("a tool call has no function")?;
        let name = function.get("name").and_then(Value::as_str).ok_or("a tool call has no name")?;
        let arguments = parse_arguments(function.get("arguments").unwrap_or(&Value::Null))?;
        let id = call.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map_or_else(|| made_up_call_id(turn, i), str::to_owned);
        calls.push(ToolCall { id, name: name.to_owned(), arguments });
    }
    let usage = reply.get("usage").filter(|u| u.is_object()).map(|u| Usage {
        input_tokens: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
        estimated: false,
    });
    let stop_reason = choice.get("finish_reason").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(ChatResponse { text, calls, usage: usage.unwrap_or(Usage { estimated: true, ..Usage::default() }), stop_reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::testing::{self, Server};
    use crate::agent::model::{ToolResult, ToolSpec};

    /// What OpenAI returns for a tool call.
    pub const OPENAI_REPLY: &str = r#"{
      "id": "chatcmpl-9xYz", "object": "chat.completion", "created": 1717000000, "model": "gpt-4o-mini-2024-07-18",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
        "tool_calls": [{"id": "call_Ab12", "type": "function", "function": {"name": "write_file", "arguments": "{\"path\":\"hello.py\",\"content\":\"print('hi')\\n\"}"}}]},
        "logprobs": null, "finish_reason": "tool_calls"}],
      "usage": {"prompt_tokens": 412, "completion_tokens": 37, "total_tokens": 449,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
      "system_fingerprint": "fp_0ba0d124f1"
    }"#;

    /// What Ollama's OpenAI-compatible endpoint returns (content "", an index on the call).
    const OLLAMA_REPLY: &str = r#"{
      "id": "chatcmpl-417", "object": "chat.completion", "created": 1717000001, "model": "qwen2.5-coder:7b",
      "system_fingerprint": "fp_ollama",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "",
        "tool_calls": [{"id": "call_k2j3h4", "index": 0, "type": "function", "function": {"name": "write_file", "arguments": "{\"content\":\"print('hi')\\n\",\"path\":\"hello.py\"}"}}]},
        "finish_reason": "tool_calls"}],
      "usage": {"prompt_tokens": 398, "completion_tokens": 41, "total_tokens": 439}
    }"#;

    /// What vLLM returns (content null, extra null fields, its own call ids).
    const VLLM_REPLY: &str = r#"{
      "id": "chatcmpl-5c1e", "object": "chat.completion", "created": 1717000002, "model": "Qwen/Qwen2.5-Coder-7B-Instruct",
      "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": null, "content": null,
        "tool_calls": [{"id": "chatcmpl-tool-8f2a", "type": "function", "function": {"name": "write_file", "arguments": "{\"path\": \"hello.py\", \"content\": \"print('hi')\\n\"}"}}]},
        "logprobs": null, "finish_reason": "tool_calls", "stop_reason": null}],
      "usage": {"prompt_tokens": 405, "total_tokens": 444, "completion_tokens": 39, "prompt_tokens_details": null},
      "prompt_logprobs": null
    }"#;

    fn request() -> ChatRequest {
        testing::request(vec![
            Message::User { text: "write hello.py".into() },
            Message::Assistant {
                text: "Reading first.".into(),
                calls: vec![ToolCall { id: "call_1".into(), name: "read_file".into(), arguments: json!({"path": "README"}) }],
            },
            Message::Tool {
                results: vec![ToolResult { call_id: "call_1".into(), name: "read_file".into(), content: "hi".into(), is_error: false }],
            },
        ])
    }

    #[test]
    fn requests_carry_system_history_tools_and_limits() {
        let body = OpenAi::new("http://h/v1/", "m", Auth::None).body(&request());
        assert_eq!(body["model"], "m");
        assert_eq!(body["max_tokens"], 1024);
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"path\":\"README\"}");
        assert_eq!(body["messages"][3], json!({"role": "tool", "tool_call_id": "call_1", "content": "hi"}));
        let ToolSpec { name, .. } = &testing::tools()[0];
        assert_eq!(body["tools"][0]["function"]["name"], json!(name));
    }

    #[test]
    fn openai_ollama_and_vllm_replies_read_the_same() {
        for (label, reply, id, tokens) in [
            ("openai", OPENAI_REPLY, "call_Ab12", (412, 37)),
            ("ollama", OLLAMA_REPLY, "call_k2j3h4", (398, 41)),
            ("vllm", VLLM_REPLY, "chatcmpl-tool-8f2a", (405, 39)),
        ] {
            let parsed = parse(&serde_json::from_str(reply).unwrap(), 1).unwrap();
            assert_eq!(parsed.text, "", "{label}");
            assert_eq!(parsed.calls.len(), 1, "{label}");
            assert_eq!(parsed.calls[0].id, id, "{label}");
            assert_eq!(parsed.calls[0].arguments, json!({"path": "hello.py", "content": "print('hi')\n"}), "{label}");
            assert_eq!((parsed.usage.input_tokens, parsed.usage.output_tokens), tokens, "{label}");
            assert_eq!(parsed.stop_reason, "tool_calls");
        }
    }

    #[test]
    fn a_reply_without_calls_or_usage_still_reads() {
        let reply = json!({"choices": [{"message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}]});
        let parsed = parse(&reply, 3).unwrap();
        assert_eq!((parsed.text.as_str(), parsed.calls.len(), parsed.usage.estimated), ("done", 0, true));
        let no_id = json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "finish", "arguments": {"summary": "s"}}}]}}]});
        assert_eq!(parse(&no_id, 3).unwrap().calls[0].id, "call_3_0");
        assert!(parse(&json!({"object": "list"}), 1).unwrap_err().contains("no choices"));
    }

    #[tokio::test]
    async fn it_speaks_to_a_server_with_the_key_in_the_authorization_header() {
        testing::timeout(async {
            let server = Server::start().await;
            server.reply_json("/v1/chat/completions", Some(("authorization", "Bearer sk-test")), OLLAMA_REPLY).await;
            let model = OpenAi::new(&format!("{}/v1", server.uri()), "qwen2.5-coder:7b", Auth::Bearer("sk-test".to_owned().into()));
            let reply = model.complete(&request()).await.unwrap();
            assert_eq!(reply.calls[0].name, "write_file");
            let sent = server.bodies().await;
            assert_eq!(sent[0]["model"], "qwen2.5-coder:7b");
        })
        .await;
    }

    #[tokio::test]
    async fn errors_name_the_status_and_the_providers_message() {
        testing::timeout(async {
            let server = Server::start().await;
            server
                .reply_status("/v1/chat/completions", 401, r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#)
                .await;
            let model = OpenAi::new(&format!("{}/v1", server.uri()), "m", Auth::Bearer("bad".to_owned().into()));
            let err = model.complete(&request()).await.unwrap_err();
            assert_eq!(err.to_string(), format!("{}/v1/chat/completions: HTTP 401: Incorrect API key provided", server.uri()));
            assert!(!err.is_retryable());
            server.reply_json("/v2/chat/completions", None, "{\"choices\": [").await;
            let model = OpenAi::new(&format!("{}/v2", server.uri()), "m", Auth::None);
            let err = model.complete(&request()).await.unwrap_err();
            assert!(matches!(err, ModelError::Malformed { .. }), "{err}");
        })
        .await;
    }
}
