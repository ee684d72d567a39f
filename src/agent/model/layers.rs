//! A configured model: a provider with its layers — the response cache, the budget check,
//! a time limit per request, retries with backoff, cost accounting and the transcript — in
//! that order, so that a cached reply costs nothing and spends no budget.

use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::budget::{Limits, Meter, price};
use super::cache::{self, Cache};
use super::http::{self, Auth};
use super::retry::RetryPolicy;
use super::transcript::Transcript;
use super::{ChatModel, ChatRequest, ChatResponse, ModelError, Usage, anthropic, gemini, openai, scripted};
use crate::config::{Config, Env, ModelConfig, Prices, Provider};
use crate::spec::FileSource;
use crate::state::Cost;

/// A model ready to be asked.
pub struct Model {
    /// Its name in `models:`.
    pub name: String,
    /// What provenance calls it: `scripted`, or `provider/model`.
    pub identity: String,
    /// Where it is reached (without keys), for messages.
    pub endpoint: String,
    /// Most tokens one reply may have.
    pub max_output_tokens: u32,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Its spending caps.
    pub limits: Limits,
    /// Keys to scrub from transcripts.
    pub secrets: Vec<SecretString>,
    provider: Box<dyn ChatModel>,
    retry: RetryPolicy,
    timeout: Duration,
    cache: Option<Cache>,
    prices: Option<Prices>,
}

/// A reply and what it cost.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply.
    pub response: ChatResponse,
    /// Whether it came from the cache.
    pub cached: bool,
    /// What it cost (nothing when cached).
    pub cost: Cost,
}

/// Why asking ended without a reply.
#[derive(Debug)]
pub enum AskError {
    /// A budget is spent: nothing was sent.
    Budget(String),
    /// The attempt's time is up.
    Deadline,
    /// The provider failed, after any retries.
    Model(ModelError),
}

/// Opens the model `name` of `config`. Keys come from `env` or from files; the scripted
/// model's replies from `source` (the watched commit).
pub fn open(name: &str, config: &Config, env: &Env, source: &dyn FileSource, cache: Option<Cache>) -> Result<Model, ModelError> {
    let problem = |problem: String| ModelError::Config { model: name.to_owned(), problem };
    let mc = config.models.get(name).ok_or_else(|| problem("no such model in `models:` of plancd.yaml".into()))?;
    let auth = auth(name, mc, env)?;
    let secrets: Vec<SecretString> = auth.secret().cloned().into_iter().collect();
    let model_name = || mc.model.clone().ok_or_else(|| problem(format!("set models.{name}.model")));
    let base = |default: &str| mc.base_url.clone().unwrap_or_else(|| default.to_owned());
    let (provider, identity, endpoint): (Box<dyn ChatModel>, String, String) = match mc.provider {
        Provider::Openai => {
            let (m, b) = (model_name()?, base(openai::DEFAULT_BASE_URL));
            (Box::new(openai::OpenAi::new(&b, &m, auth)), format!("openai/{m}"), http::redact_url(&b))
        }
        Provider::Anthropic => {
            let (m, b) = (model_name()?, base(anthropic::DEFAULT_BASE_URL));
            (Box::new(anthropic::Anthropic::new(&b, &m, auth)), format!("anthropic/{m}"), http::redact_url(&b))
        }
        Provider::Gemini => {
            let (m, b) = (model_name()?, base(gemini::DEFAULT_BASE_URL));
            (Box::new(gemini::Gemini::new(&b, &m, auth)), format!("gemini/{m}"), http::redact_url(&b))
        }
        Provider::Scripted => {
            let file = mc.file.clone().ok_or_else(|| problem(format!("set models.{name}.file to the replies file")))?;
            let bytes = source.read(&file).ok().flatten().ok_or_else(|| problem(format!("no replies file `{file}` in the repository")))?;
            (Box::new(scripted::Scripted::new(&file, &bytes)?), "scripted".to_owned(), file)
        }
    };
    Ok(Model {
        name: name.to_owned(),
        identity,
        endpoint,
        max_output_tokens: mc.max_output_tokens.unwrap_or(4096),
        temperature: mc.temperature,
        limits: Limits::new(&config.budget, mc),
        secrets,
        provider,
        retry: retry_policy(mc),
        timeout: Duration::from_secs(mc.timeout_seconds.unwrap_or(120)),
        // Recorded replies are already deterministic and free.
        cache: cache.filter(|_| mc.provider != Provider::Scripted),
        prices: mc.prices,
    })
}

fn retry_policy(mc: &ModelConfig) -> RetryPolicy {
    let default = RetryPolicy::default();
    RetryPolicy {
        max_retries: mc.max_retries.unwrap_or(default.max_retries),
        initial: mc.retry_delay_ms.map_or(default.initial, Duration::from_millis),
        max_delay: default.max_delay,
    }
}

/// The key named by `api_key_env` or `api_key_file`; none for a local server without either.
pub(crate) fn auth(name: &str, mc: &ModelConfig, env: &Env) -> Result<Auth, ModelError> {
    let problem = |problem: String| ModelError::Config { model: name.to_owned(), problem };
    let key = if let Some(var) = &mc.api_key_env {
        Some(
            env.get(var).filter(|v| !v.is_empty()).ok_or_else(|| problem(format!("the environment variable {var} is not set")))?.to_owned(),
        )
    } else if let Some(file) = &mc.api_key_file {
        let text = std::fs::read_to_string(file).map_err(|e| problem(format!("cannot read the key file {file}: {e}")))?;
        Some(text.trim().to_owned())
    } else {
        None
    };
    let Some(key) = key else { return Ok(Auth::None) };
    let key = SecretString::from(key);
    Ok(match mc.provider {
        Provider::Anthropic => Auth::Header("x-api-key", key),
        Provider::Gemini => Auth::Header("x-goog-api-key", key),
        Provider::Openai | Provider::Scripted => Auth::Bearer(key),
    })
}

impl Model {
    /// A model over any provider, for tests and benchmarks: no cache, no retries, no caps.
    pub fn from_provider(identity: &str, provider: Box<dyn ChatModel>) -> Model {
        Model {
            name: identity.to_owned(),
            identity: identity.to_owned(),
            endpoint: identity.to_owned(),
            max_output_tokens: 4096,
            temperature: None,
            limits: Limits::default(),
            secrets: Vec::new(),
            provider,
            retry: RetryPolicy { max_retries: 0, ..RetryPolicy::default() },
            timeout: Duration::from_secs(60),
            cache: None,
            prices: None,
        }
    }

    /// The same model, with replies cached in `cache`.
    pub fn with_cache(mut self, cache: Cache) -> Model {
        self.cache = Some(cache);
        self
    }

    /// Asks for the next reply: from the cache, or (budget allowing) from the provider.
    pub async fn ask(&self, req: &ChatRequest, meter: &Meter, transcript: &Transcript, deadline: Instant) -> Result<Reply, AskError> {
        let turn = req.turn();
        let key = cache::key(&self.identity, req);
        transcript.request(&self.identity, &key, req);
        if let Some(cache) = &self.cache {
            match cache.get(&key) {
                Ok(Some(response)) => {
                    transcript.reply(turn, &response, true, &Cost::default());
                    meter.cache_hit();
                    return Ok(Reply { response, cached: true, cost: Cost::default() });
                }
                Ok(None) => {}
                Err(e) => transcript.error(turn, &format!("response cache: {e}"), None),
            }
        }
        meter.check().map_err(AskError::Budget)?;
        let mut response = self.send(req, transcript, deadline).await?;
        if response.usage.estimated {
            response.usage = estimate(req, &response);
        }
        let cost = price(&response.usage, self.prices.as_ref());
        meter.charge(cost);
        if let Some(cache) = &self.cache
            && let Err(e) = cache.put(&key, &self.identity, &response)
        {
            transcript.error(turn, &format!("response cache: {e}"), None);
        }
        transcript.reply(turn, &response, false, &cost);
        Ok(Reply { response, cached: false, cost })
    }

    /// One request, under the time limit, tried again while that may help and time is left.
    async fn send(&self, req: &ChatRequest, transcript: &Transcript, deadline: Instant) -> Result<ChatResponse, AskError> {
        let turn = req.turn();
        for retry in 0.. {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AskError::Deadline);
            }
            let limit = self.timeout.min(left);
            let error = match tokio::time::timeout(limit, self.provider.complete(req)).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(e)) => e,
                Err(_) if limit < self.timeout => return Err(AskError::Deadline),
                Err(_) => ModelError::Timeout { url: self.endpoint.clone(), seconds: self.timeout.as_secs() },
            };
            let delay = self.retry.delay(retry, &error).filter(|d| Instant::now() + *d < deadline);
            transcript.error(turn, &error.to_string(), delay);
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(AskError::Model(error)),
            }
        }
        unreachable!("the loop returns")
    }
}

/// Four bytes a token, for endpoints that report no usage: budgets must still hold.
fn estimate(req: &ChatRequest, reply: &ChatResponse) -> Usage {
    let sent = serde_json::to_vec(req).map_or(0, |v| v.len()) as u64;
    let got = serde_json::to_vec(&(&reply.text, &reply.calls)).map_or(0, |v| v.len()) as u64;
    Usage { input_tokens: sent.div_ceil(4), output_tokens: got.div_ceil(4), estimated: true }
}
