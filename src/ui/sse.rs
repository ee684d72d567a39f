//! Live updates: `GET /api/v1/events` streams a server-sent event each time a task ref moves
//! (one `change` event per source and workflow, naming the tasks). The refs are polled, cheaply
//! (one ref listing, no objects), and only while a page is listening; when they moved, the
//! source is read again before the event goes out, so the pages' requests that follow find it
//! read.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast;

use super::Dashboard;
use super::model::Tips;

/// How often the refs are looked at while someone listens.
const POLL: Duration = Duration::from_millis(500);

/// Tasks of one workflow whose refs moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The source.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The tasks (and branch todos) whose ref moved, appeared or went.
    pub tasks: Vec<String>,
    /// A number that grows with every change the server saw.
    pub seq: u64,
}

/// The channel of changes, shared by the poller and the streams.
pub struct Changes {
    sender: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Changes {
        Changes { sender: broadcast::channel(256).0 }
    }
}

impl Changes {
    /// A new listener.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}

/// The changes between two readings of a source's tips, one per workflow.
pub fn changes(source: &str, before: &Tips, now: &Tips, seq: &mut u64) -> Vec<Change> {
    let mut by_workflow: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in now.changed(before) {
        by_workflow.entry(key.workflow).or_default().push(key.task);
    }
    by_workflow
        .into_iter()
        .map(|(workflow, tasks)| {
            *seq += 1;
            Change { source: source.to_owned(), workflow, tasks, seq: *seq }
        })
        .collect()
}

/// Starts the poller: while at least one stream is open, reads each source's tips every
/// half second and sends what moved since the last reading. It stops with the runtime.
pub fn start_polling(dashboard: Arc<Dashboard>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        // The first reading is taken at once, so that a page's first look already compares
        // against something; while nobody listens the last reading is kept, not refreshed.
        let mut last: Vec<Option<Tips>> = Vec::new();
        for source in &dashboard.sources {
            let path = source.path.clone();
            last.push(tokio::task::spawn_blocking(move || Tips::read(&path)).await.ok().and_then(Result::ok));
        }
        let mut seq = 0u64;
        loop {
            tokio::time::sleep(POLL).await;
            if dashboard.changes.sender.receiver_count() == 0 {
                continue;
            }
            for (i, source) in dashboard.sources.iter().enumerate() {
                let path = source.path.clone();
                let Ok(Ok(tips)) = tokio::task::spawn_blocking(move || Tips::read(&path)).await else { continue };
                if let Some(before) = &last[i] {
                    let moved = changes(&source.name, before, &tips, &mut seq);
                    if !moved.is_empty() {
                        // Read the source again before telling the pages, so that their
                        // requests find it read (at thousands of tasks a read takes a while).
                        let (source, env) = (source.clone(), dashboard.env.clone());
                        let _ = tokio::task::spawn_blocking(move || super::model::source_data(&source, &env)).await;
                    }
                    for change in moved {
                        let _ = dashboard.changes.sender.send(change);
                    }
                }
                last[i] = Some(tips);
            }
        }
    });
}

/// `GET /api/v1/events`: `change` events as refs move, a comment every 15 s to keep the
/// connection open; the stream ends when the server stops.
pub async fn events(State(d): State<Arc<Dashboard>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = d.changes.subscribe();
    let stopping = d.stopping.subscribe();
    let stream = futures_util::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
        let received = tokio::select! {
            r = rx.recv() => r,
            _ = stopping.wait_for(|s| *s) => return None,
        };
        let data = match received {
            Ok(change) => serde_json::to_string(&change).expect("a change always serialises"),
            // A listener too slow for the changes: tell it to reload everything.
            Err(broadcast::error::RecvError::Lagged(_)) => "{\"workflow\":\"*\",\"tasks\":[]}".to_owned(),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(Event::default().event("change").data(data)), (rx, stopping)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TaskKey;

    #[test]
    fn changes_name_the_moved_new_and_gone_tasks_by_workflow() {
        let oid = |n: u8| git2::Oid::from_bytes(&[n; 20]).unwrap();
        let mut before = Tips::default();
        before.tasks.insert(TaskKey::new("a", "x"), oid(1));
        before.tasks.insert(TaskKey::new("a", "y"), oid(2));
        before.tasks.insert(TaskKey::new("b", "z"), oid(3));
        let mut now = before.clone();
        now.tasks.insert(TaskKey::new("a", "x"), oid(4));
        now.tasks.remove(&TaskKey::new("b", "z"));
        now.tasks.insert(TaskKey::new("c", "n"), oid(5));
        let mut seq = 0;
        let got = changes("s", &before, &now, &mut seq);
        let names: Vec<(String, Vec<String>)> = got.iter().map(|c| (c.workflow.clone(), c.tasks.clone())).collect();
        assert_eq!(names, vec![("a".into(), vec!["x".into()]), ("b".into(), vec!["z".into()]), ("c".into(), vec!["n".into()])]);
        assert_eq!(seq, 3);
        assert!(changes("s", &now, &now, &mut seq).is_empty());
    }
}
