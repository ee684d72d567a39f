//! GitHub through octocrab: a token from the environment or a GitHub App's installation token,
//! any API base URL (GitHub Enterprise, a test server), rate limits waited out (`retry-after`,
//! `x-ratelimit-remaining`/`x-ratelimit-reset` on 403 and 429), and a cap on pull requests
//! opened per hour.

mod api;

/// Reads an answer as octocrab's `get`/`post`/`patch` do (an error status becomes the API's
/// error), noting its rate-limit headers first: `$response` is what `_get`/`_post`/`_patch` gave.
macro_rules! answer {
    ($github:expr, $operation:expr, $response:expr) => {{
        let operation: String = $operation;
        let response = $response.map_err(|e| $github.error(operation.clone(), e))?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        $github.note_rate_limit(header("x-ratelimit-remaining"), header("x-ratelimit-limit"));
        let response = octocrab::map_github_error(response).await.map_err(|e| $github.error(operation.clone(), e))?;
        R::from_response(response).await.map_err(|e| $github.error(operation, e))
    }};
}

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::{NoOpRateLimitMetrics, RetryConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ForgeError, RateLimit};
use crate::config::{Env, GithubConfig};

/// How often one request is retried after a rate limit or a server error.
const RETRIES: usize = 5;

/// A repository on GitHub.
pub struct GitHub {
    client: Octocrab,
    owner: String,
    name: String,
    auth: Auth,
    max_prs_per_hour: u32,
    /// When pull requests were opened in the last hour, read once from the API and kept up to
    /// date as this process opens more; the lock also keeps two openings apart.
    opened: tokio::sync::Mutex<Option<Vec<jiff::Timestamp>>>,
    /// The request budget the last answer's `x-ratelimit-*` headers gave.
    rate_limit: Mutex<Option<RateLimit>>,
}

/// How the client authenticates.
enum Auth {
    Token(SecretString),
    App,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("repo", &format!("{}/{}", self.owner, self.name)).finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client for `config.repo`, authenticated by the token in `config.token_env`. With
    /// `app_id` and `private_key_file` it authenticates as the App's installation on the
    /// repository instead, which [`GitHub::connect`] looks up.
    pub fn new(config: &GithubConfig, env: &Env) -> Result<GitHub, ForgeError> {
        let (owner, name) = split_repo(&config.repo)?;
        let builder = builder(&config.api_url)?;
        let (client, auth) = match (config.app_id, &config.private_key_file) {
            (Some(app_id), Some(key_file)) => {
                let pem = std::fs::read(key_file)
                    .map_err(|e| ForgeError::Config(format!("forge.github.private_key_file `{key_file}`: cannot read: {e}")))?;
                let key = octocrab::EncodingKey::from_rsa_pem(&pem).map_err(|_| {
                    ForgeError::Config(format!("forge.github.private_key_file `{key_file}` is not an RSA private key in PEM"))
                })?;
                (builder.app(octocrab::models::AppId(app_id), key).build(), Auth::App)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ForgeError::Config("forge.github.app_id and private_key_file go together".into()));
            }
            (None, None) => {
                let token = env.get(&config.token_env).filter(|t| !t.is_empty()).ok_or_else(|| {
                    ForgeError::Config(format!("{} is not set: it holds the GitHub token (forge.github.token_env)", config.token_env))
                })?;
                let token = SecretString::from(token.to_owned());
                (builder.personal_token(token.clone()).build(), Auth::Token(token))
            }
        };
        let client = client.map_err(|e| ForgeError::Config(format!("cannot build the GitHub client: {}", first_line(&e.to_string()))))?;
        Ok(GitHub {
            client,
            owner,
            name,
            auth,
            max_prs_per_hour: config.max_prs_per_hour,
            opened: tokio::sync::Mutex::new(None),
            rate_limit: Mutex::new(None),
        })
    }

    /// [`GitHub::new`], then, for a GitHub App, the switch to its installation on the repository.
    pub async fn connect(config: &GithubConfig, env: &Env) -> Result<GitHub, ForgeError> {
        let mut github = GitHub::new(config, env)?;
        if matches!(github.auth, Auth::App) {
            #[derive(serde::Deserialize)]
            struct Installation {
                id: u64,
            }
            let route = format!("/repos/{}/{}/installation", github.owner, github.name);
            let found: Installation = github.get(&route, None::<&()>).await?;
            github.client = github
                .client
                .installation(octocrab::models::InstallationId(found.id))
                .map_err(|e| github.error(format!("GET {route}"), e))?;
        }
        Ok(github)
    }

    /// `owner/name`.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// `/repos/<owner>/<name><rest>`.
    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.name)
    }

    async fn get<R: octocrab::FromResponse, P: Serialize + ?Sized>(&self, route: &str, params: Option<&P>) -> Result<R, ForgeError> {
        let operation = format!("GET {route}");
        let uri = match params.map(serde_urlencoded::to_string).transpose() {
            Ok(Some(query)) if !query.is_empty() => format!("{route}?{query}"),
            Ok(_) => route.to_owned(),
            Err(e) => return Err(ForgeError::Transport { operation, message: format!("cannot encode the query: {e}") }),
        };
        let response = self.client._get(uri).await;
        answer!(self, operation, response)
    }

    async fn post<R: octocrab::FromResponse, B: Serialize + ?Sized>(&self, route: &str, body: &B) -> Result<R, ForgeError> {
        let response = self.client._post(route, Some(body)).await;
        answer!(self, format!("POST {route}"), response)
    }

    async fn patch<R: octocrab::FromResponse, B: Serialize + ?Sized>(&self, route: &str, body: &B) -> Result<R, ForgeError> {
        let response = self.client._patch(route, Some(body)).await;
        answer!(self, format!("PATCH {route}"), response)
    }

    /// Keeps the request budget an answer reports.
    fn note_rate_limit(&self, remaining: Option<&str>, limit: Option<&str>) {
        if let Some(seen) = rate_limit(remaining, limit) {
            *self.rate_limit.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seen);
        }
    }

    /// Every item of a listing, following the `Link` header's `next` pages.
    async fn all<T: DeserializeOwned, P: Serialize + ?Sized>(&self, route: &str, params: &P) -> Result<Vec<T>, ForgeError> {
        let first: octocrab::Page<T> = self.get(route, Some(params)).await?;
        self.client.all_pages(first).await.map_err(|e| self.error(format!("GET {route} (next pages)"), e))
    }

    /// An octocrab error as a forge error, with any token scrubbed.
    fn error(&self, operation: String, e: octocrab::Error) -> ForgeError {
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let mut message = source.message.clone();
                for detail in source.errors.iter().flatten() {
                    let text = detail.get("message").and_then(|m| m.as_str()).map_or_else(|| detail.to_string(), str::to_owned);
                    message.push_str(&format!("; {text}"));
                }
                ForgeError::Api { operation, status: source.status_code.as_u16(), message: self.scrub(&message) }
            }
            other => ForgeError::Transport { operation, message: self.scrub(&first_line(&other.to_string())) },
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.auth {
            Auth::Token(t) if !t.expose_secret().is_empty() => text.replace(t.expose_secret(), "***"),
            _ => text.to_owned(),
        }
    }
}

/// The request budget in an answer's `x-ratelimit-remaining` and `x-ratelimit-limit` headers,
/// when it has both and they are numbers.
fn rate_limit(remaining: Option<&str>, limit: Option<&str>) -> Option<RateLimit> {
    Some(RateLimit { remaining: remaining?.trim().parse().ok()?, limit: limit?.trim().parse().ok()? })
}

/// The octocrab builder shared by both ways of signing in.
fn builder(
    api_url: &str,
) -> Result<
    octocrab::OctocrabBuilder<octocrab::NoSvc, octocrab::DefaultOctocrabBuilderConfig, octocrab::NoAuth, octocrab::NotLayerReady>,
    ForgeError,
> {
    let retry = RetryConfig::HandleRateLimits {
        metrics: Arc::new(NoOpRateLimitMetrics),
        max_retries: RETRIES,
        min_wait_seconds: 60,
        retry_on_forbidden: false,
    };
    Octocrab::builder().base_uri(api_url).map_err(|_| ForgeError::Config(format!("forge.github.api_url `{api_url}` is not a URL"))).map(
        |b| {
            b.add_retry_config(retry)
                .set_connect_timeout(Some(Duration::from_secs(10)))
                .set_read_timeout(Some(Duration::from_secs(60)))
                .set_write_timeout(Some(Duration::from_secs(60)))
        },
    )
}

fn split_repo(repo: &str) -> Result<(String, String), ForgeError> {
    match repo.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => Ok((owner.into(), name.into())),
        _ => Err(ForgeError::Config(format!("forge.github.repo `{repo}` is not owner/name"))),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_is_read_from_both_headers_or_not_at_all() {
        let rows = [
            ("both", Some("4999"), Some("5000"), Some(RateLimit { remaining: 4999, limit: 5000 })),
            ("exhausted", Some("0"), Some("60"), Some(RateLimit { remaining: 0, limit: 60 })),
            ("no remaining", None, Some("5000"), None),
            ("no limit", Some("1"), None, None),
            ("not a number", Some("lots"), Some("5000"), None),
        ];
        for (name, remaining, limit, want) in rows {
            assert_eq!(rate_limit(remaining, limit), want, "{name}");
        }
    }
}
