//! Test helpers: a real HTTP server on 127.0.0.1 (wiremock) that fails the test on any request
//! it was not told to expect, requests, tools, and a time limit for async tests.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use serde_json::{Value, json};
use wiremock::matchers::{any, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{ChatModel, ChatRequest, ChatResponse, Message, Model, ModelError, ReplyKey, ToolCall, ToolSpec, Usage};

/// Runs `f` under a time limit: no async test hangs.
pub async fn timeout<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("the test finished within its time limit")
}

/// A local server that speaks what a test mounts and rejects (and fails the test on) anything
/// else.
pub struct Server {
    /// The wiremock server.
    pub inner: MockServer,
}

impl Server {
    /// Starts the server with its catch-all.
    pub async fn start() -> Server {
        let inner = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(418).set_body_string("unexpected request"))
            .with_priority(u8::MAX)
            .expect(0)
            .named("catch-all: no request the test did not expect")
            .mount(&inner)
            .await;
        Server { inner }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.inner.uri()
    }

    /// Answers POST `at` (with the header, when given) with `body` as JSON.
    pub async fn reply_json(&self, at: &str, with: Option<(&'static str, &'static str)>, body: &str) {
        let mut mock = Mock::given(method("POST")).and(path(at.to_owned()));
        if let Some((name, value)) = with {
            mock = mock.and(header(name, value));
        }
        mock.respond_with(ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")).mount(&self.inner).await;
    }

    /// Answers POST `at` with `status` and `body`.
    pub async fn reply_status(&self, at: &str, status: u16, body: &str) {
        Mock::given(method("POST"))
            .and(path(at.to_owned()))
            .respond_with(ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json"))
            .mount(&self.inner)
            .await;
    }

    /// The JSON bodies received so far.
    pub async fn bodies(&self) -> Vec<Value> {
        let received = self.inner.received_requests().await.unwrap_or_default();
        received.iter().map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null)).collect()
    }
}

/// A request with a short system prompt, the tools of [`tools`] and `messages`.
pub fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        system: "be brief".into(),
        messages,
        tools: tools(),
        max_output_tokens: 1024,
        temperature: None,
        key: ReplyKey { workflow: "wf".into(), task: "t".into(), attempt: 1 },
    }
}

/// Two tools.
pub fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "write_file".into(),
            description: "Write a file.".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}, "required": ["path", "content"]}),
        },
        ToolSpec {
            name: "finish".into(),
            description: "Say you are done.".into(),
            parameters: json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
        },
    ]
}

/// A provider in this process that answers with the replies it was given, in order, and then
/// with the last one again; each reply costs 10 + 5 tokens.
pub struct Canned {
    replies: Mutex<VecDeque<Vec<(String, Value)>>>,
    last: Mutex<Vec<(String, Value)>>,
}

#[async_trait]
impl ChatModel for Canned {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut last = self.last.lock().unwrap();
        if let Some(next) = self.replies.lock().unwrap().pop_front() {
            *last = next;
        }
        let turn = req.turn();
        let calls = last
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| ToolCall { id: format!("c{turn}_{i}"), name: name.clone(), arguments: arguments.clone() })
            .collect();
        Ok(ChatResponse {
            text: String::new(),
            calls,
            usage: Usage { input_tokens: 10, output_tokens: 5, estimated: false },
            stop_reason: "tool_calls".into(),
        })
    }
}

/// A model over [`Canned`] replies: each reply is a list of (tool, arguments).
pub fn canned(replies: Vec<Vec<(&str, Value)>>) -> Model {
    let replies = replies.into_iter().map(|r| r.into_iter().map(|(n, a)| (n.to_owned(), a)).collect()).collect();
    Model::from_provider("canned", Box::new(Canned { replies: Mutex::new(replies), last: Mutex::default() }))
}
