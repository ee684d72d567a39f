//! The `docker` backend: sessions on a local Docker engine through bollard.
//!
//! A session is two tmpfs-backed named volumes (the capped workspace and the metadata folder)
//! and a *keeper* container that only sleeps: it keeps the volumes mounted (a tmpfs volume
//! loses its content when no container uses it) and serves file transfers. Every command runs
//! in a container of its own that mounts the volumes, so that a deadline kills exactly that
//! command, daemons included, by killing its container. Everything is labelled with the
//! session and the owner; [`DockerSandbox::connect`] sweeps what a crashed owner left.

mod archive;
mod config;
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
    next: AtomicU64,
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
        let shared =
            Shared { docker, owner: owner.to_owned(), seccomp: crate::seccomp::docker_profile().to_string(), next: AtomicU64::new(0) };
        let sandbox = DockerSandbox { shared: Arc::new(shared) };
        sandbox.sweep().await?;
        Ok(sandbox)
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

    fn new_id(&self) -> String {
        let n = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("plancd-{}-{n}-{nanos:08x}", std::process::id())
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, spec: &SessionSpec) -> Result<Box<dyn Session>, SandboxError> {
        let image = spec.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
        if self.shared.docker.inspect_image(&image).await.is_err() {
            return Err(SandboxError::Unavailable {
                backend: BACKEND,
                reason: format!("the image {image} is not on this engine"),
                hint: "build it without a registry: sandbox/images/build.sh".into(),
            });
        }
        let session = DockerSession::create(Arc::clone(&self.shared), self.new_id(), image, spec).await?;
        Ok(Box::new(session))
    }
}
