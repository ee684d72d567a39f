//! Environments that repositories already declare for other tools — a dev container
//! (`.devcontainer/devcontainer.json`) or GitHub Copilot's `copilot-setup-steps.yml` — read
//! into the shape of plancd's `environment:`, with a note for everything that was not taken.

use serde::Serialize;

/// Where a dev container is declared, in the order the dev container tools look.
pub const DEVCONTAINER_FILES: [&str; 2] = [".devcontainer/devcontainer.json", ".devcontainer.json"];
/// GitHub Copilot coding agent's setup workflow.
pub const COPILOT_SETUP_STEPS: &str = ".github/workflows/copilot-setup-steps.yml";
/// The job of [`COPILOT_SETUP_STEPS`] that Copilot runs.
const COPILOT_JOB: &str = "copilot-setup-steps";
/// Where the workspace sits while setup commands run (and in every attempt).
pub const WORKSPACE: &str = "/workspace";

/// An environment read from a repository's conventions, with the field names of plancd.yaml's
/// `environment:` section plus where it came from and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectedEnvironment {
    /// Commands run in the workspace, in order, with network to the registries.
    pub setup: Vec<String>,
    /// Files whose content keys the environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<String>,
    /// The image, for the docker backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hosts the setup may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
    /// The file(s) it was read from.
    #[serde(skip)]
    pub source: String,
    /// What was taken with a caveat, or not taken, and why.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Reads the environment a repository's conventions declare, for when plancd.yaml has no
/// `environment:`. `read` returns a repository file's content (`None`: no such file).
///
/// A dev container's commands win over `copilot-setup-steps.yml` when both have some; the
/// dev container's image is kept either way. `None` when the repository has neither file.
pub fn from_conventions(read: impl Fn(&str) -> Option<Vec<u8>>) -> Option<DetectedEnvironment> {
    let devcontainer = DEVCONTAINER_FILES.iter().find_map(|f| read(f).map(|bytes| devcontainer(f, &String::from_utf8_lossy(&bytes))));
    let copilot = read(COPILOT_SETUP_STEPS).map(|bytes| copilot_setup_steps(&String::from_utf8_lossy(&bytes)));
    let mut env = match (devcontainer, copilot) {
        (None, None) => return None,
        (Some(d), None) => d,
        (None, Some(c)) => c,
        (Some(mut d), Some(c)) if d.setup.is_empty() && !c.setup.is_empty() => {
            d.notes.push(format!("{} has no commands: the setup steps come from {COPILOT_SETUP_STEPS}", d.source));
            d.notes.extend(c.notes);
            d.setup = c.setup;
            d.source = format!("{} + {COPILOT_SETUP_STEPS}", d.source);
            d
        }
        (Some(mut d), Some(_)) => {
            d.notes.push(format!("{COPILOT_SETUP_STEPS} not used: the dev container's commands are preferred"));
            d
        }
    };
    env.cache.insert(0, env.source.split(" + ").next().unwrap_or_default().to_owned());
    if env.source.contains(" + ") {
        env.cache.push(COPILOT_SETUP_STEPS.to_owned());
    }
    env.cache.extend(lockfiles(&read));
    if !env.setup.is_empty() && !env.setup.iter().any(|c| c.contains("/env")) {
        env.notes.push("no command writes to /env: only /env persists into the cached environment, on either backend".to_owned());
    }
    Some(env)
}

/// The files that usually pin a project's dependencies, those of them the repository has.
fn lockfiles(read: &impl Fn(&str) -> Option<Vec<u8>>) -> Vec<String> {
    const FILES: [&str; 14] = [
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "requirements.txt",
        "requirements-dev.txt",
        "poetry.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "Cargo.lock",
        "go.mod",
        "go.sum",
    ];
    FILES.iter().filter(|f| read(f).is_some()).map(|f| (*f).to_owned()).collect()
}

/// A parsed JSONC value, objects in the file's order.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    Other(String),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let options = jsonc_parser::ParseOptions::default();
        match jsonc_parser::parse_to_ast(text, &Default::default(), &options) {
            Ok(parsed) => parsed.value.as_ref().map(Json::from_ast).ok_or_else(|| "the file is empty".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn from_ast(value: &jsonc_parser::ast::Value<'_>) -> Json {
        use jsonc_parser::ast::Value as Ast;
        match value {
            Ast::StringLit(s) => Json::Str(s.value.to_string()),
            Ast::Array(a) => Json::Arr(a.elements.iter().map(Json::from_ast).collect()),
            Ast::Object(o) => Json::Obj(o.properties.iter().map(|p| (p.name.as_str().to_owned(), Json::from_ast(&p.value))).collect()),
            Ast::NumberLit(n) => Json::Other(n.value.to_owned()),
            Ast::BooleanLit(b) => Json::Other(b.value.to_string()),
            Ast::NullKeyword(_) => Json::Other("null".to_owned()),
        }
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The dev container lifecycle commands that prepare a container once, in the order the dev
/// container tools run them.
const CREATE_COMMANDS: [&str; 3] = ["onCreateCommand", "updateContentCommand", "postCreateCommand"];
/// Lifecycle commands that run on every start or attach: no part of building an environment.
const START_COMMANDS: [&str; 3] = ["postStartCommand", "postAttachCommand", "initializeCommand"];

/// Reads a `devcontainer.json` (JSON with comments and trailing commas).
fn devcontainer(file: &str, text: &str) -> DetectedEnvironment {
    let mut env = DetectedEnvironment { source: file.to_owned(), ..DetectedEnvironment::default() };
    let root = match Json::parse(text) {
        Ok(root @ Json::Obj(_)) => root,
        Ok(_) => {
            env.notes.push(format!("{file} not taken: it is no JSON object"));
            return env;
        }
        Err(e) => {
            env.notes.push(format!("{file} not taken: {e}"));
            return env;
        }
    };
    match root.get("image").and_then(Json::as_str) {
        Some(image) => {
            env.image = Some(image.to_owned());
            env.notes.push(format!("image `{image}` taken (docker backend only)"));
        }
        None if root.get("build").is_some() || root.get("dockerFile").is_some() => {
            env.notes.push("build (a Dockerfile) not taken: plancd does not build images; set environment.image".to_owned());
        }
        None if root.get("dockerComposeFile").is_some() => {
            env.notes.push("dockerComposeFile not taken: plancd runs one sandbox, not a compose project".to_owned());
        }
        None => {}
    }
    if let Some(Json::Obj(features)) = root.get("features") {
        env.notes.extend(features.iter().map(|(id, options)| feature_note(id, options)));
    }
    for key in CREATE_COMMANDS {
        if let Some(value) = root.get(key) {
            match lifecycle_commands(value) {
                Ok(commands) => env.setup.extend(commands.into_iter().map(|c| workspace_variables(&c, key, &mut env.notes))),
                Err(problem) => env.notes.push(format!("{key} not taken: {problem}")),
            }
        }
    }
    for key in START_COMMANDS.iter().filter(|k| root.get(k).is_some()) {
        env.notes.push(format!("{key} not taken: it runs on every start, not once to build the environment"));
    }
    for key in ["containerEnv", "remoteEnv"].iter().filter(|k| root.get(k).is_some()) {
        env.notes.push(format!("{key} not taken: set variables in the setup commands that need them"));
    }
    env
}

/// What plancd says about one dev container feature: none is installed, the language
/// features name the version the sandbox must then provide.
fn feature_note(id: &str, options: &Json) -> String {
    let name = id.rsplit('/').next().unwrap_or(id).split([':', '@']).next().unwrap_or(id);
    let version = options.get("version").and_then(Json::as_str);
    match (name, version) {
        ("python" | "node" | "go" | "rust" | "java" | "ruby" | "dotnet", Some(v)) => {
            format!("feature `{id}` not taken: the image (or the process sandbox's root) must provide {name} {v}")
        }
        ("python" | "node" | "go" | "rust" | "java" | "ruby" | "dotnet", None) => {
            format!("feature `{id}` not taken: the image (or the process sandbox's root) must provide {name}")
        }
        _ => format!("feature `{id}` not taken: plancd does not install dev container features"),
    }
}

/// A lifecycle command in its three forms: a string (run by a shell), an array (one command,
/// no shell: quoted here), or an object of named commands (run in parallel by the dev
/// container tools; one after the other here, in the file's order).
fn lifecycle_commands(value: &Json) -> Result<Vec<String>, String> {
    match value {
        Json::Str(s) if s.trim().is_empty() => Ok(Vec::new()),
        Json::Str(s) => Ok(vec![s.clone()]),
        Json::Arr(args) => argv(args).map(|c| vec![c]),
        Json::Obj(named) => {
            let mut out = Vec::new();
            for (name, v) in named {
                match v {
                    Json::Str(s) if !s.trim().is_empty() => out.push(s.clone()),
                    Json::Str(_) => {}
                    Json::Arr(args) => out.push(argv(args)?),
                    _ => return Err(format!("`{name}` is neither a string nor an array")),
                }
            }
            Ok(out)
        }
        Json::Other(v) => Err(format!("`{v}` is neither a string, an array nor an object")),
    }
}

fn argv(args: &[Json]) -> Result<String, String> {
    let words: Option<Vec<&str>> = args.iter().map(Json::as_str).collect();
    match words {
        Some(w) if !w.is_empty() => Ok(w.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")),
        Some(_) => Err("the array is empty".to_owned()),
        None => Err("an array entry is not a string".to_owned()),
    }
}

/// `word` as one word for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Replaces `${containerWorkspaceFolder}` with plancd's workspace; any other `${...}` variable
/// is left as it is and noted.
fn workspace_variables(command: &str, key: &str, notes: &mut Vec<String>) -> String {
    let out = command.replace("${containerWorkspaceFolder}", WORKSPACE);
    if let Some(start) = out.find("${") {
        let var: String = out[start..].chars().take_while(|&c| c != '}').chain(std::iter::once('}')).collect();
        notes.push(format!("{key}: `{var}` is not replaced: it is a dev container variable"));
    }
    out
}

/// Reads `copilot-setup-steps.yml`: the `run:` steps of its one job become setup commands.
fn copilot_setup_steps(text: &str) -> DetectedEnvironment {
    let file = COPILOT_SETUP_STEPS;
    let mut env = DetectedEnvironment { source: file.to_owned(), ..DetectedEnvironment::default() };
    use crate::spec::{Document, Format, Limits};
    let root = match Document::parse(text.as_bytes(), Format::Yaml, &Limits::default()) {
        Ok(doc) => doc.value,
        Err(errors) => {
            let first = errors.first().map_or_else(|| "not YAML".to_owned(), |e| format!("line {}: {}", e.pos.line, e.message));
            env.notes.push(format!("{file} not taken: {first}"));
            return env;
        }
    };
    let Some(job) = root.get("jobs").and_then(|j| j.get(COPILOT_JOB)) else {
        env.notes.push(format!("{file} not taken: it has no job `{COPILOT_JOB}`"));
        return env;
    };
    if let Some(image) = job.get("container").and_then(|c| c.as_str().or_else(|| c.get("image").and_then(|i| i.as_str()))) {
        env.image = Some(image.to_owned());
        env.notes.push(format!("container `{image}` taken as the image (docker backend only)"));
    }
    if job.get("env").is_some() || job.get("defaults").is_some() {
        env.notes.push(format!("jobs.{COPILOT_JOB}: env and defaults not taken"));
    }
    let steps = job.get("steps").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        match copilot_step(step) {
            Step::Command(c) => env.setup.push(c),
            Step::Note(n) => env.notes.push(format!("step {} {n}", step_name(step, i))),
        }
    }
    env
}

/// What one workflow step becomes.
#[derive(Debug, PartialEq)]
enum Step {
    Command(String),
    Note(String),
}

fn step_name(step: &serde_json::Value, index: usize) -> String {
    match step.get("name").and_then(|n| n.as_str()) {
        Some(name) => format!("{} ({name})", index + 1),
        None => (index + 1).to_string(),
    }
}

fn copilot_step(step: &serde_json::Value) -> Step {
    let text = |key: &str| step.get(key).and_then(|v| v.as_str());
    if let Some(uses) = text("uses") {
        return Step::Note(uses_note(uses, step.get("with")));
    }
    let Some(run) = text("run") else { return Step::Note("not taken: neither `run` nor `uses`".to_owned()) };
    if step.get("if").is_some() {
        return Step::Note("not taken: it has an `if:` condition".to_owned());
    }
    if run.contains("${{") {
        return Step::Note("not taken: it uses a GitHub Actions expression (`${{ }}`)".to_owned());
    }
    if let Some(shell) = text("shell").filter(|s| !matches!(*s, "bash" | "sh")) {
        return Step::Note(format!("not taken: shell `{shell}`"));
    }
    if step.get("env").is_some() {
        return Step::Note("not taken: it sets `env:` (which may hold secrets)".to_owned());
    }
    let run = run.trim_end().to_owned();
    match text("working-directory") {
        Some(dir) => Step::Command(format!("cd {} && {run}", shell_quote(dir))),
        None => Step::Command(run),
    }
}

/// What plancd says about a `uses:` step.
fn uses_note(uses: &str, with: Option<&serde_json::Value>) -> String {
    let action = uses.split('@').next().unwrap_or(uses);
    let input = |key: &str| with.and_then(|w| w.get(key)).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let wants = |lang: &str, key: &str| match input(key) {
        Some(v) => format!("not taken: `{uses}` wants {lang} {v}: the image (or the process sandbox's root) must provide it"),
        None => format!("not taken: `{uses}`: the image (or the process sandbox's root) must provide {lang}"),
    };
    match action {
        "actions/checkout" => "not needed: the workspace is the checkout".to_owned(),
        "actions/cache" => "not needed: plancd caches the environment by its `cache:` files".to_owned(),
        "actions/setup-python" => wants("Python", "python-version"),
        "actions/setup-node" => wants("Node", "node-version"),
        "actions/setup-go" => wants("Go", "go-version"),
        "actions/setup-java" => wants("Java", "java-version"),
        "dtolnay/rust-toolchain" | "actions-rs/toolchain" => wants("Rust", "toolchain"),
        _ => format!("not taken: `{uses}` is an action plancd does not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn repo(files: &[(&str, &str)]) -> impl Fn(&str) -> Option<Vec<u8>> {
        let files: BTreeMap<String, Vec<u8>> = files.iter().map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec())).collect();
        move |path: &str| files.get(path).cloned()
    }

    fn has_note(env: &DetectedEnvironment, part: &str) -> bool {
        env.notes.iter().any(|n| n.contains(part))
    }

    /// The Python template of devcontainers/templates, with its comments.
    const PYTHON_TEMPLATE: &str = r#"// For format details, see https://aka.ms/devcontainer.json. For config options, see the
// README at: https://github.com/devcontainers/templates/tree/main/src/python
{
	"name": "Python 3",
	// Or use a Dockerfile or Docker Compose file. More info: https://containers.dev/guide/dockerfile
	"image": "mcr.microsoft.com/devcontainers/python:1-3.12-bullseye",

	// Features to add to the dev container. More info: https://containers.dev/features.
	// "features": {},

	// Use 'forwardPorts' to make a list of ports inside the container available locally.
	// "forwardPorts": [],

	// Use 'postCreateCommand' to run commands after the container is created.
	"postCreateCommand": "pip3 install --user -r requirements.txt",

	// Configure tool-specific properties.
	"customizations": {
		"vscode": {
			"extensions": ["ms-python.python",],
		},
	},
}
"#;

    /// A Node project's container in the shape the typescript-node template and many
    /// projects use: features, an object of named create commands, start commands.
    const NODE_FEATURES: &str = r#"{
  "name": "widgets",
  "image": "mcr.microsoft.com/devcontainers/typescript-node:1-20-bookworm",
  "features": {
    "ghcr.io/devcontainers/features/github-cli:1": {},
    "ghcr.io/devcontainers/features/python:1": { "version": "3.11" },
    "ghcr.io/devcontainers/features/docker-in-docker:2": { "moby": true },
  },
  "onCreateCommand": ["npm", "ci", "--no-audit"],
  "postCreateCommand": {
    "build": "npm run build",
    "hooks": "git config core.hooksPath .githooks",
    "greet": ["echo", "it's ready"],
  },
  "postStartCommand": "npm run watch &",
  "remoteEnv": { "PATH": "${containerEnv:PATH}:/workspaces/widgets/node_modules/.bin" },
}
"#;

    /// A container built from a Dockerfile, with a command in `${containerWorkspaceFolder}`.
    const DOCKERFILE: &str = r#"{
    "build": { "dockerfile": "Dockerfile", "context": ".." },
    /* one create step */
    "updateContentCommand": "cd ${containerWorkspaceFolder} && python3 -m venv /env && /env/bin/pip install -e '.[test]'",
    "postCreateCommand": "echo ${localEnv:HOME}"
}"#;

    /// GitHub's documented example of copilot-setup-steps.yml, with a Python step added.
    const COPILOT: &str = r#"name: "Copilot Setup Steps"

on:
  workflow_dispatch:
  push:
    paths:
      - .github/workflows/copilot-setup-steps.yml

jobs:
  # The job MUST be called `copilot-setup-steps` or it will not be picked up by Copilot.
  copilot-setup-steps:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - name: Checkout code
        uses: actions/checkout@v5

      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: "3.12"

      - name: Set up Node.js
        uses: actions/setup-node@v4
        with:
          node-version: "20"
          cache: "npm"

      - name: Install JavaScript dependencies
        run: npm ci

      - name: Install Python tools
        working-directory: tools
        run: |
          python -m venv /env
          /env/bin/pip install -r requirements.txt

      - name: Private registry
        run: npm config set //npm.pkg.github.com/:_authToken ${{ secrets.NPM_TOKEN }}

      - name: Only on Linux
        if: runner.os == 'Linux'
        run: sudo apt-get install -y jq

      - uses: astral-sh/setup-uv@v6
"#;

    #[test]
    fn a_repository_without_conventions_has_none() {
        assert_eq!(from_conventions(repo(&[("README.md", "hi"), ("pyproject.toml", "")])), None);
    }

    #[test]
    fn the_python_template_gives_its_image_and_command_with_comments_and_trailing_commas() {
        let env = from_conventions(repo(&[(".devcontainer/devcontainer.json", PYTHON_TEMPLATE), ("requirements.txt", "flask\n")])).unwrap();
        assert_eq!(env.source, ".devcontainer/devcontainer.json");
        assert_eq!(env.image.as_deref(), Some("mcr.microsoft.com/devcontainers/python:1-3.12-bullseye"));
        assert_eq!(env.setup, ["pip3 install --user -r requirements.txt"]);
        assert_eq!(env.cache, [".devcontainer/devcontainer.json", "requirements.txt"]);
        assert!(has_note(&env, "no command writes to /env"), "{:?}", env.notes);
    }

    #[test]
    fn command_forms_features_and_start_commands() {
        let env = from_conventions(repo(&[(".devcontainer/devcontainer.json", NODE_FEATURES), ("package.json", "{}")])).unwrap();
        assert_eq!(
            env.setup,
            ["npm ci --no-audit", "npm run build", "git config core.hooksPath .githooks", r"echo 'it'\''s ready'"],
            "an array is one command without a shell; an object's commands run in the file's order"
        );
        assert_eq!(env.cache, [".devcontainer/devcontainer.json", "package.json"]);
        for part in [
            "feature `ghcr.io/devcontainers/features/github-cli:1` not taken: plancd does not install",
            "feature `ghcr.io/devcontainers/features/python:1` not taken: the image (or the process sandbox's root) must provide python 3.11",
            "feature `ghcr.io/devcontainers/features/docker-in-docker:2` not taken",
            "postStartCommand not taken",
            "remoteEnv not taken",
        ] {
            assert!(has_note(&env, part), "{part}: {:#?}", env.notes);
        }
    }

    /// The shape of actions/typescript-action's container: a token passed in through
    /// `remoteEnv`, which must stay out of the environment.
    const TYPESCRIPT_ACTION: &str = r#"{
  "name": "GitHub Actions (TypeScript)",
  "image": "mcr.microsoft.com/devcontainers/typescript-node:20",
  "postCreateCommand": "npm install",
  "customizations": { "codespaces": { "openFiles": ["README.md"] } },
  "remoteEnv": { "GITHUB_TOKEN": "${localEnv:GITHUB_TOKEN}" },
  "features": {
    "ghcr.io/devcontainers/features/github-cli:1": {},
    "ghcr.io/devcontainers-community/npm-features/prettier:1": {}
  }
}"#;

    #[test]
    fn environment_variables_of_the_container_stay_out() {
        let env = from_conventions(repo(&[(".devcontainer/devcontainer.json", TYPESCRIPT_ACTION)])).unwrap();
        assert_eq!(env.setup, ["npm install"]);
        assert_eq!(env.image.as_deref(), Some("mcr.microsoft.com/devcontainers/typescript-node:20"));
        assert!(has_note(&env, "remoteEnv not taken"));
        assert!(has_note(&env, "feature `ghcr.io/devcontainers-community/npm-features/prettier:1` not taken"));
        assert!(!format!("{env:?}").contains("GITHUB_TOKEN"));
    }

    #[test]
    fn a_dockerfile_is_reported_and_the_workspace_variable_replaced() {
        let env = from_conventions(repo(&[(".devcontainer.json", DOCKERFILE)])).unwrap();
        assert_eq!(env.source, ".devcontainer.json");
        assert_eq!(env.image, None);
        assert_eq!(env.setup[0], "cd /workspace && python3 -m venv /env && /env/bin/pip install -e '.[test]'");
        assert!(has_note(&env, "build (a Dockerfile) not taken"));
        assert!(has_note(&env, "postCreateCommand: `${localEnv:HOME}` is not replaced"), "{:?}", env.notes);
        assert!(!has_note(&env, "no command writes to /env"));
    }

    #[test]
    fn bad_devcontainer_files_are_noted_not_taken() {
        let rows: [(&str, &str); 4] = [
            ("{ \"image\": ", "not taken: "),
            ("[1, 2]", "it is no JSON object"),
            ("{ \"postCreateCommand\": 42 }", "postCreateCommand not taken: `42` is neither"),
            ("{ \"onCreateCommand\": [] }", "onCreateCommand not taken: the array is empty"),
        ];
        for (text, note) in rows {
            let env = from_conventions(repo(&[(".devcontainer/devcontainer.json", text)])).unwrap();
            assert!(env.setup.is_empty(), "{text}");
            assert!(has_note(&env, note), "{text}: {:?}", env.notes);
        }
    }

    #[test]
    fn copilot_setup_steps_run_steps_become_commands_and_the_rest_is_noted() {
        let env = from_conventions(repo(&[(COPILOT_SETUP_STEPS, COPILOT)])).unwrap();
        assert_eq!(env.source, COPILOT_SETUP_STEPS);
        assert_eq!(env.setup, ["npm ci", "cd tools && python -m venv /env\n/env/bin/pip install -r requirements.txt"]);
        assert_eq!(env.image, None);
        for part in [
            "step 1 (Checkout code) not needed: the workspace is the checkout",
            "step 2 (Set up Python) not taken: `actions/setup-python@v5` wants Python 3.12",
            "step 3 (Set up Node.js) not taken: `actions/setup-node@v4` wants Node 20",
            "step 6 (Private registry) not taken: it uses a GitHub Actions expression",
            "step 7 (Only on Linux) not taken: it has an `if:` condition",
            "step 8 not taken: `astral-sh/setup-uv@v6` is an action plancd does not run",
        ] {
            assert!(has_note(&env, part), "{part}: {:#?}", env.notes);
        }
        assert!(!env.setup.iter().any(|c| c.contains("secrets")), "a step with a secret is never taken");
    }

    #[test]
    fn copilot_files_without_the_job_or_yaml_are_noted() {
        let rows = [
            ("jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps: []\n", "has no job `copilot-setup-steps`"),
            ("jobs: [unclosed\n", "not taken: "),
            (
                "jobs:\n  copilot-setup-steps:\n    container: node:20\n    steps:\n      - run: make\n        shell: pwsh\n",
                "not taken: shell `pwsh`",
            ),
        ];
        for (text, note) in rows {
            let env = from_conventions(repo(&[(COPILOT_SETUP_STEPS, text)])).unwrap();
            assert!(env.setup.is_empty(), "{text}");
            assert!(has_note(&env, note), "{text}: {:?}", env.notes);
        }
    }

    #[test]
    fn a_devcontainers_commands_are_preferred_and_its_image_kept_when_it_has_none() {
        let both = from_conventions(repo(&[(".devcontainer/devcontainer.json", PYTHON_TEMPLATE), (COPILOT_SETUP_STEPS, COPILOT)])).unwrap();
        assert_eq!(both.setup, ["pip3 install --user -r requirements.txt"]);
        assert!(has_note(&both, "copilot-setup-steps.yml not used: the dev container's commands are preferred"));

        let image_only = r#"{ "image": "python:3.12-slim" }"#;
        let merged = from_conventions(repo(&[(".devcontainer/devcontainer.json", image_only), (COPILOT_SETUP_STEPS, COPILOT)])).unwrap();
        assert_eq!(merged.image.as_deref(), Some("python:3.12-slim"));
        assert_eq!(merged.setup.len(), 2);
        assert_eq!(merged.source, ".devcontainer/devcontainer.json + .github/workflows/copilot-setup-steps.yml");
        assert_eq!(merged.cache, [".devcontainer/devcontainer.json", COPILOT_SETUP_STEPS]);
    }

    #[test]
    fn words_are_quoted_for_a_shell_only_when_needed() {
        let rows = [
            ("npm", "npm"),
            ("--prefix=/env", "--prefix=/env"),
            ("a b", "'a b'"),
            ("", "''"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
        ];
        for (word, quoted) in rows {
            assert_eq!(shell_quote(word), quoted, "{word}");
        }
    }

    #[test]
    fn the_environment_serialises_with_the_schema_field_names() {
        let env = DetectedEnvironment {
            setup: vec!["make".into()],
            cache: vec!["go.sum".into()],
            image: Some("golang:1.23".into()),
            network: vec!["proxy.golang.org".into()],
            source: "x".into(),
            notes: vec!["y".into()],
        };
        let value = serde_json::to_value(&env).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"setup": ["make"], "cache": ["go.sum"], "image": "golang:1.23", "network": ["proxy.golang.org"]})
        );
    }
}
