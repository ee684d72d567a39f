//! The layers around a provider, against a real HTTP server speaking OpenAI's shapes: retries
//! of what passes (429 with `Retry-After`, 5xx, timeouts), none of what does not (400, 401,
//! 404, malformed replies), budgets that stop before sending, the cache, keys from the
//! environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{header, method};
use wiremock::{Mock, ResponseTemplate};

use super::budget::{Ledger, Meter};
use super::cache::Cache;
use super::testing::{self, Server};
use super::transcript::Transcript;
use super::{AskError, Message, Model, ModelError, open};
use crate::config::{Config, Env};
use crate::spec::DirSource;
use crate::state::{Cost, Store};

const REPLY: &str = r#"{"id": "c1", "object": "chat.completion", "model": "m",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100}}"#;

fn config(server: &Server, extra: Value) -> Config {
    let mut model =
        json!({"provider": "openai", "base_url": format!("{}/v1", server.uri()), "model": "m", "retry_delay_ms": 10, "max_retries": 2});
    for (k, v) in extra.as_object().unwrap() {
        model[k] = v.clone();
    }
    serde_json::from_value(json!({"models": {"m": model}})).unwrap()
}

fn model(server: &Server, extra: Value, cache: Option<Cache>) -> Model {
    let source = DirSource::new(std::env::temp_dir());
    open("m", &config(server, extra), &Env::from_pairs([("KEY", "sk-layer")]), &source, cache).unwrap()
}

async fn ask(model: &Model, meter: &Meter) -> (Result<super::Reply, AskError>, String) {
    let transcript = Transcript::new(model.secrets.clone());
    let req = testing::request(vec![Message::User { text: "go".into() }]);
    let result = model.ask(&req, meter, &transcript, Instant::now() + Duration::from_secs(30)).await;
    (result, String::from_utf8(transcript.bytes()).unwrap())
}

fn respond(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

async fn mount_once(server: &Server, priority: u8, template: ResponseTemplate) {
    Mock::given(method("POST")).respond_with(template).up_to_n_times(1).with_priority(priority).mount(&server.inner).await;
}

#[tokio::test]
async fn passing_failures_are_retried_honouring_retry_after() {
    testing::timeout(async {
        let server = Server::start().await;
        mount_once(&server, 1, respond(503, r#"{"error": {"message": "busy"}}"#)).await;
        mount_once(&server, 2, respond(429, r#"{"error": {"message": "slow down"}}"#).insert_header("retry-after", "1")).await;
        mount_once(&server, 3, respond(200, REPLY)).await;
        let m = model(&server, json!({}), None);
        let ledger = Ledger::default();
        let started = Instant::now();
        let (reply, transcript) = ask(&m, &Meter::new(m.limits, &ledger, "wf", Cost::default())).await;
        assert_eq!(reply.unwrap().response.text, "ok");
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not honoured");
        assert_eq!(server.bodies().await.len(), 3);
        assert!(transcript.contains("HTTP 503: busy") && transcript.contains("\"retry_in_ms\":1000"), "{transcript}");
    })
    .await;
}

#[tokio::test]
async fn what_cannot_pass_fails_at_once_with_the_providers_words() {
    testing::timeout(async {
        for (status, body, says) in [
            (400, r#"{"error": {"message": "max_tokens is too large"}}"#, "HTTP 400: max_tokens is too large"),
            (401, r#"{"error": {"message": "Incorrect API key provided"}}"#, "HTTP 401: Incorrect API key provided"),
            (404, r#"{"error": "model 'm' not found, try pulling it first"}"#, "HTTP 404: model 'm' not found"),
            (200, r#"{"choices": [{"message": "#, "malformed reply: not JSON"),
        ] {
            let server = Server::start().await;
            mount_once(&server, 1, respond(status, body)).await;
            let m = model(&server, json!({}), None);
            let ledger = Ledger::default();
            let (reply, _) = ask(&m, &Meter::new(m.limits, &ledger, "wf", Cost::default())).await;
            match reply {
                Err(AskError::Model(e)) => assert!(e.to_string().contains(says), "{status}: {e}"),
                other => panic!("{status}: {other:?}"),
            }
            assert_eq!(server.bodies().await.len(), 1, "{status} was retried");
        }
    })
    .await;
}

#[tokio::test]
async fn server_errors_and_slow_replies_are_retried_then_reported() {
    testing::timeout(async {
        let server = Server::start().await;
        Mock::given(method("POST")).respond_with(respond(500, "oops")).mount(&server.inner).await;
        let m = model(&server, json!({}), None);
        let ledger = Ledger::default();
        let (reply, _) = ask(&m, &Meter::new(m.limits, &ledger, "wf", Cost::default())).await;
        assert!(matches!(reply, Err(AskError::Model(ModelError::Status { status: 500, .. }))), "{reply:?}");
        assert_eq!(server.bodies().await.len(), 3, "one try and two retries");

        let slow = Server::start().await;
        Mock::given(method("POST")).respond_with(respond(200, REPLY).set_delay(Duration::from_secs(3))).mount(&slow.inner).await;
        let m = model(&slow, json!({"timeout_seconds": 1, "max_retries": 1}), None);
        let (reply, _) = ask(&m, &Meter::new(m.limits, &ledger, "wf", Cost::default())).await;
        match reply {
            Err(AskError::Model(e @ ModelError::Timeout { .. })) => assert!(e.to_string().ends_with("no reply within 1s"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(slow.bodies().await.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_spent_budget_sends_nothing_more() {
    testing::timeout(async {
        let server = Server::start().await;
        Mock::given(method("POST")).respond_with(respond(200, REPLY)).mount(&server.inner).await;
        let m = model(&server, json!({"max_tokens_per_attempt": 150, "prices": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}), None);
        let ledger = Ledger::default();
        let meter = Meter::new(m.limits, &ledger, "wf", Cost::default());
        let first = ask(&m, &meter).await.0.unwrap();
        assert_eq!((first.cost.input_tokens, first.cost.output_tokens), (90, 10));
        assert!((first.cost.usd - 0.00011).abs() < 1e-12, "{:?}", first.cost);
        assert!(ask(&m, &meter).await.0.is_ok(), "100 of 150 tokens spent: one more request");
        match ask(&m, &meter).await.0 {
            Err(AskError::Budget(why)) => assert_eq!(why, "the attempt's budget is spent: 200 of 150 tokens"),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.bodies().await.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_repeated_request_is_served_from_the_cache_for_nothing() {
    testing::timeout(async {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let cache = Cache::new(Arc::new(Store::open(dir.path()).unwrap()));
        let server = Server::start().await;
        Mock::given(method("POST"))
            .and(header("authorization", "Bearer sk-layer"))
            .respond_with(respond(200, REPLY))
            .mount(&server.inner)
            .await;
        let m = model(&server, json!({"api_key_env": "KEY"}), Some(cache));
        let ledger = Ledger::default();
        let meter = Meter::new(m.limits, &ledger, "wf", Cost::default());
        let first = ask(&m, &meter).await.0.unwrap();
        let (second, transcript) = ask(&m, &meter).await;
        let second = second.unwrap();
        assert!(!first.cached && second.cached);
        assert_eq!(second.response, first.response);
        assert_eq!(second.cost, Cost::default());
        assert_eq!(meter.spent().tokens(), 100);
        assert_eq!(server.bodies().await.len(), 1);
        assert!(transcript.contains("\"cached\":true") && !transcript.contains("sk-layer"), "{transcript}");
    })
    .await;
}

#[tokio::test]
async fn replies_without_usage_are_estimated_and_keys_must_be_set() {
    testing::timeout(async {
        let server = Server::start().await;
        Mock::given(method("POST"))
            .respond_with(respond(200, r#"{"choices": [{"message": {"content": "hello there"}}]}"#))
            .mount(&server.inner)
            .await;
        let m = model(&server, json!({}), None);
        let ledger = Ledger::default();
        let reply = ask(&m, &Meter::new(m.limits, &ledger, "wf", Cost::default())).await.0.unwrap();
        assert!(reply.response.usage.estimated && reply.cost.input_tokens > 50, "{:?}", reply.response.usage);
        let source = DirSource::new(std::env::temp_dir());
        let err = open("m", &config(&server, json!({"api_key_env": "NOT_SET_ANYWHERE"})), &Env::default(), &source, None).err().unwrap();
        assert_eq!(err.to_string(), "model `m`: the environment variable NOT_SET_ANYWHERE is not set");
        assert!(server.bodies().await.len() == 1);
    })
    .await;
}
