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
/// and every contract a plan names.
pub fn load_specs(source: &dyn FileSource, config: &Config) -> io::Result<Specs> {
    let mut specs = Specs::default();
    let (plan_globs, contract_globs) = match (globset(&config.plans), globset(&config.contracts)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            specs.diagnostics.push(Diagnostic::error("plancd.yaml", Pos::START, "bad-glob", e.to_string()));
            return Ok(specs);
        }
    };
    let files = source.files()?;
    let cx = CheckContext { source, extra_failure_types: config.extra_failure_types() };
    let mut contract_paths: BTreeSet<String> = BTreeSet::new();
    let plan_paths: Vec<&String> = files.iter().filter(|f| plan_globs.is_match(f.as_str())).collect();
    let loaded = crate::par::map(&plan_paths, |path| -> io::Result<Option<LoadedPlan>> {
        let Some(bytes) = source.read(path)? else { return Ok(None) };
        if contract_globs.is_match(path.as_str()) && classify(path, &bytes) == FileKind::Contract {
            return Ok(None); // a contract that happens to match both globs
        }
        Ok(Some(load_plan(path, &bytes, &cx)))
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
    Ok(specs)
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
