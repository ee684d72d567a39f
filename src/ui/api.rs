//! The read-only JSON API under `/api/v1`: the overview, a workflow's page of tasks (paged with
//! `?limit=&after=`), one task, and an attempt's logs: the same data the pages show.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::model::{self, PageQuery, UiError};
use super::{Dashboard, blocking};
use crate::state::TaskKey;

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let code = match &self {
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::Manage(e) if e.is_bad_input() => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (code, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// `GET /api/v1/workflows`: every source and its workflows' counts.
pub async fn workflows(State(d): State<Arc<Dashboard>>) -> Result<Json<model::Overview>, UiError> {
    Ok(Json(blocking(move || model::overview(&d.sources, &d.env)).await?))
}

/// `GET /api/v1/workflows/{wf}?limit=&after=&source=`: the workflow, one page of its tasks.
pub async fn workflow(
    State(d): State<Arc<Dashboard>>,
    Path(wf): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<model::WorkflowView>, UiError> {
    let view = blocking(move || {
        let (_, data) = model::find_workflow(&d.sources, &d.env, &wf, q.source.as_deref())?;
        let w = data.workflows.iter().find(|w| w.summary.id == wf).ok_or_else(|| UiError::NotFound(format!("no workflow `{wf}`")))?;
        Ok(w.view(data.plan_commit.clone(), &q))
    })
    .await?;
    Ok(Json(view))
}

/// `GET /api/v1/workflows/{wf}/tasks/{task}`: everything about one task.
pub async fn task(State(d): State<Arc<Dashboard>>, Path((wf, task)): Path<(String, String)>) -> Result<Json<model::TaskView>, UiError> {
    let view = blocking(move || {
        let (source, data) = model::find_workflow(&d.sources, &d.env, &wf, None)?;
        model::task_view(&source, &data, &TaskKey::new(&wf, &task))
    })
    .await?;
    Ok(Json(view))
}

/// Which attempt's logs.
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    /// The attempt (default: the latest that left logs).
    pub attempt: Option<u32>,
}

/// `GET /api/v1/workflows/{wf}/tasks/{task}/logs?attempt=N`: an attempt's log files, whole.
pub async fn logs(
    State(d): State<Arc<Dashboard>>,
    Path((wf, task)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<serde_json::Value>, UiError> {
    let value = blocking(move || {
        let (source, _) = model::find_workflow(&d.sources, &d.env, &wf, None)?;
        let key = TaskKey::new(&wf, &task);
        let found = crate::ops::logs::logs(&source.path, &key, q.attempt).map_err(|e| match e {
            crate::ops::manage::ManageError::UnknownTask(_) | crate::ops::manage::ManageError::Missing(_) => {
                UiError::NotFound(e.to_string())
            }
            other => UiError::Manage(other),
        })?;
        let files: Vec<serde_json::Value> = found
            .files
            .iter()
            .map(|(name, data)| serde_json::json!({ "name": name, "bytes": data.len(), "text": String::from_utf8_lossy(data) }))
            .collect();
        Ok(serde_json::json!({ "workflow": wf, "task": task, "attempt": found.attempt, "files": files }))
    })
    .await?;
    Ok(Json(value))
}
