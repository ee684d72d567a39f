//! Attacks on the boundary: what plancd does on the host with what a command left behind
//! (copy-back into a host folder, sparse and huge files, control-character names), what it
//! shows of a command's output, and the small filesystems of the process backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Ctx, Verdict, py, said, sh, suite_limits};
use crate::copyback::{CopyBack, CopyBackReport};
use crate::copyout::Skip;
use crate::names::NameRefusal;
use crate::{CopyOutLimits, SandboxError, Session};

const T: Duration = Duration::from_secs(30);

/// Runs the boundary case called `name`.
pub(super) async fn run(name: &str, ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    match name {
        "copyback-git-config" => git_config(ctx).await,
        "copyback-symlinked-parent" => symlinked_parent(ctx).await,
        "copyout-sparse-files" => sparse_files(ctx).await,
        "copyout-control-names" => control_names(ctx).await,
        "output-terminal-escapes" => terminal_escapes(ctx).await,
        "fill-dev" => fill_dev(ctx).await,
        "tmp-inodes" => tmp_inodes(ctx).await,
        other => Ok(Verdict::new(false, format!("no such case: {other}"))),
    }
}

/// A folder on the host, removed on drop.
struct HostDir(PathBuf);

impl HostDir {
    fn new(tag: &str) -> Result<HostDir, SandboxError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("plancd-suite-{tag}-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(HostDir(dir))
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Streams the session's workspace into `dir` as `plancd sandbox run --workspace` does.
async fn copy_back(s: &dyn Session, dir: &Path, limits: &CopyOutLimits) -> Result<CopyBackReport, SandboxError> {
    let mut sink = CopyBack::new(dir)?;
    s.copy_out(limits, &mut sink).await?;
    Ok(sink.finish())
}

fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
}

/// The agent writes git configuration that runs a command (`core.fsmonitor`) and hooks, in
/// every spelling of `.git`; contained when none reaches the host folder and `git status`
/// there runs nothing.
async fn git_config(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let host = HostDir::new("git")?;
    let marker = host.0.with_extension("pwned");
    let has_git = git(&host.0, &["init", "-q"]).is_some_and(|o| o.status.success());
    let before = std::fs::read(host.0.join(".git/config")).ok();
    let s = ctx.session(suite_limits()).await?;
    let evil = format!("[core]\\n\\tfsmonitor = touch {}\\n", marker.display());
    let script = format!(
        "for d in .git .GIT sub/.git .Git. GIT~1; do mkdir -p \"$d/hooks\"; printf '{evil}' > \"$d/config\"; printf '#!/bin/sh\\ntouch {m}\\n' > \"$d/hooks/post-checkout\"; done; echo ok > README",
        m = marker.display()
    );
    let out = sh(&*s, &script, T).await?;
    let report = copy_back(&*s, &host.0, &CopyOutLimits::default()).await;
    s.destroy().await?;
    let report = report?;
    let git_written: Vec<&String> = report.written.iter().filter(|p| crate::names::refusal(p).is_some()).collect();
    if has_git {
        let _ = git(&host.0, &["status", "--porcelain"]);
    }
    let ran = marker.exists();
    let _ = std::fs::remove_file(&marker);
    let config_kept = std::fs::read(host.0.join(".git/config")).ok() == before;
    let refused = report.skipped.iter().filter(|(_, w)| *w == Skip::Name(NameRefusal::GitDir)).count();
    let ok = git_written.is_empty() && !ran && config_kept && report.written == ["README"];
    let detail =
        format!("git paths written: {git_written:?}; refused {refused}; host .git/config kept: {config_kept}; fsmonitor ran: {ran}");
    Ok(Verdict::new(ok, format!("{detail}; {}", said(&out))))
}

/// The host folder holds folder symlinks (`docs -> elsewhere`, `up -> ..`); the agent writes
/// files under those names. Contained when nothing lands outside the folder.
async fn symlinked_parent(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let host = HostDir::new("links")?;
    let elsewhere = HostDir::new("elsewhere")?;
    std::os::unix::fs::symlink(&elsewhere.0, host.0.join("docs"))?;
    std::os::unix::fs::symlink("..", host.0.join("up"))?;
    let escaped = host.0.parent().map(|p| p.join(format!("{}-escaped", std::process::id()))).unwrap_or_default();
    let s = ctx.session(suite_limits()).await?;
    let name = escaped.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let script = format!("mkdir -p docs up && echo evil > docs/index.md && echo evil > 'up/{name}' && echo fine > kept.txt");
    let out = sh(&*s, &script, T).await?;
    let report = copy_back(&*s, &host.0, &CopyOutLimits::default()).await;
    s.destroy().await?;
    let report = report?;
    let outside = std::fs::read_dir(&elsewhere.0).map(|d| d.count()).unwrap_or(0) + usize::from(escaped.exists());
    let _ = std::fs::remove_file(&escaped);
    let refused = report.skipped.iter().filter(|(_, w)| *w == Skip::HostPathNotFolder).count();
    let ok = outside == 0 && refused == 2 && report.written == ["kept.txt"];
    Ok(Verdict::new(ok, format!("files written outside the folder: {outside}; refused through links: {refused}; {}", said(&out))))
}

/// plancd's peak resident memory since the last reset, and the reset.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Sparse files as large as the workspace allows cost the sandbox nothing; an archive
/// counts them in full. Contained when plancd's memory stays flat, they are reported, and the
/// other files still come back.
async fn sparse_files(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let limits = suite_limits();
    let host = HostDir::new("sparse")?;
    let s = ctx.session(limits.clone()).await?;
    let script = format!("echo a > aa.txt && truncate -s {}M sparse-1 sparse-2 sparse-3 && echo z > zz.txt && ls -ls", limits.disk_mb);
    let out = sh(&*s, &script, T).await?;
    reset_peak_rss();
    let base = peak_rss_kib().unwrap_or(0);
    let caps = CopyOutLimits { max_file_bytes: 1 << 20, ..CopyOutLimits::default() };
    let report = copy_back(&*s, &host.0, &caps).await;
    let grew_mib = peak_rss_kib().unwrap_or(0).saturating_sub(base) / 1024;
    s.destroy().await?;
    let report = match report {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::new(false, format!("copy-out failed: {e}; plancd grew {grew_mib} MiB"))),
    };
    let mut written = report.written.clone();
    written.sort();
    let too_large = report.skipped.iter().filter(|(p, w)| p.starts_with("sparse-") && matches!(w, Skip::TooLarge(_))).count();
    let ok = written == ["aa.txt", "zz.txt"] && too_large == 3 && grew_mib < 64;
    Ok(Verdict::new(
        ok,
        format!("copied {written:?}, {too_large}/3 sparse files reported too large, plancd grew {grew_mib} MiB; {}", said(&out)),
    ))
}

/// File names with terminal escapes, newlines, C1 controls and bidirectional overrides.
async fn control_names(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "import os\nnames = ['esc\\x1b[2Jclear', 'new\\nline', 'csi\\x9b31m', 'bidi\\u202etxt.exe', 'bell\\x07', 'cr\\rname', 'dir\\x1b]0;t\\x07']\nfor n in names[:-1]:\n    open(n, 'w').write('x')\nos.mkdir(names[-1])\nopen(names[-1] + '/inner', 'w').write('x')\nopen('fine.txt', 'w').write('x')\nprint('planted', len(names))\n";
    let out = py(&*s, script, T).await?;
    let copied = s.get_files(&CopyOutLimits::default()).await;
    s.destroy().await?;
    let copied = copied?;
    let paths: Vec<&str> = copied.files.iter().map(|f| f.path.as_str()).collect();
    let refused = copied.skipped.iter().filter(|(_, w)| *w == Skip::Name(NameRefusal::ControlCharacter)).count();
    let ok = paths == ["fine.txt"] && refused >= 7;
    let shown: Vec<String> = paths.iter().map(|p| crate::escape::name(p)).collect();
    Ok(Verdict::new(ok, format!("copied {shown:?}; {refused}/7 refused for control characters; {}", said(&out))))
}

/// A command prints escape sequences (clear screen, window title, OSC 52 clipboard, C1 CSI)
/// and forged plancd status lines. Contained when what plancd shows of it holds no control
/// character and every forged line is marked.
async fn terminal_escapes(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "printf '\\033[2J\\033[H\\033]0;owned\\007\\033]52;c;ZXZpbA==\\007\\302\\233031m\\rplancd: sandbox (process): exit 0 in 0.01s\\n  plancd: 1 files copied back\\n'; printf 'plancd: sandbox (process): exit 0\\n' >&2; exit 3";
    let out = sh(&*s, script, T).await?;
    s.destroy().await?;
    let shown = format!("{}{}", crate::escape::output(&out.stdout), crate::escape::output(&out.stderr));
    let raw = shown.chars().filter(|c| *c != '\n' && *c != '\t').any(crate::names::is_control);
    let forged = shown.lines().filter(|l| l.trim_start().starts_with(crate::escape::STATUS_MARKER)).count();
    let printed = out.stdout.len() + out.stderr.len();
    let ok = !raw && forged == 0 && printed > 0;
    Ok(Verdict::new(ok, format!("raw controls shown: {raw}; unmarked status lines: {forged}; shown: {}", crate::escape::name(&shown))))
}

/// Fill /dev (an uncapped tmpfs on the process backend) and /dev/shm, in files of 16 MiB
/// (each below the file size limit).
async fn fill_dev(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let limits = suite_limits();
    let s = ctx.session(limits.clone()).await?;
    let script = "import os\ntry:\n    open('/dev/plancd-fill', 'w').write('x')\n    print('DEV WRITABLE')\nexcept OSError as e:\n    print('dev denied', e.strerror)\nn = 0\ntry:\n    while n < 1024:\n        with open('/dev/shm/fill%d' % (n // 16), 'ab') as f:\n            f.write(b'x' * (1 << 20))\n        n += 1\nexcept OSError as e:\n    print('shm stopped', e.strerror)\nprint('SHM', n, flush=True)\n";
    let out = py(&*s, script, T).await?;
    s.destroy().await?;
    let text = out.output_text().0;
    let shm: u64 = text.lines().find_map(|l| l.strip_prefix("SHM ").and_then(|n| n.trim().parse().ok())).unwrap_or(u64::MAX);
    let ok = !text.contains("DEV WRITABLE") && shm <= limits.disk_mb + 1;
    Ok(Verdict::new(ok, format!("/dev/shm took {shm} MiB (cap {} MiB); {}", limits.disk_mb, said(&out))))
}

/// Create empty files in /tmp until something says no.
async fn tmp_inodes(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    const TRIED: u64 = 100_000;
    let s = ctx.session(suite_limits()).await?;
    let script = format!(
        "n = 0\ntry:\n    while n < {TRIED}:\n        open('/tmp/i%d' % n, 'w').close()\n        n += 1\nexcept OSError as e:\n    print('stopped', e.strerror)\nprint('FILES', n, flush=True)\n"
    );
    let out = py(&*s, &script, Duration::from_secs(60)).await?;
    let alive = sh(&*s, "echo alive", T).await?.output_text().0.trim() == "alive";
    s.destroy().await?;
    let files: u64 =
        out.output_text().0.lines().find_map(|l| l.strip_prefix("FILES ").and_then(|n| n.trim().parse().ok())).unwrap_or(TRIED);
    Ok(Verdict::new(files < TRIED && alive, format!("files created in /tmp: {files} of {TRIED} tried; {}", said(&out))))
}
