//! The operations of the command line from the dashboard: approve, retry (with instructions),
//! suspend, resume and reconcile now. They are off unless enabled, and each needs the token
//! (a form field `token`, or `Authorization: Bearer`); each writes exactly the record the
//! command line writes, through the same function ([`crate::ops::manage::operate`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;

use super::html::{Links, esc, page};
use super::model::{self, UiError};
use super::{Dashboard, blocking};
use crate::ops::manage::{ManageOptions, Recorded};
use crate::state::TaskKey;

/// Who the record names when the form leaves the name empty.
pub const DEFAULT_BY: &str = "dashboard";

/// An operation asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Approve(TaskKey),
    Retry(TaskKey),
    Suspend(String, bool),
}

/// Why an operation is refused before anything is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Operations are not enabled.
    Off,
    /// Enabled, but no token is configured.
    NoToken,
    /// The request's token is missing or wrong.
    BadToken,
    /// Go ahead.
    Open,
}

/// Whether a request with `given` may operate, under `enabled` and the configured `token`.
pub fn gate(enabled: bool, token: Option<&str>, given: Option<&str>) -> Gate {
    match (enabled, token) {
        (false, _) => Gate::Off,
        (true, None) => Gate::NoToken,
        (true, Some(t)) if given.is_some_and(|g| same(g.as_bytes(), t.as_bytes())) => Gate::Open,
        (true, Some(_)) => Gate::BadToken,
    }
}

/// Constant-time equality (for tokens).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The fields of an `application/x-www-form-urlencoded` body.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `+` as a space, `%XX` as its byte; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).expect("two hex digits make a byte"));
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /api/v1/workflows/{wf}/tasks/{task}/approve`.
pub async fn approve(
    State(d): State<Arc<Dashboard>>,
    Path((wf, task)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    operate(d, Op::Approve(TaskKey::new(&wf, &task)), headers, body).await
}

/// `POST /api/v1/workflows/{wf}/tasks/{task}/retry` (field `instructions`, optional).
pub async fn retry(State(d): State<Arc<Dashboard>>, Path((wf, task)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    operate(d, Op::Retry(TaskKey::new(&wf, &task)), headers, body).await
}

/// `POST /api/v1/workflows/{wf}/suspend`.
pub async fn suspend(State(d): State<Arc<Dashboard>>, Path(wf): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    operate(d, Op::Suspend(wf, true), headers, body).await
}

/// `POST /api/v1/workflows/{wf}/resume`.
pub async fn resume(State(d): State<Arc<Dashboard>>, Path(wf): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    operate(d, Op::Suspend(wf, false), headers, body).await
}

/// `POST /api/v1/reconcile`: a pass of every source, now.
pub async fn reconcile(State(d): State<Arc<Dashboard>>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = refuse(&d, &headers, &fields) {
        return refused;
    }
    let started: Vec<&str> = d
        .sources
        .iter()
        .filter(|s| s.trigger.as_ref().is_some_and(|t| t.send(crate::watch::Trigger::Request).is_ok()))
        .map(|s| s.name.as_str())
        .collect();
    if from_form(&headers) {
        return Redirect::to(&Links::Served.overview()).into_response();
    }
    axum::Json(serde_json::json!({ "started": started })).into_response()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The answer to a request the gate closes, if it does.
fn refuse(d: &Dashboard, headers: &HeaderMap, fields: &[(String, String)]) -> Option<Response> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let given = bearer.or_else(|| field(fields, "token"));
    let token = d.settings.token.as_ref().map(|t| t.expose_secret().to_owned());
    let (code, why) = match gate(d.settings.actions, token.as_deref(), given) {
        Gate::Open => return None,
        Gate::Off => {
            (StatusCode::FORBIDDEN, "operations are off: set `ui: { actions: true }` in the serve configuration, or PLANCD_UI_ACTIONS=1")
        }
        Gate::NoToken => (StatusCode::FORBIDDEN, "operations need a token: set PLANCD_UI_TOKEN (or `ui.token_env`, or a webhook secret)"),
        Gate::BadToken => (StatusCode::UNAUTHORIZED, "a wrong or missing token"),
    };
    Some(answer(headers, code, why, None))
}

/// Whether the request came from a page's form (answered with a page) rather than a client.
fn from_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
        && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

fn answer(headers: &HeaderMap, code: StatusCode, message: &str, back: Option<String>) -> Response {
    if from_form(headers) {
        let link = back.map(|b| format!("<p><a href=\"{}\">back</a></p>", esc(&b))).unwrap_or_default();
        let main = format!("<h1>{}</h1><p class=\"error\">{}</p>{link}", code.as_u16(), esc(message));
        return (code, Html(page(&Links::Served, "refused", &[], "", &main, ""))).into_response();
    }
    (code, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn operate(d: Arc<Dashboard>, op: Op, headers: HeaderMap, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = refuse(&d, &headers, &fields) {
        return refused;
    }
    let by = field(&fields, "by").map(str::trim).filter(|b| !b.is_empty()).unwrap_or(DEFAULT_BY).to_owned();
    let instructions = field(&fields, "instructions").map(str::to_owned);
    let back = match &op {
        Op::Approve(k) | Op::Retry(k) => Links::Served.task(&k.workflow, &k.task),
        Op::Suspend(wf, _) => Links::Served.workflow(wf),
    };
    let dash = d.clone();
    let todo = op.clone();
    let done: Result<Recorded, UiError> = blocking(move || {
        let wf = match &todo {
            Op::Approve(k) | Op::Retry(k) => k.workflow.clone(),
            Op::Suspend(wf, _) => wf.clone(),
        };
        let (source, _) = model::find_workflow(&dash.sources, &dash.env, &wf, None)?;
        let opts =
            ManageOptions { repo: source.path.clone(), branch: source.branch.clone(), env: dash.env.clone(), by: Some(by), local: false };
        let recorded = match &todo {
            Op::Approve(k) => crate::ops::approve::approve(&opts, k)?,
            Op::Retry(k) => crate::ops::retry::retry(&opts, k, instructions.as_deref())?,
            Op::Suspend(wf, on) => crate::ops::suspend::set_suspended(&opts, wf, *on)?,
        };
        Ok(recorded)
    })
    .await;
    match done {
        Ok(_) if from_form(&headers) => Redirect::to(&back).into_response(),
        Ok(recorded) => axum::Json(serde_json::json!({ "recorded": recorded.to_string(), "ref": recorded.ref_name })).into_response(),
        Err(UiError::Manage(e)) if e.is_bad_input() => answer(&headers, StatusCode::CONFLICT, &e.to_string(), Some(back)),
        Err(UiError::NotFound(why)) => answer(&headers, StatusCode::NOT_FOUND, &why, None),
        Err(e) => answer(&headers, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), Some(back)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_only_when_enabled_with_the_right_token() {
        assert_eq!(gate(false, Some("t"), Some("t")), Gate::Off);
        assert_eq!(gate(true, None, Some("t")), Gate::NoToken);
        assert_eq!(gate(true, Some("t"), None), Gate::BadToken);
        assert_eq!(gate(true, Some("t"), Some("tt")), Gate::BadToken);
        assert_eq!(gate(true, Some("t0k"), Some("t0k")), Gate::Open);
    }

    #[test]
    fn form_bodies_decode_plus_and_percent() {
        let f = form_fields(b"token=a%2Bb&by=Ann+Lee&instructions=use+%22x%22%0Athen&bad=%zz&empty=");
        assert_eq!(field(&f, "token"), Some("a+b"));
        assert_eq!(field(&f, "by"), Some("Ann Lee"));
        assert_eq!(field(&f, "instructions"), Some("use \"x\"\nthen"));
        assert_eq!(field(&f, "bad"), Some("%zz"));
        assert_eq!(field(&f, "empty"), Some(""));
        assert_eq!(form_fields(b"x=%4"), vec![("x".to_owned(), "%4".to_owned())]);
    }
}
