//! A fake GitHub on 127.0.0.1 (wiremock) that keeps pull requests, comments, issues and commit
//! statuses like GitHub's REST API does: JSON of the same shape, status codes and error bodies,
//! pagination through `Link` headers, the `x-ratelimit-*` budget on every answer and rate limits on
//! demand. A catch-all answers any
//! request no handler knows with 404 and fails the test when the server is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

/// The repository the fake serves.
pub const REPO: &str = "acme/widgets";

/// A rate limit to answer the next matching request with.
#[derive(Debug, Clone)]
pub enum Limit {
    /// 403 with `x-ratelimit-remaining: 0` and a reset this many seconds ahead.
    Primary(u64),
    /// 429 with `retry-after`.
    Secondary(u64),
}

/// The requests an hour the fake's rate limit allows, as GitHub's does for a token.
pub const RATE_LIMIT: u64 = 5000;

/// What the fake holds.
#[derive(Debug, Default)]
pub struct State {
    pub pulls: Vec<Value>,
    pub comments: Vec<Value>,
    pub issues: Vec<Value>,
    pub statuses: Vec<Value>,
    pub files: Vec<String>,
    pub permissions: Vec<(String, String)>,
    pub limits: VecDeque<(String, Limit)>,
    pub next_id: u64,
    pub per_page_cap: usize,
    /// Authenticated requests answered: what the rate limit's window has used.
    pub used: u64,
}

/// The fake server.
pub struct FakeGitHub {
    pub server: MockServer,
    pub state: Arc<Mutex<State>>,
    pub prefix: String,
    token: String,
}

/// A GitHub App the fake knows: requests for its installation and for installation tokens
/// must carry a JWT it signed (RS256, `iss` its id, not expired), as GitHub checks.
#[derive(Clone)]
pub struct App {
    pub id: u64,
    pub installation: u64,
    key: jsonwebtoken::DecodingKey,
}

impl App {
    /// The App `id`, whose public key is `public_pem`.
    pub fn new(id: u64, installation: u64, public_pem: &[u8]) -> App {
        App { id, installation, key: jsonwebtoken::DecodingKey::from_rsa_pem(public_pem).unwrap() }
    }

    /// GitHub's 401 unless `req` carries a valid JWT of this App.
    fn refusal(&self, req: &Request) -> Option<ResponseTemplate> {
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Value,
        }
        let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(jwt) = auth.strip_prefix("Bearer ") else { return Some(error(401, "A JSON web token could not be decoded")) };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // `iss` is the App's id as a number, which the crate's own check does not read.
        validation.set_required_spec_claims(&["exp", "iat"]);
        let Ok(token) = jsonwebtoken::decode::<Claims>(jwt, &self.key, &validation) else {
            return Some(error(401, "A JSON web token could not be decoded"));
        };
        let iss = token.claims.iss;
        if iss.as_u64() != Some(self.id) && iss.as_str() != Some(self.id.to_string().as_str()) {
            return Some(error(401, "'Issuer' claim ('iss') must be an Integer"));
        }
        None
    }
}

/// `POST /app/installations/<id>/access_tokens`: a token for the installation, for a valid JWT.
struct AccessTokens {
    app: App,
    token: String,
    issued: Arc<Mutex<usize>>,
}

impl Respond for AccessTokens {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Some(refused) = self.app.refusal(req) {
            return refused;
        }
        *self.issued.lock().unwrap() += 1;
        let expires = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
        ResponseTemplate::new(201).set_body_json(json!({
            "token": self.token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "permissions": {"contents": "write", "issues": "write", "pull_requests": "write", "statuses": "write"},
            "repository_selection": "selected",
        }))
    }
}

impl FakeGitHub {
    /// A fake at `http://127.0.0.1:<port><prefix>` (prefix `""` for github.com, `/api/v3` for an
    /// Enterprise server) that wants `Authorization: Bearer <token>`.
    pub async fn start(prefix: &str, token: &str) -> FakeGitHub {
        FakeGitHub::start_with(prefix, token, None).await
    }

    /// A fake on which `app` is installed on the repository: the installation's tokens are
    /// `token`, and the number issued is counted.
    pub async fn start_app(prefix: &str, token: &str, app: App) -> (FakeGitHub, Arc<Mutex<usize>>) {
        let fake = FakeGitHub::start_with(prefix, token, Some(app.clone())).await;
        let issued = Arc::new(Mutex::new(0));
        Mock::given(matchers::method("POST"))
            .and(matchers::path(format!("{prefix}/app/installations/{}/access_tokens", app.installation)))
            .respond_with(AccessTokens { app, token: token.to_owned(), issued: issued.clone() })
            .with_priority(1)
            .mount(&fake.server)
            .await;
        (fake, issued)
    }

    async fn start_with(prefix: &str, token: &str, app: Option<App>) -> FakeGitHub {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State { next_id: 100, per_page_cap: 100, ..State::default() }));
        let handler = Handler { state: state.clone(), prefix: prefix.to_owned(), token: token.to_owned(), base: server.uri(), app };
        Mock::given(matchers::path_regex(format!("^{prefix}/repos/{REPO}/"))).respond_with(handler).with_priority(1).mount(&server).await;
        Mock::given(matchers::any())
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
            )
            .named("catch-all: a request no test expected")
            .expect(0)
            .with_priority(u8::MAX)
            .mount(&server)
            .await;
        FakeGitHub { server, state, prefix: prefix.to_owned(), token: token.to_owned() }
    }

    /// The API URL to configure.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.server.uri(), self.prefix)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every request received, as `METHOD /path`.
    pub async fn calls(&self) -> Vec<String> {
        self.server.received_requests().await.unwrap().iter().map(|r| format!("{} {}", r.method, r.url.path())).collect()
    }

    /// How many requests `METHOD path-suffix` there were.
    pub async fn count(&self, method: &str, suffix: &str) -> usize {
        self.calls().await.iter().filter(|c| c.starts_with(&format!("{method} ")) && c.ends_with(suffix)).count()
    }

    /// Every request's headers and body, as text.
    pub async fn everything_sent(&self) -> String {
        let mut out = String::new();
        for r in self.server.received_requests().await.unwrap() {
            out.push_str(&format!("{} {}\n", r.method, r.url));
            for (k, v) in r.headers.iter() {
                if k != "authorization" {
                    out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or_default()));
                }
            }
            out.push_str(&String::from_utf8_lossy(&r.body));
            out.push('\n');
        }
        out
    }

    /// A copy of the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
    prefix: String,
    token: String,
    base: String,
    app: Option<App>,
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}))
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        // An App finds its installation on the repository with its JWT.
        if let Some(app) = &self.app
            && req.method.as_str() == "GET"
            && req.url.path() == format!("{}/repos/{REPO}/installation", self.prefix)
        {
            if let Some(refused) = app.refusal(req) {
                return refused;
            }
            return ResponseTemplate::new(200).set_body_json(json!({
                "id": app.installation, "app_id": app.id, "target_type": "Organization",
                "account": {"login": REPO.split('/').next().unwrap(), "id": 1, "type": "Organization"},
                "access_tokens_url": format!("{}{}/app/installations/{}/access_tokens", self.base, self.prefix, app.installation),
                "repository_selection": "selected", "permissions": {"contents": "write"}, "events": [],
            }));
        }
        if req.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {}", self.token)) {
            return error(401, "Bad credentials");
        }
        let path = req.url.path().strip_prefix(&format!("{}/repos/{REPO}", self.prefix)).unwrap_or_default().to_owned();
        let mut state = self.state.lock().unwrap();
        if let Some(limited) = limit(&mut state, &path) {
            return limited;
        }
        // Every answer to an authenticated request carries the budget left, as GitHub's do.
        state.used += 1;
        let used = state.used;
        let reset = (jiff::Timestamp::now().as_second() + 3600).to_string();
        self.answer(req, &mut state, &path)
            .insert_header("x-ratelimit-limit", RATE_LIMIT.to_string().as_str())
            .insert_header("x-ratelimit-remaining", RATE_LIMIT.saturating_sub(used).to_string().as_str())
            .insert_header("x-ratelimit-used", used.to_string().as_str())
            .insert_header("x-ratelimit-reset", reset.as_str())
            .insert_header("x-ratelimit-resource", "core")
    }
}

impl Handler {
    /// What GitHub answers to `req` on `path` (below the repository).
    fn answer(&self, req: &Request, state: &mut State, path: &str) -> ResponseTemplate {
        let query: Vec<(String, String)> = req.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method.as_str();
        match (method, parts.as_slice()) {
            ("GET", ["pulls"]) => {
                let head = q("head").map(|h| h.split_once(':').map(|(_, b)| b.to_owned()).unwrap_or(h));
                let wanted = q("state").unwrap_or_else(|| "open".into());
                let mut items: Vec<Value> = state
                    .pulls
                    .iter()
                    .filter(|p| wanted == "all" || p["state"] == wanted.as_str())
                    .filter(|p| head.as_ref().is_none_or(|h| p["head"]["ref"] == h.as_str()))
                    .cloned()
                    .collect();
                if q("direction").as_deref() == Some("desc") {
                    items.reverse();
                }
                self.page(state, path, &query, items)
            }
            ("POST", ["pulls"]) => {
                let head = body["head"].as_str().unwrap_or_default().to_owned();
                if state.pulls.iter().any(|p| p["head"]["ref"] == head.as_str() && p["state"] == "open") {
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for acme:{head}.")}],
                        "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
                    }));
                }
                let number = state.pulls.len() as u64 + 1;
                let pr = json!({
                    "id": 1000 + number, "number": number, "state": "open", "title": body["title"], "body": body["body"],
                    "html_url": format!("https://github.example/{REPO}/pull/{number}"),
                    "head": {"ref": head, "sha": "0".repeat(40)}, "base": {"ref": body["base"]}, "labels": [], "created_at": now(),
                });
                state.pulls.push(pr.clone());
                ResponseTemplate::new(201).set_body_json(pr)
            }
            ("GET", ["pulls", n]) => match find(&state.pulls, n) {
                Some(i) => ResponseTemplate::new(200).set_body_json(state.pulls[i].clone()),
                None => error(404, "Not Found"),
            },
            ("PATCH", ["pulls", n]) => match find(&state.pulls, n) {
                Some(i) => {
                    for k in ["title", "body", "base"] {
                        if !body[k].is_null() {
                            state.pulls[i][k] = if k == "base" { json!({"ref": body[k]}) } else { body[k].clone() };
                        }
                    }
                    ResponseTemplate::new(200).set_body_json(state.pulls[i].clone())
                }
                None => error(404, "Not Found"),
            },
            ("GET", ["pulls", _, "files"]) => {
                let items: Vec<Value> = state.files.iter().map(|f| json!({"filename": f, "status": "modified"})).collect();
                self.page(state, path, &query, items)
            }
            ("POST", ["issues", n, "labels"]) => match find(&state.pulls, n) {
                Some(i) => {
                    let labels: Vec<Value> =
                        body["labels"].as_array().cloned().unwrap_or_default().into_iter().map(|l| json!({"name": l})).collect();
                    state.pulls[i]["labels"] = Value::Array(labels.clone());
                    ResponseTemplate::new(200).set_body_json(Value::Array(labels))
                }
                None => error(404, "Not Found"),
            },
            ("GET", ["issues", n, "comments"]) => {
                let items: Vec<Value> = state
                    .comments
                    .iter()
                    .filter(|c| c["issue"].as_u64().map(|i| i.to_string()) == Some((*n).to_owned()))
                    .cloned()
                    .collect();
                self.page(state, path, &query, items)
            }
            ("POST", ["issues", n, "comments"]) => {
                state.next_id += 1;
                let id = state.next_id;
                let c = json!({"id": id, "issue": n.parse::<u64>().unwrap_or(0), "body": body["body"], "html_url": format!("https://github.example/{REPO}/pull/{n}#issuecomment-{id}")});
                state.comments.push(c.clone());
                ResponseTemplate::new(201).set_body_json(c)
            }
            ("PATCH", ["issues", "comments", id]) => match state.comments.iter().position(|c| c["id"].as_u64() == id.parse().ok()) {
                Some(i) => {
                    state.comments[i]["body"] = body["body"].clone();
                    ResponseTemplate::new(200).set_body_json(state.comments[i].clone())
                }
                None => error(404, "Not Found"),
            },
            ("GET", ["issues"]) => {
                let label = q("labels");
                let wanted = q("state").unwrap_or_else(|| "open".into());
                let items: Vec<Value> = state
                    .issues
                    .iter()
                    .filter(|i| wanted == "all" || i["state"] == wanted.as_str())
                    .filter(|i| {
                        label.as_ref().is_none_or(|l| i["labels"].as_array().is_some_and(|a| a.iter().any(|x| x["name"] == l.as_str())))
                    })
                    .cloned()
                    .collect();
                self.page(state, path, &query, items)
            }
            ("POST", ["issues"]) => {
                let number = 500 + state.issues.len() as u64;
                let labels: Vec<Value> =
                    body["labels"].as_array().cloned().unwrap_or_default().into_iter().map(|l| json!({"name": l})).collect();
                let issue = json!({"number": number, "state": "open", "title": body["title"], "body": body["body"], "labels": labels, "html_url": format!("https://github.example/{REPO}/issues/{number}")});
                state.issues.push(issue.clone());
                ResponseTemplate::new(201).set_body_json(issue)
            }
            ("PATCH", ["issues", n]) => match state.issues.iter().position(|i| i["number"].as_u64() == n.parse().ok()) {
                Some(i) => {
                    for k in ["title", "body", "state", "state_reason"] {
                        if !body[k].is_null() {
                            state.issues[i][k] = body[k].clone();
                        }
                    }
                    ResponseTemplate::new(200).set_body_json(state.issues[i].clone())
                }
                None => error(404, "Not Found"),
            },
            ("GET", ["commits", sha, "status"]) => {
                let mut latest: Vec<Value> = Vec::new();
                for s in state.statuses.iter().rev().filter(|s| s["sha"] == *sha) {
                    if !latest.iter().any(|l| l["context"] == s["context"]) {
                        latest.push(s.clone());
                    }
                }
                ResponseTemplate::new(200)
                    .set_body_json(json!({"state": "pending", "sha": sha, "total_count": latest.len(), "statuses": latest}))
            }
            ("POST", ["statuses", sha]) => {
                if body["description"].as_str().is_some_and(|d| d.chars().count() > 140) {
                    return error(422, "Validation Failed");
                }
                let s = json!({"sha": sha, "state": body["state"], "context": body["context"], "description": body["description"]});
                state.statuses.push(s.clone());
                ResponseTemplate::new(201).set_body_json(s)
            }
            ("GET", ["collaborators", user, "permission"]) => {
                let permission = state.permissions.iter().find(|(u, _)| u == user).map_or("read".to_owned(), |(_, p)| p.clone());
                ResponseTemplate::new(200)
                    .set_body_json(json!({"permission": permission, "role_name": permission, "user": {"login": user}}))
            }
            _ => error(404, "Not Found"),
        }
    }
}

impl Handler {
    /// One page of `items`, with a `Link` header to the others (GitHub's per_page, at most the
    /// fake's cap).
    fn page(&self, state: &State, path: &str, query: &[(String, String)], items: Vec<Value>) -> ResponseTemplate {
        let per_page =
            query.iter().find(|(k, _)| k == "per_page").and_then(|(_, v)| v.parse().ok()).unwrap_or(30).min(state.per_page_cap).max(1);
        let page: usize = query.iter().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(1);
        let last = items.len().div_ceil(per_page).max(1);
        let shown: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut response = ResponseTemplate::new(200).set_body_json(Value::Array(shown));
        let url = |p: usize| {
            let mut q: Vec<String> = query.iter().filter(|(k, _)| k != "page").map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
            q.push(format!("page={p}"));
            format!("<{}{}/repos/{REPO}{path}?{}>", self.base, self.prefix, q.join("&"))
        };
        let mut links = Vec::new();
        if page < last {
            links.push(format!("{}; rel=\"next\"", url(page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if page > 1 {
            links.push(format!("{}; rel=\"prev\"", url(page - 1)));
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        if !links.is_empty() {
            response = response.insert_header("link", links.join(", ").as_str());
        }
        response
    }
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn find(items: &[Value], n: &str) -> Option<usize> {
    items.iter().position(|p| p["number"].as_u64() == n.parse().ok())
}

/// A queued rate limit for a request whose path ends with the queued suffix.
fn limit(state: &mut State, path: &str) -> Option<ResponseTemplate> {
    let i = state.limits.iter().position(|(suffix, _)| path.ends_with(suffix.as_str()))?;
    let (_, limit) = state.limits.remove(i)?;
    let reset = jiff::Timestamp::now().as_second();
    Some(match limit {
        Limit::Primary(secs) => error(403, "API rate limit exceeded for installation.")
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", (reset + secs as i64).to_string().as_str()),
        Limit::Secondary(secs) => {
            error(429, "You have exceeded a secondary rate limit.").insert_header("retry-after", secs.to_string().as_str())
        }
    })
}
