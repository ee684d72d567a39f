//! What a request to the gateway asks for, decided from its method, path and headers alone:
//! which API, whether the configured model's provider speaks it, where upstream it goes, and
//! what is sent there (the configured model's name, never the caller's credentials).

use serde_json::{Value, json};

use crate::config::Provider;

/// An API the gateway speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// OpenAI `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// Anthropic `POST /v1/messages`.
    AnthropicMessages,
    /// Gemini `POST /{version}/models/{model}:generateContent` or `:streamGenerateContent`.
    Gemini {
        /// Whether the path asks for a stream.
        stream: bool,
        /// The API version the path names; the request goes upstream at the same one.
        version: GeminiVersion,
    },
}

/// A version of the Gemini API, as its paths name it. The Google Gen AI SDKs call `v1beta`
/// (the long-time default) or `v1` (the stable API, the default of newer releases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiVersion {
    /// `/v1beta/...`.
    V1beta,
    /// `/v1/...`.
    V1,
}

impl GeminiVersion {
    /// The path segment.
    pub fn segment(self) -> &'static str {
        match self {
            GeminiVersion::V1beta => "v1beta",
            GeminiVersion::V1 => "v1",
        }
    }
}

/// Whose shape a reply (an error, the model list) takes: the caller's API family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI's `{"error": {"message", "type", "code"}}`.
    OpenAi,
    /// Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
    /// Google's `{"error": {"code", "message", "status"}}`.
    Gemini,
}

/// A request, as routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A model call.
    Call(Api),
    /// The model list, which clients probe (`GET /v1/models`, `GET /v1beta/models`).
    Models(Family),
    /// Nothing the gateway serves.
    Unknown(Family),
}

impl Api {
    /// Its family.
    pub fn family(&self) -> Family {
        match self {
            Api::OpenAiChat | Api::OpenAiResponses => Family::OpenAi,
            Api::AnthropicMessages => Family::Anthropic,
            Api::Gemini { .. } => Family::Gemini,
        }
    }

    /// Its name in transcripts and cache keys.
    pub fn name(&self) -> &'static str {
        match self {
            Api::OpenAiChat => "openai.chat.completions",
            Api::OpenAiResponses => "openai.responses",
            Api::AnthropicMessages => "anthropic.messages",
            Api::Gemini { stream: false, version: GeminiVersion::V1beta } => "gemini.generateContent",
            Api::Gemini { stream: true, version: GeminiVersion::V1beta } => "gemini.streamGenerateContent",
            Api::Gemini { stream: false, version: GeminiVersion::V1 } => "gemini.v1.generateContent",
            Api::Gemini { stream: true, version: GeminiVersion::V1 } => "gemini.v1.streamGenerateContent",
        }
    }

    /// Whether the reply to `body` is a stream of server-sent events.
    pub fn streams(&self, body: &Value) -> bool {
        match self {
            Api::Gemini { stream, .. } => *stream,
            _ => body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// Routes a request by its method and path. `anthropic` says whether the caller sent an
/// `anthropic-version` header (the only way to tell the two `/v1/models`).
pub fn route(method: &str, path: &str, anthropic: bool) -> Route {
    let openai_or_anthropic = if anthropic { Family::Anthropic } else { Family::OpenAi };
    match (method, path.trim_end_matches('/')) {
        ("POST", "/v1/chat/completions" | "/chat/completions") => Route::Call(Api::OpenAiChat),
        ("POST", "/v1/responses" | "/responses") => Route::Call(Api::OpenAiResponses),
        ("POST", "/v1/messages") => Route::Call(Api::AnthropicMessages),
        ("GET", "/v1/models" | "/models") => Route::Models(openai_or_anthropic),
        ("GET", "/v1beta/models") => Route::Models(Family::Gemini),
        ("POST", p) if p.starts_with("/v1beta/models/") || (p.starts_with("/v1/models/") && p.contains(':')) => {
            let version = if p.starts_with("/v1beta/") { GeminiVersion::V1beta } else { GeminiVersion::V1 };
            match p.rsplit_once(':') {
                Some((_, "generateContent")) => Route::Call(Api::Gemini { stream: false, version }),
                Some((_, "streamGenerateContent")) => Route::Call(Api::Gemini { stream: true, version }),
                _ => Route::Unknown(Family::Gemini),
            }
        }
        (_, p) if p.starts_with("/v1beta") => Route::Unknown(Family::Gemini),
        _ => Route::Unknown(openai_or_anthropic),
    }
}

/// Whether a model of `provider` answers `api`: the gateway passes requests through as they
/// are, without translating between APIs.
pub fn served(api: &Api, provider: Provider) -> bool {
    matches!(
        (api.family(), provider),
        (Family::OpenAi, Provider::Openai) | (Family::Anthropic, Provider::Anthropic) | (Family::Gemini, Provider::Gemini)
    )
}

/// The upstream URL of `api` for a model at `base_url` (as `models:` gives it: OpenAI's with
/// `/v1`, Anthropic's and Gemini's without). `query` is the caller's query string, kept for
/// Gemini's `alt=sse` (a `key` in it is the caller's token and is dropped).
pub fn upstream_url(api: &Api, base_url: &str, model: &str, query: Option<&str>) -> String {
    let base = base_url.trim_end_matches('/');
    match api {
        Api::OpenAiChat => format!("{base}/chat/completions"),
        Api::OpenAiResponses => format!("{base}/responses"),
        Api::AnthropicMessages => format!("{base}/v1/messages"),
        Api::Gemini { stream, version } => {
            let method = if *stream { "streamGenerateContent" } else { "generateContent" };
            let kept: Vec<&str> = query.unwrap_or_default().split('&').filter(|p| !p.is_empty() && !p.starts_with("key=")).collect();
            let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
            format!("{base}/{}/models/{model}:{method}{query}", version.segment())
        }
    }
}

/// The body sent upstream: the caller's, asking for the configured `model`, and for usage in
/// OpenAI chat streams (which report it only when asked).
pub fn upstream_body(api: &Api, mut body: Value, model: &str) -> Value {
    let Some(obj) = body.as_object_mut() else { return body };
    match api {
        Api::OpenAiChat | Api::OpenAiResponses | Api::AnthropicMessages => {
            obj.insert("model".into(), json!(model));
        }
        Api::Gemini { .. } => {}
    }
    if *api == Api::OpenAiChat && obj.get("stream").and_then(Value::as_bool) == Some(true) {
        let options = obj.entry("stream_options").or_insert_with(|| json!({}));
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".into(), json!(true));
        }
    }
    body
}

/// The caller's token: `Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, or Gemini's
/// `?key=`.
pub fn token<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
    goog: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
    let from_query = || query?.split('&').find_map(|p| p.strip_prefix("key="));
    bearer.or(x_api_key).or(goog).or_else(from_query).map(str::trim).filter(|t| !t.is_empty())
}

/// The model list in `family`'s shape, naming the one model served.
pub fn models_list(family: Family, model: &str) -> Value {
    match family {
        Family::OpenAi => json!({"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "plancd"}]}),
        Family::Anthropic => json!({
            "data": [{"type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"}],
            "has_more": false, "first_id": model, "last_id": model,
        }),
        Family::Gemini => json!({"models": [{"name": format!("models/{model}"), "displayName": model,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent"]}]}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BETA: GeminiVersion = GeminiVersion::V1beta;
    const V1: GeminiVersion = GeminiVersion::V1;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        // (method, path, anthropic-version sent, route)
        let cases = [
            ("POST", "/v1/chat/completions", false, Route::Call(Api::OpenAiChat)),
            ("POST", "/chat/completions", false, Route::Call(Api::OpenAiChat)),
            ("POST", "/v1/responses", false, Route::Call(Api::OpenAiResponses)),
            ("POST", "/v1/messages", true, Route::Call(Api::AnthropicMessages)),
            ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", false, Route::Call(Api::Gemini { stream: false, version: BETA })),
            (
                "POST",
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                false,
                Route::Call(Api::Gemini { stream: true, version: BETA }),
            ),
            ("POST", "/v1/models/gemini-2.5-flash:generateContent", false, Route::Call(Api::Gemini { stream: false, version: V1 })),
            ("POST", "/v1/models/gemini-2.5-flash:streamGenerateContent", false, Route::Call(Api::Gemini { stream: true, version: V1 })),
            ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", false, Route::Unknown(Family::Gemini)),
            ("POST", "/v1/models/gemini-2.5-flash:countTokens", false, Route::Unknown(Family::Gemini)),
            ("GET", "/v1/models", false, Route::Models(Family::OpenAi)),
            ("GET", "/v1/models", true, Route::Models(Family::Anthropic)),
            ("GET", "/v1beta/models", false, Route::Models(Family::Gemini)),
            ("GET", "/v1/chat/completions", false, Route::Unknown(Family::OpenAi)),
            ("POST", "/v1/messages/count_tokens", true, Route::Unknown(Family::Anthropic)),
            ("POST", "/v1/embeddings", false, Route::Unknown(Family::OpenAi)),
        ];
        for (method, path, anthropic, want) in cases {
            assert_eq!(route(method, path, anthropic), want, "{method} {path}");
        }
    }

    #[test]
    fn each_provider_serves_its_own_api_only() {
        let apis = [Api::OpenAiChat, Api::OpenAiResponses, Api::AnthropicMessages, Api::Gemini { stream: true, version: BETA }];
        // (provider, which of `apis` it serves)
        let cases = [
            (Provider::Openai, [true, true, false, false]),
            (Provider::Anthropic, [false, false, true, false]),
            (Provider::Gemini, [false, false, false, true]),
            (Provider::Scripted, [false, false, false, false]),
        ];
        for (provider, want) in cases {
            let got: Vec<bool> = apis.iter().map(|a| served(a, provider)).collect();
            assert_eq!(got, want, "{provider:?}");
        }
    }

    #[test]
    fn upstream_urls_follow_each_providers_base_url() {
        let cases = [
            (Api::OpenAiChat, "http://up/v1/", None, "http://up/v1/chat/completions"),
            (Api::OpenAiResponses, "http://up/v1", None, "http://up/v1/responses"),
            (Api::AnthropicMessages, "http://up", None, "http://up/v1/messages"),
            (Api::Gemini { stream: false, version: BETA }, "http://up", Some("key=tok"), "http://up/v1beta/models/m:generateContent"),
            (
                Api::Gemini { stream: true, version: BETA },
                "http://up",
                Some("alt=sse&key=tok"),
                "http://up/v1beta/models/m:streamGenerateContent?alt=sse",
            ),
            (
                Api::Gemini { stream: true, version: V1 },
                "http://up/",
                Some("alt=sse"),
                "http://up/v1/models/m:streamGenerateContent?alt=sse",
            ),
        ];
        for (api, base, query, want) in cases {
            assert_eq!(upstream_url(&api, base, "m", query), want, "{api:?}");
        }
    }

    #[test]
    fn the_configured_model_is_asked_and_chat_streams_report_usage() {
        let body = json!({"model": "gpt-4o", "messages": [], "stream": true});
        let sent = upstream_body(&Api::OpenAiChat, body, "m");
        assert_eq!(sent, json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": true}}));
        let sent = upstream_body(&Api::AnthropicMessages, json!({"model": "claude", "stream": true}), "m");
        assert_eq!(sent, json!({"model": "m", "stream": true}));
        assert_eq!(upstream_body(&Api::Gemini { stream: false, version: V1 }, json!({"contents": []}), "m"), json!({"contents": []}));
        assert!(Api::OpenAiChat.streams(&json!({"stream": true})));
        assert!(!Api::OpenAiResponses.streams(&json!({})));
        assert!(Api::Gemini { stream: true, version: BETA }.streams(&json!({})));
    }

    #[test]
    fn the_token_comes_from_whichever_header_the_client_uses() {
        // (authorization, x-api-key, x-goog-api-key, query, token)
        let cases = [
            (Some("Bearer t1"), None, None, None, Some("t1")),
            (None, Some("t2"), None, None, Some("t2")),
            (None, None, Some("t3"), None, Some("t3")),
            (None, None, None, Some("alt=sse&key=t4"), Some("t4")),
            (Some("Basic x"), None, None, None, None),
            (Some("Bearer "), None, None, None, None),
            (None, None, None, Some("alt=sse"), None),
        ];
        for (auth, x, goog, query, want) in cases {
            assert_eq!(token(auth, x, goog, query), want, "{auth:?} {x:?} {goog:?} {query:?}");
        }
    }
}
