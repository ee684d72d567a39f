//! The strict seccomp policy both backends share: as BPF for bubblewrap, as a JSON profile for
//! Docker.
//!
//! The policy allows by default and denies what lets code leave a sandbox or attack the kernel
//! behind it: socket families other than unix, inet and inet6 (AF_VSOCK reaches the host of a
//! VM, AF_PACKET and AF_NETLINK the host's network stack), namespaces, mounts, ptrace and
//! process_vm_*, keyrings, bpf, perf, io_uring, kernel modules and clocks. Syscalls of another
//! architecture (the 32-bit `int 0x80` entry, x32) kill the process.

use std::collections::BTreeMap;

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch};
use serde_json::{Value, json};

/// Socket families code may open.
pub const ALLOWED_SOCKET_FAMILIES: [u64; 3] = [libc::AF_UNIX as u64, libc::AF_INET as u64, libc::AF_INET6 as u64];

/// Families the kernel knows are below this (AF_MAX); `socket()` refuses larger ones itself.
const FAMILY_LIMIT: u64 = 46;

/// `clone` flags that create namespaces.
pub const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

macro_rules! syscalls {
    ($($name:ident),* $(,)?) => { &[$((stringify!($name), libc::$name as i64)),*] };
}

/// Syscalls denied with EPERM on every architecture, by name and number.
const DENIED: &[(&str, i64)] = syscalls!(
    SYS_acct,
    SYS_add_key,
    SYS_bpf,
    SYS_chroot,
    SYS_clock_adjtime,
    SYS_clock_settime,
    SYS_delete_module,
    SYS_finit_module,
    SYS_fsconfig,
    SYS_fsmount,
    SYS_fsopen,
    SYS_fspick,
    SYS_init_module,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_io_uring_setup,
    SYS_kcmp,
    SYS_kexec_file_load,
    SYS_kexec_load,
    SYS_keyctl,
    SYS_lookup_dcookie,
    SYS_mount,
    SYS_mount_setattr,
    SYS_move_mount,
    SYS_name_to_handle_at,
    SYS_open_by_handle_at,
    SYS_open_tree,
    SYS_perf_event_open,
    SYS_pidfd_getfd,
    SYS_pivot_root,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_ptrace,
    SYS_quotactl,
    SYS_quotactl_fd,
    SYS_reboot,
    SYS_request_key,
    SYS_setns,
    SYS_settimeofday,
    SYS_swapoff,
    SYS_swapon,
    SYS_syslog,
    SYS_umount2,
    SYS_unshare,
    SYS_userfaultfd,
    SYS_vhangup,
);

/// Syscalls denied with EPERM that only x86_64 has.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[(&str, i64)] = syscalls!(SYS_ioperm, SYS_iopl, SYS_modify_ldt, SYS_uselib, SYS_ustat, SYS_sysfs, SYS__sysctl);
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[(&str, i64)] = &[];

/// Why the policy could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the seccomp policy: {0}")]
pub struct SeccompError(String);

/// Every denied syscall name (both lists), for the JSON profile and for reports.
pub fn denied_names() -> impl Iterator<Item = &'static str> {
    DENIED.iter().chain(DENIED_ARCH).map(|(name, _)| name.trim_start_matches("SYS_"))
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    std::env::consts::ARCH.try_into().map_err(|e| SeccompError(format!("unsupported architecture: {e:?}")))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(conditions).map_err(|e| SeccompError(e.to_string()))
}

fn condition(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| SeccompError(e.to_string()))
}

/// The EPERM filter: denied syscalls, foreign socket families, namespace-creating `clone`.
fn deny_filter() -> Result<SeccompFilter, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().chain(DENIED_ARCH).map(|&(_, nr)| (nr, Vec::new())).collect();
    // The family is an int: compare the low 32 bits, which is what the kernel reads.
    let mut socket = vec![rule(vec![condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ge, FAMILY_LIMIT)?])?];
    for family in (0..FAMILY_LIMIT).filter(|f| !ALLOWED_SOCKET_FAMILIES.contains(f)) {
        socket.push(rule(vec![condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, family)?])?);
    }
    rules.insert(libc::SYS_socket, socket);
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone);
    SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), target_arch()?)
        .map_err(|e| SeccompError(e.to_string()))
}

/// The ENOSYS filter: `clone3`, whose flags live in memory a filter cannot read; libc then
/// falls back to `clone`, which the EPERM filter checks.
fn enosys_filter() -> Result<SeccompFilter, SeccompError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), target_arch()?)
        .map_err(|e| SeccompError(e.to_string()))
}

/// A prologue that kills any syscall not of the native ABI: another architecture's audit value
/// (the 32-bit entry) and, on x86_64, x32 numbers (bit 30 set) which share the native value.
fn native_only_prologue() -> Result<Vec<seccompiler::sock_filter>, SeccompError> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const KILL_PROCESS: u32 = 0x8000_0000;
    let audit_arch = match std::env::consts::ARCH {
        "x86_64" => 62 | 0x8000_0000 | 0x4000_0000,
        "aarch64" => 183 | 0x8000_0000 | 0x4000_0000,
        "riscv64" => 243 | 0x8000_0000 | 0x4000_0000,
        other => return Err(SeccompError(format!("unsupported architecture: {other}"))),
    };
    let ins = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    Ok(vec![
        ins(LD_W_ABS, 0, 0, 4),         // seccomp_data.arch
        ins(JEQ_K, 1, 0, audit_arch),   // native: skip the kill
        ins(RET_K, 0, 0, KILL_PROCESS), //
        ins(LD_W_ABS, 0, 0, 0),         // seccomp_data.nr
        ins(JGE_K, 0, 1, 0x4000_0000),  // x32 range: kill
        ins(RET_K, 0, 0, KILL_PROCESS), //
    ])
}

fn to_bytes(program: &[seccompiler::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for ins in program {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    out
}

/// The policy as BPF programs, in the binary form `bwrap --add-seccomp-fd` reads: the EPERM
/// program (behind the native-ABI prologue) and the ENOSYS program.
pub fn bpf_programs() -> Result<Vec<Vec<u8>>, SeccompError> {
    let compile = |filter: SeccompFilter| -> Result<seccompiler::BpfProgram, SeccompError> {
        filter.try_into().map_err(|e: seccompiler::BackendError| SeccompError(e.to_string()))
    };
    let mut deny = native_only_prologue()?;
    deny.extend(compile(deny_filter()?)?);
    Ok(vec![to_bytes(&deny), to_bytes(&compile(enosys_filter()?)?)])
}

/// libseccomp's name for the native architecture, as Docker profiles spell it.
fn scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "SCMP_ARCH_AARCH64",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_X86_64",
    }
}

/// The same policy as a Docker seccomp profile (`--security-opt seccomp=<json>`). Argument
/// comparisons mask to the low 32 bits where the kernel reads an int.
pub fn docker_profile() -> Value {
    let eperm = |names: Vec<&str>| json!({ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM });
    let mut syscalls = vec![eperm(denied_names().collect())];
    for family in (0..FAMILY_LIMIT).filter(|f| !ALLOWED_SOCKET_FAMILIES.contains(f)) {
        syscalls.push(json!({
            "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
            "args": [{ "index": 0, "value": 0xffff_ffffu64, "valueTwo": family, "op": "SCMP_CMP_MASKED_EQ" }],
        }));
    }
    for flag in NAMESPACE_FLAGS {
        syscalls.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
            "args": [{ "index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ" }],
        }));
    }
    syscalls.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS }));
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": [scmp_arch()], "syscalls": syscalls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bpf_programs_compile_and_start_with_the_abi_check() {
        let programs = bpf_programs().expect("the policy compiles");
        assert_eq!(programs.len(), 2);
        for p in &programs {
            assert_eq!(p.len() % 8, 0);
            assert!(p.len() / 8 < 4096, "a BPF program holds at most 4096 instructions");
        }
        // First instruction loads seccomp_data.arch (offset 4).
        assert_eq!(u32::from_ne_bytes(programs[0][4..8].try_into().expect("4 bytes")), 4);
    }

    #[test]
    fn the_docker_profile_denies_vsock_and_io_uring() {
        let profile = docker_profile();
        let text = profile.to_string();
        assert!(text.contains("io_uring_setup") && text.contains("ptrace") && text.contains("keyctl"));
        let socket_rules = profile["syscalls"].as_array().expect("a list").iter().filter(|r| r["names"][0] == "socket");
        let families: Vec<u64> = socket_rules.map(|r| r["args"][0]["valueTwo"].as_u64().expect("a number")).collect();
        assert!(families.contains(&(libc::AF_VSOCK as u64)) && families.contains(&(libc::AF_PACKET as u64)));
        assert!(!families.contains(&(libc::AF_INET as u64)) && !families.contains(&(libc::AF_UNIX as u64)));
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
    }
}
