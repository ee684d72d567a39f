//! `plancd plan "<request>"`: the planner model turns a request into a plan (a TodoList) that
//! passes `plancd validate`. Every problem found is fed back to the model, up to three tries;
//! the plan is written under `plans/` only once it is valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::validate::repository_root;
use crate::agent::model::budget::{Ledger, Meter};
use crate::agent::model::cache::Cache;
use crate::agent::model::transcript::{Transcript, scrub};
use crate::agent::model::{self, AskError, ChatRequest, Message, ReplyKey, ToolResult, ToolSpec};
use crate::agent::roles;
use crate::config::{Config, Env};
use crate::spec::{
    CheckContext, Diagnostic, DirSource, Document, FileSource, Format, Limits, Role, TodoList, load_plan, ref_component_problem,
};
use crate::state::{Cost, Store};

/// Tries the model gets to produce a valid plan.
pub const TRIES: u32 = 3;

/// What to plan.
pub struct PlanOptions {
    /// The request, in words.
    pub request: String,
    /// Where to start looking for the repository.
    pub cwd: PathBuf,
    /// A folder for the plan (named after its workflow id), or a file path.
    pub out: PathBuf,
    /// The model (default: roles.planner.model, else the model named `default`, else the only one).
    pub model: Option<String>,
    /// Where API keys are read.
    pub env: Env,
    /// Replace an existing file.
    pub force: bool,
}

/// A plan written.
#[derive(Debug)]
pub struct PlanReport {
    /// Where it was written.
    pub path: PathBuf,
    /// The plan.
    pub list: TodoList,
    /// Tries used.
    pub tries: u32,
    /// The model (`scripted`, or `provider/model`).
    pub model: String,
    /// What it cost.
    pub cost: Cost,
}

/// Why no plan was written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// plancd.yaml is invalid.
    #[error("plancd.yaml is invalid")]
    Config(Vec<Diagnostic>),
    /// No model is configured for planning.
    #[error("no model to plan with: pass --model NAME, or set roles.planner.model in plancd.yaml")]
    NoModel,
    /// The model or its prompt is not usable, or its API failed.
    #[error("{0}")]
    Model(String),
    /// A budget is spent.
    #[error("stopped at the budget: {0}")]
    Budget(String),
    /// The model did not produce a valid plan.
    #[error("no valid plan after {tries} tries")]
    Invalid {
        /// Tries used.
        tries: u32,
        /// The last try's problems.
        diagnostics: Vec<Diagnostic>,
    },
    /// The file exists.
    #[error("{} exists: pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl PlanError {
    /// Whether the fault is in the input (exit 2), as opposed to the model failing (exit 3)
    /// or producing nothing valid (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PlanError::Config(_) | PlanError::NoModel | PlanError::Exists(_))
    }

    /// Whether an outside part failed (exit 3).
    pub fn is_outside(&self) -> bool {
        matches!(self, PlanError::Model(_) | PlanError::Io { .. })
    }
}

/// The model to plan with.
fn pick_model(config: &Config, asked: Option<&str>) -> Result<String, PlanError> {
    if let Some(name) = asked.or(config.roles.get(&Role::Planner).and_then(|r| r.model.as_deref())) {
        return Ok(name.to_owned());
    }
    if config.models.contains_key("default") {
        return Ok("default".into());
    }
    match config.models.keys().collect::<Vec<_>>().as_slice() {
        [only] => Ok((*only).clone()),
        _ => Err(PlanError::NoModel),
    }
}

/// Plans `opts.request` and writes the plan. One loop, in the order of the conversation: each
/// try is a request, a check of the submitted plan, and the problems fed back.
pub async fn plan(opts: &PlanOptions) -> Result<PlanReport, PlanError> {
    let root = repository_root(&opts.cwd);
    let source = DirSource::new(&root);
    let config = Config::load(&source).map_err(PlanError::Config)?.0;
    let name = pick_model(&config, opts.model.as_deref())?;
    let cache = Store::open(&root).ok().map(|s| Cache::new(Arc::new(s)));
    let model = model::open(&name, &config, &opts.env, &source, cache).map_err(|e| PlanError::Model(e.to_string()))?;
    let configured = config.roles.get(&Role::Planner).and_then(|r| r.prompt.as_deref());
    let system = roles::system_prompt(Role::Planner, configured, &source).map_err(PlanError::Model)?;
    let ledger = Ledger::default();
    let meter = Meter::new(model.limits, &ledger, "", Cost::default());
    let transcript = Transcript::new(model.secrets.clone());
    let mut req = ChatRequest {
        system,
        messages: vec![Message::User { text: brief(&opts.request, &source) }],
        tools: vec![submit_tool()],
        max_output_tokens: model.max_output_tokens,
        temperature: model.temperature,
        key: ReplyKey::default(),
    };
    // The plan is checked as written; whether plancd.yaml has agents for its roles yet is
    // `plancd validate`'s question, asked once the plan is committed.
    let cx = CheckContext { unplayable: None, ..CheckContext::new(&source, &config) };
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut tries = 0;
    let mut last = Vec::new();
    while tries < TRIES {
        req.key.attempt = tries + 1;
        let reply = model.ask(&req, &meter, &transcript, deadline).await.map_err(|e| match e {
            AskError::Budget(why) => PlanError::Budget(why),
            AskError::Deadline => PlanError::Model(format!("model `{name}`: no plan within 30 minutes")),
            AskError::Model(e) => PlanError::Model(scrub(&format!("model `{name}`: {e}"), &model.secrets)),
        })?;
        let calls = reply.response.calls.clone();
        req.messages.push(Message::Assistant { text: reply.response.text, calls: calls.clone() });
        let Some(call) = calls.iter().find(|c| c.name == "submit_plan") else {
            tries += 1;
            req.messages.push(Message::User { text: "Submit the plan with the submit_plan tool.".into() });
            continue;
        };
        tries += 1;
        let text = call.arguments.get("plan").and_then(|p| p.as_str()).unwrap_or_default().to_owned();
        match check(&text, opts, &root, &cx) {
            Ok((path, list)) => {
                write(&path, &text, opts.force)?;
                return Ok(PlanReport { path, list, tries, model: model.identity.clone(), cost: meter.spent() });
            }
            Err(diags) => {
                let problems = diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect::<Vec<_>>().join("\n");
                let content = format!("the plan is not valid:\n{problems}\nFix every problem and submit the whole plan again.");
                req.messages.push(Message::Tool {
                    results: vec![ToolResult { call_id: call.id.clone(), name: call.name.clone(), content, is_error: true }],
                });
                last = diags;
            }
        }
    }
    Err(PlanError::Invalid { tries, diagnostics: last })
}

fn submit_tool() -> ToolSpec {
    ToolSpec {
        name: "submit_plan".into(),
        description: "Submit the whole plan as YAML. plancd validates it and answers with every problem it finds.".into(),
        parameters: json!({"type": "object", "properties": {"plan": {"type": "string", "description": "The plan, as YAML."}}, "required": ["plan"]}),
    }
}

/// The request, with what the repository holds, so that the plan names files that exist.
fn brief(request: &str, source: &DirSource) -> String {
    let files = source.files().unwrap_or_default();
    let shown: Vec<&String> = files.iter().filter(|f| !f.starts_with(".git/")).take(300).collect();
    let mut out = format!("Plan this request:\n\n{}\n\nThe repository's files:\n", request.trim());
    for f in &shown {
        out.push_str(&format!("- {f}\n"));
    }
    if files.len() > shown.len() {
        out.push_str(&format!("[{} more]\n", files.len() - shown.len()));
    }
    out
}

/// Validates the plan's text as `plancd validate` would; returns where it goes.
fn check(text: &str, opts: &PlanOptions, root: &Path, cx: &CheckContext<'_>) -> Result<(PathBuf, TodoList), Vec<Diagnostic>> {
    // The file name follows the workflow id, which only the text knows: read it leniently first.
    let id = Document::parse(text.as_bytes(), Format::Yaml, &Limits::default())
        .ok()
        .and_then(|d| d.value.get("todo_list_id").and_then(|i| i.as_str()).map(str::to_owned))
        .filter(|id| ref_component_problem(id).is_none())
        .unwrap_or_else(|| "plan".into());
    let path = output_path(&opts.out, &opts.cwd, &id);
    let shown = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
    let (list, diags) = load_plan(&shown, text.as_bytes(), cx);
    match list {
        Some(list) => Ok((path, list)),
        None => Err(diags),
    }
}

/// `out` as a file: itself when it names a YAML or JSON file, else `<out>/<id>.yaml`.
fn output_path(out: &Path, cwd: &Path, id: &str) -> PathBuf {
    let out = cwd.join(out);
    let is_file = out.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
    if is_file { out } else { out.join(format!("{id}.yaml")) }
}

fn write(path: &Path, text: &str, force: bool) -> Result<(), PlanError> {
    if path.exists() && !force {
        return Err(PlanError::Exists(path.to_path_buf()));
    }
    let io = |source| PlanError::Io { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut text = text.trim_end().to_owned();
    text.push('\n');
    std::fs::write(path, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planner_model_is_named_configured_default_or_the_only_one() {
        let config: Config =
            serde_json::from_value(json!({"models": {"a": {"provider": "scripted"}, "b": {"provider": "scripted"}}})).unwrap();
        assert!(matches!(pick_model(&config, None), Err(PlanError::NoModel)));
        assert_eq!(pick_model(&config, Some("b")).unwrap(), "b");
        let one: Config = serde_json::from_value(json!({"models": {"x": {"provider": "scripted"}}})).unwrap();
        assert_eq!(pick_model(&one, None).unwrap(), "x");
        let planner: Config =
            serde_json::from_value(json!({"roles": {"planner": {"model": "p"}}, "models": {"default": {"provider": "scripted"}}})).unwrap();
        assert_eq!(pick_model(&planner, None).unwrap(), "p");
    }

    #[test]
    fn plans_go_into_a_folder_by_workflow_id_or_to_a_named_file() {
        let cwd = Path::new("/r");
        assert_eq!(output_path(Path::new("plans"), cwd, "momentum"), Path::new("/r/plans/momentum.yaml"));
        assert_eq!(output_path(Path::new("plans/x.yml"), cwd, "momentum"), Path::new("/r/plans/x.yml"));
    }
}
