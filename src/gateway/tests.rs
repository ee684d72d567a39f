//! The gateway over real HTTP: a client on one side (through a TCP bridge to its unix socket,
//! as the sandbox's forwarder does), the fake upstream on the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fake::{FakeConfig, FakeUpstream};
use super::*;
use crate::agent::model::testing::timeout;
use crate::config::Env;
use crate::state::Store;

const KEY: &str = "sk-canary-real-key-0123456789";
const REPLY: &str = "def add(a, b):\n    return a + b\n";
/// The fake counts a token per word or blank of its reply.
const REPLY_TOKENS: u64 = 11;

/// A TCP port on 127.0.0.1 that relays every connection to `socket`.
async fn bridge(socket: &Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let socket = socket.to_owned();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    url
}

fn config(provider: &str, base_url: &str, budget: Value) -> Config {
    let model = json!({"provider": provider, "base_url": base_url, "model": "m-1", "api_key_env": "UPSTREAM_KEY",
        "prices": {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}});
    serde_json::from_value(json!({"models": {"default": model}, "budget": budget})).unwrap()
}

struct Rig {
    fake: FakeUpstream,
    gateway: Gateway,
    url: String,
    token: String,
}

async fn rig(provider: &str, fake: FakeConfig, budget: Value, cache: Option<Cache>) -> Rig {
    let fake = FakeUpstream::start(fake).await.unwrap();
    let gateway = open(&fake, provider, budget, cache).await;
    let url = bridge(gateway.socket()).await;
    let token = gateway.env().into_iter().find(|(k, _)| k == "OPENAI_API_KEY").unwrap().1;
    Rig { fake, gateway, url, token }
}

async fn open(fake: &FakeUpstream, provider: &str, budget: Value, cache: Option<Cache>) -> Gateway {
    let config = config(provider, &fake.base_url(provider), budget);
    let upstream = Upstream::open("default", &config, &Env::from_pairs([("UPSTREAM_KEY", KEY)])).unwrap();
    let opening = Opening { upstream, ledger: Ledger::default(), workflow: "wf".into(), task_spent: Cost::default(), cache };
    Gateway::open(opening).await.unwrap()
}

/// Posts `body` to `path` with the token in `auth_header`; returns the status, headers, and body.
async fn post(url: &str, path: &str, auth: (&str, &str), body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = crate::agent::model::http::client()
        .post(format!("{url}{path}"))
        .header(auth.0, auth.1)
        .header("content-type", "application/json")
        .body(body.to_string());
    if path == "/v1/messages" {
        request = request.header("anthropic-version", "2023-06-01");
    }
    let r = request.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-whatever", "messages": [{"role": "user", "content": "write add"}], "stream": stream})
}

/// The text of an OpenAI chat stream's deltas.
fn chat_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_openai_call_goes_upstream_with_the_real_key_and_is_metered() {
    timeout(async {
        let r = rig("openai", FakeConfig::new(KEY, REPLY), json!({}), None).await;
        let (k, v) = bearer(&r.token);
        let (status, _, body) = post(&r.url, "/v1/chat/completions", (k, &v), &chat(false)).await;
        assert_eq!(status, 200, "{body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["choices"][0]["message"]["content"], REPLY);
        let got = r.fake.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body["model"], "m-1", "the configured model is asked");
        let auth: Vec<&str> = got[0].headers.iter().filter(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()).collect();
        assert_eq!(auth, [format!("Bearer {KEY}")]);
        assert!(!format!("{:?}", got[0].headers).contains(&r.token), "the token never goes upstream");
        let ending = r.gateway.end().await;
        let usage = &reply["usage"];
        assert_eq!(ending.cost.input_tokens, usage["prompt_tokens"].as_u64().unwrap());
        assert_eq!(ending.cost.output_tokens, REPLY_TOKENS);
        assert!(ending.cost.usd > 0.0);
        assert_eq!((ending.requests, ending.upstream_requests), (1, 1));
        let transcript = String::from_utf8(ending.transcript).unwrap();
        assert!(transcript.contains("\"event\":\"request\"") && transcript.contains("\"event\":\"reply\""), "{transcript}");
        assert!(!transcript.contains(KEY) && !transcript.contains(&r.token), "{transcript}");
        assert!(r.gateway.env().iter().all(|(_, v)| !v.contains(KEY)));
    })
    .await;
}

#[tokio::test]
async fn a_wrong_token_and_an_ended_attempts_token_get_the_apis_own_401() {
    timeout(async {
        let r = rig("openai", FakeConfig::new(KEY, REPLY), json!({}), None).await;
        let (status, _, body) = post(&r.url, "/v1/chat/completions", ("authorization", "Bearer nope"), &chat(false)).await;
        assert_eq!(status, 401);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "invalid_api_key");
        let (status, _, _) = post(&r.url, "/v1/chat/completions", ("authorization", &format!("Bearer {KEY}")), &chat(false)).await;
        assert_eq!(status, 401, "the real key is no token either");
        let (k, v) = bearer(&r.token);
        assert_eq!(post(&r.url, "/v1/chat/completions", (k, &v), &chat(false)).await.0, 200);
        r.gateway.end().await;
        let (status, headers, body) = post(&r.url, "/v1/chat/completions", (k, &v), &chat(false)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(headers["x-should-retry"], "false");
        let (status, _, body) = post(&r.url, "/v1/messages", ("x-api-key", &r.token), &json!({"messages": []})).await;
        assert_eq!(status, 401);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["type"], "authentication_error");
        assert_eq!(r.fake.calls(), 1, "refused requests never go upstream");
    })
    .await;
}

#[tokio::test]
async fn streams_are_relayed_chunk_by_chunk_and_metered_from_their_final_events() {
    timeout(async {
        let mut fake = FakeConfig::new(KEY, &"word ".repeat(20));
        fake.chunk_delay = Duration::from_millis(40);
        let r = rig("openai", fake, json!({}), None).await;
        let started = Instant::now();
        let mut response = crate::agent::model::http::client()
            .post(format!("{}/v1/chat/completions", r.url))
            .bearer_auth(&r.token)
            .body(chat(true).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
        let mut first = None;
        let mut sse = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            first.get_or_insert(started.elapsed());
            sse.extend_from_slice(&chunk);
        }
        let (first, total) = (first.unwrap(), started.elapsed());
        assert!(first * 4 < total, "the first chunk came at {first:?}, the whole stream at {total:?}: it was buffered");
        let sse = String::from_utf8(sse).unwrap();
        assert_eq!(chat_text(&sse), "word ".repeat(20));
        assert!(sse.ends_with("data: [DONE]\n\n"));
        assert_eq!(r.fake.received()[0].body["stream_options"]["include_usage"], true);
        let ending = r.gateway.end().await;
        assert_eq!(ending.cost.output_tokens, 20, "usage from the stream's final chunk");
        assert!(ending.cost.input_tokens > 0);
    })
    .await;
}

#[tokio::test]
async fn every_api_is_passed_through_whole_and_streamed_and_metered() {
    timeout(async {
        // (provider, path, auth header, body, where the text is, expected output tokens)
        let cases: Vec<(&str, &str, &str, Value)> = vec![
            ("openai", "/v1/responses", "authorization", json!({"model": "x", "input": "write add"})),
            ("openai", "/v1/responses", "authorization", json!({"model": "x", "input": "write add", "stream": true})),
            (
                "anthropic",
                "/v1/messages",
                "x-api-key",
                json!({"model": "x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
            ),
            (
                "anthropic",
                "/v1/messages",
                "x-api-key",
                json!({"model": "x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": true}),
            ),
            ("gemini", "/v1beta/models/gemini-pro:generateContent", "x-goog-api-key", json!({"contents": [{"parts": [{"text": "hi"}]}]})),
            (
                "gemini",
                "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse",
                "x-goog-api-key",
                json!({"contents": [{"parts": [{"text": "hi"}]}]}),
            ),
        ];
        for (provider, path, header, body) in cases {
            let r = rig(provider, FakeConfig::new(KEY, REPLY), json!({}), None).await;
            let value = if header == "authorization" { format!("Bearer {}", r.token) } else { r.token.clone() };
            let (status, _, text) = post(&r.url, path, (header, &value), &body).await;
            assert_eq!(status, 200, "{path}: {text}");
            assert!(text.contains("return "), "{path}: {text}");
            let got = r.fake.received();
            assert_eq!(got.len(), 1, "{path}");
            if provider == "gemini" {
                assert!(got[0].path.starts_with("/v1beta/models/m-1:"), "the configured model is asked: {}", got[0].path);
            }
            let ending = r.gateway.end().await;
            assert_eq!(ending.cost.output_tokens, REPLY_TOKENS, "{path}: {:?}", ending.cost);
            assert!(ending.cost.input_tokens > 0, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn rate_limits_pass_through_with_their_status_and_retry_after() {
    timeout(async {
        let mut fake = FakeConfig::new(KEY, REPLY);
        fake.rate_limited = 1;
        let r = rig("anthropic", fake, json!({}), None).await;
        let body = json!({"model": "x", "max_tokens": 10, "messages": []});
        let (status, headers, text) = post(&r.url, "/v1/messages", ("x-api-key", &r.token), &body).await;
        assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "1"));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["type"], "rate_limit_error");
        assert_eq!(post(&r.url, "/v1/messages", ("x-api-key", &r.token), &body).await.0, 200);
        let ending = r.gateway.end().await;
        assert_eq!(ending.upstream_requests, 2);
        assert_eq!(ending.cost.output_tokens, REPLY_TOKENS, "a refused request costs nothing");
    })
    .await;
}

#[tokio::test]
async fn a_spent_budget_refuses_before_sending_in_the_apis_shape() {
    timeout(async {
        let r = rig("openai", FakeConfig::new(KEY, REPLY), json!({"tokens_per_attempt": 10}), None).await;
        let (k, v) = bearer(&r.token);
        assert_eq!(post(&r.url, "/v1/chat/completions", (k, &v), &chat(false)).await.0, 200);
        let (status, headers, body) = post(&r.url, "/v1/chat/completions", (k, &v), &chat(false)).await;
        assert_eq!(status, 429);
        assert_eq!(headers["x-should-retry"], "false");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "insufficient_quota");
        assert_eq!(r.fake.calls(), 1, "nothing was sent");
        let ending = r.gateway.end().await;
        assert!(ending.budget.unwrap().starts_with("the attempt's budget is spent"));
    })
    .await;
}

#[tokio::test]
async fn a_replay_is_served_from_the_cache_streams_as_streams() {
    timeout(async {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let cache = Cache::new(Arc::new(Store::open(dir.path()).unwrap()));
        let fake = FakeUpstream::start(FakeConfig::new(KEY, REPLY)).await.unwrap();
        let mut replies = Vec::new();
        for _ in 0..2 {
            let gateway = open(&fake, "openai", json!({}), Some(cache.clone())).await;
            let url = bridge(gateway.socket()).await;
            let token = gateway.env().into_iter().find(|(k, _)| k == "OPENAI_API_KEY").unwrap().1;
            let (k, v) = bearer(&token);
            let whole = post(&url, "/v1/chat/completions", (k, &v), &chat(false)).await;
            let streamed = post(&url, "/v1/chat/completions", (k, &v), &chat(true)).await;
            assert_eq!((whole.0, streamed.0), (200, 200));
            assert_eq!(streamed.1["content-type"], "text/event-stream; charset=utf-8");
            let ending = gateway.end().await;
            replies.push((whole.2, streamed.2, ending));
        }
        assert_eq!(fake.calls(), 2, "the second attempt sent nothing upstream");
        assert_eq!(replies[0].0, replies[1].0);
        assert_eq!(replies[0].1, replies[1].1);
        assert_eq!(chat_text(&replies[1].1), REPLY);
        let replay = &replies[1].2;
        assert_eq!((replay.upstream_requests, replay.cost.tokens()), (0, 0));
        assert!(String::from_utf8_lossy(&replay.transcript).contains("\"cached\":true"));
    })
    .await;
}

#[tokio::test]
async fn an_api_the_provider_does_not_speak_is_refused_and_models_are_listed() {
    timeout(async {
        let r = rig("openai", FakeConfig::new(KEY, REPLY), json!({}), None).await;
        let (status, _, body) = post(&r.url, "/v1/messages", ("x-api-key", &r.token), &json!({"messages": []})).await;
        assert_eq!(status, 404);
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["type"], "not_found_error");
        assert!(error["error"]["message"].as_str().unwrap().contains("over the OpenAI API"), "{error}");
        let listed = crate::agent::model::http::client().get(format!("{}/v1/models", r.url)).bearer_auth(&r.token).send().await.unwrap();
        let listed: Value = serde_json::from_str(&listed.text().await.unwrap()).unwrap();
        assert_eq!(listed["data"][0]["id"], "m-1");
        assert_eq!(r.fake.calls(), 0);
    })
    .await;
}

#[test]
fn a_scripted_model_cannot_serve_a_command_agent() {
    let config: Config = serde_json::from_value(json!({"models": {"s": {"provider": "scripted", "file": "r.yaml"}}})).unwrap();
    let err = Upstream::open("s", &config, &Env::default()).err().unwrap();
    assert!(err.to_string().contains("no API to forward to"), "{err}");
}

#[test]
fn each_client_is_told_the_model_in_its_own_variable() {
    let vars = |provider| model_vars(provider, "m-1").into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    let tail = "LITELLM_LOCAL_MODEL_COST_MAP=True";
    for (provider, want) in [
        (Provider::Openai, format!("OPENAI_MODEL=m-1 AIDER_MODEL=openai/m-1 MSWEA_MODEL_NAME=openai/m-1 {tail}")),
        (Provider::Anthropic, format!("ANTHROPIC_MODEL=m-1 AIDER_MODEL=anthropic/m-1 MSWEA_MODEL_NAME=anthropic/m-1 {tail}")),
        (Provider::Gemini, format!("GEMINI_MODEL=m-1 AIDER_MODEL=gemini/m-1 MSWEA_MODEL_NAME=gemini/m-1 {tail}")),
    ] {
        assert_eq!(vars(provider), want, "{provider:?}");
    }
}
