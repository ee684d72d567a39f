//! Gemini `generateContent` with function calling:
//! `POST {base_url}/v1beta/models/{model}:generateContent`, the key in `x-goog-api-key` (never
//! in the query string).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{self, Auth};
use super::{ChatModel, ChatRequest, ChatResponse, Message, ModelError, ToolCall, Usage, made_up_call_id};

/// The default endpoint.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// A Gemini model.
pub struct Gemini {
    url: String,
    auth: Auth,
}

impl Gemini {
    /// `model` at `base_url`.
    pub fn new(base_url: &str, model: &str, auth: Auth) -> Gemini {
        Gemini { url: format!("{}/v1beta/models/{model}:generateContent", base_url.trim_end_matches('/')), auth }
    }

    /// The request body.
    pub fn body(&self, req: &ChatRequest) -> Value {
        let contents: Vec<Value> = req
            .messages
            .iter()
            .map(|m| match m {
                Message::User { text } => json!({"role": "user", "parts": [{"text": text}]}),
                Message::Assistant { text, calls } => {
                    let mut parts: Vec<Value> = Vec::new();
                    if !text.is_empty() {
                        parts.push(json!({"text": text}));
                    }
                    parts.extend(calls.iter().map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}})));
                    json!({"role": "model", "parts": parts})
                }
                Message::Tool { results } => {
                    let parts: Vec<Value> = results
                        .iter()
                        .map(|r| {
                            let key = if r.is_error { "error" } else { "output" };
                            json!({"functionResponse": {"name": r.name, "response": {key: r.content}}})
                        })
                        .collect();
                    json!({"role": "user", "parts": parts})
                }
            })
            .collect();
        let mut config = json!({"maxOutputTokens": req.max_output_tokens});
        if let Some(t) = req.temperature {
            config["temperature"] = json!(t);
        }
        let mut body = json!({"systemInstruction": {"parts": [{"text": req.system}]}, "contents": contents, "generationConfig": config});
        if !req.tools.is_empty() {
            let declarations: Vec<Value> =
                req.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters})).collect();
            body["tools"] = json!([{"functionDeclarations": declarations}]);
        }
        body
    }
}

#[async_trait]
impl ChatModel for Gemini {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let auth = match &self.auth {
            Auth::Bearer(key) | Auth::Header(_, key) => Auth::Header("x-goog-api-key", key.clone()),
            Auth::None => Auth::None,
        };
        let reply = http::post_json(&self.url, &auth, &[], &self.body(req)).await?;
        parse(&reply, req.turn()).map_err(|why| ModelError::Malformed { url: http::redact_url(&self.url), why })
    }
}

/// Reads a `generateContent` reply: the first candidate's text and function calls, and
/// `usageMetadata` (thinking tokens count as output).
pub fn parse(reply: &Value, turn: u32) -> Result<ChatResponse, String> {
    let candidate = reply.pointer("/candidates/0").ok_or_else(|| match reply.pointer("/promptFeedback/blockReason") {
        Some(reason) => format!("the prompt was blocked: {reason}"),
        None => "no candidates in the reply".to_owned(),
    })?;
    let parts = candidate.pointer("/content/parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in parts {
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(call) = part.get("functionCall") {
            let name = call.get("name").and_then(Value::as_str).ok_or("a functionCall has no name")?;
            let id = call.get("id").and_then(Value::as_str).map_or_else(|| made_up_call_id(turn, calls.len()), str::to_owned);
            calls.push(ToolCall { id, name: name.to_owned(), arguments: call.get("args").cloned().unwrap_or_else(|| json!({})) });
        }
    }
    let usage = match reply.get("usageMetadata") {
        Some(u) => {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            Usage {
                input_tokens: n("promptTokenCount"),
                output_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
                estimated: false,
            }
        }
        None => Usage { estimated: true, ..Usage::default() },
    };
    let stop_reason = candidate.get("finishReason").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(ChatResponse { text, calls, usage, stop_reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::ToolResult;
    use crate::agent::model::testing::{self, Server};

    /// What generateContent returns for a function call.
    const REPLY: &str = r#"{
      "candidates": [{"content": {"parts": [{"functionCall": {"name": "write_file", "args": {"path": "hello.py", "content": "print('hi')\n"}}}], "role": "model"},
        "finishReason": "STOP", "index": 0, "safetyRatings": []}],
      "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 20, "totalTokenCount": 345, "thoughtsTokenCount": 25,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 300}]},
      "modelVersion": "gemini-2.5-flash", "responseId": "abc123"
    }"#;

    #[test]
    fn requests_use_contents_parts_and_function_declarations() {
        let req = testing::request(vec![
            Message::User { text: "go".into() },
            Message::Assistant {
                text: String::new(),
                calls: vec![ToolCall { id: "call_1_0".into(), name: "read_file".into(), arguments: json!({"path": "a"}) }],
            },
            Message::Tool {
                results: vec![ToolResult { call_id: "call_1_0".into(), name: "read_file".into(), content: "x".into(), is_error: false }],
            },
        ]);
        let body = Gemini::new("http://h", "gemini-2.5-flash", Auth::None).body(&req);
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(body["contents"][1]["parts"][0]["functionCall"]["name"], "read_file");
        assert_eq!(body["contents"][2]["parts"][0]["functionResponse"], json!({"name": "read_file", "response": {"output": "x"}}));
        assert_eq!(body["tools"][0]["functionDeclarations"][1]["name"], "finish");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 1024);
    }

    #[test]
    fn replies_give_calls_with_made_up_ids_and_usage() {
        let parsed = parse(&serde_json::from_str(REPLY).unwrap(), 2).unwrap();
        assert_eq!(parsed.calls[0].id, "call_2_0");
        assert_eq!(parsed.calls[0].arguments["content"], "print('hi')\n");
        assert_eq!((parsed.usage.input_tokens, parsed.usage.output_tokens), (300, 45));
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(parse(&blocked, 1).unwrap_err(), "the prompt was blocked: \"SAFETY\"");
    }

    #[tokio::test]
    async fn the_key_goes_in_a_header_and_never_in_the_url() {
        testing::timeout(async {
            let server = Server::start().await;
            server.reply_json("/v1beta/models/gemini-2.5-flash:generateContent", Some(("x-goog-api-key", "AIza-test")), REPLY).await;
            let model = Gemini::new(&server.uri(), "gemini-2.5-flash", Auth::Bearer("AIza-test".to_owned().into()));
            let reply = model.complete(&testing::request(vec![Message::User { text: "go".into() }])).await.unwrap();
            assert_eq!(reply.calls[0].name, "write_file");
            let received = server.inner.received_requests().await.unwrap();
            assert_eq!(received[0].url.query(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn a_missing_model_is_a_clear_error() {
        testing::timeout(async {
            let server = Server::start().await;
            let body =
                r#"{"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta", "status": "NOT_FOUND"}}"#;
            server.reply_status("/v1beta/models/gemini-9:generateContent", 404, body).await;
            let err = Gemini::new(&server.uri(), "gemini-9", Auth::None).complete(&testing::request(vec![])).await.unwrap_err();
            assert!(!err.is_retryable());
            assert!(err.to_string().ends_with("HTTP 404: models/gemini-9 is not found for API version v1beta"), "{err}");
        })
        .await;
    }
}
