//! Kernel-surface probes (mount, unshare, ptrace, keyrings, bpf, io_uring, foreign syscall
//! ABIs) and copy-out attacks (links, FIFOs, sockets, odd names).

use std::time::Duration;

use super::{Ctx, Verdict, py, said, sh, suite_limits};
use crate::{CopyOut, CopyOutLimits, FileEntry, SandboxError, check_relative};

const T: Duration = Duration::from_secs(20);

/// Prints `<name> ALLOWED|denied` per attempt; `nr(x86_64, aarch64)` picks syscall numbers.
const PRELUDE: &str = r#"import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
def nr(x86_64, aarch64):
    return {'x86_64': x86_64, 'aarch64': aarch64}[platform.machine()]
def probe(name, call):
    r = call()
    e = ctypes.get_errno()
    print(name, 'ALLOWED' if r >= 0 else 'denied', r, '' if r >= 0 else os.strerror(e), flush=True)
"#;

/// Runs the probe or copy-out case called `name`.
pub(super) async fn run(name: &str, ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    match name {
        "probe-mount" => probe(ctx, "probe('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))").await,
        "probe-unshare" => probe(ctx, "probe('unshare-user', lambda: libc.unshare(0x10000000))\nprobe('unshare-mnt', lambda: libc.unshare(0x20000))\nprobe('unshare-net', lambda: libc.unshare(0x40000000))").await,
        "probe-ptrace" => probe(ctx, "probe('ptrace-attach', lambda: libc.ptrace(16, os.getppid(), 0, 0))\nprobe('ptrace-traceme', lambda: libc.ptrace(0, 0, 0, 0))").await,
        "probe-keyctl" => probe(ctx, "probe('keyctl', lambda: libc.syscall(nr(250, 219), 0, -3, 1, 0))\nprobe('add_key', lambda: libc.syscall(nr(248, 217), b'user', b'plancd', b'x', 1, -3))").await,
        "probe-bpf" => probe(ctx, "attr = (ctypes.c_uint32 * 32)(2, 4, 4, 1)\nprobe('bpf', lambda: libc.syscall(nr(321, 280), 0, ctypes.byref(attr), 128))").await,
        "probe-io-uring" => probe(ctx, "params = (ctypes.c_uint8 * 120)()\nprobe('io_uring_setup', lambda: libc.syscall(425, 8, ctypes.byref(params)))").await,
        "probe-32bit-syscall" => foreign_abi(ctx, INT80).await,
        "probe-x32-syscall" => foreign_abi(ctx, "r = libc.syscall(0x40000000 + 39)\nprint('X32 returned', r, flush=True)\n").await,
        "copyout-symlink" => copyout_symlink(ctx).await,
        "copyout-fifo" => copyout_fifo(ctx).await,
        "copyout-hardlink" => copyout_hardlink(ctx).await,
        "copyout-dotdot" => copyout_dotdot(ctx).await,
        other => super::boundary::run(other, ctx).await,
    }
}

async fn probe(ctx: &Ctx<'_>, body: &str) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = py(&*s, &format!("{PRELUDE}{body}\n"), T).await?;
    s.destroy().await?;
    let text = out.output_text().0;
    let ran = text.lines().filter(|l| l.contains(" denied ") || l.contains(" ALLOWED ")).count();
    let allowed: Vec<&str> = text.lines().filter(|l| l.contains(" ALLOWED ")).collect();
    // A probe killed by the filter is contained too; one that never ran proves nothing.
    let killed = out.exit_code.is_some_and(|c| c > 128) || out.signal.is_some();
    let contained = allowed.is_empty() && (ran > 0 || killed);
    Ok(Verdict::new(contained, said(&out)))
}

/// `getpid` through `int 0x80` from an executable page.
const INT80: &str = "import mmap\ncode = bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3])\nbuf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\nbuf.write(code)\naddr = ctypes.addressof(ctypes.c_char.from_buffer(buf))\nprint('calling', flush=True)\nr = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()\nprint('INT80 returned', r, flush=True)\n";

async fn foreign_abi(ctx: &Ctx<'_>, body: &str) -> Result<Verdict, SandboxError> {
    if std::env::consts::ARCH != "x86_64" {
        return Ok(Verdict::new(true, format!("not applicable on {}", std::env::consts::ARCH)));
    }
    let s = ctx.session(suite_limits()).await?;
    let out = py(&*s, &format!("{PRELUDE}{body}"), T).await?;
    s.destroy().await?;
    let text = out.output_text().0;
    let returned: Option<i64> = text.lines().find_map(|l| l.split_once("returned ").and_then(|(_, n)| n.trim().parse().ok()));
    let how = match returned {
        Some(r) if r >= 0 => "the syscall ran",
        Some(_) => "the kernel refused the syscall",
        None if out.exit_code == Some(128 + 31) => "killed by seccomp (SIGSYS)",
        None => "the process died before the syscall returned",
    };
    Ok(Verdict::new(returned.is_none_or(|r| r < 0), format!("{how}; {}", said(&out))))
}

fn passwd_copied(out: &CopyOut) -> bool {
    out.files.iter().any(|f| f.data.windows(11).any(|w| w == b"root:x:0:0:"))
}

fn skipped_as(out: &CopyOut, path: &str) -> Option<String> {
    out.skipped.iter().find(|(p, _)| p == path).map(|(_, w)| w.to_string())
}

async fn copyout_symlink(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = sh(&*s, "ln -s /etc/passwd passwd-link; ln -s / root-link; ln -s /root root-home; ln -s ../../.. up; mkdir d; ln -s ../../../etc d/etc; echo ok", T).await?;
    let copied = tokio::time::timeout(T, s.get_files(&CopyOutLimits::default())).await;
    s.destroy().await?;
    let Ok(copied) = copied else { return Ok(Verdict::new(false, "copy-out hung")) };
    let copied = copied?;
    let links = ["passwd-link", "root-link", "root-home", "up", "d/etc"];
    let followed = copied.files.iter().any(|f| links.iter().any(|l| f.path == *l || f.path.starts_with(&format!("{l}/"))));
    let reported = links.iter().filter(|l| skipped_as(&copied, l).is_some_and(|w| w.contains("link"))).count();
    let ok = !followed && !passwd_copied(&copied) && reported == links.len();
    Ok(Verdict::new(ok, format!("{reported}/{} links reported skipped, followed: {followed}; {}", links.len(), said(&out))))
}

async fn copyout_fifo(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let script = "mkfifo pipe && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/workspace/sock')\" && echo data > normal.txt && ls -l";
    let out = sh(&*s, script, T).await?;
    let copied = tokio::time::timeout(T, s.get_files(&CopyOutLimits::default())).await;
    s.destroy().await?;
    let Ok(copied) = copied else { return Ok(Verdict::new(false, "copy-out hung on a FIFO")) };
    let copied = copied?;
    let paths: Vec<&str> = copied.files.iter().map(|f| f.path.as_str()).collect();
    let ok = paths == ["normal.txt"] && skipped_as(&copied, "pipe").is_some();
    Ok(Verdict::new(ok, format!("copied {paths:?}, skipped {:?}; {}", copied.skipped, said(&out))))
}

async fn copyout_hardlink(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let out = sh(&*s, "echo mine > own.txt; ln own.txt twin.txt; ln /etc/passwd passwd-hard; ln /usr/bin/python3 py-hard; ls", T).await?;
    let planted = said(&out);
    let copied = s.get_files(&CopyOutLimits::default()).await?;
    s.destroy().await?;
    let outside = copied.files.iter().any(|f| f.path == "passwd-hard" || f.path == "py-hard");
    let twins = copied.files.iter().filter(|f| f.path.ends_with(".txt")).count();
    let ok = !outside && !passwd_copied(&copied) && twins <= 1;
    Ok(Verdict::new(ok, format!("host files copied: {outside}; copies of the twin: {twins}; skipped {:?}; {planted}", copied.skipped)))
}

async fn copyout_dotdot(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    let s = ctx.session(suite_limits()).await?;
    let mut refused = 0;
    for bad in ["../escape", "/etc/plancd-escape", "a/../../b", "./x", "a//b"] {
        if matches!(s.put_files(&[FileEntry::new(bad, "x")]).await, Err(SandboxError::BadPath(_))) {
            refused += 1;
        }
    }
    let script = "import os\nfor n in ['...', '..x', 'a\\nb', 'back\\\\slash']:\n    open(n, 'w').write('x')\nopen(b'\\xff\\xfe', 'w').write('x')\nos.mkdir('sub')\nos.symlink('..', 'sub/up')\nprint('planted')\n";
    let out = py(&*s, script, T).await?;
    let copied = s.get_files(&CopyOutLimits::default()).await?;
    s.destroy().await?;
    let bad_out: Vec<&str> = copied.files.iter().map(|f| f.path.as_str()).filter(|p| check_relative(p).is_err()).collect();
    let ok = refused == 5 && bad_out.is_empty() && !copied.files.iter().any(|f| f.path.starts_with("sub/up"));
    let copied_paths: Vec<&str> = copied.files.iter().map(|f| f.path.as_str()).collect();
    Ok(Verdict::new(ok, format!("{refused}/5 bad names refused on the way in; out: {copied_paths:?}; {}", said(&out))))
}
