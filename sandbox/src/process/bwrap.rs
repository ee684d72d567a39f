//! The bubblewrap command line of one sandboxed command: namespaces, the read-only root, the
//! fresh /proc, a read-only /dev, a capped /tmp and /dev/shm, the workspace and metadata
//! binds, seccomp.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::{META_DIR, WORKSPACE};

/// The user and group commands run as inside (nobody).
pub const INSIDE_ID: u32 = 65534;

/// Host folders bound read-only when the sandbox uses the host's root (merged-/usr symlinks
/// are recreated as symlinks). Nothing else of the host is visible: not /root, /home, /run,
/// /var, /sys, nor any socket.
const HOST_DIRS: [&str; 9] = ["usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Everything one bubblewrap command line depends on.
#[derive(Debug)]
pub struct Plan<'a> {
    /// A root folder to use instead of the host's.
    pub root: Option<&'a Path>,
    /// Further host folders to show read-only at the same path (toolchains).
    pub extra_ro: &'a [PathBuf],
    /// The session's workspace on the host.
    pub workspace: &'a Path,
    /// The session's metadata folder on the host.
    pub meta: &'a Path,
    /// Host folders shown at their own place inside, each as a descriptor plancd opened (so
    /// that the sandbox's host user need not reach the folder's path).
    pub mounts: &'a [BindFd<'a>],
    /// Size of the private /tmp, bytes (when there is no scratch mount).
    pub tmp_bytes: u64,
    /// Size of the private /dev/shm, bytes (when there is no scratch mount).
    pub shm_bytes: u64,
    /// A size- and inode-capped tmpfs of plancd's, holding `tmp` and `shm`, bound at /tmp and
    /// /dev/shm; without it (plancd not root) bubblewrap's own tmpfs, size-capped only.
    pub scratch: Option<&'a Path>,
    /// Working directory relative to the workspace.
    pub cwd: &'a str,
    /// Seccomp programs, one descriptor each.
    pub seccomp_fds: &'a [RawFd],
    /// Where bubblewrap reports the child's pid and exit.
    pub status_fd: RawFd,
    /// Whether this bubblewrap knows `--disable-userns`.
    pub disable_userns: bool,
    /// Port forwards: host folders shown read-only at their place inside.
    pub forward_dirs: &'a [(PathBuf, String)],
    /// Port forwards: the forwarder program, shown read-only at
    /// [`crate::forward::INSIDE_PROGRAM`].
    pub forwarder: Option<&'a Path>,
    /// The host's CA bundle, shown at [`crate::egress::DEFAULT_CA_BUNDLE`] over a root's own.
    pub ca_bundle: Option<&'a Path>,
}

/// A folder opened by plancd, bound at `inside`.
#[derive(Debug, Clone, Copy)]
pub struct BindFd<'a> {
    /// An `O_PATH` descriptor of the folder, inherited by bubblewrap.
    pub fd: RawFd,
    /// Where it appears.
    pub inside: &'a str,
    /// Read-write, or read-only.
    pub writable: bool,
}

fn push(args: &mut Vec<OsString>, items: &[&str]) {
    args.extend(items.iter().map(OsString::from));
}

fn push_path(args: &mut Vec<OsString>, flag: &str, src: &Path, dest: &str) {
    args.push(flag.into());
    args.push(src.into());
    args.push(dest.into());
}

/// The arguments up to and including `--`; the command's argv follows.
pub fn args(plan: &Plan<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::with_capacity(64);
    push(&mut a, &["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try"]);
    if plan.disable_userns {
        push(&mut a, &["--disable-userns"]);
    }
    let id = INSIDE_ID.to_string();
    push(&mut a, &["--uid", &id, "--gid", &id, "--hostname", "sandbox", "--die-with-parent", "--new-session"]);
    match plan.root {
        Some(root) => push_path(&mut a, "--ro-bind", root, "/"),
        None => host_root(&mut a),
    }
    for dir in plan.extra_ro {
        push_path(&mut a, "--ro-bind-try", dir, &dir.to_string_lossy());
    }
    push(&mut a, &["--proc", "/proc", "--dev", "/dev"]);
    match plan.scratch {
        Some(dir) => {
            push_path(&mut a, "--bind", &dir.join("tmp"), "/tmp");
            push_path(&mut a, "--bind", &dir.join("shm"), "/dev/shm");
        }
        None => {
            push(&mut a, &["--perms", "1777", "--size", &plan.tmp_bytes.to_string(), "--tmpfs", "/tmp"]);
            push(&mut a, &["--perms", "1777", "--size", &plan.shm_bytes.to_string(), "--tmpfs", "/dev/shm"]);
        }
    }
    // /dev is a tmpfs without caps: nothing but its device nodes and /dev/shm is writable.
    push(&mut a, &["--remount-ro", "/dev"]);
    push_path(&mut a, "--bind", plan.workspace, WORKSPACE);
    push_path(&mut a, "--ro-bind", plan.meta, META_DIR);
    for m in plan.mounts {
        push(&mut a, &[if m.writable { "--bind-fd" } else { "--ro-bind-fd" }, &m.fd.to_string(), m.inside]);
    }
    if let Some(program) = plan.forwarder {
        // A tmpfs holds the mount points, which a read-only root could not.
        push(&mut a, &["--tmpfs", crate::forward::INSIDE_DIR]);
        for (host, inside) in plan.forward_dirs {
            push_path(&mut a, "--ro-bind", host, inside);
        }
        push_path(&mut a, "--ro-bind", program, crate::forward::INSIDE_PROGRAM);
        push(&mut a, &["--remount-ro", crate::forward::INSIDE_DIR]);
    }
    if let Some(bundle) = plan.ca_bundle {
        push_path(&mut a, "--ro-bind", bundle, crate::egress::DEFAULT_CA_BUNDLE);
    }
    if plan.root.is_none() {
        push(&mut a, &["--remount-ro", "/"]);
    }
    let cwd = if plan.cwd.is_empty() { WORKSPACE.to_owned() } else { format!("{WORKSPACE}/{}", plan.cwd) };
    push(&mut a, &["--chdir", &cwd]);
    for fd in plan.seccomp_fds {
        push(&mut a, &["--add-seccomp-fd", &fd.to_string()]);
    }
    push(&mut a, &["--json-status-fd", &plan.status_fd.to_string(), "--"]);
    a
}

fn host_root(a: &mut Vec<OsString>) {
    for name in HOST_DIRS {
        let host = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else { continue };
        let dest = format!("/{name}");
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(&host) {
                a.push("--symlink".into());
                a.push(target.into());
                a.push(dest.into());
            }
        } else if meta.is_dir() {
            push_path(a, "--ro-bind", &host, &dest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_isolates_and_binds_what_it_should() {
        let plan = Plan {
            root: None,
            extra_ro: &[],
            workspace: Path::new("/tmp/ws"),
            meta: Path::new("/tmp/meta"),
            mounts: &[BindFd { fd: 11, inside: "/env", writable: false }, BindFd { fd: 12, inside: "/cache", writable: true }],
            tmp_bytes: 1 << 20,
            shm_bytes: 1 << 19,
            scratch: None,
            cwd: "src",
            seccomp_fds: &[7, 8],
            status_fd: 9,
            disable_userns: true,
            forward_dirs: &[],
            forwarder: None,
            ca_bundle: None,
        };
        let args: Vec<String> = args(&plan).into_iter().map(|a| a.into_string().expect("utf-8")).collect();
        let line = args.join(" ");
        for expected in [
            "--unshare-net",
            "--unshare-pid",
            "--disable-userns",
            "--uid 65534",
            "--bind /tmp/ws /workspace",
            "--ro-bind /tmp/meta /run/plancd --ro-bind-fd 11 /env --bind-fd 12 /cache",
            "--size 1048576 --tmpfs /tmp",
            "--size 524288 --tmpfs /dev/shm --remount-ro /dev",
            "--chdir /workspace/src",
            "--add-seccomp-fd 7 --add-seccomp-fd 8",
            "--ro-bind /usr /usr",
            "--remount-ro /",
        ] {
            assert!(line.contains(expected), "{expected} missing in {line}");
        }
        assert!(!line.contains("/root") && !line.contains("/home") && !line.contains("/var"));
        assert_eq!(args.last().map(String::as_str), Some("--"));
        let scratch = Path::new("/tmp/s/x0");
        let capped: Vec<String> =
            super::args(&Plan { scratch: Some(scratch), ..plan }).into_iter().map(|a| a.into_string().expect("utf-8")).collect();
        let line = capped.join(" ");
        assert!(line.contains("--bind /tmp/s/x0/tmp /tmp --bind /tmp/s/x0/shm /dev/shm --remount-ro /dev"), "{line}");
        assert!(!line.contains("--tmpfs"), "{line}");
        let dirs = [(PathBuf::from("/tmp/proxy"), "/run/plancd-net/0".to_owned())];
        let forwarding = Plan { forward_dirs: &dirs, forwarder: Some(Path::new("/opt/plancd")), ..plan };
        let line = super::args(&forwarding).into_iter().map(|a| a.into_string().expect("utf-8")).collect::<Vec<_>>().join(" ");
        assert!(line.contains("--tmpfs /run/plancd-net --ro-bind /tmp/proxy /run/plancd-net/0"), "{line}");
        assert!(line.contains("--ro-bind /opt/plancd /run/plancd-net/forward --remount-ro /run/plancd-net"), "{line}");
        assert!(line.contains("--unshare-net"), "{line}");
    }
}
