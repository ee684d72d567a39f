//! The model gateway: a command agent's one way to a model. For each attempt of a role with
//! both `command:` and `model:`, plancd serves the model's API on a unix socket of that attempt
//! alone, forwarded into its session at `127.0.0.1:`[`PORT`], and puts a per-attempt token in
//! the variables the common clients read ([`Gateway::env`]). Requests with the token are
//! passed through to the configured provider with the real key, and get what plancd's own
//! model agent gets: the budget checked before sending ([`usage`]), usage metered and priced,
//! the response cache in the repository, and the transcript. The token dies with the attempt.
//!
//! [`route`] decides what a request asks for; `server` answers it; [`fake`] is a local
//! upstream that speaks the providers' wire formats, for tests and the benchmark.

pub mod fake;
pub mod route;
mod server;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plancd_sandbox::PortForward;
use secrecy::{ExposeSecret, SecretString};

use crate::agent::model::budget::{Ledger, Limits, Meter};
use crate::agent::model::cache::Cache;
use crate::agent::model::transcript::Transcript;
use crate::agent::model::{ModelError, anthropic, gemini, layers, openai};
use crate::config::{Config, Env, Prices, Provider};
use crate::state::Cost;

/// The port inside a session where the gateway answers.
pub const PORT: u16 = 4747;

/// The model a gateway forwards to: the `models:` entry, with its real key.
pub struct Upstream {
    /// Its name in `models:`.
    pub name: String,
    /// Its API.
    pub provider: Provider,
    /// Its base URL.
    pub base_url: String,
    /// The model's name at the provider.
    pub model: String,
    /// What provenance calls it: `provider/model`.
    pub identity: String,
    /// Dollars per million tokens.
    pub prices: Option<Prices>,
    /// The time limit of one request (for a stream: of the wait for each chunk).
    pub timeout: Duration,
    /// Its spending caps.
    pub limits: Limits,
    auth: crate::agent::model::http::Auth,
}

impl Upstream {
    /// The model `name` of `config`, its key read from `env`. A scripted model has no API to
    /// forward to.
    pub fn open(name: &str, config: &Config, env: &Env) -> Result<Upstream, ModelError> {
        let problem = |problem: String| ModelError::Config { model: name.to_owned(), problem };
        let mc = config.models.get(name).ok_or_else(|| problem("no such model in `models:` of plancd.yaml".into()))?;
        let default = match mc.provider {
            Provider::Openai => openai::DEFAULT_BASE_URL,
            Provider::Anthropic => anthropic::DEFAULT_BASE_URL,
            Provider::Gemini => gemini::DEFAULT_BASE_URL,
            Provider::Scripted => return Err(problem("a scripted model cannot serve a command agent: it has no API to forward to".into())),
        };
        let model = mc.model.clone().ok_or_else(|| problem(format!("set models.{name}.model")))?;
        let provider_name = serde_json::to_value(mc.provider).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Ok(Upstream {
            name: name.to_owned(),
            provider: mc.provider,
            base_url: mc.base_url.clone().unwrap_or_else(|| default.to_owned()),
            identity: format!("{provider_name}/{model}"),
            model,
            prices: mc.prices,
            timeout: Duration::from_secs(mc.timeout_seconds.unwrap_or(120)),
            limits: Limits::new(&config.budget, mc),
            auth: layers::auth(name, mc, env)?,
        })
    }

    /// The key, for scrubbing it from anything written down.
    fn secrets(&self) -> Vec<SecretString> {
        self.auth.secret().cloned().into_iter().collect()
    }
}

/// What a gateway needs besides its upstream.
pub struct Opening {
    /// The upstream.
    pub upstream: Upstream,
    /// The pass's ledger: workflow budgets are shared with every other attempt.
    pub ledger: Ledger,
    /// The workflow, for its budget.
    pub workflow: String,
    /// What the task spent in earlier attempts.
    pub task_spent: Cost,
    /// The response cache, when there is a repository.
    pub cache: Option<Cache>,
}

/// Why a gateway could not start: the gateway's own failure, never the task's.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Its socket could not be made.
    #[error("the model gateway could not start: {0}")]
    Io(#[from] std::io::Error),
}

/// What an attempt's exchanges through its gateway came to.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    /// What they cost.
    pub cost: Cost,
    /// `transcript.jsonl`.
    pub transcript: Vec<u8>,
    /// Why a request was refused for the budget, when one was.
    pub budget: Option<String>,
    /// Why the upstream could not be reached, when it could not.
    pub unreachable: Option<String>,
    /// Requests the gateway answered (refusals included).
    pub requests: usize,
    /// Requests sent upstream (cache hits and refusals are not).
    pub upstream_requests: usize,
}

/// What the server of one attempt shares between its requests.
struct Shared {
    token: SecretString,
    live: AtomicBool,
    upstream: Upstream,
    meter: Meter,
    transcript: Transcript,
    cache: Option<Cache>,
    budget: Mutex<Option<String>>,
    unreachable: Mutex<Option<String>>,
    requests: AtomicUsize,
    upstream_requests: AtomicUsize,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// The gateway of one attempt: its socket, its token, its server.
pub struct Gateway {
    shared: Arc<Shared>,
    dir: PathBuf,
    socket: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

/// A fresh random token (256 bits from the kernel).
fn new_token() -> std::io::Result<SecretString> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SecretString::from(format!("plancd-gw-{hex}")))
}

/// The variables that name the model to the clients: the provider's SDK variable, and for the
/// agents built on LiteLLM (aider, mini-swe-agent) the model as `<provider>/<model>` and
/// LiteLLM's bundled price map (a session has no internet to fetch it from).
fn model_vars(provider: Provider, model: &str) -> Vec<(&'static str, String)> {
    let (sdk, litellm) = match provider {
        Provider::Anthropic => ("ANTHROPIC_MODEL", "anthropic"),
        Provider::Gemini => ("GEMINI_MODEL", "gemini"),
        Provider::Openai | Provider::Scripted => ("OPENAI_MODEL", "openai"),
    };
    let litellm = format!("{litellm}/{model}");
    vec![
        (sdk, model.to_owned()),
        ("AIDER_MODEL", litellm.clone()),
        ("MSWEA_MODEL_NAME", litellm),
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True".to_owned()),
    ]
}

impl Gateway {
    /// Starts the gateway of one attempt on a socket of its own.
    pub async fn open(opening: Opening) -> Result<Gateway, GatewayError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("plancd-gateway-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // The session's user (another uid under docker) must reach the socket.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let socket = dir.join("gateway.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let Opening { upstream, ledger, workflow, task_spent, cache } = opening;
        let meter = Meter::new(upstream.limits, &ledger, &workflow, task_spent);
        let transcript = Transcript::new(upstream.secrets());
        transcript.event(
            "start",
            serde_json::json!({"agent": {"gateway": true, "model": upstream.name, "identity": upstream.identity,
                "endpoint": crate::agent::model::http::redact_url(&upstream.base_url)}}),
        );
        let shared = Arc::new(Shared {
            token: new_token()?,
            live: AtomicBool::new(true),
            upstream,
            meter,
            transcript,
            cache,
            budget: Mutex::default(),
            unreachable: Mutex::default(),
            requests: AtomicUsize::new(0),
            upstream_requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        });
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Ok(Gateway { shared, dir, socket, server })
    }

    /// The socket on the host.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The forward that shows the gateway inside a session at `127.0.0.1:`[`PORT`].
    pub fn forward(&self) -> PortForward {
        PortForward { port: PORT, socket: self.socket.clone() }
    }

    /// The model's identity (`provider/model`), for provenance.
    pub fn identity(&self) -> &str {
        &self.shared.upstream.identity
    }

    /// The variables the common clients read, pointing at the gateway with the token: the
    /// official OpenAI, Anthropic and Google SDKs, Codex CLI, Claude Code, Gemini CLI, aider,
    /// mini-swe-agent and LiteLLM. Never the real key.
    pub fn env(&self) -> Vec<(String, String)> {
        let base = format!("http://127.0.0.1:{PORT}");
        let token = self.shared.token.expose_secret().to_owned();
        let model = self.shared.upstream.model.clone();
        let mut env = vec![
            ("PLANCD_GATEWAY_URL", base.clone()),
            ("PLANCD_GATEWAY_MODEL", model.clone()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
            ("OPENAI_API_BASE", format!("{base}/v1")),
            ("OPENAI_API_KEY", token.clone()),
            ("ANTHROPIC_BASE_URL", base.clone()),
            ("ANTHROPIC_API_KEY", token.clone()),
            ("GEMINI_API_KEY", token.clone()),
            ("GOOGLE_API_KEY", token),
            ("GOOGLE_GEMINI_BASE_URL", base.clone()),
            ("GEMINI_BASE_URL", base),
            ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
            ("no_proxy", "127.0.0.1,localhost".to_owned()),
        ];
        env.extend(model_vars(self.shared.upstream.provider, &model));
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Ends the attempt's access: its token is refused from now on (with the API's own 401),
    /// and the requests still running are waited for (at most 10 s) so that their cost counts.
    pub async fn end(&self) -> Ending {
        let s = &self.shared;
        s.live.store(false, Ordering::SeqCst);
        let wait = async {
            loop {
                let idle = s.idle.notified();
                if s.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
        let lock = |m: &Mutex<Option<String>>| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Ending {
            cost: s.meter.spent(),
            transcript: s.transcript.bytes(),
            budget: lock(&s.budget),
            unreachable: lock(&s.unreachable),
            requests: s.requests.load(Ordering::SeqCst),
            upstream_requests: s.upstream_requests.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests;
