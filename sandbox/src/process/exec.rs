//! Running one command: spawn bubblewrap into a fresh cgroup leaf, feed stdin, drain
//! stdout and stderr concurrently, enforce the deadline, then kill whatever is left in the
//! leaf (daemons included) before reporting.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::bwrap::{self, Plan};
use super::cgroup::Leaf;
use super::spawn::{self, ChildSetup, Rlimits};
use super::{ProcessSession, backend};
use crate::capture::{Capture, drain};
use crate::{ExecOutcome, ExecRequest, OutputStream, SandboxError, check_relative, command_env};

/// How long killing a command's leaf may take before plancd gives up on it.
const KILL_PATIENCE: Duration = Duration::from_secs(10);
/// How long output readers may take to finish once every writer is dead.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const SIGKILL: i32 = 9;

/// One memfd per seccomp program, rewound for bubblewrap to read.
fn seccomp_fds(programs: &[Vec<u8>]) -> Result<Vec<File>, SandboxError> {
    programs
        .iter()
        .map(|p| {
            let fd = rustix::fs::memfd_create("plancd-seccomp", rustix::fs::MemfdFlags::CLOEXEC).map_err(std::io::Error::from)?;
            let mut file = File::from(fd);
            file.write_all(p)?;
            file.rewind()?;
            Ok(file)
        })
        .collect()
}

fn rlimits(s: &ProcessSession) -> Rlimits {
    let limits = s.limits();
    let layout_limits = s.group.is_some() && s.shared.cgroups.as_ref().is_some_and(|l| l.limits_everything());
    let dedicated = s.shared.host_user.is_some();
    Rlimits {
        nofile: 1024,
        fsize: limits.disk_mb.saturating_mul(1 << 20),
        nproc: (!layout_limits && dedicated).then_some(limits.pids),
        address_space: (!layout_limits).then_some(limits.memory_mb.saturating_mul(1 << 20)),
    }
}

/// Runs `req` in the session.
pub(super) async fn run(s: &ProcessSession, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
    if !req.cwd.is_empty() {
        check_relative(&req.cwd)?;
    }
    if req.argv.is_empty() {
        return Err(backend("a command needs at least a program"));
    }
    let env = command_env(&s.spec.env, &req.env)?;
    let n = s.execs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let leaf = match &s.group {
        Some(g) => Some(g.leaf(&format!("x{n}")).map_err(|e| backend(format!("cgroup leaf: {e}")))?),
        None => None,
    };
    let scratch = Scratch::mount(s, &format!("x{n}"))?;
    let result = run_in(s, req, env, leaf.as_ref().map(|l| (l, format!("x{n}"))), scratch.as_ref().map(|m| m.dir.as_path())).await;
    if let Some(leaf) = leaf {
        leaf.remove();
    }
    drop(scratch);
    result
}

/// A command's own /tmp and /dev/shm: one tmpfs with the workspace's size cap and an inode
/// cap, mounted by plancd when it runs as root (bubblewrap's tmpfs has no inode cap), and
/// unmounted when the command is over.
struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    fn mount(s: &ProcessSession, name: &str) -> Result<Option<Scratch>, SandboxError> {
        let Some((uid, gid)) = s.shared.host_user else { return Ok(None) };
        let dir = s.dir.join(name);
        super::mkdir_mode(&dir, 0o711)?;
        let mb = s.limits().disk_mb.max(1);
        let inodes = (mb * 256).clamp(4096, 1 << 22);
        let data = format!("size={mb}m,nr_inodes={inodes},mode=0711,uid={uid},gid={gid}");
        let data = std::ffi::CString::new(data).expect("mount options hold no NUL");
        let flags = rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV;
        if let Err(e) = rustix::mount::mount("tmpfs", &dir, "tmpfs", flags, data.as_c_str()) {
            tracing::warn!(error = %e, "no capped tmpfs for /tmp; bubblewrap's is used");
            let _ = std::fs::remove_dir(&dir);
            return Ok(None);
        }
        let scratch = Scratch { dir };
        for sub in ["tmp", "shm"] {
            let path = scratch.dir.join(sub);
            super::mkdir_mode(&path, 0o1777)?;
            // The umask may have dropped the sticky and world-writable bits.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o1777))?;
        }
        Ok(Some(scratch))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Descriptors the child inherits; the parent closes its copies once bubblewrap runs.
struct Inherited {
    _seccomp: Vec<File>,
    _mounts: Vec<OwnedFd>,
    _procs: Vec<OwnedFd>,
    _status: std::io::PipeWriter,
}

/// The bubblewrap command of `req`, with what its child must inherit.
fn command(
    s: &ProcessSession,
    req: &ExecRequest,
    env: Vec<(String, String)>,
    leaf: Option<&Leaf>,
    scratch: Option<&Path>,
) -> Result<(tokio::process::Command, Inherited, std::io::PipeReader), SandboxError> {
    let seccomp = seccomp_fds(&s.shared.seccomp)?;
    let (status_read, status_write) = std::io::pipe()?;
    let seccomp_raw: Vec<i32> = seccomp.iter().map(AsRawFd::as_raw_fd).collect();
    let mount_fds = s
        .spec
        .mounts
        .iter()
        .map(|m| {
            let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
            rustix::fs::open(&m.host, flags, rustix::fs::Mode::empty())
                .map_err(|e| backend(format!("cannot open mount source `{}`: {e}", m.host.display())))
        })
        .collect::<Result<Vec<OwnedFd>, _>>()?;
    let binds: Vec<bwrap::BindFd<'_>> = s
        .spec
        .mounts
        .iter()
        .zip(&mount_fds)
        .map(|(m, fd)| bwrap::BindFd { fd: fd.as_raw_fd(), inside: &m.inside, writable: m.writable })
        .collect();
    let ca_bundle = (!s.spec.ports.is_empty() && s.spec.root.is_some()).then(crate::egress::host_ca_bundle).flatten();
    let plan = Plan {
        root: s.spec.root.as_deref(),
        extra_ro: &s.shared.extra_ro,
        workspace: &s.workspace,
        meta: &s.meta,
        mounts: &binds,
        tmp_bytes: s.limits().disk_mb.max(1).saturating_mul(1 << 20),
        shm_bytes: s.limits().disk_mb.max(1).saturating_mul(1 << 20).min(256 << 20),
        scratch,
        cwd: &req.cwd,
        seccomp_fds: &seccomp_raw,
        status_fd: status_write.as_raw_fd(),
        disable_userns: s.shared.disable_userns,
        forward_dirs: &s.forward_dirs,
        forwarder: if s.spec.ports.is_empty() { None } else { s.shared.forwarder.as_deref() },
        // The host's own root shows the host's bundle already.
        ca_bundle: ca_bundle.as_deref(),
    };
    let mut cmd = tokio::process::Command::new(&s.shared.bwrap);
    cmd.args(bwrap::args(&plan)).args(crate::forward::wrap(&s.spec.ports, &req.argv)).env_clear().envs(env);
    cmd.stdin(if req.stdin.is_empty() { Stdio::null() } else { Stdio::piped() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
    let procs: Vec<OwnedFd> = match leaf {
        Some(l) => l.procs_files()?,
        None => Vec::new(),
    };
    let mut inherit = seccomp_raw;
    inherit.extend(mount_fds.iter().map(AsRawFd::as_raw_fd));
    inherit.push(status_write.as_raw_fd());
    let cgroup_procs = procs.iter().map(AsRawFd::as_raw_fd).collect();
    spawn::install(&mut cmd, ChildSetup { cgroup_procs, inherit, rlimits: Some(rlimits(s)), user: s.shared.host_user });
    drop(binds);
    Ok((cmd, Inherited { _seccomp: seccomp, _mounts: mount_fds, _status: status_write, _procs: procs }, status_read))
}

/// The tasks feeding stdin and draining stdout and stderr.
struct Io {
    stdin: Option<tokio::task::JoinHandle<()>>,
    stdout: Option<tokio::task::JoinHandle<Capture>>,
    stderr: Option<tokio::task::JoinHandle<Capture>>,
}

impl Io {
    fn start(child: &mut tokio::process::Child, req: &ExecRequest) -> Io {
        let stdin = child.stdin.take().map(|mut pipe| {
            let data = req.stdin.clone();
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            })
        });
        let tee = |stream| req.tee.clone().map(|t| (t, stream));
        let stdout = child.stdout.take().map(|p| tokio::spawn(drain(p, req.output_limit, tee(OutputStream::Stdout))));
        let stderr = child.stderr.take().map(|p| tokio::spawn(drain(p, req.output_limit, tee(OutputStream::Stderr))));
        Io { stdin, stdout, stderr }
    }

    /// Once every writer is dead: what was captured.
    async fn finish(self) -> (Capture, Capture) {
        if let Some(task) = self.stdin {
            task.abort();
        }
        (collect(self.stdout).await, collect(self.stderr).await)
    }
}

async fn run_in(
    s: &ProcessSession,
    req: &ExecRequest,
    env: Vec<(String, String)>,
    named: Option<(&Leaf, String)>,
    scratch: Option<&Path>,
) -> Result<ExecOutcome, SandboxError> {
    let leaf = named.as_ref().map(|(l, _)| *l);
    let (mut cmd, inherited, status_read) = command(s, req, env, leaf, scratch)?;
    let oom_kills = || match (&s.group, &named) {
        (Some(g), Some((_, name))) => g.oom_kills(name),
        _ => 0,
    };
    let oom_before = oom_kills();
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    drop((cmd, inherited));
    let io = Io::start(&mut child, req);
    let quota = (!s.mounted).then(|| s.limits().disk_mb.max(1).saturating_mul(1 << 20));
    let mut over_quota = false;
    let waited = tokio::select! {
        status = child.wait() => Some(status?),
        () = tokio::time::sleep(req.timeout) => None,
        () = watch_quota(s.workspace.clone(), quota) => {
            over_quota = true;
            None
        }
    };
    let timed_out = waited.is_none() && !over_quota;
    // Whatever is left (daemons; everything, past the deadline) dies before anything is read.
    kill_everything(leaf, &mut child).await;
    let status = match waited {
        Some(status) => status,
        None => child.wait().await?,
    };
    let duration = start.elapsed();
    let (stdout, mut stderr) = io.finish().await;
    if over_quota {
        let note = format!("\nplancd: the workspace went over its {} MiB; the command was killed\n", s.limits().disk_mb);
        stderr.bytes.extend_from_slice(note.as_bytes());
    }
    let started = read_status(status_read).await;
    if started.is_none() && !timed_out {
        let why = String::from_utf8_lossy(&stderr.bytes).trim().to_owned();
        return Err(backend(format!("bubblewrap could not start the command: {why}")));
    }
    let oom_killed = oom_kills() > oom_before;
    let killed = timed_out || oom_killed || over_quota;
    Ok(ExecOutcome {
        exit_code: if killed { None } else { status.code().or(started.and_then(|s| s.exit_code)) },
        signal: if killed { Some(SIGKILL) } else { std::os::unix::process::ExitStatusExt::signal(&status) },
        stdout: stdout.bytes,
        stderr: stderr.bytes,
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        duration,
        timed_out,
        oom_killed,
    })
}

/// Without a size-capped tmpfs the workspace is a plain folder: this returns once it holds
/// more than `quota` bytes (never without a quota), checking every 20 ms.
async fn watch_quota(workspace: std::path::PathBuf, quota: Option<u64>) {
    let Some(quota) = quota else { return std::future::pending().await };
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let dir = workspace.clone();
        if tokio::task::spawn_blocking(move || super::files::usage_over(&dir, quota)).await.unwrap_or(false) {
            return;
        }
    }
}

/// Kills the whole leaf (or, without cgroups, bubblewrap, whose pid namespace then dies).
async fn kill_everything(leaf: Option<&Leaf>, child: &mut tokio::process::Child) {
    let _ = child.start_kill();
    if let Some(leaf) = leaf.filter(|l| !l.is_empty()).cloned() {
        // Off the async threads: freezing and polling wait on the kernel.
        let emptied = tokio::task::spawn_blocking(move || leaf.kill_all(KILL_PATIENCE)).await.unwrap_or(false);
        if !emptied {
            tracing::error!("processes survived SIGKILL for {KILL_PATIENCE:?}");
        }
    }
}

async fn collect(task: Option<tokio::task::JoinHandle<Capture>>) -> Capture {
    let Some(mut task) = task else { return Capture::default() };
    match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(capture)) => capture,
        _ => {
            task.abort();
            Capture::default()
        }
    }
}

/// What bubblewrap reported on its status descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Started {
    exit_code: Option<i32>,
}

fn parse_status(text: &str) -> Option<Started> {
    let number_after = |key: &str| -> Option<i64> {
        let rest = &text[text.find(key)? + key.len()..];
        let rest = rest.trim_start_matches(|c: char| c == '"' || c == ':' || c.is_whitespace());
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    number_after("\"child-pid\"")?;
    Some(Started { exit_code: number_after("\"exit-code\"").and_then(|c| i32::try_from(c).ok()) })
}

/// Reads the status pipe to its end (every writer is dead by now).
async fn read_status(pipe: std::io::PipeReader) -> Option<Started> {
    let read = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = pipe.take(64 << 10).read_to_string(&mut text);
        text
    });
    let text = tokio::time::timeout(DRAIN_GRACE, read).await.ok()?.ok()?;
    parse_status(&text)
}

/// Runs `true` in a minimal sandbox, as commands will run; the error says why it cannot.
pub(super) fn probe(bwrap: &Path, user: Option<(u32, u32)>) -> Result<(), String> {
    let mut cmd = std::process::Command::new(bwrap);
    cmd.args(["--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/usr", "/usr"]);
    for name in ["bin", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        match std::fs::read_link(&host) {
            Ok(target) => cmd.arg("--symlink").arg(target).arg(&host),
            Err(_) => cmd.arg("--ro-bind-try").arg(&host).arg(&host),
        };
    }
    cmd.args(["--proc", "/proc", "--", "/usr/bin/env", "true"]).env_clear().stdin(Stdio::null()).stdout(Stdio::null());
    spawn::install_std(&mut cmd, ChildSetup { user, ..ChildSetup::default() });
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bubblewrap_status_lines_are_read() {
        assert_eq!(parse_status("{ \"child-pid\": 12 }\n{ \"exit-code\": 3 }\n"), Some(Started { exit_code: Some(3) }));
        assert_eq!(parse_status("{ \"child-pid\": 12 }\n"), Some(Started { exit_code: None }));
        assert_eq!(parse_status(""), None);
    }
}
