//! Network, resource, filesystem, secret and process attacks, each with its verdict.

use std::time::Duration;

use super::{Ctx, Verdict, probes, py, said, sh, suite_limits};
use crate::{ExecRequest, Limits, SandboxError};

const T: Duration = Duration::from_secs(20);

/// Runs the case called `name`.
pub(super) async fn run(name: &str, ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    match name {
        "net-tcp-host-loopback" => net_tcp(ctx).await,
        "net-raw-socket" => socket_denied(ctx, "socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP").await,
        "net-packet-socket" => socket_denied(ctx, "socket.AF_PACKET, socket.SOCK_RAW, 0").await,
        "net-vsock" => socket_denied(ctx, "40, socket.SOCK_STREAM, 0").await,
        "net-dns" => net_dns(ctx).await,
        "net-egress-proxy" => super::doors::egress_proxy(ctx).await,
        "fork-bomb" => fork_bomb(ctx).await,
        "thread-bomb" => thread_bomb(ctx).await,
        "memory-bomb" => memory_bomb(ctx).await,
        "fill-workspace" => fill(ctx, "/workspace/fill").await,
        "fill-tmp" => fill(ctx, "/tmp/fill").await,
        "write-etc" => write_denied(ctx, "/etc").await,
        "write-usr" => write_denied(ctx, "/usr").await,
        "write-root-fs" => write_denied(ctx, "").await,
        "read-controller-env" => read_env(ctx, "cat /proc/self/environ | tr '\\0' '\\n'; env").await,
        "read-proc1-environ" => read_env(ctx, "for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < $f; done 2>&1").await,
        "read-root-home" => read_root(ctx).await,
        "docker-socket" => docker_socket(ctx).await,
        "proc-leaks" => proc_leaks(ctx).await,
        "kill-all" => kill(ctx, "-1").await,
        "kill-host-canary" => kill(ctx, &ctx.host.canary_pid.to_string()).await,
        "busy-loop-timeout" => deadline(ctx, "while True:\n    pass").await,
        "ignore-sigterm" => deadline(ctx, IGNORE_SIGTERM).await,
        "daemon-holding-stdout" => daemon(ctx, false).await,
        "daemon-stdio-closed" => daemon(ctx, true).await,
        "stdout-flood" => stdout_flood(ctx).await,
        "cpu-spinners" => cpu_spinners(ctx).await,
        "stdin-read" => stdin_read(ctx).await,
        "killed-owner" => super::owner::killed_owner(ctx).await,
        other => probes::run(other, ctx).await,
    }
}

async fn net_tcp(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = format!(
        "import socket\nfor host in ('127.0.0.1', 'localhost', '::1'):\n    try:\n        c = socket.create_connection((host, {}), timeout=3)\n        print('CONNECTED', host)\n    except Exception as e:\n        print('refused', host, type(e).__name__)\n",
        ctx.host.port
    );
    let out = py(&*s, &script, T).await?;
    s.destroy().await?;
    let hits = ctx.host.hits();
    let connected = out.output_text().0.contains("CONNECTED");
    Ok(Verdict::new(hits == 0 && !connected, format!("host listener saw {hits} connections; {}", said(&out))))
}

async fn socket_denied(ctx: &Ctx<'_>, args: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = format!(
        "import socket\ntry:\n    socket.socket({args})\n    print('OPENED')\nexcept OSError as e:\n    print('denied', e.errno, e.strerror)\n"
    );
    let out = py(&*s, &script, T).await?;
    s.destroy().await?;
    let text = out.output_text().0;
    Ok(Verdict::new(text.contains("denied") && !text.contains("OPENED"), said(&out)))
}

async fn net_dns(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "import socket\ntry:\n    print('RESOLVED', socket.getaddrinfo('deb.debian.org', 80)[0][4])\nexcept OSError as e:\n    print('failed', e)\n";
    let out = py(&*s, script, T).await?;
    s.destroy().await?;
    Ok(Verdict::new(!out.output_text().0.contains("RESOLVED"), said(&out)))
}

/// A bomb is contained when the command ends by its deadline, the session still works, and
/// the host still starts processes.
async fn still_alive(s: &dyn crate::Session) -> Result<bool, SandboxError> {
    let after = sh(s, "echo alive", T).await?;
    let host_ok = std::process::Command::new("true").status().map(|st| st.success()).unwrap_or(false);
    Ok(after.output_text().0.trim() == "alive" && host_ok)
}

async fn fork_bomb(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let out = py(&*s, script, Duration::from_secs(5)).await?;
    let alive = still_alive(&*s).await?;
    s.destroy().await?;
    let ended = out.duration < Duration::from_secs(20);
    Ok(Verdict::new(
        ended && alive,
        format!("ended in {:.1}s, session and host alive: {alive}; {}", out.duration.as_secs_f64(), said(&out)),
    ))
}

async fn thread_bomb(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let limits = suite_limits();
    let s = ctx.session(limits.clone()).await?;
    let script = "import threading, time\nn = 0\ntry:\n    while n < 100000:\n        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n        n += 1\nexcept Exception as e:\n    print('stopped', type(e).__name__)\nprint('THREADS', n, flush=True)\n";
    let out = py(&*s, script, Duration::from_secs(15)).await?;
    let alive = still_alive(&*s).await?;
    s.destroy().await?;
    let count: Option<u64> = out.output_text().0.lines().find_map(|l| l.strip_prefix("THREADS ").and_then(|n| n.trim().parse().ok()));
    let capped = count.is_none_or(|n| n <= limits.pids);
    Ok(Verdict::new(capped && alive, format!("threads started: {count:?} (limit {}); {}", limits.pids, said(&out))))
}

async fn memory_bomb(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let limits = suite_limits();
    let s = ctx.session(limits.clone()).await?;
    let script =
        "import sys\nheld = []\nwhile True:\n    held.append(b'x' * (8 << 20))\n    print(len(held) * 8, file=sys.stderr, flush=True)\n";
    let out = py(&*s, script, Duration::from_secs(30)).await?;
    s.destroy().await?;
    let reached: u64 = out.output_text().1.lines().filter_map(|l| l.trim().parse().ok()).max().unwrap_or(0);
    let near = reached <= limits.memory_mb + 16;
    Ok(Verdict::new(
        out.oom_killed && near,
        format!("reached {reached} MiB of {} MiB, oom_killed={}; [{out}]", limits.memory_mb, out.oom_killed),
    ))
}

async fn fill(ctx: &Ctx<'_>, path: &str) -> Result<Verdict, SandboxError> {
    let limits = suite_limits();
    let s = ctx.session(limits.clone()).await?;
    // Many files below the per-file limit, so that the filesystem's own cap (or the backend's
    // quota watch) is what stops it; progress goes to stderr in case the writer is killed.
    let script = format!(
        "import errno, sys\nn = 0\ntry:\n    while n < 100000:\n        with open('{path}-%d' % (n // 4), 'ab') as f:\n            f.write(b'x' * (1 << 20)); f.flush(); n += 1\n        print(n, file=sys.stderr, flush=True)\nexcept OSError as e:\n    print('STOPPED', errno.errorcode.get(e.errno, e.errno))\n"
    );
    let out = py(&*s, &script, Duration::from_secs(60)).await?;
    let alive = still_alive(&*s).await?;
    s.destroy().await?;
    let written: u64 = out.output_text().1.lines().filter_map(|l| l.trim().parse().ok()).max().unwrap_or(0);
    let text = out.output_text().0;
    let refused = ["ENOSPC", "EDQUOT", "EFBIG"].iter().any(|e| text.contains(e));
    let killed_at_cap = out.signal == Some(9) && !out.timed_out;
    // A filesystem cap stops the writer at the limit; a quota watch a little past it.
    let slack = if refused { 1 } else { limits.disk_mb / 2 };
    let capped = written <= limits.disk_mb + slack;
    Ok(Verdict::new(
        (refused || killed_at_cap) && capped && alive,
        format!("wrote {written} MiB of {} MiB; [{out}] {}", limits.disk_mb, text.trim()),
    ))
}

async fn write_denied(ctx: &Ctx<'_>, dir: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let target = format!("{dir}/plancd-escape-{}", ctx.host.canary_pid);
    let script =
        format!("try:\n    open('{target}', 'w').write('x')\n    print('WROTE')\nexcept OSError as e:\n    print('denied', e.strerror)\n");
    let out = py(&*s, &script, T).await?;
    s.destroy().await?;
    let on_host = std::path::Path::new(&target).exists();
    let wrote = out.output_text().0.contains("WROTE");
    Ok(Verdict::new(!wrote && !on_host, format!("on the host: {on_host}; {}", said(&out))))
}

async fn read_env(ctx: &Ctx<'_>, script: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = sh(&*s, script, T).await?;
    s.destroy().await?;
    let (stdout, stderr) = out.output_text();
    let leaks = ctx.host.leaks_in(&format!("{stdout}{stderr}"));
    let checked = ctx.host.env_values.len() + 1;
    Ok(Verdict::new(leaks.is_empty(), format!("{checked} host values checked, leaked: {leaks:?}")))
}

async fn read_root(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = sh(&*s, "ls -la /root 2>&1; cat /root/.plancd-canary-* 2>&1; cat /root/.bash_history 2>&1 | head -3", T).await?;
    s.destroy().await?;
    let (stdout, _) = out.output_text();
    let name = ctx.host.root_canary.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let seen = name.as_ref().is_some_and(|n| stdout.contains(n.as_str())) || stdout.contains(&ctx.host.canary_secret);
    let planted = if name.is_some() { "canary planted" } else { "no canary (not root)" };
    Ok(Verdict::new(!seen, format!("{planted}; canary seen: {seen}; {}", said(&out))))
}

async fn docker_socket(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "import socket\nfor p in ('/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/var/run/docker/containerd/containerd.sock'):\n    try:\n        c = socket.socket(socket.AF_UNIX); c.settimeout(2); c.connect(p)\n        print('CONNECTED', p)\n    except OSError as e:\n        print('no', p, e.strerror)\n";
    let out = py(&*s, script, T).await?;
    s.destroy().await?;
    Ok(Verdict::new(!out.output_text().0.contains("CONNECTED"), said(&out)))
}

async fn proc_leaks(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out =
        sh(&*s, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null; echo PROCS $(ls -d /proc/[0-9]* | wc -l)", T)
            .await?;
    s.destroy().await?;
    let text = out.output_text().0;
    let procs: usize = text.lines().find_map(|l| l.strip_prefix("PROCS ").and_then(|n| n.trim().parse().ok())).unwrap_or(usize::MAX);
    let seen = text.contains(&ctx.host.canary_marker);
    Ok(Verdict::new(!seen && procs < 16, format!("processes visible: {procs}, host canary visible: {seen}")))
}

async fn kill(ctx: &Ctx<'_>, target: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = format!(
        "import os, signal\ntry:\n    os.kill({target}, signal.SIGKILL)\n    print('sent')\nexcept OSError as e:\n    print('denied', e.strerror)\n"
    );
    let out = py(&*s, &script, T).await?;
    let alive = still_alive(&*s).await?;
    s.destroy().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let canary = ctx.host.canary_alive();
    Ok(Verdict::new(canary && alive, format!("host canary alive: {canary}; {}", said(&out))))
}

const IGNORE_SIGTERM: &str = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)\n";

async fn deadline(ctx: &Ctx<'_>, script: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = py(&*s, script, Duration::from_secs(2)).await?;
    s.destroy().await?;
    let prompt = out.duration < Duration::from_secs(7);
    Ok(Verdict::new(out.timed_out && prompt, format!("timed_out={} after {:.2}s", out.timed_out, out.duration.as_secs_f64())))
}

async fn daemon(ctx: &Ctx<'_>, close_stdio: bool) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let detach = if close_stdio { "os.closerange(0, 1024)" } else { "pass" };
    let script = format!(
        "import os, time\nprint('parent', flush=True)\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        {detach}\n        time.sleep(3)\n        open('/workspace/daemon-marker', 'w').write('survived')\n        time.sleep(600)\n    os._exit(0)\nos.wait()\n"
    );
    let out = py(&*s, &script, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let marker = sh(&*s, "cat /workspace/daemon-marker 2>/dev/null || echo absent", T).await?;
    let files = s.get_files(&crate::CopyOutLimits::default()).await?;
    s.destroy().await?;
    let survived = marker.output_text().0.contains("survived") || files.files.iter().any(|f| f.path == "daemon-marker");
    let prompt = out.duration < Duration::from_secs(3);
    Ok(Verdict::new(!survived && prompt, format!("returned after {:.2}s; daemon survived: {survived}", out.duration.as_secs_f64())))
}

async fn stdout_flood(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let mut req = ExecRequest::shell("head -c 4294967296 /dev/zero; echo done >&2", Duration::from_secs(60));
    req.output_limit = 1 << 20;
    let out = s.exec(&req).await?;
    s.destroy().await?;
    let kept = out.stdout.len();
    let ok = kept == 1 << 20 && out.stdout_truncated && out.duration < Duration::from_secs(75);
    Ok(Verdict::new(ok, format!("kept {kept} bytes, truncated={}, {:.1}s, [{out}]", out.stdout_truncated, out.duration.as_secs_f64())))
}

async fn cpu_spinners(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let limits = Limits { cpus: 1.0, ..suite_limits() };
    let s = ctx.session(limits).await?;
    let script = "import os, time\nstart = time.time()\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n        end = time.time() + 3\n        while time.time() < end:\n            pass\n        os._exit(0)\n    kids.append(pid)\nfor k in kids:\n    os.waitpid(k, 0)\nwall = time.time() - start\nt = os.times()\nprint('RATIO %.2f' % ((t.children_user + t.children_system) / wall))\n";
    let out = py(&*s, script, Duration::from_secs(30)).await?;
    s.destroy().await?;
    let ratio: f64 =
        out.output_text().0.lines().find_map(|l| l.strip_prefix("RATIO ").and_then(|n| n.trim().parse().ok())).unwrap_or(f64::MAX);
    Ok(Verdict::new(ratio <= 1.35, format!("cpu time / wall time = {ratio:.2} under a 1-CPU limit")))
}

async fn stdin_read(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "import sys\ndata = sys.stdin.buffer.read()\nprint('READ', len(data), data[:40])\n";
    let mut given = ExecRequest::new(["python3", "-c", script], Duration::from_secs(10));
    given.stdin = b"plancd-stdin\n".to_vec();
    let with = s.exec(&given).await?;
    given.stdin.clear();
    let without = s.exec(&given).await?;
    s.destroy().await?;
    let ok = with.output_text().0.contains("READ 13 b'plancd-stdin\\n'")
        && without.output_text().0.contains("READ 0 b''")
        && !with.timed_out
        && !without.timed_out;
    Ok(Verdict::new(ok, format!("with input: {}; without: {}", said(&with), said(&without))))
}
