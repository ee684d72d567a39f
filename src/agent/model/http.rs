//! HTTP for the providers: one shared client (rustls), JSON posts whose API key travels in a
//! sensitive header only, errors that name the endpoint without keys, and `Retry-After`.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::ModelError;

/// How a provider proves who it is.
#[derive(Clone)]
pub enum Auth {
    /// Nothing (a local server).
    None,
    /// `Authorization: Bearer <key>`.
    Bearer(SecretString),
    /// A header of its own, e.g. `x-api-key`.
    Header(&'static str, SecretString),
}

impl Auth {
    /// The key, for scrubbing it from anything written down.
    pub fn secret(&self) -> Option<&SecretString> {
        match self {
            Auth::None => None,
            Auth::Bearer(s) | Auth::Header(_, s) => Some(s),
        }
    }
}

/// The largest reply a model may give: 2 MiB of JSON, room for a long answer or tool calls
/// that write big files. A larger one is refused ([`ModelError::TooLarge`]), not cut: cut JSON
/// is no reply, and a huge one kept in the conversation would be re-sent on every later turn.
pub const MAX_REPLY_BYTES: usize = 2 << 20;

/// The client every provider shares (connections are pooled per host).
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // reqwest is built without a default TLS provider: ring is the one plancd links.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .user_agent(concat!("plancd/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a client with rustls and fixed settings always builds")
        })
        .clone()
}

/// Posts `body` as JSON to `url` and returns the JSON reply.
pub async fn post_json(url: &str, auth: &Auth, headers: &[(&'static str, &str)], body: &Value) -> Result<Value, ModelError> {
    let shown = redact_url(url);
    let mut map = HeaderMap::new();
    map.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| config_error(&shown, name))?;
        map.insert(HeaderName::from_static(name), value);
    }
    match auth {
        Auth::None => {}
        Auth::Bearer(key) => {
            map.insert(reqwest::header::AUTHORIZATION, sensitive(&format!("Bearer {}", key.expose_secret()), &shown)?);
        }
        Auth::Header(name, key) => {
            map.insert(HeaderName::from_static(name), sensitive(key.expose_secret(), &shown)?);
        }
    }
    let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
    let response = client().post(url).headers(map).body(bytes).send().await.map_err(|e| transport_error(&shown, &e))?;
    let status = response.status();
    let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    let Some(body) = read_body(response).await.map_err(|e| transport_error(&shown, &e))? else {
        return Err(ModelError::TooLarge { url: shown, limit: MAX_REPLY_BYTES });
    };
    if !status.is_success() {
        return Err(ModelError::Status { url: shown, status: status.as_u16(), message: error_message(&body), retry_after });
    }
    serde_json::from_slice(&body).map_err(|e| ModelError::Malformed { url: shown, why: format!("not JSON ({e})") })
}

fn sensitive(value: &str, shown: &str) -> Result<HeaderValue, ModelError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| config_error(shown, "the API key"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn config_error(shown: &str, what: &str) -> ModelError {
    ModelError::Config { model: shown.to_owned(), problem: format!("{what} holds characters a header cannot carry") }
}

/// The reply's body; `None` when it is longer than [`MAX_REPLY_BYTES`] (reading stops there).
async fn read_body(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > MAX_REPLY_BYTES as u64) {
        return Ok(None);
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_REPLY_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

fn transport_error(shown: &str, e: &reqwest::Error) -> ModelError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    // reqwest names the URL in its messages; ours names it once, without keys.
    let message = message.replace(&format!(" for url ({})", e.url().map(|u| u.as_str()).unwrap_or_default()), "");
    if e.is_timeout() {
        return ModelError::Timeout { url: shown.to_owned(), seconds: 0 };
    }
    ModelError::Connect { url: shown.to_owned(), message }
}

/// The message of a provider's error body: `{"error": {"message": ..}}` (OpenAI, Anthropic,
/// Gemini), `{"error": ".."}` (Ollama), `{"message": ..}`, or the text itself, shortened.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
    });
    let message = found.map_or_else(|| text.trim().to_owned(), str::to_owned);
    shorten(&message, 500)
}

/// At most `max` characters of `s`.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// `url` with the values of key-like query parameters (`key`, `api_key`, `token`, ...) removed.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=REDACTED"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "api_key", "apikey", "api-key", "token", "access_token", "secret"].contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_query_strings_are_redacted() {
        assert_eq!(redact_url("https://x/v1/m:generate?key=abc&alt=json"), "https://x/v1/m:generate?key=REDACTED&alt=json");
        assert_eq!(redact_url("http://127.0.0.1:8/v1/chat/completions"), "http://127.0.0.1:8/v1/chat/completions");
        assert_eq!(redact_url("http://h/p?API_KEY=1&token=2"), "http://h/p?API_KEY=REDACTED&token=REDACTED");
    }

    #[test]
    fn error_bodies_of_every_provider_give_their_message() {
        assert_eq!(error_message(br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#), "Incorrect API key");
        assert_eq!(error_message(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#), "Overloaded");
        assert_eq!(error_message(br#"{"error":"model 'llama9' not found"}"#), "model 'llama9' not found");
        assert_eq!(error_message(b"<html>bad gateway</html>\n"), "<html>bad gateway</html>");
        assert_eq!(error_message("x".repeat(600).as_bytes()).chars().count(), 501);
    }

    /// Seen 14: a 10 MB reply is refused with an error that names the limit, not taken (and
    /// then re-sent on every later turn).
    #[tokio::test]
    async fn a_reply_over_the_limit_is_refused() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
        let server = MockServer::start().await;
        let huge = serde_json::json!({ "choices": [{ "message": { "content": "x".repeat(10 << 20) } }] });
        Mock::given(matchers::any()).respond_with(ResponseTemplate::new(200).set_body_json(huge)).mount(&server).await;
        let url = format!("{}/v1/chat/completions", server.uri());
        let reply = tokio::time::timeout(Duration::from_secs(60), post_json(&url, &Auth::None, &[], &serde_json::json!({}))).await.unwrap();
        match reply {
            Err(e @ ModelError::TooLarge { .. }) => {
                assert!(!e.is_retryable());
                assert!(e.to_string().contains("larger than 2 MiB"), "{e}");
            }
            other => panic!("a 10 MB reply must be refused, got {:?}", other.map(|v| v.to_string().len())),
        }
        // A reply under the limit is read whole.
        server.reset().await;
        let fine = serde_json::json!({ "text": "y".repeat(1 << 20) });
        Mock::given(matchers::any()).respond_with(ResponseTemplate::new(200).set_body_json(fine.clone())).mount(&server).await;
        assert_eq!(post_json(&url, &Auth::None, &[], &serde_json::json!({})).await.unwrap(), fine);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
