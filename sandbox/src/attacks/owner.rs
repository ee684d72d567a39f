//! A plancd killed while its sessions run: they must still die with their deadline. The
//! session is held by another process (the suite's holder command, e.g. `plancd sandbox run`),
//! which is SIGKILLed mid-command; 2 s past the command's deadline nothing of it may run, and
//! on docker no container of the dead owner may remain.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Ctx, Verdict};
use crate::SandboxError;

/// The command's deadline in the holder.
const DEADLINE: Duration = Duration::from_secs(3);
/// How long past the deadline anything of the session may last.
const GRACE: Duration = Duration::from_secs(2);

/// Host pids of processes but `except` with `marker` among their arguments (processes in
/// containers and namespaces are host processes too).
fn processes_with(marker: &str, except: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != except && cmdline.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Names of the docker containers (running or not) whose owner label ends in `-PID`.
async fn containers_of(pid: u32) -> Result<Vec<String>, SandboxError> {
    let backend = |e: bollard::errors::Error| SandboxError::Backend { backend: "docker", message: e.to_string() };
    let docker = bollard::Docker::connect_with_local_defaults().map_err(backend)?;
    let filters = HashMap::from([("label", vec![crate::docker::OWNER_LABEL.to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let suffix = format!("-{pid}");
    let listed = docker.list_containers(Some(options)).await.map_err(backend)?;
    let owned = |labels: &Option<HashMap<String, String>>| {
        labels.as_ref().and_then(|l| l.get(crate::docker::OWNER_LABEL)).is_some_and(|o| o.ends_with(&suffix))
    };
    Ok(listed.into_iter().filter(|c| owned(&c.labels)).flat_map(|c| c.names.unwrap_or_default()).collect())
}

/// Runs `sleep MARKER` through the holder, kills the holder mid-command, and looks 2 s past
/// the deadline.
pub(super) async fn killed_owner(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let Some((program, args)) = ctx.options.holder.split_first() else {
        return Ok(Verdict::new(false, "no holder command to run a session in another process"));
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let marker = format!("600.{nanos:09}");
    let seconds = DEADLINE.as_secs().to_string();
    let args: Vec<&str> = args.iter().map(|a| if a == "{timeout}" { seconds.as_str() } else { a.as_str() }).collect();
    let mut holder = tokio::process::Command::new(program)
        .args(&args)
        .args(["sleep", &marker])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = holder.id().unwrap_or(0);
    let waiting = Instant::now();
    while processes_with(&marker, pid).is_empty() {
        if waiting.elapsed() > Duration::from_secs(60) || holder.try_wait()?.is_some() {
            let _ = holder.kill().await;
            return Ok(Verdict::new(false, "the holder never started its command"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The command started at the latest now: its deadline is at the latest DEADLINE from now.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    holder.kill().await?;
    tokio::time::sleep((started + DEADLINE + GRACE).saturating_duration_since(Instant::now())).await;
    let alive = processes_with(&marker, pid);
    let containers = if ctx.sandbox.name() == "docker" { containers_of(pid).await? } else { Vec::new() };
    let contained = alive.is_empty() && containers.is_empty();
    Ok(Verdict::new(
        contained,
        format!("holder SIGKILLed mid-command; {GRACE:?} past the deadline: processes {alive:?}, containers {containers:?}"),
    ))
}
