//! `plancd status -o html DIR`: the dashboard's pages as a folder of static files (overview,
//! one page per workflow, one per task), for a CI artifact or a quick look without a server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::html::Links;
use super::model::{self, Overview, PageQuery, SourceSummary};
use super::pages::{STYLE_CSS, overview_html, task_html, workflow_html};
use super::{PassInfo, UiSource};
use crate::config::Env;
use crate::state::TaskKey;

/// Why the site could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Reading the repository failed.
    #[error(transparent)]
    Read(#[from] model::UiError),
    /// Writing a file failed.
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The overview page.
    pub index: PathBuf,
    /// Pages written, the overview included.
    pub pages: usize,
}

fn write(path: &Path, text: &str) -> Result<(), SiteError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| SiteError::Write(parent.to_path_buf(), e))?;
    }
    std::fs::write(path, text).map_err(|e| SiteError::Write(path.to_path_buf(), e))
}

/// Writes the pages of the repository at `repo` (plans at `branch`, else the configured one)
/// under `dir`: `index.html`, `workflows/<wf>/index.html`, `workflows/<wf>/tasks/<task>/index.html`
/// and `assets/style.css`. Every task of every workflow gets its page; a workflow's page lists
/// all its tasks at once.
pub fn write_site(repo: &Path, branch: Option<&str>, env: &Env, dir: &Path) -> Result<Site, SiteError> {
    let root = crate::state::Store::open(repo).map_err(model::UiError::from)?.path().to_path_buf();
    let repo = root.as_path();
    let name = repo.file_name().map_or_else(|| "repo".to_owned(), |n| n.to_string_lossy().into_owned());
    let source = Arc::new(UiSource::new(&name, repo.to_path_buf(), branch.map(str::to_owned), None));
    let data = model::source_data(&source, env)?;
    let overview = Overview {
        sources: vec![SourceSummary {
            name: name.clone(),
            plan_commit: data.plan_commit.clone(),
            plans_error: data.plans_error.clone(),
            last_pass: None::<PassInfo>,
            workflows: data.workflows.iter().map(|w| w.summary.clone()).collect(),
        }],
    };
    write(&dir.join("assets/style.css"), STYLE_CSS)?;
    let index = dir.join("index.html");
    write(&index, &overview_html(&overview, &Links::Static { depth: 0 }, false))?;
    let mut pages = 1;
    let all = PageQuery { limit: Some(usize::MAX), after: None, source: None };
    for w in &data.workflows {
        let wf_dir = dir.join("workflows").join(&w.summary.id);
        let mut view = w.view(data.plan_commit.clone(), &all);
        // A file lists every task: there is no server to ask for the next page.
        view.tasks = w.rows.iter().map(|r| w.task_row(r)).collect();
        view.next = None;
        write(&wf_dir.join("index.html"), &workflow_html(w, &view, &Links::Static { depth: 2 }, false))?;
        pages += 1;
        for row in &w.rows {
            let task = model::task_view(&source, &data, &TaskKey::new(&w.summary.id, &row.task))?;
            write(&wf_dir.join("tasks").join(&row.task).join("index.html"), &task_html(&task, &Links::Static { depth: 4 }, false))?;
            pages += 1;
        }
    }
    Ok(Site { index, pages })
}
