//! A local upstream that speaks the providers' wire formats, for tests and the benchmark: OpenAI
//! chat completions and Responses, Anthropic Messages and Gemini generateContent, whole and
//! streamed (OpenAI's `data:` chunks ending in `[DONE]`, the Responses API's and Anthropic's
//! typed events, Gemini's `alt=sse`), usage fields, each provider's 401 for a wrong key and
//! 429 with `retry-after`. It answers every call with one configured text, or with scripted
//! turns ([`Turn`]: a text or a call of one of the client's tools, which drives a real coding
//! agent such as Codex CLI, Claude Code, aider or mini-swe-agent), and records every request it
//! gets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The real key it expects (`Authorization: Bearer`, `x-api-key` or `x-goog-api-key`).
    pub key: String,
    /// The text of every reply.
    pub reply: String,
    /// How many model calls, first, get a 429 with `retry-after: 1`.
    pub rate_limited: usize,
    /// A pause before each streamed chunk after the first.
    pub chunk_delay: Duration,
    /// Scripted replies: the i-th model call answered (a refused one is not counted) gets the
    /// i-th turn; past the end, `reply`.
    pub turns: Vec<Turn>,
}

/// One scripted reply, in the framing of whichever API is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// A text answer, which ends the client's turn.
    Text(String),
    /// A call of the client's tool `name` with the arguments `input` (a JSON object).
    Tool {
        /// The tool's name as the client offered it (`exec_command`, `Write`, ...).
        name: String,
        /// Its arguments.
        input: Value,
    },
}

impl Turn {
    /// A call of `name` with `input`.
    pub fn tool(name: &str, input: Value) -> Turn {
        Turn::Tool { name: name.to_owned(), input }
    }

    /// The output tokens the fake reports for it: a piece of about a word each, of the text or
    /// of the call's arguments as JSON.
    pub fn tokens(&self) -> u64 {
        match self {
            Turn::Text(text) => pieces(text).len() as u64,
            Turn::Tool { input, .. } => pieces(&input.to_string()).len() as u64,
        }
    }
}

impl FakeConfig {
    /// Expects `key`, answers `reply`.
    pub fn new(key: &str, reply: &str) -> FakeConfig {
        FakeConfig { key: key.to_owned(), reply: reply.to_owned(), rate_limited: 0, chunk_delay: Duration::ZERO, turns: Vec::new() }
    }

    /// Expects `key`, answers the n-th answered call with the text `replies[n]` (the last
    /// repeats).
    pub fn sequence(key: &str, replies: &[&str]) -> FakeConfig {
        FakeConfig {
            turns: replies.iter().map(|r| Turn::Text((*r).to_owned())).collect(),
            ..FakeConfig::new(key, replies.last().copied().unwrap_or_default())
        }
    }
}

/// One request the fake got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its method and path.
    pub method: String,
    /// Its path and query.
    pub path: String,
    /// Its headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// Its body, parsed (`null` when not JSON).
    pub body: Value,
}

struct FakeState {
    config: FakeConfig,
    received: Mutex<Vec<Received>>,
    calls: AtomicUsize,
}

/// A running fake upstream on `127.0.0.1`.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Starts the fake on a free port.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeUpstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(FakeState { config, received: Mutex::default(), calls: AtomicUsize::new(0) });
        let app = axum::Router::new().fallback(answer).with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeUpstream { url, state, task })
    }

    /// The base URL of `provider` (`openai`, `anthropic`, `gemini`) as `models:` gives it.
    pub fn base_url(&self, provider: &str) -> String {
        if provider == "openai" { format!("{}/v1", self.url) } else { self.url.clone() }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Model calls so far (refused ones included).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which API a path is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Chat,
    Responses,
    Messages,
    Gemini { stream: bool },
}

fn gemini_model_path(path: &str) -> bool {
    path.starts_with("/v1beta/models/") || path.starts_with("/v1/models/")
}

async fn answer(State(state): State<Arc<FakeState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    state.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Received {
        method: method.to_string(),
        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect(),
        body: body.clone(),
    });
    let wire = match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => Wire::Chat,
        ("POST", "/v1/responses") => Wire::Responses,
        ("POST", "/v1/messages") => Wire::Messages,
        // The Gemini API serves both versions.
        ("POST", p) if gemini_model_path(p) && p.ends_with(":generateContent") => Wire::Gemini { stream: false },
        ("POST", p) if gemini_model_path(p) && p.ends_with(":streamGenerateContent") => Wire::Gemini { stream: true },
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"error": {"message": format!("Unknown request URL: {path}"), "type": "invalid_request_error"}}),
            );
        }
    };
    let n = state.calls.fetch_add(1, Ordering::SeqCst);
    let key = &state.config.key;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorised = match wire {
        Wire::Chat | Wire::Responses => header("authorization") == Some(&format!("Bearer {key}")),
        Wire::Messages => header("x-api-key") == Some(key),
        Wire::Gemini { .. } => header("x-goog-api-key") == Some(key),
    };
    if !authorised {
        return error(wire, StatusCode::UNAUTHORIZED, "Incorrect API key provided.");
    }
    if n < state.config.rate_limited {
        let mut r = error(wire, StatusCode::TOO_MANY_REQUESTS, "Rate limit reached. Please try again in 1s.");
        r.headers_mut().insert("retry-after", "1".parse().expect("a valid header value"));
        return r;
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("gemini").to_owned();
    let input = serde_json::to_vec(&body).map_or(1, |b| b.len().div_ceil(4)) as u64;
    let stream = match wire {
        Wire::Gemini { stream } => stream,
        _ => body.get("stream").and_then(Value::as_bool).unwrap_or(false),
    };
    let answered = n - state.config.rate_limited;
    let text = match state.config.turns.get(answered) {
        Some(Turn::Tool { name, input: args }) => {
            let call = ToolCall { id: answered, name, input: args };
            return if stream {
                let usage_asked = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
                stream_events(tool_events(wire, &model, &call, input, usage_asked), state.config.chunk_delay)
            } else {
                reply(StatusCode::OK, tool_whole(wire, &model, &call, input))
            };
        }
        Some(Turn::Text(text)) => text,
        None => &state.config.reply,
    };
    let pieces = pieces(text);
    if !stream {
        return reply(StatusCode::OK, whole(wire, &model, text, input, pieces.len() as u64));
    }
    let usage_asked = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let events = events(wire, &model, &pieces, input, usage_asked);
    stream_events(events, state.config.chunk_delay)
}

/// The reply cut in pieces of about a word each (each counts as a token).
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        current.push(ch);
        if ch == ' ' || ch == '\n' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", "application/json".parse().expect("a valid header value"));
    r
}

fn error(wire: Wire, status: StatusCode, message: &str) -> Response {
    let body = match (wire, status.as_u16()) {
        (Wire::Chat | Wire::Responses, 429) => {
            json!({"error": {"message": message, "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        }
        (Wire::Chat | Wire::Responses, _) => {
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
        }
        (Wire::Messages, 429) => json!({"type": "error", "error": {"type": "rate_limit_error", "message": message}}),
        (Wire::Messages, _) => json!({"type": "error", "error": {"type": "authentication_error", "message": message}}),
        (Wire::Gemini { .. }, 429) => json!({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}),
        (Wire::Gemini { .. }, code) => json!({"error": {"code": code, "message": message, "status": "UNAUTHENTICATED"}}),
    };
    reply(status, body)
}

fn whole(wire: Wire, model: &str, text: &str, input: u64, output: u64) -> Value {
    match wire {
        Wire::Chat => json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model, "system_fingerprint": null,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
        }),
        Wire::Responses => response_object(model, text, input, output, "completed"),
        Wire::Messages => json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output},
        }),
        Wire::Gemini { .. } => gemini_chunk(model, text, Some("STOP"), input, output),
    }
}

/// A scripted tool call: the turn's index names its ids.
struct ToolCall<'a> {
    id: usize,
    name: &'a str,
    input: &'a Value,
}

impl ToolCall<'_> {
    /// The arguments as the APIs that carry them as a string do.
    fn arguments(&self) -> String {
        self.input.to_string()
    }

    /// The Responses API's `function_call` item.
    fn item(&self, status: &str, arguments: &str) -> Value {
        json!({"type": "function_call", "id": format!("fc_fake_{}", self.id), "call_id": format!("call_fake_{}", self.id),
            "name": self.name, "arguments": arguments, "status": status})
    }
}

/// A whole reply that calls a tool.
fn tool_whole(wire: Wire, model: &str, call: &ToolCall<'_>, input: u64) -> Value {
    let output = pieces(&call.arguments()).len() as u64;
    match wire {
        Wire::Chat => json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model, "system_fingerprint": null,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [{"id": format!("call_fake_{}", call.id),
                "type": "function", "function": {"name": call.name, "arguments": call.arguments()}}]}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
        }),
        Wire::Responses => {
            let mut r = response_object(model, "", input, output, "completed");
            r["output"] = json!([call.item("completed", &call.arguments())]);
            r
        }
        Wire::Messages => json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "tool_use", "id": format!("toolu_fake_{}", call.id), "name": call.name, "input": call.input}],
            "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": output},
        }),
        Wire::Gemini { .. } => json!({
            "candidates": [{"content": {"parts": [{"functionCall": {"name": call.name, "args": call.input}}], "role": "model"},
                "finishReason": "STOP", "index": 0}],
            "modelVersion": model, "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output, "totalTokenCount": input + output},
        }),
    }
}

/// The events of a streamed reply that calls a tool, its arguments cut in pieces as the
/// providers stream them.
fn tool_events(wire: Wire, model: &str, call: &ToolCall<'_>, input: u64, usage_asked: bool) -> Vec<String> {
    let data = |v: Value| format!("data: {v}\n\n");
    let typed = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        format!("event: {kind}\ndata: {v}\n\n")
    };
    let arguments = call.arguments();
    let pieces = pieces(&arguments);
    let output = pieces.len() as u64;
    match wire {
        Wire::Chat => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            let first = json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": format!("call_fake_{}", call.id),
                "type": "function", "function": {"name": call.name, "arguments": ""}}]});
            let mut out = vec![data(chunk(first, Value::Null))];
            out.extend(
                pieces.iter().map(|p| data(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}), Value::Null))),
            );
            out.push(data(chunk(json!({}), json!("tool_calls"))));
            if usage_asked {
                out.push(data(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})));
            }
            out.push("data: [DONE]\n\n".to_owned());
            out
        }
        Wire::Responses => {
            let at = |extra: Value| {
                let mut v = json!({"item_id": format!("fc_fake_{}", call.id), "output_index": 0});
                if let (Some(b), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    b.extend(e.clone());
                }
                v
            };
            let mut done = response_object(model, "", input, output, "completed");
            done["output"] = json!([call.item("completed", &arguments)]);
            let mut out = vec![
                typed("response.created", json!({"response": response_object(model, "", 0, 0, "in_progress")})),
                typed("response.output_item.added", json!({"output_index": 0, "item": call.item("in_progress", "")})),
            ];
            out.extend(pieces.iter().map(|p| typed("response.function_call_arguments.delta", at(json!({"delta": p})))));
            out.push(typed("response.function_call_arguments.done", at(json!({"arguments": arguments}))));
            out.push(typed("response.output_item.done", json!({"output_index": 0, "item": call.item("completed", &arguments)})));
            out.push(typed("response.completed", json!({"response": done})));
            for (i, e) in out.iter_mut().enumerate() {
                *e = e.replacen("{\"", &format!("{{\"sequence_number\":{i},\""), 1);
            }
            out
        }
        Wire::Messages => {
            let block = json!({"type": "tool_use", "id": format!("toolu_fake_{}", call.id), "name": call.name, "input": {}});
            let mut out = vec![
                typed(
                    "message_start",
                    json!({"message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
                ),
                typed("content_block_start", json!({"index": 0, "content_block": block})),
                typed("ping", json!({})),
            ];
            out.extend(
                pieces
                    .iter()
                    .map(|p| typed("content_block_delta", json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}))),
            );
            out.push(typed("content_block_stop", json!({"index": 0})));
            out.push(typed(
                "message_delta",
                json!({"delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": output}}),
            ));
            out.push(typed("message_stop", json!({})));
            out
        }
        Wire::Gemini { .. } => vec![format!("data: {}\r\n\r\n", tool_whole(wire, model, call, input))],
    }
}

fn response_object(model: &str, text: &str, input: u64, output: u64, status: &str) -> Value {
    let done = status == "completed";
    json!({
        "id": "resp_fake", "object": "response", "created_at": 1_700_000_000, "status": status, "model": model,
        "output": if done { json!([{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}]) } else { json!([]) },
        "usage": if done { json!({"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}) } else { Value::Null },
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null, "incomplete_details": null,
        "instructions": null, "metadata": {}, "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}},
    })
}

fn gemini_chunk(model: &str, text: &str, finish: Option<&str>, input: u64, output: u64) -> Value {
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({"candidates": [candidate], "modelVersion": model,
        "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output, "totalTokenCount": input + output}})
}

/// The events of a streamed reply, each a whole SSE event with its blank line.
fn events(wire: Wire, model: &str, pieces: &[String], input: u64, usage_asked: bool) -> Vec<String> {
    let data = |v: Value| format!("data: {v}\n\n");
    let typed = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        format!("event: {kind}\ndata: {v}\n\n")
    };
    let output = pieces.len() as u64;
    let text: String = pieces.concat();
    match wire {
        Wire::Chat => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            let mut out = vec![data(chunk(json!({"role": "assistant", "content": ""}), Value::Null))];
            out.extend(pieces.iter().map(|p| data(chunk(json!({"content": p}), Value::Null))));
            out.push(data(chunk(json!({}), json!("stop"))));
            if usage_asked {
                out.push(data(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})));
            }
            out.push("data: [DONE]\n\n".to_owned());
            out
        }
        Wire::Responses => {
            let item = json!({"type": "message", "id": "msg_fake", "status": "in_progress", "role": "assistant", "content": []});
            let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": []});
            let at = json!({"item_id": "msg_fake", "output_index": 0, "content_index": 0});
            let with = |mut base: Value, extra: Value| {
                if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
                    b.extend(e.clone());
                }
                base
            };
            let mut out = vec![
                typed("response.created", json!({"response": response_object(model, "", 0, 0, "in_progress")})),
                typed("response.output_item.added", json!({"output_index": 0, "item": item})),
                typed("response.content_part.added", with(at.clone(), json!({"part": part("")}))),
            ];
            out.extend(pieces.iter().map(|p| typed("response.output_text.delta", with(at.clone(), json!({"delta": p})))));
            out.push(typed("response.output_text.done", with(at.clone(), json!({"text": text}))));
            out.push(typed("response.content_part.done", with(at, json!({"part": part(&text)}))));
            out.push(typed(
                "response.output_item.done",
                json!({"output_index": 0, "item": {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant", "content": [part(&text)]}}),
            ));
            out.push(typed("response.completed", json!({"response": response_object(model, &text, input, output, "completed")})));
            for (i, e) in out.iter_mut().enumerate() {
                *e = e.replacen("{\"", &format!("{{\"sequence_number\":{i},\""), 1);
            }
            out
        }
        Wire::Messages => {
            let mut out = vec![
                typed(
                    "message_start",
                    json!({"message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
                ),
                typed("content_block_start", json!({"index": 0, "content_block": {"type": "text", "text": ""}})),
                typed("ping", json!({})),
            ];
            out.extend(
                pieces.iter().map(|p| typed("content_block_delta", json!({"index": 0, "delta": {"type": "text_delta", "text": p}}))),
            );
            out.push(typed("content_block_stop", json!({"index": 0})));
            out.push(typed(
                "message_delta",
                json!({"delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}}),
            ));
            out.push(typed("message_stop", json!({})));
            out
        }
        Wire::Gemini { .. } => {
            let last = pieces.len().saturating_sub(1);
            pieces
                .iter()
                .enumerate()
                .map(|(i, p)| format!("data: {}\r\n\r\n", gemini_chunk(model, p, (i == last).then_some("STOP"), input, i as u64 + 1)))
                .collect()
        }
    }
}

fn stream_events(events: Vec<String>, delay: Duration) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Ok(Bytes::from(e))).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }));
    let mut r = Response::new(body);
    r.headers_mut().insert("content-type", "text/event-stream; charset=utf-8".parse().expect("a valid header value"));
    r.headers_mut().insert("cache-control", "no-cache".parse().expect("a valid header value"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_cut_in_word_pieces() {
        assert_eq!(pieces("def f():\n    return 1\n"), ["def ", "f():\n", " ", " ", " ", " ", "return ", "1\n"]);
        assert_eq!(pieces(""), [""]);
    }

    #[tokio::test]
    async fn a_sequence_is_served_in_turn_after_the_rate_limited_calls() {
        let mut config = FakeConfig::sequence("k", &["one", "two"]);
        config.rate_limited = 1;
        let fake = FakeUpstream::start(config).await.unwrap();
        let client = crate::agent::model::http::client();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r = client
                .post(format!("{}/chat/completions", fake.base_url("openai")))
                .header("authorization", "Bearer k")
                .header("content-type", "application/json")
                .body(json!({"model": "m", "messages": []}).to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            seen.push(format!("{status} {}", body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or("-")));
        }
        assert_eq!(seen, ["429 -", "200 one", "200 two", "200 two"]);
    }

    #[test]
    fn every_stream_ends_the_way_its_api_does() {
        let p = pieces("a b");
        let chat = events(Wire::Chat, "m", &p, 5, true);
        assert_eq!(chat.last().unwrap(), "data: [DONE]\n\n");
        assert!(chat[chat.len() - 2].contains("\"usage\":{\"completion_tokens\":2"), "{chat:?}");
        assert!(!events(Wire::Chat, "m", &p, 5, false).concat().contains("usage"));
        let messages = events(Wire::Messages, "m", &p, 5, false);
        assert!(messages.last().unwrap().starts_with("event: message_stop\n"));
        let responses = events(Wire::Responses, "m", &p, 5, false);
        assert!(responses.last().unwrap().starts_with("event: response.completed\ndata: {\"sequence_number\":"), "{responses:?}");
        assert!(events(Wire::Gemini { stream: true }, "m", &p, 5, false).last().unwrap().contains("\"finishReason\":\"STOP\""));
    }

    #[test]
    fn a_tool_call_streams_its_arguments_and_ends_the_way_its_api_does() {
        let input = json!({"cmd": "echo hi"});
        let call = ToolCall { id: 3, name: "exec_command", input: &input };
        // (API, what the whole stream must hold, how it must end)
        let cases = [
            (Wire::Chat, "\"finish_reason\":\"tool_calls\"", "data: [DONE]\n\n"),
            (Wire::Responses, "\"call_id\":\"call_fake_3\"", "event: response.completed\n"),
            (Wire::Messages, "\"stop_reason\":\"tool_use\"", "event: message_stop\n"),
            (Wire::Gemini { stream: true }, "\"functionCall\":{\"args\":{\"cmd\":\"echo hi\"}", "data: "),
        ];
        for (wire, holds, ends) in cases {
            let events = tool_events(wire, "m", &call, 5, true);
            let all = events.concat();
            assert!(all.contains(holds) && events.last().unwrap().starts_with(ends), "{wire:?}: {all}");
            // The streamed pieces of the arguments add up to the arguments.
            let streamed: String = events
                .iter()
                .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")).and_then(|d| serde_json::from_str::<Value>(d).ok()))
                .filter_map(|v| {
                    let piece = v.pointer("/delta/partial_json").or(v.pointer("/choices/0/delta/tool_calls/0/function/arguments"));
                    let piece = piece.or_else(|| (v["type"] == "response.function_call_arguments.delta").then(|| &v["delta"]));
                    piece.and_then(Value::as_str).map(str::to_owned)
                })
                .collect();
            if !matches!(wire, Wire::Gemini { .. }) {
                assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), input, "{wire:?}");
            }
        }
        let whole = tool_whole(Wire::Messages, "m", &call, 5);
        assert_eq!(whole["content"][0]["input"], input);
        assert_eq!(tool_whole(Wire::Responses, "m", &call, 5)["output"][0]["arguments"], "{\"cmd\":\"echo hi\"}");
    }
}
