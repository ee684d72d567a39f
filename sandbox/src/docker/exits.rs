//! Exits of a sandbox's containers, read from the engine's event stream: the exit code and
//! whether the memory limit killed something. Command containers are removed by the engine
//! once they stop (`AutoRemove`), so nothing is left to inspect afterwards; the `oom` and `die`
//! events of one container reach the stream in the order they happened.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::config::OWNER_LABEL;

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code of its first process (128 + N when a signal N ended it).
    pub code: Option<i64>,
    /// The memory limit killed a process in it.
    pub oom_killed: bool,
}

/// Who waits for which container, and which of those met the memory limit.
#[derive(Default)]
struct Book {
    waiting: HashMap<String, oneshot::Sender<Exit>>,
    oom: HashSet<String>,
}

impl Book {
    /// Takes in one event; events of containers nobody waits for are dropped.
    fn note(&mut self, action: &str, name: &str, exit_code: Option<&str>) {
        match action {
            "oom" if self.waiting.contains_key(name) => {
                self.oom.insert(name.to_owned());
            }
            "die" => {
                if let Some(waiter) = self.waiting.remove(name) {
                    let code = exit_code.and_then(|c| c.parse().ok());
                    let _ = waiter.send(Exit { code, oom_killed: self.oom.remove(name) });
                }
            }
            _ => {}
        }
    }
}

/// Follows the engine's events for one owner's containers.
pub struct Exits {
    book: Arc<Mutex<Book>>,
    follower: tokio::task::JoinHandle<()>,
}

impl Exits {
    /// Starts following `owner`'s container events. Events of the last minute are replayed, so
    /// that none is missed while the subscription is being set up (or set up again after the
    /// stream broke).
    pub fn follow(docker: Docker, owner: &str) -> Exits {
        let book = Arc::new(Mutex::new(Book::default()));
        let follower = tokio::spawn(follow(docker, format!("{OWNER_LABEL}={owner}"), Arc::clone(&book)));
        Exits { book, follower }
    }

    /// The exit of the container `name`, once it stops. Call before starting it.
    pub fn expect(&self, name: &str) -> oneshot::Receiver<Exit> {
        let (tx, rx) = oneshot::channel();
        self.book.lock().expect("the exits lock is never poisoned").waiting.insert(name.to_owned(), tx);
        rx
    }

    /// Stops waiting for `name` (it never started).
    pub fn forget(&self, name: &str) {
        let mut book = self.book.lock().expect("the exits lock is never poisoned");
        book.waiting.remove(name);
        book.oom.remove(name);
    }
}

impl Drop for Exits {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn unix_now() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

async fn follow(docker: Docker, label: String, book: Arc<Mutex<Book>>) {
    // A minute back: a clock of the engine's a little behind ours loses nothing.
    let mut since = unix_now().saturating_sub(Duration::from_secs(60));
    loop {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", vec!["die".into(), "oom".into()]),
            ("label", vec![label.clone()]),
        ]);
        let stamp = format!("{}.{:09}", since.as_secs(), since.subsec_nanos());
        let options = EventsOptionsBuilder::default().since(&stamp).filters(&filters).build();
        let mut events = docker.events(Some(options));
        while let Some(Ok(event)) = events.next().await {
            if let Some(nanos) = event.time_nano.and_then(|n| u64::try_from(n).ok()) {
                since = Duration::from_nanos(nanos);
            }
            let attributes = event.actor.and_then(|a| a.attributes).unwrap_or_default();
            let (Some(action), Some(name)) = (event.action.as_deref(), attributes.get("name")) else { continue };
            let code = attributes.get("exitCode").map(String::as_str);
            book.lock().expect("the exits lock is never poisoned").note(action, name, code);
        }
        tracing::debug!("the engine's event stream ended; following it again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_reach_their_waiters_with_the_memory_kills_before_them() {
        let mut book = Book::default();
        let (tx, mut ok) = oneshot::channel();
        book.waiting.insert("a".into(), tx);
        let (tx, mut oom) = oneshot::channel();
        book.waiting.insert("b".into(), tx);
        book.note("oom", "stranger", None);
        book.note("die", "stranger", Some("1"));
        book.note("oom", "b", None);
        book.note("die", "a", Some("3"));
        book.note("die", "b", Some("137"));
        assert_eq!(ok.try_recv().unwrap(), Exit { code: Some(3), oom_killed: false });
        assert_eq!(oom.try_recv().unwrap(), Exit { code: Some(137), oom_killed: true });
        assert!(book.waiting.is_empty() && book.oom.is_empty(), "nothing of strangers or finished containers is kept");
        let (tx, mut odd) = oneshot::channel();
        book.waiting.insert("c".into(), tx);
        book.note("die", "c", Some("not a number"));
        assert_eq!(odd.try_recv().unwrap(), Exit { code: None, oom_killed: false });
    }
}
