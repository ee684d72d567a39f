//! The `docker` backend: sessions on a local Docker engine through bollard.
//!
//! A session is two tmpfs-backed named volumes (the capped workspace and the metadata folder)
//! and a *keeper* container that only waits: it keeps the volumes mounted (a tmpfs volume
//! loses its content when no container uses it) and serves file transfers. Every command runs
//! in a container of its own that mounts the volumes, so that a deadline kills exactly that
//! command, daemons included, by killing its container.
//!
//! Nothing depends on plancd staying alive: a command's container kills it at its deadline
//! (with `timeout` as its first process) and the keeper ends when plancd's connection to it
//! closes; the engine removes both once they stop (`AutoRemove`). Everything is labelled with
//! the session and the owner; [`DockerSandbox::connect`] sweeps what a crashed owner left.
//!
//! Warm starts: a pool of never-used sessions, keeper and first command container started,
//! per image and limits, refilled in the background ([`DockerSandbox::keep_warm`]).

mod archive;
mod channel;
mod config;
mod exits;
mod pool;
mod runner;
mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use crate::{Sandbox, SandboxError, Session, SessionSpec};

pub use config::{OWNER_LABEL, SESSION_LABEL};
pub use session::DockerSession;

/// The image sessions use unless their spec names one; built by `sandbox/images/build.sh`.
pub const DEFAULT_IMAGE: &str = "plancd-sandbox:python";

const BACKEND: &str = "docker";
const ENGINE_HINT: &str = "start a Docker engine (as root: `dockerd &`; or run scripts/setup with PLANCD_REQUIRE_DOCKER=1)";

fn backend(message: impl std::fmt::Display) -> SandboxError {
    SandboxError::Backend { backend: BACKEND, message: message.to_string() }
}

/// The docker backend.
#[derive(Clone)]
pub struct DockerSandbox {
    shared: Arc<Shared>,
}

struct Shared {
    docker: Docker,
    owner: String,
    seccomp: String,
    /// The program that serves port forwards inside sessions (see [`crate::forward`]).
    forwarder: std::sync::Mutex<Option<std::path::PathBuf>>,
    next: AtomicU64,
    exits: exits::Exits,
    pool: pool::Pool,
    /// Background work (removals, pool fills) that [`Sandbox::settle`] waits for.
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    /// Keeps `task` for [`Sandbox::settle`].
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut background = self.background.lock().expect("the background lock is never poisoned");
        background.retain(|t| !t.is_finished());
        background.push(task);
    }
}

impl DockerSandbox {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket), agrees on an API
    /// version, and removes the containers and volumes labelled with `owner` that a crash
    /// left behind.
    pub async fn connect(owner: &str) -> Result<DockerSandbox, SandboxError> {
        let unavailable = |reason: String| SandboxError::Unavailable { backend: BACKEND, reason, hint: ENGINE_HINT.into() };
        let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(format!("no engine socket: {e}")))?;
        let docker = tokio::time::timeout(std::time::Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unavailable("the engine did not answer in 10s".into()))?
            .map_err(|e| unavailable(format!("no engine answers: {e}")))?;
        let shared = Shared {
            exits: exits::Exits::follow(docker.clone(), owner),
            docker,
            owner: owner.to_owned(),
            seccomp: crate::seccomp::docker_profile().to_string(),
            forwarder: std::sync::Mutex::new(crate::forward::default_program()),
            next: AtomicU64::new(0),
            pool: pool::Pool::default(),
            background: std::sync::Mutex::default(),
        };
        let sandbox = DockerSandbox { shared: Arc::new(shared) };
        sandbox.sweep().await?;
        Ok(sandbox)
    }

    /// Keeps up to `sessions` never-used sessions ready per image and limits (one per expected
    /// concurrent attempt), each used once and replaced in the background. 0 (the default)
    /// keeps none.
    pub fn keep_warm(&self, sessions: usize) {
        self.shared.pool.set_target(sessions);
    }

    /// Starts filling the pool for `spec` now rather than at its first session.
    pub async fn warm(&self, spec: &SessionSpec) {
        let Ok(image) = self.image_id(spec).await else { return };
        let Ok(mounts) = mount_binds(&spec.mounts) else { return };
        pool::Pool::refill(&self.shared, pool::key(&image, &spec.limits, &spec.mounts), image, spec.limits.clone(), mounts);
    }

    /// How many warm sessions are ready for `spec`.
    pub async fn warm_sessions(&self, spec: &SessionSpec) -> usize {
        let Ok(image) = self.image_id(spec).await else { return 0 };
        self.shared.pool.ready(&pool::key(&image, &spec.limits, &spec.mounts))
    }

    /// The id of the image `spec` names, as the engine has it now. Sessions are made from the
    /// id and kept warm by it: a tag moved to another image (a rebuild) never gets a session
    /// of the image it named before, and every container of a session runs the same image.
    async fn image_id(&self, spec: &SessionSpec) -> Result<String, SandboxError> {
        let name = spec.image.as_deref().unwrap_or(DEFAULT_IMAGE);
        match self.shared.docker.inspect_image(name).await {
            Ok(image) => Ok(image.id.unwrap_or_else(|| name.to_owned())),
            Err(_) => Err(missing_image(name)),
        }
    }

    /// Sets the program that serves port forwards inside sessions; default: the running
    /// binary, plancd. It runs in the session's image: it must suit its C library.
    pub fn set_forwarder(&self, program: std::path::PathBuf) {
        *self.shared.forwarder.lock().expect("the forwarder lock is never poisoned") = Some(program);
    }

    /// The read-only binds a session with `ports` adds to its runners: the socket folders,
    /// the forwarder, and the host's CA bundle (at [`crate::egress::DEFAULT_CA_BUNDLE`]).
    fn forward_binds(&self, ports: &[crate::PortForward]) -> Result<Vec<bollard::models::Mount>, SandboxError> {
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        crate::forward::check(ports)?;
        let program = self.shared.forwarder.lock().expect("the forwarder lock is never poisoned").clone();
        let program = program.ok_or_else(|| backend("port forwards need a forwarder program, and none was found"))?;
        let mut binds: Vec<_> =
            crate::forward::socket_binds(ports).iter().map(|(host, inside)| config::read_only_bind(host, inside)).collect();
        binds.push(config::read_only_bind(&program, crate::forward::INSIDE_PROGRAM));
        if let Some(bundle) = crate::egress::host_ca_bundle() {
            binds.push(config::read_only_bind(&bundle, crate::egress::DEFAULT_CA_BUNDLE));
        }
        Ok(binds)
    }

    /// The engine client.
    pub fn client(&self) -> &Docker {
        &self.shared.docker
    }

    /// Removes every container and volume labelled with this owner. Returns how many.
    pub async fn sweep(&self) -> Result<usize, SandboxError> {
        let owner = self.shared.owner.clone();
        self.sweep_owners(move |o| o == owner).await
    }

    /// Removes every container and volume whose owner label `stale` accepts (the owners of
    /// plancd processes known to be dead, say). Returns how many.
    pub async fn sweep_owners(&self, stale: impl Fn(&str) -> bool) -> Result<usize, SandboxError> {
        let docker = &self.shared.docker;
        let filters = HashMap::from([("label", vec![OWNER_LABEL.to_owned()])]);
        let owned = |labels: Option<&HashMap<String, String>>| labels.and_then(|l| l.get(OWNER_LABEL)).is_some_and(|o| stale(o));
        let containers = docker
            .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
            .await
            .map_err(backend)?;
        let mut removed = 0;
        for id in containers.into_iter().filter(|c| owned(c.labels.as_ref())).filter_map(|c| c.id) {
            let force = RemoveContainerOptionsBuilder::default().force(true).build();
            if docker.remove_container(&id, Some(force)).await.is_ok() {
                removed += 1;
            }
        }
        let volumes = docker.list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build())).await.map_err(backend)?;
        for volume in volumes.volumes.unwrap_or_default().into_iter().filter(|v| owned(Some(&v.labels))) {
            if docker.remove_volume(&volume.name, Some(RemoveVolumeOptionsBuilder::default().force(true).build())).await.is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "swept sandbox leftovers");
        }
        Ok(removed)
    }
}

/// The binds of a session's mounts, for every runner (the keeper needs none). A writable one is
/// handed to the sandbox user first: commands run as it, and the engine's host folder is this
/// host's (a remote engine would not see it).
fn mount_binds(mounts: &[crate::Mount]) -> Result<Vec<bollard::models::Mount>, SandboxError> {
    mounts
        .iter()
        .map(|m| {
            crate::check_mount_point(&m.inside)?;
            if !m.host.is_absolute() || !m.host.is_dir() {
                return Err(backend(format!("mount source `{}` is not a folder of this host", m.host.display())));
            }
            if m.writable {
                let (uid, gid) = config::USER_IDS;
                if let Err(e) = std::os::unix::fs::chown(&m.host, Some(uid), Some(gid)) {
                    // Not root: the folder is opened to everyone instead.
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&m.host, std::fs::Permissions::from_mode(0o777))
                        .map_err(|e2| backend(format!("cannot hand `{}` to the sandbox user: {e}; {e2}", m.host.display())))?;
                }
            }
            Ok(config::bind(&m.host, &m.inside, !m.writable))
        })
        .collect()
}

/// The error for an image the engine does not have: plancd never pulls one.
fn missing_image(image: &str) -> SandboxError {
    let hint = if image == DEFAULT_IMAGE {
        "build it without a registry: sandbox/images/build.sh".to_owned()
    } else {
        format!("plancd never pulls images: `docker pull {image}` (or `docker build`/`docker load` it) on the engine's host")
    };
    SandboxError::Unavailable { backend: BACKEND, reason: format!("the image {image} is not on this engine ({hint})"), hint }
}

/// A new session id: unique per engine user (the pid) and run.
fn new_id(shared: &Shared) -> String {
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("plancd-{}-{n}-{nanos:08x}", std::process::id())
}

/// Starts a created container. The engine under load can answer a start that did start the
/// container with an error ("cannot start an already running container"): a container that
/// runs after a failed start counts as started.
async fn start_container(docker: &Docker, name: &str) -> Result<(), bollard::errors::Error> {
    let Err(e) = docker.start_container(name, None).await else { return Ok(()) };
    let running = docker.inspect_container(name, None).await.ok().and_then(|c| c.state).and_then(|s| s.running);
    if running == Some(true) { Ok(()) } else { Err(e) }
}

/// Whether an engine error is the engine's own trouble (its runtime's 500), which a fresh
/// container gets past, rather than a refusal of what was asked.
fn engine_fault(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 500, .. })
}

/// Removes a container, killing it first (best effort).
async fn remove_container(docker: &Docker, name: &str) {
    let _ = docker.remove_container(name, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await;
}

/// Removes a volume (best effort), trying again for a while as long as a container the
/// engine is still removing holds it.
async fn remove_volume(docker: &Docker, name: &str) {
    for _ in 0..100 {
        match docker.remove_volume(name, Some(RemoveVolumeOptionsBuilder::default().force(true).build())).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            _ => return,
        }
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, spec: &SessionSpec) -> Result<Box<dyn Session>, SandboxError> {
        let image = self.image_id(spec).await?;
        let mounts = mount_binds(&spec.mounts)?;
        let key = pool::key(&image, &spec.limits, &spec.mounts);
        let ports = self.forward_binds(&spec.ports)?;
        // Warm sessions have no port forwards and no writable mounts: a session with some is
        // made for itself.
        let own = !ports.is_empty() || spec.mounts.iter().any(|m| m.writable);
        let warm = std::iter::from_fn(|| (!own).then(|| self.shared.pool.take(&key)).flatten()).find_map(|mut p| {
            if p.fresh() {
                Some(p)
            } else {
                self.dispose(p);
                None
            }
        });
        let binds: Vec<bollard::models::Mount> = mounts.iter().chain(&ports).cloned().collect();
        let provisioned = match warm {
            Some(warm) => warm,
            None => pool::Provisioned::create(&self.shared, new_id(&self.shared), &image, &spec.limits, &binds).await?,
        };
        if !spec.mounts.iter().any(|m| m.writable) {
            pool::Pool::refill(&self.shared, key, image.clone(), spec.limits.clone(), mounts);
        }
        Ok(Box::new(DockerSession::new(Arc::clone(&self.shared), provisioned, image, spec, binds)))
    }

    async fn base_id(&self, spec: &SessionSpec) -> Option<String> {
        self.image_id(spec).await.ok()
    }

    async fn settle(&self) {
        self.shared.pool.set_target(0);
        loop {
            for provisioned in self.shared.pool.drain() {
                self.dispose(provisioned);
            }
            let pending = std::mem::take(&mut *self.shared.background.lock().expect("the background lock is never poisoned"));
            if pending.is_empty() {
                return;
            }
            for task in pending {
                let _ = task.await;
            }
        }
    }
}

impl DockerSandbox {
    /// Tears `provisioned` down in the background.
    fn dispose(&self, mut provisioned: pool::Provisioned) {
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(async move { provisioned.tear_down(&shared).await });
        self.shared.track(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engines_own_failures_are_worth_a_fresh_container() {
        let answer = |status_code: u16, message: &str| bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        // As the engine answered under load in CI.
        assert!(engine_fault(&answer(500, "OCI runtime start failed: cannot start an already running container: unknown")));
        assert!(engine_fault(&answer(500, "cannot start a stopped process: unknown")));
        assert!(!engine_fault(&answer(404, "No such image: plancd-sandbox:missing")));
        assert!(!engine_fault(&answer(409, "Conflict. The container name is already in use")));
    }
}
