//! What a session stands on, and warm ones made ahead.
//!
//! [`Provisioned`] is a session's volumes, its keeper and the runner of its first command,
//! already started. The keeper lives exactly as long as plancd's connection to its standard
//! input: when plancd dies, the engine closes it and the keeper ends and is removed
//! (`AutoRemove`), whatever plancd managed to do. The [`Pool`] keeps, per image and limits, up
//! to its target of never-used ones ready, refilled in the background after each take.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bollard::models::Mount;
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};

use super::channel::Channel;
use super::config::{self, labels};
use super::runner::{Place, Runner};
use super::{Shared, backend};
use crate::{Limits, SandboxError};

/// A session's resources, up and waiting.
pub struct Provisioned {
    /// The session id.
    pub id: String,
    /// The keeper container.
    pub keeper: String,
    /// The workspace volume.
    pub workspace: String,
    /// The metadata volume.
    pub meta: String,
    /// The runner of the first command.
    pub runner: Option<Runner>,
    /// plancd's end of the keeper: its transfer channel, and what ties the keeper's life to
    /// plancd's.
    pub channel: Option<Channel>,
}

/// How many times a session is made before its failure is reported.
const BRING_UP_TRIES: u32 = 3;

impl Provisioned {
    /// Creates the volumes, then starts the keeper and the first runner (with `binds`, the
    /// session's mounts and port forwards). A session the engine fails to bring up (under load
    /// its runtime can fail a start: "cannot start a stopped process") is removed and made
    /// again under a fresh id, [`BRING_UP_TRIES`] times in all.
    pub(super) async fn create(
        shared: &Shared,
        id: String,
        image: &str,
        limits: &Limits,
        binds: &[Mount],
    ) -> Result<Provisioned, SandboxError> {
        let mut id = id;
        let mut tries = 1;
        loop {
            match Provisioned::create_once(shared, id, image, limits, binds).await {
                Err(e) if tries < BRING_UP_TRIES => {
                    tracing::debug!(error = %e, "a sandbox session failed to come up; making it again");
                    tries += 1;
                    id = super::new_id(shared);
                }
                made => return made,
            }
        }
    }

    async fn create_once(shared: &Shared, id: String, image: &str, limits: &Limits, binds: &[Mount]) -> Result<Provisioned, SandboxError> {
        let mut made = Provisioned {
            keeper: format!("{id}-keeper"),
            workspace: format!("{id}-ws"),
            meta: format!("{id}-meta"),
            id,
            runner: None,
            channel: None,
        };
        if let Err(e) = made.bring_up(shared, image, limits, binds).await {
            made.tear_down(shared).await;
            return Err(e);
        }
        Ok(made)
    }

    async fn bring_up(&mut self, shared: &Shared, image: &str, limits: &Limits, binds: &[Mount]) -> Result<(), SandboxError> {
        let docker = &shared.docker;
        let labels = labels(&self.id, &shared.owner);
        let workspace = docker.create_volume(config::tmpfs_volume(&self.workspace, limits.disk_mb.max(1), true, labels.clone()));
        // The keeper, the sandbox user, writes the metadata; commands mount it read-only.
        let meta = docker.create_volume(config::tmpfs_volume(&self.meta, 16, true, labels.clone()));
        let (workspace, meta) = tokio::join!(workspace, meta);
        workspace.map_err(backend)?;
        meta.map_err(backend)?;
        let place = Place { image, limits, workspace: &self.workspace, meta: &self.meta, labels, binds };
        let (tether, runner) =
            tokio::join!(start_keeper(shared, &self.keeper, &place), Runner::start(shared, format!("{}-x0", self.id), &place));
        self.channel = Some(tether?);
        self.runner = Some(runner?);
        Ok(())
    }

    /// Removes the keeper, an unused runner, then the volumes (best effort; the next sweep
    /// takes what is left). Volumes still held by a container the engine is removing are
    /// tried again for a while.
    pub(super) async fn tear_down(&mut self, shared: &Shared) {
        // Closing plancd's end ends the keeper.
        drop(self.channel.take());
        if let Some(runner) = self.runner.take() {
            let name = runner.name.clone();
            runner.close().await;
            super::remove_container(&shared.docker, &name).await;
        }
        super::remove_container(&shared.docker, &self.keeper).await;
        for volume in [&self.workspace, &self.meta] {
            super::remove_volume(&shared.docker, volume).await;
        }
    }

    /// Whether it is still whole (its first runner has not stopped).
    pub fn fresh(&mut self) -> bool {
        self.runner.as_mut().is_some_and(|r| !r.stopped())
    }
}

/// Creates, attaches to and starts the keeper `name`.
async fn start_keeper(shared: &Shared, name: &str, place: &Place<'_>) -> Result<Channel, SandboxError> {
    let docker = &shared.docker;
    // Small, but it writes the files put into the workspace, as large as the workspace allows,
    // and the workspace's memory (a tmpfs) is charged to the writer.
    let small = Limits { cpus: 0.1, memory_mb: 16 + place.limits.disk_mb, disk_mb: place.limits.disk_mb, pids: 4 };
    let mut host = config::host_config(&small, &shared.seccomp, place.workspace, place.meta, false);
    host.auto_remove = Some(true);
    let cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), super::channel::KEEPER.to_owned()];
    let env = vec![format!("PATH={}", crate::DEFAULT_PATH)];
    let body = config::container(place.image, cmd, env, "", true, host, place.labels.clone());
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker.create_container(Some(options), body).await.map_err(backend)?;
    let attach = AttachContainerOptionsBuilder::default().stream(true).stdin(true).stdout(true).stderr(true).build();
    let attached = docker.attach_container(name, Some(attach)).await.map_err(backend)?;
    super::start_container(docker, name).await.map_err(backend)?;
    Ok(Channel::new(attached.input, attached.output))
}

/// Warm sessions per image and limits.
#[derive(Default)]
pub struct Pool {
    target: AtomicUsize,
    shelves: Mutex<HashMap<String, Shelf>>,
}

#[derive(Default)]
struct Shelf {
    ready: Vec<Provisioned>,
    filling: bool,
}

/// The shelf a spec's sessions come from: its image, limits and mounts (a session is never
/// taken for a spec whose mounts differ).
pub fn key(image: &str, limits: &Limits, mounts: &[crate::Mount]) -> String {
    let mut key = format!("{image}|{}|{}|{}|{}", limits.cpus, limits.memory_mb, limits.disk_mb, limits.pids);
    for m in mounts {
        key.push_str(&format!("|{}={}:{}", m.inside, m.host.display(), if m.writable { "rw" } else { "ro" }));
    }
    key
}

impl Pool {
    /// Keeps up to `sessions` warm sessions per image and limits in use.
    pub fn set_target(&self, sessions: usize) {
        self.target.store(sessions, Ordering::Relaxed);
    }

    /// A warm session for `key`, when one is ready.
    pub fn take(&self, key: &str) -> Option<Provisioned> {
        let mut shelves = self.shelves.lock().expect("the pool lock is never poisoned");
        shelves.get_mut(key).and_then(|shelf| shelf.ready.pop())
    }

    /// How many are ready for `key`.
    pub fn ready(&self, key: &str) -> usize {
        self.shelves.lock().expect("the pool lock is never poisoned").get(key).map_or(0, |s| s.ready.len())
    }

    /// Fills `key`'s shelf up to the target in the background, one session after the other.
    pub(super) fn refill(shared: &Arc<Shared>, key: String, image: String, limits: Limits, binds: Vec<Mount>) {
        let target = shared.pool.target.load(Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        {
            let mut shelves = shared.pool.shelves.lock().expect("the pool lock is never poisoned");
            let shelf = shelves.entry(key.clone()).or_default();
            if shelf.filling || shelf.ready.len() >= target {
                return;
            }
            shelf.filling = true;
        }
        let owner = Arc::clone(shared);
        let filler = runtime.spawn(async move {
            let shared = owner;
            loop {
                let made = Provisioned::create(&shared, super::new_id(&shared), &image, &limits, &binds).await;
                let mut shelves = shared.pool.shelves.lock().expect("the pool lock is never poisoned");
                let shelf = shelves.entry(key.clone()).or_default();
                let full = match made {
                    Ok(made) => {
                        shelf.ready.push(made);
                        shelf.ready.len() >= shared.pool.target.load(Ordering::Relaxed)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not make a warm sandbox session");
                        true
                    }
                };
                if full {
                    shelf.filling = false;
                    return;
                }
            }
        });
        shared.track(filler);
    }

    /// Everything ready, for removal.
    pub fn drain(&self) -> Vec<Provisioned> {
        let mut shelves = self.shelves.lock().expect("the pool lock is never poisoned");
        shelves.values_mut().flat_map(|s| std::mem::take(&mut s.ready)).collect()
    }
}
