//! What a reply cost, read from each API's usage fields — in a whole reply, or in the events
//! of a stream (OpenAI's final usage chunk, the Responses API's `response.completed`,
//! Anthropic's `message_start` and `message_delta`, Gemini's last `usageMetadata`) — and the
//! gateway's own refusals in the shape of the caller's API.

use serde_json::{Value, json};

use super::route::{Api, Family};
use crate::agent::model::Usage;

/// The usage a whole (non-streamed) reply reports.
pub fn of_reply(api: &Api, body: &Value) -> Option<Usage> {
    let mut usage = None;
    add_event(api, body, &mut usage);
    usage
}

/// The usage the events of a streamed reply report (server-sent events; Gemini without
/// `alt=sse` streams one JSON array instead).
pub fn of_stream(api: &Api, bytes: &[u8]) -> Option<Usage> {
    let mut usage = None;
    if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(bytes) {
        items.iter().for_each(|item| add_event(api, item, &mut usage));
        return usage;
    }
    let text = String::from_utf8_lossy(bytes);
    for data in text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim) {
        if let Ok(event) = serde_json::from_str::<Value>(data) {
            add_event(api, &event, &mut usage);
        }
    }
    usage
}

fn count(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

/// Folds one reply or event into `usage`.
fn add_event(api: &Api, event: &Value, usage: &mut Option<Usage>) {
    let (input, output) = match api {
        Api::OpenAiChat => (count(event, "/usage/prompt_tokens"), count(event, "/usage/completion_tokens")),
        Api::OpenAiResponses => {
            let at = if event.get("type").is_some() { "/response/usage" } else { "/usage" };
            (count(event, &format!("{at}/input_tokens")), count(event, &format!("{at}/output_tokens")))
        }
        Api::AnthropicMessages => {
            let at = if event.get("type").and_then(Value::as_str) == Some("message_start") { "/message/usage" } else { "/usage" };
            let input = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
                .iter()
                .filter_map(|f| count(event, &format!("{at}/{f}")))
                .reduce(|a, b| a + b);
            (input, count(event, &format!("{at}/output_tokens")))
        }
        Api::Gemini { .. } => {
            let output = ["candidatesTokenCount", "thoughtsTokenCount"]
                .iter()
                .filter_map(|f| count(event, &format!("/usageMetadata/{f}")))
                .reduce(|a, b| a + b);
            (count(event, "/usageMetadata/promptTokenCount"), output)
        }
    };
    if input.is_none() && output.is_none() {
        return;
    }
    let u = usage.get_or_insert_with(Usage::default);
    // Later events repeat or raise the counts (Anthropic's output, Gemini's running totals);
    // Anthropic's message_delta may carry no input at all.
    if let Some(i) = input.filter(|i| *i > 0 || u.input_tokens == 0) {
        u.input_tokens = i;
    }
    if let Some(o) = output {
        u.output_tokens = o;
    }
}

/// Four bytes a token, for a reply that reports no usage: budgets must still hold.
pub fn estimate(sent: usize, received: usize) -> Usage {
    Usage { input_tokens: (sent as u64).div_ceil(4), output_tokens: (received as u64).div_ceil(4), estimated: true }
}

/// Why the gateway itself answers instead of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token, a wrong one, or one whose attempt has ended.
    Unauthorized,
    /// A budget is spent: nothing was sent upstream.
    Budget(String),
    /// The configured model's provider does not speak this API.
    NotServed {
        /// The model's provider.
        provider: String,
    },
    /// No such endpoint.
    NotFound(String),
    /// The request body is not JSON.
    BadRequest(String),
    /// The upstream could not be reached, or failed mid-reply: the gateway's own failure.
    Unreachable(String),
}

/// The status and body of `refusal` in `family`'s error shape. Budget refusals tell the
/// official SDKs not to retry (`x-should-retry: false` is sent with them).
pub fn error_reply(family: Family, refusal: &Refusal) -> (u16, Value) {
    let (status, message, openai, anthropic, google) = match refusal {
        Refusal::Unauthorized => (
            401,
            "Incorrect API key provided: this token is not (or no longer) valid for this plancd gateway".to_owned(),
            ("invalid_request_error", "invalid_api_key"),
            "authentication_error",
            "UNAUTHENTICATED",
        ),
        Refusal::Budget(why) => (
            429,
            format!("You exceeded your current quota: plancd stopped at the budget: {why}"),
            ("insufficient_quota", "insufficient_quota"),
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
        ),
        Refusal::NotServed { provider } => (
            404,
            format!("this plancd gateway serves one model over the {provider} API, and does not translate other APIs to it"),
            ("invalid_request_error", "unknown_url"),
            "not_found_error",
            "NOT_FOUND",
        ),
        Refusal::NotFound(path) => {
            (404, format!("Unknown request URL: {path}"), ("invalid_request_error", "unknown_url"), "not_found_error", "NOT_FOUND")
        }
        Refusal::BadRequest(why) => {
            (400, why.clone(), ("invalid_request_error", "invalid_json"), "invalid_request_error", "INVALID_ARGUMENT")
        }
        Refusal::Unreachable(why) => {
            (502, format!("plancd gateway: {why}"), ("server_error", "upstream_error"), "api_error", "UNAVAILABLE")
        }
    };
    let body = match family {
        Family::OpenAi => json!({"error": {"message": message, "type": openai.0, "param": null, "code": openai.1}}),
        Family::Anthropic => json!({"type": "error", "error": {"type": anthropic, "message": message}}),
        Family::Gemini => json!({"error": {"code": status, "message": message, "status": google}}),
    };
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64) -> Option<Usage> {
        Some(Usage { input_tokens: i, output_tokens: o, estimated: false })
    }

    #[test]
    fn whole_replies_report_usage_in_each_apis_fields() {
        // (api, reply, usage)
        let cases = [
            (
                Api::OpenAiChat,
                json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
                usage(12, 5),
            ),
            (Api::OpenAiResponses, json!({"object": "response", "usage": {"input_tokens": 9, "output_tokens": 4}}), usage(9, 4)),
            (
                Api::AnthropicMessages,
                json!({"type": "message", "usage": {"input_tokens": 3, "cache_read_input_tokens": 7, "output_tokens": 2}}),
                usage(10, 2),
            ),
            (
                Api::Gemini { stream: false, version: super::super::route::GeminiVersion::V1beta },
                json!({"usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 6, "thoughtsTokenCount": 4}}),
                usage(8, 10),
            ),
            (Api::OpenAiChat, json!({"choices": []}), None),
        ];
        for (api, reply, want) in cases {
            assert_eq!(of_reply(&api, &reply), want, "{api:?}");
        }
    }

    #[test]
    fn streams_report_usage_in_their_final_events() {
        let openai = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
        let responses = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":6}}}\n\n";
        let anthropic = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        let gemini_sse = "data: {\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1}}\r\n\r\ndata: {\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":9}}\r\n\r\n";
        let gemini_array = "[{\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1}},{\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":7}}]";
        // (api, stream, usage)
        let cases = [
            (Api::OpenAiChat, openai, usage(20, 3)),
            (Api::OpenAiResponses, responses, usage(11, 6)),
            (Api::AnthropicMessages, anthropic, usage(25, 15)),
            (Api::Gemini { stream: true, version: super::super::route::GeminiVersion::V1 }, gemini_sse, usage(4, 9)),
            (Api::Gemini { stream: true, version: super::super::route::GeminiVersion::V1beta }, gemini_array, usage(4, 7)),
            (Api::OpenAiChat, "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", None),
        ];
        for (api, stream, want) in cases {
            assert_eq!(of_stream(&api, stream.as_bytes()), want, "{api:?}");
        }
        assert_eq!(estimate(10, 3), Usage { input_tokens: 3, output_tokens: 1, estimated: true });
    }

    #[test]
    fn refusals_take_the_callers_error_shape() {
        let (status, body) = error_reply(Family::OpenAi, &Refusal::Unauthorized);
        assert_eq!((status, &body["error"]["code"]), (401, &json!("invalid_api_key")));
        let (status, body) = error_reply(Family::Anthropic, &Refusal::Unauthorized);
        assert_eq!((status, &body["type"], &body["error"]["type"]), (401, &json!("error"), &json!("authentication_error")));
        let (status, body) = error_reply(Family::Gemini, &Refusal::Budget("the attempt's budget is spent: 10 of 10 tokens".into()));
        assert_eq!((status, &body["error"]["status"]), (429, &json!("RESOURCE_EXHAUSTED")));
        assert!(body["error"]["message"].as_str().unwrap().contains("10 of 10 tokens"));
        let (status, body) = error_reply(Family::OpenAi, &Refusal::Budget("x".into()));
        assert_eq!((status, &body["error"]["type"]), (429, &json!("insufficient_quota")));
        assert_eq!(error_reply(Family::Anthropic, &Refusal::Unreachable("down".into())).0, 502);
        assert_eq!(error_reply(Family::Gemini, &Refusal::NotServed { provider: "OpenAI".into() }).0, 404);
    }
}
