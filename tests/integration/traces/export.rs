//! With the `otlp` feature: a real collector on a port of its own takes what `plancd reconcile`
//! sends, or refuses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::{TOKEN, repo};
use crate::util::{plancd_async, within};

/// A request the collector took.
struct Export {
    headers: HeaderMap,
    request: ExportTraceServiceRequest,
}

/// What the collector saw.
#[derive(Default)]
struct Seen {
    exports: Vec<Export>,
    /// Requests to anything but `POST /v1/traces`, or bodies that are not an export request.
    unexpected: Vec<String>,
}

/// An OTLP/HTTP collector on a port of its own: it decodes each `POST /v1/traces` as the
/// protobuf `ExportTraceServiceRequest` and answers `status`, with an empty
/// `ExportTraceServiceResponse` when that is 200, as a real collector does.
struct Collector {
    url: String,
    seen: Arc<Mutex<Seen>>,
    arrived: tokio::sync::watch::Receiver<usize>,
}

impl Collector {
    async fn start(status: StatusCode) -> Collector {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (arrived_tx, arrived) = tokio::sync::watch::channel(0usize);
        let arrived_tx = Arc::new(arrived_tx);
        let (traces_seen, other_seen) = (seen.clone(), seen.clone());
        let traces = move |headers: HeaderMap, body: Bytes| async move {
            match ExportTraceServiceRequest::decode(body) {
                Ok(request) => traces_seen.lock().unwrap().exports.push(Export { headers, request }),
                Err(e) => traces_seen.lock().unwrap().unexpected.push(format!("a body that is no export request: {e}")),
            }
            arrived_tx.send_modify(|n| *n += 1);
            let body =
                if status == StatusCode::OK { ExportTraceServiceResponse::default().encode_to_vec() } else { b"unavailable".to_vec() };
            (status, [("content-type", "application/x-protobuf")], body)
        };
        let other = move |method: axum::http::Method, uri: Uri| async move {
            other_seen.lock().unwrap().unexpected.push(format!("{method} {uri}"));
            StatusCode::NOT_FOUND
        };
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(traces)).fallback(other);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Collector { url, seen, arrived }
    }

    /// Waits until `enough` holds for what arrived (exports may still be on their way after
    /// the command ended on a loaded machine), then gives it.
    async fn wait_for(&self, enough: impl Fn(&Seen) -> bool) -> std::sync::MutexGuard<'_, Seen> {
        let mut arrived = self.arrived.clone();
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if enough(&self.seen.lock().unwrap()) {
                    return;
                }
                arrived.changed().await.unwrap();
            }
        });
        waited.await.expect("the collector got what it waited for within a minute");
        self.seen.lock().unwrap()
    }
}

/// Every span of every export.
fn spans(seen: &Seen) -> Vec<&Span> {
    seen.exports.iter().flat_map(|e| &e.request.resource_spans).flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect()
}

/// An attribute's value, as text.
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// The collector and header, and room for a loaded machine: an export (and so the exit) may
/// take up to 30 s instead of 10 before its spans are given up.
fn otel_env<'a>(endpoint: &'a str, headers: &'a str) -> [(&'a str, &'a str); 3] {
    [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_EXPORTER_OTLP_HEADERS", headers), ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000")]
}

#[tokio::test]
async fn a_reconcile_sends_its_pass_attempt_and_step_spans_to_the_collector_with_its_header() {
    within(240, async {
        let collector = Collector::start(StatusCode::OK).await;
        let repo = repo();
        let header = format!("authorization=Bearer {TOKEN}");
        // Everything plancd and its HTTP stack log, to show the header is in none of it.
        let mut env = otel_env(&collector.url, &header).to_vec();
        env.push(("RUST_LOG", "trace"));
        let run = plancd_async(repo.path(), &["reconcile"], &env).await;
        run.expect_code(0);
        assert!(run.stdout.contains("1/1 tasks satisfied"), "{}", run.stdout);

        let has = |seen: &Seen, name: &str| spans(seen).iter().any(|s| s.name == name);
        let seen = collector.wait_for(|s| ["pass", "attempt", "step"].iter().all(|n| has(s, n))).await;
        assert!(seen.unexpected.is_empty(), "{:?}", seen.unexpected);
        for export in &seen.exports {
            assert_eq!(export.headers.get("authorization").and_then(|v| v.to_str().ok()), Some(format!("Bearer {TOKEN}").as_str()));
            assert_eq!(export.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-protobuf"));
            for resource in &export.request.resource_spans {
                let attributes = &resource.resource.as_ref().expect("a resource").attributes;
                assert_eq!(attr(attributes, "service.name").as_deref(), Some("plancd"));
                assert_eq!(attr(attributes, "service.version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
            }
        }

        let all = spans(&seen);
        let pass = all.iter().find(|s| s.name == "pass").unwrap();
        assert!(attr(&pass.attributes, "correlation_id").is_some_and(|id| !id.is_empty()), "{pass:?}");
        assert_eq!(attr(&pass.attributes, "commit"), Some(repo.git(&["rev-parse", "HEAD"]).trim().to_owned()));
        let attempt = all.iter().find(|s| s.name == "attempt").unwrap();
        let fields = ["workflow", "task", "attempt"].map(|k| attr(&attempt.attributes, k));
        assert_eq!(fields, [Some("traced".into()), Some("a".into()), Some("1".into())], "{attempt:?}");
        assert_eq!((&attempt.trace_id, &attempt.parent_span_id), (&pass.trace_id, &pass.span_id), "the attempt is a child of the pass");
        let steps: Vec<String> = all
            .iter()
            .filter(|s| s.name == "step" && s.parent_span_id == attempt.span_id)
            .filter_map(|s| attr(&s.attributes, "step"))
            .collect();
        for step in ["agent", "tests", "publishing"] {
            assert!(steps.iter().any(|s| s == step), "a `{step}` step under the attempt in {steps:?}");
        }

        // The header's value went to the collector only: not into a span, not into a log.
        for span in &all {
            assert!(!format!("{span:?}").contains(TOKEN), "a span holds the header's value: {span:?}");
        }
        assert!(run.stderr.contains("/v1/traces"), "RUST_LOG=trace shows the export:\n{}", run.stderr);
        assert!(!run.all().contains(TOKEN), "the header's value is in plancd's output");
    })
    .await;
}

#[tokio::test]
async fn a_collector_that_refuses_or_is_not_there_is_warned_about_once_and_fails_nothing() {
    within(240, async {
        let collector = Collector::start(StatusCode::SERVICE_UNAVAILABLE).await;
        let header = format!("x-api-key={TOKEN}");
        let repo = repo();
        let run = plancd_async(repo.path(), &["reconcile"], &otel_env(&collector.url, &header)).await;
        run.expect_code(0);
        assert!(run.stdout.contains("1/1 tasks satisfied"), "{}", run.stdout);
        {
            let seen = collector.wait_for(|s| !s.exports.is_empty()).await;
            assert_eq!(seen.exports[0].headers.get("x-api-key").and_then(|v| v.to_str().ok()), Some(TOKEN));
        }
        let warned = |stderr: &str| stderr.matches("cannot send traces to the collector").count();
        assert_eq!(warned(&run.stderr), 1, "one warning for the refusals (retried included):\n{}", run.stderr);
        assert!(run.stderr.contains("503") && run.stderr.contains(&collector.url), "{}", run.stderr);
        assert!(!run.all().contains(TOKEN), "the header's value is in plancd's output");

        // Nothing listens on the port of a listener that is gone.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", gone.local_addr().unwrap());
        drop(gone);
        let again = plancd_async(repo.path(), &["reconcile"], &otel_env(&url, &header)).await;
        again.expect_code(0);
        assert_eq!(warned(&again.stderr), 1, "the pass's span could not be sent:\n{}", again.stderr);
        assert!(!again.all().contains(TOKEN), "the header's value is in plancd's output");
    })
    .await;
}
