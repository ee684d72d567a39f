//! The gateway's HTTP server: checks the token, answers the model list, and passes model calls
//! through to the upstream — the cache first, then the budget, then the provider with the real
//! key; whole replies read and metered, streams relayed chunk by chunk and metered from their
//! final events once they end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Shared;
use super::route::{self, Api, Family, Route};
use super::usage::{self, Refusal};
use crate::agent::model::budget::price;
use crate::agent::model::cache::mask_durations;
use crate::agent::model::http::{self as model_http, Auth};
use crate::config::Provider;
use crate::spec::{canonical_json, sha256_hex};

/// The largest request body taken from a client.
const MAX_REQUEST_BYTES: usize = 32 << 20;
/// The largest whole reply taken from an upstream (streams are relayed, and kept for the
/// cache and the transcript only up to this).
const MAX_REPLY_BYTES: usize = 32 << 20;

/// Request headers passed upstream: what selects API versions and features, nothing that
/// identifies or authorises the caller.
const PASSED_UP: [&str; 4] = ["anthropic-version", "anthropic-beta", "openai-beta", "accept"];
/// Reply headers passed back: the type, and what tells a client when to retry.
const PASSED_DOWN: [&str; 6] = ["content-type", "retry-after", "retry-after-ms", "x-should-retry", "x-request-id", "request-id"];

/// Serves `shared`'s attempt on `listener` until aborted.
pub(super) async fn serve(listener: tokio::net::UnixListener, shared: Arc<Shared>) {
    let app = axum::Router::new().fallback(handle).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)).with_state(shared);
    let _ = axum::serve(listener, app).await;
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Equal without telling by its timing where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts a request in flight until dropped (a stream's guard lives as long as its relay).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let guard = InFlight::new(&shared);
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let route = route::route(method.as_str(), uri.path(), headers.contains_key("anthropic-version"));
    let family = match &route {
        Route::Call(api) => api.family(),
        Route::Models(f) | Route::Unknown(f) => *f,
    };
    let token =
        route::token(header(&headers, "authorization"), header(&headers, "x-api-key"), header(&headers, "x-goog-api-key"), uri.query());
    let allowed = shared.live.load(Ordering::SeqCst) && token.is_some_and(|t| same(t, shared.token.expose_secret()));
    if !allowed {
        return refuse(family, &Refusal::Unauthorized);
    }
    match route {
        Route::Models(f) => json_reply(StatusCode::OK, &route::models_list(f, &shared.upstream.model)),
        Route::Unknown(f) => refuse(f, &Refusal::NotFound(uri.path().to_owned())),
        Route::Call(api) if !route::served(&api, shared.upstream.provider) => {
            let provider = match shared.upstream.provider {
                Provider::Openai => "OpenAI",
                Provider::Anthropic => "Anthropic Messages",
                Provider::Gemini => "Gemini",
                Provider::Scripted => "no",
            };
            refuse(family, &Refusal::NotServed { provider: provider.to_owned() })
        }
        Route::Call(api) => call(&shared, guard, api, &uri, &headers, &body).await,
    }
}

fn json_reply(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(serde_json::to_vec(body).expect("a JSON value always serialises")));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn refuse(family: Family, refusal: &Refusal) -> Response {
    let (status, body) = usage::error_reply(family, refusal);
    let mut response = json_reply(StatusCode::from_u16(status).expect("refusal statuses are valid"), &body);
    if matches!(refusal, Refusal::Budget(_) | Refusal::Unauthorized) {
        response.headers_mut().insert("x-should-retry", HeaderValue::from_static("false"));
    }
    response
}

/// A reply kept in the response cache: enough to give it again, a stream as a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    status: u16,
    content_type: String,
    stream: bool,
    body: String,
}

/// The name of a kept reply in a cache entry.
const KEPT: &str = "gateway.json";

/// The cache key of `body` sent to `identity` over `api`: canonical JSON with durations
/// masked, and without the fields that name the caller or label its items rather than ask.
pub(super) fn cache_key(api: &Api, identity: &str, body: &Value) -> String {
    fn normalise(v: &mut Value) {
        match v {
            Value::String(s) => *s = mask_durations(s),
            Value::Array(items) => items.iter_mut().for_each(normalise),
            Value::Object(map) => map.values_mut().for_each(normalise),
            _ => {}
        }
    }
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        for field in ["user", "metadata", "safety_identifier", "prompt_cache_key", "client_metadata"] {
            obj.remove(field);
        }
        // The ids a client gives the items it sends (Codex CLI: a fresh UUIDv7 for each) label
        // them and ask nothing; an `item_reference` names a stored item by its id, so keeps it.
        if *api == Api::OpenAiResponses
            && let Some(Value::Array(items)) = obj.get_mut("input")
        {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                if item.get("type").and_then(Value::as_str) != Some("item_reference") {
                    item.remove("id");
                }
            }
        }
    }
    normalise(&mut body);
    sha256_hex(&canonical_json(&json!({"gateway": api.name(), "model": identity, "request": body})))
}

/// One model call: from the cache, or (budget allowing) from the upstream.
async fn call(shared: &Arc<Shared>, guard: InFlight, api: Api, uri: &Uri, headers: &HeaderMap, bytes: &Bytes) -> Response {
    let family = api.family();
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return refuse(family, &Refusal::BadRequest(format!("the request body is not JSON: {e}"))),
    };
    let stream = api.streams(&body);
    let up = &shared.upstream;
    let sent = route::upstream_body(&api, body, &up.model);
    let key = cache_key(&api, &up.identity, &sent);
    shared.transcript.event("request", json!({"api": api.name(), "stream": stream, "cache_key": key, "body": sent}));
    if let Some(kept) = cached(shared, &key) {
        shared.transcript.event("reply", json!({"api": api.name(), "status": kept.status, "cached": true, "body": kept.body}));
        return replay(kept);
    }
    if let Err(why) = shared.meter.check() {
        shared.transcript.event("refused", json!({"api": api.name(), "reason": "budget", "message": why}));
        *shared.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.clone());
        return refuse(family, &Refusal::Budget(why));
    }
    shared.upstream_requests.fetch_add(1, Ordering::SeqCst);
    let url = route::upstream_url(&api, &up.base_url, &up.model, uri.query());
    let payload = serde_json::to_vec(&sent).expect("a JSON value always serialises");
    let started = Instant::now();
    let request = model_http::client().post(&url).headers(upstream_headers(headers, &up.auth)).body(payload.clone());
    let sending = if stream { request.send().await } else { request.timeout(up.timeout).send().await };
    let response = match sending {
        Ok(r) => r,
        Err(e) => return unreachable(shared, family, &api, &format!("cannot reach {}: {e}", model_http::redact_url(&url))),
    };
    let status = response.status();
    let mut down = Response::new(Body::empty());
    *down.status_mut() = status;
    for name in PASSED_DOWN {
        if let Some(v) = response.headers().get(name) {
            down.headers_mut().insert(HeaderName::from_static(name), v.clone());
        }
    }
    let content_type = header(down.headers(), "content-type").unwrap_or("application/json").to_owned();
    if !status.is_success() || !stream {
        let Some(reply) = read_whole(response).await else {
            return unreachable(shared, family, &api, "the upstream's reply broke off or is too large");
        };
        let parsed: Option<Value> = serde_json::from_slice(&reply).ok();
        let ms = started.elapsed().as_millis() as u64;
        if status.is_success() {
            let usage =
                parsed.as_ref().and_then(|v| usage::of_reply(&api, v)).unwrap_or_else(|| usage::estimate(payload.len(), reply.len()));
            account(shared, &api, &key, usage, Kept { status: status.as_u16(), content_type, stream: false, body: text(&reply) }, ms);
        } else {
            let shown = parsed.unwrap_or_else(|| json!(text(&reply)));
            shared
                .transcript
                .event("reply", json!({"api": api.name(), "status": status.as_u16(), "cached": false, "ms": ms, "body": shown}));
        }
        *down.body_mut() = Body::from(reply);
        return down;
    }
    *down.body_mut() = relay(Arc::clone(shared), guard, api, key, payload.len(), content_type, response, started);
    down
}

/// The headers sent upstream: JSON, the passed ones, and the real key (marked sensitive).
fn upstream_headers(from: &HeaderMap, auth: &Auth) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for name in PASSED_UP {
        if let Some(v) = from.get(name) {
            map.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let secret = |value: String| {
        let mut v = HeaderValue::from_str(&value).ok()?;
        v.set_sensitive(true);
        Some(v)
    };
    match auth {
        Auth::None => {}
        Auth::Bearer(key) => {
            if let Some(v) = secret(format!("Bearer {}", key.expose_secret())) {
                map.insert("authorization", v);
            }
        }
        Auth::Header(name, key) => {
            if let Some(v) = secret(key.expose_secret().to_owned()) {
                map.insert(HeaderName::from_static(name), v);
            }
        }
    }
    map
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The upstream failed to answer: the gateway's own failure, in the caller's shape.
fn unreachable(shared: &Shared, family: Family, api: &Api, why: &str) -> Response {
    shared.transcript.event("error", json!({"api": api.name(), "error": why}));
    *shared.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_owned());
    refuse(family, &Refusal::Unreachable(why.to_owned()))
}

async fn read_whole(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_REPLY_BYTES {
            return None;
        }
    }
    Some(out)
}

/// Charges a reply's usage, keeps it in the cache and the transcript.
fn account(shared: &Shared, api: &Api, key: &str, usage: crate::agent::model::Usage, kept: Kept, ms: u64) {
    let cost = price(&usage, shared.upstream.prices.as_ref());
    shared.meter.charge(cost);
    shared.transcript.event(
        "reply",
        json!({"api": api.name(), "status": kept.status, "cached": false, "ms": ms, "stream": kept.stream, "usage": usage, "cost": cost,
            "body": if kept.stream { json!(kept.body) } else { serde_json::from_str(&kept.body).unwrap_or_else(|_| json!(kept.body)) }}),
    );
    if let Some(cache) = &shared.cache {
        let bytes = serde_json::to_vec(&kept).expect("a kept reply always serialises");
        if let Err(e) = cache.put_file(key, &shared.upstream.identity, KEPT, &bytes) {
            shared.transcript.event("error", json!({"api": api.name(), "error": format!("response cache: {e}")}));
        }
    }
}

fn cached(shared: &Shared, key: &str) -> Option<Kept> {
    let cache = shared.cache.as_ref()?;
    match cache.get_file(key, KEPT) {
        Ok(found) => found.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        Err(e) => {
            shared.transcript.event("error", json!({"error": format!("response cache: {e}")}));
            None
        }
    }
}

/// A kept reply given again; a stream event by event.
fn replay(kept: Kept) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&kept.content_type) {
        response.headers_mut().insert("content-type", v);
    }
    *response.body_mut() = if kept.stream {
        let events: Vec<Result<Bytes, std::io::Error>> = split_events(&kept.body).into_iter().map(|e| Ok(Bytes::from(e))).collect();
        Body::from_stream(futures_util::stream::iter(events))
    } else {
        Body::from(kept.body)
    };
    response
}

/// `body` cut after each blank line that ends a server-sent event.
pub(super) fn split_events(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut rest = body;
    while let Some(end) = ["\r\n\r\n", "\n\n"].iter().filter_map(|sep| rest.find(sep).map(|i| i + sep.len())).min() {
        events.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        events.push(rest.to_owned());
    }
    events
}

/// Relays a stream chunk by chunk as it arrives; once it ends, meters it from its final events
/// and keeps it. A stream cut short (the client gone, the upstream silent too long) is metered
/// from what came, and not cached.
#[allow(clippy::too_many_arguments)] // one call site: the parts of one exchange.
fn relay(
    shared: Arc<Shared>,
    guard: InFlight,
    api: Api,
    key: String,
    sent: usize,
    content_type: String,
    mut response: reqwest::Response,
    started: Instant,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut complete = false;
        loop {
            let next = tokio::time::timeout(shared.upstream.timeout, response.chunk()).await;
            let chunk = match next {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    complete = true;
                    break;
                }
                Ok(Err(e)) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
                Err(_) => {
                    let _ = tx.send(Err(std::io::Error::other("the upstream went silent"))).await;
                    break;
                }
            };
            if kept.len() < MAX_REPLY_BYTES {
                kept.extend_from_slice(&chunk);
            }
            if tx.send(Ok(chunk)).await.is_err() {
                break;
            }
        }
        drop(tx);
        let usage = usage::of_stream(&api, &kept).unwrap_or_else(|| usage::estimate(sent, kept.len()));
        let reply = Kept { status: 200, content_type, stream: true, body: text(&kept) };
        let ms = started.elapsed().as_millis() as u64;
        if complete && kept.len() < MAX_REPLY_BYTES {
            account(&shared, &api, &key, usage, reply, ms);
        } else {
            let cost = price(&usage, shared.upstream.prices.as_ref());
            shared.meter.charge(cost);
            shared.transcript.event(
                "reply",
                json!({"api": api.name(), "status": 200, "cached": false, "ms": ms, "stream": true, "complete": false, "usage": usage, "cost": cost, "body": reply.body}),
            );
        }
        drop(guard);
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_event_by_event() {
        assert_eq!(split_events("data: a\n\ndata: b\n\n"), ["data: a\n\n", "data: b\n\n"]);
        assert_eq!(split_events("event: x\r\ndata: 1\r\n\r\ntail"), ["event: x\r\ndata: 1\r\n\r\n", "tail"]);
        assert!(split_events("").is_empty());
    }

    #[test]
    fn cache_keys_ignore_who_asks_and_how_long_things_took() {
        let api = Api::OpenAiChat;
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "Ran 3 tests in 0.012s"}], "user": "alice"});
        let b = json!({"model": "m", "messages": [{"role": "user", "content": "Ran 3 tests in 0.340s"}], "user": "bob"});
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "Ran 4 tests in 0.340s"}]});
        assert_eq!(cache_key(&api, "openai/m", &a), cache_key(&api, "openai/m", &b));
        assert_ne!(cache_key(&api, "openai/m", &a), cache_key(&api, "openai/m", &c));
        assert_ne!(cache_key(&api, "openai/m", &a), cache_key(&Api::OpenAiResponses, "openai/m", &a));
        // Codex CLI's session metadata and fresh item ids; a stored item's reference counts.
        let codex = |session: &str, reference: &str| {
            json!({"model": "m", "client_metadata": {"session_id": session}, "input": [
                {"type": "message", "id": format!("msg_{session}"), "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call_output", "id": format!("fco_{session}"), "call_id": "call_1", "output": "Wall time: 0.0012 seconds"},
                {"type": "item_reference", "id": reference}]})
        };
        let responses = Api::OpenAiResponses;
        assert_eq!(cache_key(&responses, "openai/m", &codex("s1", "r")), cache_key(&responses, "openai/m", &codex("s2", "r")));
        assert_ne!(cache_key(&responses, "openai/m", &codex("s1", "r")), cache_key(&responses, "openai/m", &codex("s1", "q")));
        let streamed = json!({"model": "m", "messages": [], "stream": true});
        assert_ne!(cache_key(&api, "openai/m", &streamed), cache_key(&api, "openai/m", &json!({"model": "m", "messages": []})));
    }
}
