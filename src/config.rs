//! `plancd.yaml`: the repository's configuration, with defaults, schema checks and the
//! `PLANCD_*` environment layered on top (defaults < file < environment < flags).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::spec::{Diagnostic, FileSource, Role, Schema, parse_checked};

/// The file names plancd looks for at the repository root, in order.
pub const CONFIG_FILES: [&str; 2] = ["plancd.yaml", "plancd.yml"];

/// The configuration of one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Globs of plan files.
    pub plans: Vec<String>,
    /// Globs of contract files.
    pub contracts: Vec<String>,
    /// The watched branch.
    pub branch: String,
    /// Where results, tags and task refs are pushed, if the repository has it.
    pub remote: String,
    /// Tasks at once.
    pub concurrency: u32,
    /// How deep branch todos nest before a task is escalated.
    pub max_branch_depth: u32,
    /// Delete the refs of tasks removed from the plan.
    pub prune: bool,
    /// How long a claim outlives its task's timeout before another controller may take it
    /// over, for publishing and for clocks that disagree.
    pub lease_grace_seconds: u32,
    /// Failure patterns added to or overriding the built-in triage patterns.
    pub failure_patterns: BTreeMap<String, FailurePattern>,
    /// Where agents and tests run.
    pub sandbox: SandboxConfig,
    /// The environment every attempt runs in, built once per key and reused.
    pub environment: Option<EnvironmentConfig>,
    /// Commands run after the coder, before acceptance tests (presets expanded).
    #[serde(deserialize_with = "checks_with_presets")]
    pub checks: Vec<CheckCommand>,
    /// Which quality figures plancd measures on a verified result.
    pub quality: QualityConfig,
    /// How each role is played.
    pub roles: BTreeMap<Role, RoleConfig>,
    /// Chat models by name.
    pub models: BTreeMap<String, ModelConfig>,
    /// Spending limits.
    pub budget: Budget,
    /// Where pull requests go.
    pub forge: ForgeConfig,
    /// Webhook settings for `plancd serve`.
    pub webhook: WebhookConfig,
    /// Paths a result may not add, change or remove unless its task lists them as outputs (and
    /// is then held for approval): gitignore-style patterns added after
    /// [`DEFAULT_PROTECTED_PATHS`], so that `!pattern` lifts a default.
    pub protected_paths: Vec<String>,
    /// Run each acceptance test once more against a probe that must fail (a failing test added
    /// to the pinned test files) and refuse a result whose tests still pass (`TestTampering`).
    pub test_probe: bool,
}

/// What a result may not touch unless its task names the path as an output: CI workflows (a
/// push runs them with the repository's secrets), submodules and attributes (`ext::` URLs,
/// filters and diff drivers run commands on checkout), code owners (who must review), and
/// plancd's own configuration. Gitignore syntax, matched without regard to case.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &[
    "/.github/workflows/**",
    "/.gitmodules",
    ".gitattributes",
    "/.github/CODEOWNERS",
    "/CODEOWNERS",
    "/docs/CODEOWNERS",
    "/.plancd/**",
    "/plancd.yaml",
    "/plancd.yml",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            plans: vec!["plans/**/*.yaml".into(), "plans/**/*.yml".into(), "plans/**/*.json".into()],
            contracts: vec!["contracts/**/*.yaml".into(), "contracts/**/*.yml".into(), "contracts/**/*.json".into()],
            branch: "main".into(),
            remote: "origin".into(),
            concurrency: 4,
            max_branch_depth: 2,
            prune: false,
            lease_grace_seconds: 120,
            failure_patterns: BTreeMap::new(),
            sandbox: SandboxConfig::default(),
            environment: None,
            checks: Vec::new(),
            quality: QualityConfig::default(),
            roles: BTreeMap::new(),
            models: BTreeMap::new(),
            budget: Budget::default(),
            forge: ForgeConfig::default(),
            webhook: WebhookConfig::default(),
            protected_paths: Vec::new(),
            test_probe: true,
        }
    }
}

/// A failure pattern for triage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FailurePattern {
    /// Substrings that identify the failure.
    pub keywords: Vec<String>,
    /// Regular expressions that identify the failure.
    pub regexes: Vec<String>,
    /// The role a branch todo for it goes to.
    pub target_agent: Option<Role>,
    /// Whether a safe quick fix may be tried before an agent.
    pub auto_fixable: bool,
}

/// Sandbox settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// `process` or `docker`.
    pub backend: SandboxBackend,
    /// The docker image.
    pub image: String,
    /// A root filesystem for the process backend instead of the host's.
    pub root: Option<String>,
    /// `none` or `loopback`.
    pub network: NetworkPolicy,
    /// Variables passed into the sandbox.
    pub env: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            backend: SandboxBackend::Process,
            image: "plancd-sandbox:python".into(),
            root: None,
            network: NetworkPolicy::None,
            env: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Which sandbox backend runs agents and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxBackend {
    /// Bubblewrap namespaces, cgroups and seccomp; no daemon.
    Process,
    /// A local Docker engine.
    Docker,
}

/// What network a sandbox has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    /// None at all.
    None,
    /// Its own loopback only.
    Loopback,
}

/// Resource limits of a sandbox session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// CPUs.
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Workspace size in MiB.
    pub disk_mb: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Default command time limit.
    pub timeout_seconds: u64,
}

/// An environment: setup commands run once per key with `/env` writable, whose result is
/// mounted read-only at `/env` in every later session with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Shell commands run in order in the workspace.
    pub setup: Vec<String>,
    /// Globs of the files whose content keys the environment.
    #[serde(default)]
    pub cache: Vec<String>,
    /// docker: the image (default: `sandbox.image`).
    #[serde(default)]
    pub image: Option<String>,
    /// Hosts setup may reach (default: the registries of the detected ecosystems).
    #[serde(default)]
    pub network: Option<Vec<String>>,
    /// The whole setup's time limit (default [`DEFAULT_SETUP_SECONDS`]).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

/// How long a setup may take unless `environment.timeout_seconds` says otherwise.
pub const DEFAULT_SETUP_SECONDS: u32 = 1200;

impl Default for Limits {
    fn default() -> Self {
        Limits { cpus: 1.0, memory_mb: 2048, disk_mb: 1024, pids: 256, timeout_seconds: 300 }
    }
}

/// A check command (lint, type, security).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckCommand {
    /// Its name.
    pub name: String,
    /// A shell command run in the workspace.
    pub cmd: String,
    /// Its time limit.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Roles after which it runs (default: coder).
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// A `checks:` entry: a command, or a preset that stands for several.
#[derive(Deserialize)]
#[serde(untagged)]
enum CheckEntry {
    Preset(PresetEntry),
    Command(CheckCommand),
}

/// `- preset: python` (with the roles and time limit its checks get).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetEntry {
    preset: crate::quality::CheckPreset,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    roles: Vec<Role>,
}

/// Reads `checks:`, each preset expanded into its commands where it stands.
fn checks_with_presets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<CheckCommand>, D::Error> {
    let entries = Vec::<CheckEntry>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .flat_map(|e| match e {
            CheckEntry::Preset(p) => p.preset.checks(&p.roles, p.timeout_seconds),
            CheckEntry::Command(c) => vec![c],
        })
        .collect())
}

/// Which quality figures plancd measures on the work whose acceptance tests passed (see
/// [`crate::quality`]); both on by default, each skipped with a note where the sandbox lacks the
/// tool or the work has nothing it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityConfig {
    /// Run Python acceptance commands under coverage.py (`node --test` with node's coverage) and
    /// record the line coverage.
    pub coverage: bool,
    /// Scan the work's Python code with bandit and record the findings.
    pub security: bool,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig { coverage: true, security: true }
    }
}

/// How a role is played: by a model or by a command.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleConfig {
    /// A key of `models`.
    pub model: Option<String>,
    /// A command agent.
    pub command: Option<CommandLine>,
    /// The agent's time limit.
    pub timeout_seconds: Option<u64>,
    /// Most model turns per attempt.
    pub max_turns: Option<u32>,
    /// Turns in a row without a file change after which a model agent counts as stuck.
    pub max_idle_turns: Option<u32>,
    /// How often the architect's contract may fail its schema before the attempt fails.
    pub validation_tries: Option<u32>,
    /// A prompt file in the repository.
    pub prompt: Option<String>,
    /// A name for a command agent in provenance (`Plancd-Model`), e.g. `scripted` for an agent
    /// that replays recorded work.
    pub label: Option<String>,
    /// This role's environment instead of the top-level `environment:`.
    pub environment: Option<EnvironmentConfig>,
    /// Hosts the agent may reach through plancd's egress proxy; none when absent.
    pub network: Option<RoleNetwork>,
}

/// A role's network: the hosts its agent's session reaches through plancd's egress proxy (every
/// other request is refused and recorded in the attempt's status).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleNetwork {
    /// Host patterns: `pypi.org`, `*.pythonhosted.org`, or `host:port` for that port alone.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A command, as an argument vector or as one shell string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// Run directly.
    Argv(Vec<String>),
    /// Run with `sh -c`.
    Shell(String),
}

impl CommandLine {
    /// The argument vector to execute.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandLine::Argv(v) => v.clone(),
            CommandLine::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }
}

/// A chat model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The API it speaks.
    pub provider: Provider,
    /// The API's base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The model's name at the provider.
    #[serde(default)]
    pub model: Option<String>,
    /// The environment variable that holds the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file that holds the API key.
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// Scripted: the replies file.
    #[serde(default)]
    pub file: Option<String>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Most tokens one reply may have.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Most tokens (in and out) one attempt may spend on this model.
    #[serde(default)]
    pub max_tokens_per_attempt: Option<u64>,
    /// Most tokens (in and out) one task may spend on this model over all its attempts.
    #[serde(default)]
    pub max_tokens_per_task: Option<u64>,
    /// The time limit of one request.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Retries of a request that failed for a passing reason (429, 5xx, connection, timeout).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// The first retry's delay; each further one doubles it (with jitter).
    #[serde(default)]
    pub retry_delay_ms: Option<u64>,
    /// Dollars per million tokens.
    #[serde(default)]
    pub prices: Option<Prices>,
    /// Everything else, kept for newer keys.
    #[serde(flatten)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// A model's prices, in dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
}

/// A chat API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI-compatible chat completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// Replies read from a file.
    Scripted,
}

/// Spending limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Budget {
    /// Dollars per workflow.
    pub usd_per_workflow: Option<f64>,
    /// Dollars per task.
    pub usd_per_task: Option<f64>,
    /// Dollars per attempt.
    pub usd_per_attempt: Option<f64>,
    /// Tokens per workflow.
    pub tokens_per_workflow: Option<u64>,
    /// Tokens per task, over all its attempts.
    pub tokens_per_task: Option<u64>,
    /// Tokens per attempt.
    pub tokens_per_attempt: Option<u64>,
}

/// Forge settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ForgeConfig {
    /// GitHub.
    pub github: Option<GithubConfig>,
}

/// GitHub settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubConfig {
    /// `owner/name`.
    pub repo: String,
    /// The environment variable that holds the token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// The API's base URL.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// A GitHub App's id.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The App's private key file.
    #[serde(default)]
    pub private_key_file: Option<String>,
    /// Most pull requests opened per hour.
    #[serde(default = "default_prs_per_hour")]
    pub max_prs_per_hour: u32,
    /// Labels put on pull requests.
    #[serde(default)]
    pub labels: Vec<String>,
}

fn default_token_env() -> String {
    "GITHUB_TOKEN".into()
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

fn default_prs_per_hour() -> u32 {
    20
}

/// Webhook settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// The environment variable that holds the secret.
    pub secret_env: Option<String>,
    /// Largest body accepted.
    pub max_body_bytes: Option<u64>,
}

/// The process environment, or a fixed one in tests: the one place configuration reads
/// variables from. It holds API keys and tokens: `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish_non_exhaustive()
    }
}

impl Env {
    /// A snapshot of this process's environment (variables that are not UTF-8 are skipped).
    pub fn process() -> Env {
        Env { vars: std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect() }
    }

    /// A fixed environment.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env { vars: pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect() }
    }

    /// One variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// This environment with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Env {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// A `PLANCD_*` variable with a value the key cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var}={value:?}: {problem}")]
pub struct EnvError {
    /// The variable.
    pub var: String,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub problem: String,
}

impl Config {
    /// Reads the configuration file at the root of `source`, or the defaults when there is
    /// none. Returns the file's name with it, and every problem found in it.
    pub fn load(source: &dyn FileSource) -> Result<(Config, Option<&'static str>), Vec<Diagnostic>> {
        for name in CONFIG_FILES {
            let bytes = match source.read(name) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => return Err(vec![Diagnostic::error(name, crate::spec::Pos::START, "io", format!("cannot read: {e}"))]),
            };
            let (config, diags) = parse_checked::<Config>(name, &bytes, Schema::Config);
            return match config {
                Some((config, doc)) if !diags.iter().any(Diagnostic::is_error) => {
                    config.checked_in(name, Some(&doc)).map(|c| (c, Some(name)))
                }
                _ => Err(diags),
            };
        }
        Ok((Config::default(), None))
    }

    /// Reads the configuration file `name` of `source`, which must exist.
    pub fn load_named(source: &dyn FileSource, name: &str) -> Result<Config, Vec<Diagnostic>> {
        let bytes = match source.read(name) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(vec![Diagnostic::error(name, crate::spec::Pos::START, "io", "no such configuration file (PLANCD_CONFIG)")]);
            }
            Err(e) => return Err(vec![Diagnostic::error(name, crate::spec::Pos::START, "io", format!("cannot read: {e}"))]),
        };
        match parse_checked::<Config>(name, &bytes, Schema::Config) {
            (Some((config, doc)), diags) if !diags.iter().any(Diagnostic::is_error) => config.checked_in(name, Some(&doc)),
            (_, diags) => Err(diags),
        }
    }

    /// [`Config::load`], or [`Config::load_named`] when `PLANCD_CONFIG` names the file.
    pub fn load_env(source: &dyn FileSource, env: &Env) -> Result<Config, Vec<Diagnostic>> {
        match env.get("PLANCD_CONFIG").filter(|n| !n.is_empty()) {
            Some(name) => Config::load_named(source, name.trim_start_matches("./")),
            None => Config::load(source).map(|(c, _)| c),
        }
    }

    /// Applies `PLANCD_*` overrides: BRANCH, REMOTE, CONCURRENCY, MAX_BRANCH_DEPTH, PRUNE,
    /// SANDBOX_BACKEND, SANDBOX_IMAGE.
    pub fn apply_env(&mut self, env: &Env) -> Result<(), EnvError> {
        fn parse<T: std::str::FromStr>(var: &str, value: &str, what: &str) -> Result<T, EnvError> {
            value.parse().map_err(|_| EnvError { var: var.into(), value: value.into(), problem: format!("expected {what}") })
        }
        let get = |name: &'static str| env.get(name).map(|v| (name, v));
        if let Some((_, v)) = get("PLANCD_BRANCH") {
            self.branch = v.to_owned();
        }
        if let Some((_, v)) = get("PLANCD_REMOTE") {
            self.remote = v.to_owned();
        }
        if let Some((k, v)) = get("PLANCD_CONCURRENCY") {
            self.concurrency = parse::<u32>(k, v, "a whole number from 1 to 1024")?;
            if !(1..=1024).contains(&self.concurrency) {
                return Err(EnvError { var: k.into(), value: v.into(), problem: "expected a whole number from 1 to 1024".into() });
            }
        }
        if let Some((k, v)) = get("PLANCD_MAX_BRANCH_DEPTH") {
            self.max_branch_depth = parse::<u32>(k, v, "a whole number from 0 to 10")?.min(10);
        }
        if let Some((k, v)) = get("PLANCD_PRUNE") {
            self.prune = parse::<bool>(k, v, "true or false")?;
        }
        if let Some((k, v)) = get("PLANCD_SANDBOX_BACKEND") {
            self.sandbox.backend = match v {
                "process" => SandboxBackend::Process,
                "docker" => SandboxBackend::Docker,
                _ => return Err(EnvError { var: k.into(), value: v.into(), problem: "expected process or docker".into() }),
            };
        }
        if let Some((_, v)) = get("PLANCD_SANDBOX_IMAGE") {
            self.sandbox.image = v.to_owned();
        }
        Ok(())
    }

    /// This configuration, or the problems the schema cannot see: `protected_paths` entries
    /// that are no valid pattern, `environment.cache` entries that are no valid glob.
    pub fn checked(self, file: &str) -> Result<Config, Vec<Diagnostic>> {
        self.checked_in(file, None)
    }

    /// [`Config::checked`], with positions taken from the parsed `doc`.
    pub fn checked_in(self, file: &str, doc: Option<&crate::spec::Document>) -> Result<Config, Vec<Diagnostic>> {
        let at = |field: &str| doc.map_or(crate::spec::Pos::START, |d| d.locate(&crate::spec::FieldPath::parse(field)));
        let mut b = ignore::gitignore::GitignoreBuilder::new("/");
        let mut problems: Vec<Diagnostic> = self
            .protected_paths
            .iter()
            .enumerate()
            .filter_map(|(i, p)| b.add_line(None, p).err().map(|e| (i, e)))
            .map(|(i, e)| {
                let field = format!("protected_paths[{i}]");
                Diagnostic::error(file, at(&field), "bad-glob", format!("{field}: {e}"))
            })
            .collect();
        for (field, env) in self.environments() {
            for (i, glob) in env.cache.iter().enumerate() {
                if let Err(e) = globset::Glob::new(glob) {
                    let field = format!("{field}.cache[{i}]");
                    problems.push(Diagnostic::error(file, at(&field), "bad-glob", format!("{field}: {e}")));
                }
            }
        }
        for (role, rc) in &self.roles {
            for (i, host) in rc.network.iter().flat_map(|n| n.allow.iter()).enumerate() {
                if let Err(e) = plancd_sandbox::egress::Allowlist::new([host]) {
                    let field = format!("roles.{role}.network.allow[{i}]");
                    problems.push(Diagnostic::error(file, at(&field), "bad-host", format!("{field}: {e}")));
                }
            }
        }
        for (field, message) in self.gateway_problems() {
            problems.push(Diagnostic::error(file, at(&field), "gateway-model", message));
        }
        if problems.is_empty() { Ok(self) } else { Err(problems) }
    }

    /// Roles with both a `command` and a `model` reach the model through the gateway, which
    /// forwards to a provider's API: the model must be defined, name its model, and not be
    /// scripted. Each problem with its field.
    fn gateway_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (role, rc) in &self.roles {
            let (Some(_), Some(name)) = (&rc.command, &rc.model) else { continue };
            let field = format!("roles.{role}.model");
            let why = match self.models.get(name) {
                None => format!("{field}: `{name}` is not defined in `models:`"),
                Some(m) if m.provider == Provider::Scripted => format!(
                    "{field}: `{name}` is a scripted model, which cannot serve a command agent: the gateway forwards to a provider's API (openai, anthropic or gemini)"
                ),
                Some(m) if m.model.is_none() => format!("{field}: `{name}` names no model at its provider; set models.{name}.model"),
                Some(_) => continue,
            };
            problems.push((field, why));
        }
        problems
    }

    /// Every environment the file declares, with the field that declares it.
    fn environments(&self) -> Vec<(String, &EnvironmentConfig)> {
        let roles = self.roles.iter().filter_map(|(r, c)| Some((format!("roles.{r}.environment"), c.environment.as_ref()?)));
        self.environment.iter().map(|e| ("environment".to_owned(), e)).chain(roles).collect()
    }

    /// The environment `role` runs in: its own, else the top-level one, else none.
    pub fn environment_for(&self, role: Role) -> Option<&EnvironmentConfig> {
        self.roles.get(&role).and_then(|r| r.environment.as_ref()).or(self.environment.as_ref())
    }

    /// Failure types the configuration adds to the built-in ones.
    pub fn extra_failure_types(&self) -> Vec<String> {
        self.failure_patterns.keys().cloned().collect()
    }

    /// Why no agent can play `role`, or `None` when one can: a role is played by its
    /// `command`, or else by its `model` when `models:` defines that model. There are no
    /// default agents: a role plancd.yaml does not name has none.
    pub fn agent_problem(&self, role: Role) -> Option<String> {
        match self.roles.get(&role) {
            Some(RoleConfig { command: Some(_), .. }) => None,
            Some(RoleConfig { model: Some(model), .. }) if self.models.contains_key(model) => None,
            Some(RoleConfig { model: Some(model), .. }) => {
                Some(format!("roles.{role}.model names `{model}`, which `models:` in plancd.yaml does not define"))
            }
            Some(_) => Some(format!("roles.{role} in plancd.yaml has neither a `command` nor a `model`")),
            None => Some(format!("no agent plays role `{role}`: plancd.yaml has no roles.{role}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DirSource;

    fn load(text: &str) -> Result<Config, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plancd.yaml"), text).unwrap();
        Config::load(&DirSource::new(dir.path())).map(|(c, _)| c)
    }

    #[test]
    fn a_checks_preset_expands_into_its_commands_where_it_stands() {
        let text = "checks:\n  - { name: first, cmd: 'true' }\n  - { preset: python, roles: [coder, debugger], timeout_seconds: 60 }\n  - { name: last, cmd: 'true' }\n";
        let config = load(text).unwrap();
        let names: Vec<&str> = config.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["first", "lint", "types", "security", "last"]);
        assert_eq!(config.checks[3].roles, [Role::Coder, Role::Debugger]);
        assert_eq!(config.checks[3].timeout_seconds, Some(60));
        assert!(config.checks[3].cmd.starts_with("python3 -I -m bandit"), "{}", config.checks[3].cmd);
        // An unknown preset, or a preset with a command, is a plan error with its place.
        for bad in ["checks:\n  - { preset: cobol }\n", "checks:\n  - { preset: python, cmd: x }\n"] {
            let diags = load(bad).unwrap_err();
            assert!(diags.iter().any(|d| d.to_string().contains("plancd.yaml:2")), "{bad}: {diags:?}");
        }
    }

    #[test]
    fn quality_figures_are_measured_unless_turned_off() {
        assert_eq!(load("{}\n").unwrap().quality, QualityConfig { coverage: true, security: true });
        assert_eq!(load("quality: { security: false }\n").unwrap().quality, QualityConfig { coverage: true, security: false });
        assert!(load("quality: { lint: true }\n").is_err());
    }

    #[test]
    fn a_command_with_a_model_needs_a_model_the_gateway_can_forward_to() {
        let models = "models:\n  real: { provider: openai, model: m }\n  offline: { provider: scripted, file: r.yaml }\n  nameless: { provider: anthropic }\n";
        // (the coder's config, the problem)
        let cases = [
            ("{ command: [agent], model: real }", None),
            ("{ command: [agent] }", None),
            ("{ model: offline }", None),
            ("{ command: [agent], model: nowhere }", Some("roles.coder.model: `nowhere` is not defined in `models:`")),
            (
                "{ command: [agent], model: offline }",
                Some("roles.coder.model: `offline` is a scripted model, which cannot serve a command agent"),
            ),
            ("{ command: [agent], model: nameless }", Some("roles.coder.model: `nameless` names no model at its provider")),
        ];
        for (coder, want) in cases {
            let got = load(&format!("roles:\n  coder: {coder}\n{models}"));
            match want {
                None => assert!(got.is_ok(), "{coder}: {:?}", got.err()),
                Some(want) => {
                    let diags = got.expect_err(coder);
                    assert_eq!(diags.len(), 1, "{coder}");
                    assert!(diags[0].message.starts_with(want), "{coder}: {}", diags[0].message);
                    assert_eq!(diags[0].line, 2, "{coder}: the field's own line");
                }
            }
        }
    }

    #[test]
    fn an_environment_prints_its_names_never_its_values() {
        let env = Env::from_pairs([("OPENAI_API_KEY", "sk-canary-1234"), ("PLANCD_BRANCH", "main")]);
        let shown = format!("{env:?} {env:#?}");
        assert!(!shown.contains("sk-canary-1234") && !shown.contains("main\""), "{shown}");
        assert!(shown.contains("OPENAI_API_KEY") && shown.contains("PLANCD_BRANCH"), "{shown}");
    }

    #[test]
    fn the_design_example_loads() {
        let text = include_str!("../tests/data/config/design.yaml");
        let config = load(text).unwrap();
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.roles[&Role::Coder].command, Some(CommandLine::Argv(vec!["python3".into(), "agents/coder.py".into()])));
        assert_eq!(config.models["offline"].provider, Provider::Scripted);
        assert_eq!(config.sandbox.limits.memory_mb, 2048);
        assert_eq!(config.forge.github.as_ref().unwrap().max_prs_per_hour, 20);
    }

    #[test]
    fn an_environment_loads_on_either_backend() {
        for backend in ["process", "docker"] {
            let config = load(&format!("sandbox: {{ backend: {backend} }}\nenvironment:\n  setup: [\"true\"]\n  image: \"python:3.12\"\n"));
            let config = config.unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert_eq!(config.environment.and_then(|e| e.image).as_deref(), Some("python:3.12"));
        }
    }

    #[test]
    fn no_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (config, name) = Config::load(&DirSource::new(dir.path())).unwrap();
        assert_eq!((config, name), (Config::default(), None));
    }

    #[test]
    fn problems_name_line_and_field() {
        let errs = load("branch: main\nconcurency: 3\nsandbox:\n  backend: podman\n").unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(shown[0].starts_with("plancd.yaml:2:1: error[unknown-field]: concurency"), "{shown:?}");
        assert!(shown[0].contains("did you mean `concurrency`?"));
        assert!(shown[1].starts_with("plancd.yaml:4:12: error[schema]: sandbox.backend: `podman`"), "{shown:?}");
    }

    #[test]
    fn protected_paths_are_added_to_the_defaults_and_bad_patterns_are_named() {
        assert_eq!(load("branch: main\n").unwrap().protected_paths, Vec::<String>::new());
        let config = load("protected_paths: [\"secrets/**\", \"!.gitattributes\"]\n").unwrap();
        assert_eq!(config.protected_paths, ["secrets/**", "!.gitattributes"]);
        assert!(config.test_probe);
        let errs = load("protected_paths: [\"ok/**\", \"bad/[z-a]\"]\n").unwrap_err();
        let shown = errs[0].to_string();
        assert!(shown.starts_with("plancd.yaml:") && shown.contains("protected_paths[1]"), "{shown}");
    }

    #[test]
    fn a_role_is_played_by_its_command_or_a_defined_model_and_by_nothing_else() {
        let config = load(
            "roles:\n  coder: { command: [agent] }\n  tester: { model: offline }\n  architect: { model: nowhere }\n  debugger: { max_turns: 3 }\nmodels:\n  offline: { provider: scripted, file: r.yaml }\n",
        )
        .unwrap();
        assert_eq!(config.agent_problem(Role::Coder), None);
        assert_eq!(config.agent_problem(Role::Tester), None);
        let problems: Vec<String> = [Role::Architect, Role::Debugger, Role::Planner].map(|r| config.agent_problem(r).unwrap()).to_vec();
        assert_eq!(
            problems,
            [
                "roles.architect.model names `nowhere`, which `models:` in plancd.yaml does not define",
                "roles.debugger in plancd.yaml has neither a `command` nor a `model`",
                "no agent plays role `planner`: plancd.yaml has no roles.planner",
            ]
        );
    }

    #[test]
    fn an_environment_loads_at_the_top_and_per_role() {
        let config = load(concat!(
            "environment:\n",
            "  setup:\n    - python3 -m venv /env\n    - /env/bin/pip install -e . pytest\n",
            "  cache: [pyproject.toml, \"requirements*.txt\"]\n",
            "  image: python:3.12-slim\n",
            "  network: [pypi.org, files.pythonhosted.org]\n",
            "  timeout_seconds: 1200\n",
            "roles:\n  tester:\n    command: [t]\n    environment: { setup: [npm ci], cache: [package-lock.json] }\n",
        ))
        .unwrap();
        let env = config.environment.clone().unwrap();
        assert_eq!(
            env,
            EnvironmentConfig {
                setup: vec!["python3 -m venv /env".into(), "/env/bin/pip install -e . pytest".into()],
                cache: vec!["pyproject.toml".into(), "requirements*.txt".into()],
                image: Some("python:3.12-slim".into()),
                network: Some(vec!["pypi.org".into(), "files.pythonhosted.org".into()]),
                timeout_seconds: Some(1200),
            }
        );
        assert_eq!(config.environment_for(Role::Coder), Some(&env));
        assert_eq!(config.environment_for(Role::Tester).map(|e| e.setup.clone()), Some(vec!["npm ci".to_owned()]));
        assert_eq!(load("branch: main\n").unwrap().environment_for(Role::Coder), None);
    }

    #[test]
    fn environment_problems_name_line_and_field() {
        let cases: [(&str, &str); 6] = [
            ("environment:\n  cache: [a]\n", "plancd.yaml:2:3: error[schema]: environment: missing required field `setup`"),
            ("environment:\n  setup: []\n", "plancd.yaml:2:10: error[schema]: environment.setup"),
            ("environment:\n  setup: [x]\n  timeout_seconds: 0\n", "plancd.yaml:3:20: error[schema]: environment.timeout_seconds"),
            ("environment:\n  setup: [x]\n  network: [\"http://x/\"]\n", "plancd.yaml:3:13: error[schema]: environment.network[0]"),
            ("environment:\n  setup: [x]\n  cache: [ok, \"bad[\"]\n", "plancd.yaml:3:15: error[bad-glob]: environment.cache[1]"),
            (
                "roles:\n  coder:\n    environment:\n      setup: [x]\n      stup: [y]\n",
                "plancd.yaml:5:7: error[unknown-field]: roles.coder.environment.stup",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, expected)| {
                let shown: Vec<String> = load(text).unwrap_err().iter().map(ToString::to_string).collect();
                (!shown.iter().any(|s| s.starts_with(expected))).then(|| format!("{text:?}: {shown:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_roles_network_allows_hosts_and_bad_entries_name_line_and_field() {
        let config = load(
            "roles:\n  coder:\n    command: [agent]\n    network: { allow: [pypi.org, \"*.pythonhosted.org\", \"devpi.internal:3141\"] }\n",
        )
        .unwrap();
        let allow = &config.roles[&Role::Coder].network.as_ref().unwrap().allow;
        assert_eq!(allow, &["pypi.org", "*.pythonhosted.org", "devpi.internal:3141"]);
        assert_eq!(load("roles:\n  coder: { command: [agent] }\n").unwrap().roles[&Role::Coder].network, None, "no network by default");
        // (the coder's network, the problem)
        let cases = [
            ("{ allow: [\"https://pypi.org/\"] }", "plancd.yaml:4:24: error[schema]: roles.coder.network.allow[0]"),
            ("{ allow: [pypi.org, \"a..b\"] }", "plancd.yaml:4:34: error[schema]: roles.coder.network.allow[1]"),
            (
                "{ allow: [\"pypi.org:70000\"] }",
                "plancd.yaml:4:24: error[bad-host]: roles.coder.network.allow[0]: allowlist entry `pypi.org:70000` is not",
            ),
            ("{ alow: [pypi.org] }", "plancd.yaml:4:16: error[unknown-field]: roles.coder.network.alow"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(network, expected)| {
                let text = format!("roles:\n  coder:\n    command: [agent]\n    network: {network}\n");
                let shown: Vec<String> = load(&text).unwrap_err().iter().map(ToString::to_string).collect();
                (!shown.iter().any(|s| s.starts_with(expected))).then(|| format!("{network}: {shown:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn environment_overrides_the_file_and_bad_values_name_the_variable() {
        let mut config = load("concurrency: 2\nbranch: main\n").unwrap();
        config
            .apply_env(&Env::from_pairs([("PLANCD_CONCURRENCY", "8"), ("PLANCD_BRANCH", "trunk"), ("PLANCD_SANDBOX_BACKEND", "docker")]))
            .unwrap();
        assert_eq!((config.concurrency, config.branch.as_str(), config.sandbox.backend), (8, "trunk", SandboxBackend::Docker));
        let err = config.apply_env(&Env::from_pairs([("PLANCD_CONCURRENCY", "lots")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable PLANCD_CONCURRENCY=\"lots\": expected a whole number from 1 to 1024");
    }
}
