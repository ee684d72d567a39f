//! What the child does between fork and exec of bubblewrap: join the command's control
//! groups, set resource limits, keep the seccomp and status descriptors open across exec, and
//! drop to the sandbox's host user. The only module of the crate with `unsafe`: `pre_exec`
//! is how std lets a parent run code in the child before exec.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// Resource limits set in the child (soft and hard alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimits {
    /// Open files.
    pub nofile: u64,
    /// Largest file a process may write, bytes.
    pub fsize: u64,
    /// Processes of the user; only where no pids controller limits them.
    pub nproc: Option<u64>,
    /// Address space, bytes; only where no memory controller limits it.
    pub address_space: Option<u64>,
}

/// What the child sets up before it becomes bubblewrap.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` files, opened for writing; the child writes itself into each.
    pub cgroup_procs: Vec<RawFd>,
    /// Descriptors bubblewrap reads (seccomp programs, status pipe): kept across exec.
    pub inherit: Vec<RawFd>,
    /// Resource limits.
    pub rlimits: Option<Rlimits>,
    /// The host user and group to become, when plancd runs as root.
    pub user: Option<(u32, u32)>,
}

/// Makes `cmd` perform `setup` in the child before exec.
pub fn install(cmd: &mut tokio::process::Command, setup: ChildSetup) {
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it makes raw syscalls (write, setrlimit, fcntl, setgroups, setgid,
    // setuid) on plain integers it owns, allocates nothing and takes no locks. The
    // descriptors it names are kept open by the parent until `spawn` returns.
    unsafe {
        cmd.pre_exec(move || run(&setup));
    }
}

/// The same for a blocking [`std::process::Command`].
pub fn install_std(cmd: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // SAFETY: as in `install`.
    unsafe {
        cmd.pre_exec(move || run(&setup));
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn run(setup: &ChildSetup) -> io::Result<()> {
    for &fd in &setup.cgroup_procs {
        // SAFETY: writes one byte from a static buffer to a descriptor the parent opened.
        let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if written != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(limits) = setup.rlimits {
        set_limit(libc::RLIMIT_NOFILE, limits.nofile)?;
        set_limit(libc::RLIMIT_FSIZE, limits.fsize)?;
        set_limit(libc::RLIMIT_CORE, 0)?;
        set_limit(libc::RLIMIT_MEMLOCK, 64 << 10)?;
        set_limit(libc::RLIMIT_MSGQUEUE, 0)?;
        if let Some(n) = limits.nproc {
            set_limit(libc::RLIMIT_NPROC, n)?;
        }
        if let Some(bytes) = limits.address_space {
            set_limit(libc::RLIMIT_AS, bytes)?;
        }
    }
    close_on_exec_above_stdio();
    for &fd in &setup.inherit {
        // SAFETY: clears FD_CLOEXEC on a descriptor the parent opened for bubblewrap.
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
    }
    if let Some((uid, gid)) = setup.user {
        // SAFETY: plain credential syscalls in the single-threaded child; groups go first,
        // while the process may still change them.
        unsafe {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
        }
    }
    Ok(())
}

/// Marks every descriptor above stdio close-on-exec: plancd may have inherited descriptors
/// (a build tool's jobserver, say) that must not reach sandboxed code.
fn close_on_exec_above_stdio() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags of this process.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret < 0 {
        // Kernels before 5.11: the limit set above bounds the descriptors worth marking.
        for fd in 3..4096 {
            // SAFETY: F_SETFD on a descriptor that may not exist fails harmlessly with EBADF.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn set_limit(resource: Resource, value: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: passes a pointer to a local, initialised struct.
    check(unsafe { libc::setrlimit(resource, &limit) })
}
