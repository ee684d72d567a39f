//! A sandbox that runs nothing: the workspace is a map in memory and every command is answered
//! by a handler the test supplies. For unit tests of what drives a sandbox, never for code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Sandbox, SandboxError, Session, SessionSpec, check_relative};

/// The files of a fake session, by path.
pub type Files = BTreeMap<String, FileEntry>;

/// Answers one command: may change the workspace, returns what the command "did".
pub type Handler = dyn Fn(&ExecRequest, &mut Files) -> ExecOutcome + Send + Sync;

/// A backend whose commands are answered by a handler.
#[derive(Clone)]
pub struct FakeSandbox {
    handler: Arc<Handler>,
    log: Arc<Mutex<Vec<Vec<String>>>>,
    next: Arc<AtomicU64>,
    base_id: Arc<Mutex<Option<String>>>,
}

impl FakeSandbox {
    /// A fake that answers every command with `handler`.
    pub fn new(handler: impl Fn(&ExecRequest, &mut Files) -> ExecOutcome + Send + Sync + 'static) -> FakeSandbox {
        FakeSandbox { handler: Arc::new(handler), log: Arc::default(), next: Arc::default(), base_id: Arc::default() }
    }

    /// Sets what [`Sandbox::base_id`] answers (as an image rebuilt under its name would).
    pub fn set_base_id(&self, id: Option<&str>) {
        *self.base_id.lock().expect("the fake's lock is never poisoned") = id.map(str::to_owned);
    }

    /// Every command run so far, in order, across sessions.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.log.lock().expect("the log lock is never poisoned").clone()
    }
}

#[async_trait]
impl Sandbox for FakeSandbox {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn create(&self, _spec: &SessionSpec) -> Result<Box<dyn Session>, SandboxError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(FakeSession { id: format!("fake-{n}"), files: Mutex::default(), meta: Mutex::default(), sandbox: self.clone() }))
    }

    async fn base_id(&self, _spec: &SessionSpec) -> Option<String> {
        self.base_id.lock().expect("the fake's lock is never poisoned").clone()
    }
}

struct FakeSession {
    id: String,
    files: Mutex<Files>,
    meta: Mutex<Files>,
    sandbox: FakeSandbox,
}

impl FakeSession {
    fn put(target: &Mutex<Files>, files: &[FileEntry]) -> Result<(), SandboxError> {
        let mut map = target.lock().expect("the files lock is never poisoned");
        for f in files {
            check_relative(&f.path)?;
            map.insert(f.path.clone(), f.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl Session for FakeSession {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        Self::put(&self.files, files)
    }

    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        Self::put(&self.meta, files)
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        self.sandbox.log.lock().expect("the log lock is never poisoned").push(req.argv.clone());
        let mut files = self.files.lock().expect("the files lock is never poisoned");
        let outcome = (self.sandbox.handler)(req, &mut files);
        if let Some(tee) = &req.tee {
            tee.write(crate::OutputStream::Stdout, &outcome.stdout);
            tee.write(crate::OutputStream::Stderr, &outcome.stderr);
        }
        Ok(outcome)
    }

    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        let files = self.files.lock().expect("the files lock is never poisoned");
        let mut out = CopyOut::default();
        let mut gate = crate::copyout::Gate::new(*limits);
        for f in files.values() {
            if let Some(refused) = crate::names::refusal(&f.path) {
                out.skipped.push((f.path.clone(), crate::copyout::Skip::Name(refused)));
                continue;
            }
            match gate.admit(f.data.len() as u64) {
                Ok(()) => out.files.push(f.clone()),
                Err(why) => out.skipped.push((f.path.clone(), why)),
            }
        }
        Ok(out)
    }

    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_handler_sees_and_changes_the_workspace() {
        let fake = FakeSandbox::new(|req, files| {
            let name = req.argv.last().cloned().unwrap_or_default();
            files.insert(name.clone(), FileEntry::new(name, "made"));
            ExecOutcome { exit_code: Some(0), ..Default::default() }
        });
        let session = fake.create(&SessionSpec::default()).await.unwrap();
        session.put_files(&[FileEntry::new("in.txt", "x")]).await.unwrap();
        assert!(session.put_files(&[FileEntry::new("../out", "x")]).await.is_err());
        let outcome = session.exec(&ExecRequest::new(["touch", "out.txt"], Duration::from_secs(1))).await.unwrap();
        assert!(outcome.success());
        let copied = session.get_files(&CopyOutLimits::default()).await.unwrap();
        let paths: Vec<&str> = copied.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["in.txt", "out.txt"]);
        assert_eq!(fake.commands(), vec![vec!["touch".to_owned(), "out.txt".to_owned()]]);
        session.destroy().await.unwrap();
    }
}
