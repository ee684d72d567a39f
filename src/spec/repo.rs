//! All the specs of one repository snapshot: its plans (by the configured globs) and the
//! contracts they and the globs name, each checked, with workflow ids unique across files.

use std::collections::{BTreeSet, HashMap};
use std::io;

use globset::{GlobSet, GlobSetBuilder};

use super::diagnostic::Diagnostic;
use super::document::{Document, Format, Limits, Pos};
use super::model::{Contract, TodoList};
use super::path::FieldPath;
use super::source::FileSource;
use super::{CheckContext, load_contract, load_plan};
use crate::config::Config;

/// What kind of spec a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A plan (TodoList).
    Plan,
    /// A contract.
    Contract,
    /// `plancd.yaml`.
    Config,
    /// Recorded replies of the scripted model.
    Scripted,
}

/// A valid plan and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFile {
    /// Repository-relative path.
    pub path: String,
    /// The plan.
    pub list: TodoList,
}

/// The specs of a repository snapshot, with every problem found while loading them.
#[derive(Debug, Default)]
pub struct Specs {
    /// Valid plans, by path.
    pub plans: Vec<PlanFile>,
    /// Valid contracts, by path.
    pub contracts: Vec<(String, Contract)>,
    /// Every file checked, with its kind.
    pub checked: Vec<(String, FileKind)>,
    /// Every problem, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The plans that cannot run, each with the problems that stop it: a plan's own errors
    /// and those of the contracts it names stop that workflow and no other.
    pub invalid: Vec<InvalidPlan>,
}

/// A plan that cannot run: its errors, or those of a contract it names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InvalidPlan {
    /// The plan file (or, for a broken contract that no plan names, the contract).
    pub path: String,
    /// Its `todo_list_id`, when that much could be read and no valid plan runs that workflow.
    pub workflow: Option<String>,
    /// What is wrong (errors first, then warnings), each at its file, line and field.
    pub diagnostics: Vec<Diagnostic>,
}

impl InvalidPlan {
    /// The workflow's name for people: its id, else its file.
    pub fn name(&self) -> &str {
        self.workflow.as_deref().unwrap_or(&self.path)
    }

    /// How many errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

impl Specs {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The plan of workflow `id`.
    pub fn workflow(&self, id: &str) -> Option<&PlanFile> {
        self.plans.iter().find(|p| p.list.todo_list_id == id)
    }

    fn has_errors_in(&self, file: &str) -> bool {
        self.diagnostics.iter().any(|d| d.file == file && d.is_error())
    }

    /// The diagnostics of `file`, errors first.
    fn of_file(&self, file: &str) -> Vec<Diagnostic> {
        let mut ds: Vec<Diagnostic> = self.diagnostics.iter().filter(|d| d.file == file).cloned().collect();
        ds.sort_by_key(|d| (d.severity, d.line, d.column));
        ds
    }

    /// The errors that belong to no plan (a bad glob in plancd.yaml): they stop every workflow.
    pub fn global_errors(&self) -> Vec<Diagnostic> {
        let owned = |d: &Diagnostic| self.invalid.iter().any(|i| i.diagnostics.contains(d));
        self.diagnostics.iter().filter(|d| d.is_error() && !owned(d)).cloned().collect()
    }
}

fn globset(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(globset::GlobBuilder::new(p).literal_separator(true).build()?);
    }
    b.build()
}

/// Tells plans from contracts and recorded replies by their top-level keys (`contract_id`
/// makes a contract, `workflows` or `planner` without `tasks` a replies file), and the
/// configuration by its name.
pub fn classify(path: &str, bytes: &[u8]) -> FileKind {
    let name = path.rsplit('/').next().unwrap_or(path);
    if crate::config::CONFIG_FILES.contains(&name) {
        return FileKind::Config;
    }
    match Document::parse(bytes, Format::from_path(path), &Limits::default()) {
        Ok(doc) if doc.value.get("contract_id").is_some() && doc.value.get("tasks").is_none() => FileKind::Contract,
        Ok(doc) if (doc.value.get("workflows").is_some() || doc.value.get("planner").is_some()) && doc.value.get("tasks").is_none() => {
            FileKind::Scripted
        }
        _ => FileKind::Plan,
    }
}

/// Loads every plan the configuration's globs match in `source`, every contract they match,
/// and every contract a plan names, each checked against `config` (its failure types, and the
/// roles its agents play).
pub fn load_specs(source: &dyn FileSource, config: &Config) -> io::Result<Specs> {
    load_specs_in(source, config, &CheckContext::new(source, config))
}

/// [`load_specs`] with the checks of `cx`: for a configuration that is itself broken, checks
/// without one ([`CheckContext::without_config`]).
pub fn load_specs_in(source: &dyn FileSource, config: &Config, cx: &CheckContext<'_>) -> io::Result<Specs> {
    let mut specs = Specs::default();
    let (plan_globs, contract_globs) = match (globset(&config.plans), globset(&config.contracts)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            specs.diagnostics.push(Diagnostic::error("plancd.yaml", Pos::START, "bad-glob", e.to_string()));
            return Ok(specs);
        }
    };
    let files = source.files()?;
    let mut contract_paths: BTreeSet<String> = BTreeSet::new();
    let plan_paths: Vec<&String> = files.iter().filter(|f| plan_globs.is_match(f.as_str())).collect();
    let loaded = crate::par::map(&plan_paths, |path| -> io::Result<Option<LoadedPlan>> {
        let Some(bytes) = source.read(path)? else { return Ok(None) };
        if contract_globs.is_match(path.as_str()) && classify(path, &bytes) == FileKind::Contract {
            return Ok(None); // a contract that happens to match both globs
        }
        Ok(Some(load_plan(path, &bytes, cx)))
    });
    for (path, result) in plan_paths.into_iter().zip(loaded) {
        let Some((list, diags)) = result? else { continue };
        specs.checked.push((path.clone(), FileKind::Plan));
        specs.diagnostics.extend(diags);
        if let Some(list) = list {
            contract_paths.extend(list.tasks.iter().filter_map(|t| t.contract.clone()));
            specs.plans.push(PlanFile { path: path.clone(), list });
        }
    }
    contract_paths.extend(files.iter().filter(|f| contract_globs.is_match(f.as_str())).cloned());
    for path in contract_paths {
        let Some(bytes) = source.read(&path)? else { continue }; // reported by the plan check
        specs.checked.push((path.clone(), FileKind::Contract));
        let (contract, diags) = load_contract(&path, &bytes);
        specs.diagnostics.extend(diags);
        if let Some(contract) = contract {
            specs.contracts.push((path, contract));
        }
    }
    unique_workflows(&mut specs, source);
    group_invalid(&mut specs, source);
    Ok(specs)
}

/// Sorts the errors by the workflow they stop: a plan with errors of its own, a valid plan whose
/// contract has errors, and a broken contract that no plan names.
fn group_invalid(specs: &mut Specs, source: &dyn FileSource) {
    let mut invalid: Vec<InvalidPlan> = specs
        .checked
        .iter()
        .filter(|(path, kind)| *kind == FileKind::Plan && specs.has_errors_in(path))
        .map(|(path, _)| {
            let workflow = plan_id(source, path).filter(|id| specs.workflow(id).is_none());
            InvalidPlan { path: path.clone(), workflow, diagnostics: specs.of_file(path) }
        })
        .collect();
    let broken = specs.checked.iter().filter(|(path, kind)| *kind == FileKind::Contract && specs.has_errors_in(path));
    for (contract, _) in broken {
        let diagnostics = specs.of_file(contract);
        let users: Vec<&PlanFile> =
            specs.plans.iter().filter(|p| p.list.tasks.iter().any(|t| t.contract.as_deref() == Some(contract.as_str()))).collect();
        if users.is_empty() {
            invalid.push(InvalidPlan { path: contract.clone(), workflow: None, diagnostics: diagnostics.clone() });
        }
        for plan in users {
            match invalid.iter_mut().find(|known| known.path == plan.path) {
                Some(known) => known.diagnostics.extend(diagnostics.iter().cloned()),
                None => invalid.push(InvalidPlan {
                    path: plan.path.clone(),
                    workflow: Some(plan.list.todo_list_id.clone()),
                    diagnostics: [diagnostics.clone(), specs.of_file(&plan.path)].concat(),
                }),
            }
        }
    }
    specs.plans.retain(|p| !invalid.iter().any(|i| i.path == p.path));
    specs.invalid = invalid;
}

/// The `todo_list_id` of a plan that may not parse: from its value when it parses, else from a
/// line `todo_list_id: x` (or `"todo_list_id": "x"`) of its text, when the id is a safe one.
fn plan_id(source: &dyn FileSource, path: &str) -> Option<String> {
    let bytes = source.read(path).ok()??;
    let id = match Document::parse(&bytes, Format::from_path(path), &Limits::default()) {
        Ok(doc) => doc.value.get("todo_list_id")?.as_str()?.to_owned(),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes);
            let line = text.lines().find(|l| l.trim_start().trim_start_matches('"').starts_with("todo_list_id"))?;
            let value = line.split_once(':')?.1.trim().trim_end_matches(',');
            value.trim_matches(|c| c == '"' || c == '\'').to_owned()
        }
    };
    (super::ref_component_problem(&id).is_none() && !id.is_empty()).then_some(id)
}

type LoadedPlan = (Option<TodoList>, Vec<Diagnostic>);

/// Two plan files with one workflow id would fight over the same refs.
fn unique_workflows(specs: &mut Specs, source: &dyn FileSource) {
    let mut first: HashMap<String, String> = HashMap::new();
    let mut dropped = Vec::new();
    for (i, plan) in specs.plans.iter().enumerate() {
        let id = &plan.list.todo_list_id;
        match first.get(id) {
            Some(other) => {
                let pos = source
                    .read(&plan.path)
                    .ok()
                    .flatten()
                    .and_then(|b| Document::parse(&b, Format::from_path(&plan.path), &Limits::default()).ok())
                    .map_or(Pos::START, |d| d.locate(&FieldPath::root().key("todo_list_id")));
                specs.diagnostics.push(
                    Diagnostic::error(&plan.path, pos, "duplicate-workflow", format!("workflow id `{id}` is also used by {other}"))
                        .field(FieldPath::root().key("todo_list_id"))
                        .help("each plan file needs its own `todo_list_id`"),
                );
                dropped.push(i);
            }
            None => {
                first.insert(id.clone(), plan.path.clone());
            }
        }
    }
    for i in dropped.into_iter().rev() {
        specs.plans.remove(i);
    }
}
