//! The hardened container and volume settings of the docker backend.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions, ResourcesUlimits, VolumeCreateRequest,
};

use crate::{Limits, META_DIR, WORKSPACE};

/// The user and group commands run as (nobody).
pub const USER: &str = "65534:65534";
/// [`USER`] as ids.
pub const USER_IDS: (u32, u32) = (65534, 65534);
/// Label naming the session a container or volume belongs to.
pub const SESSION_LABEL: &str = "plancd.session";
/// Label naming the owner (a controller instance) whose crash leftovers are swept.
pub const OWNER_LABEL: &str = "plancd.owner";

/// Labels of everything a session creates.
pub fn labels(session: &str, owner: &str) -> HashMap<String, String> {
    HashMap::from([(SESSION_LABEL.to_owned(), session.to_owned()), (OWNER_LABEL.to_owned(), owner.to_owned())])
}

/// A tmpfs-backed named volume of `size_mb`, owned by `uid_gid` (`None`: root).
pub fn tmpfs_volume(name: &str, size_mb: u64, owned_by_sandbox: bool, labels: HashMap<String, String>) -> VolumeCreateRequest {
    let inodes = (size_mb * 256).clamp(4096, 1 << 22);
    let owner = if owned_by_sandbox { ",uid=65534,gid=65534,mode=0755" } else { ",mode=0755" };
    let options = format!("size={size_mb}m,nr_inodes={inodes}{owner},nosuid,nodev");
    let driver_opts =
        HashMap::from([("type".to_owned(), "tmpfs".to_owned()), ("device".to_owned(), "tmpfs".to_owned()), ("o".to_owned(), options)]);
    VolumeCreateRequest {
        name: Some(name.to_owned()),
        driver: Some("local".to_owned()),
        driver_opts: Some(driver_opts),
        labels: Some(labels),
        ..Default::default()
    }
}

/// A named volume mount. `no_copy`: the engine must not fill the volume from the image (it
/// would also give the workspace the image folder's owner).
fn volume_mount(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        target: Some(target.to_owned()),
        source: Some(source.to_owned()),
        typ: Some(MountType::VOLUME),
        read_only: Some(read_only),
        volume_options: Some(MountVolumeOptions { no_copy: Some(true), ..Default::default() }),
        ..Default::default()
    }
}

/// A read-only bind of the host path `source` at `target`.
pub fn read_only_bind(source: &std::path::Path, target: &str) -> Mount {
    bind(source, target, true)
}

/// A bind of the host path `source` at `target`.
pub fn bind(source: &std::path::Path, target: &str, read_only: bool) -> Mount {
    Mount {
        target: Some(target.to_owned()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    }
}

fn ulimit(name: &str, value: i64) -> ResourcesUlimits {
    ResourcesUlimits { name: Some(name.to_owned()), soft: Some(value), hard: Some(value) }
}

/// What every container of a session shares: no network, no capabilities, no new
/// privileges, the strict seccomp profile, a read-only root, a capped private /tmp, limits.
pub fn host_config(limits: &Limits, seccomp_json: &str, workspace: &str, meta: &str, meta_read_only: bool) -> HostConfig {
    let memory = (limits.memory_mb.max(6) << 20) as i64;
    let disk_bytes = (limits.disk_mb.max(1) << 20) as i64;
    let tmp = format!("rw,nosuid,nodev,size={}m,nr_inodes={}", limits.disk_mb.max(1), (limits.disk_mb * 256).clamp(4096, 1 << 22));
    HostConfig {
        network_mode: Some("none".to_owned()),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges:true".to_owned(), format!("seccomp={seccomp_json}")]),
        readonly_rootfs: Some(true),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((limits.cpus.max(0.01) * 1e9) as i64),
        pids_limit: Some(limits.pids.max(1) as i64),
        ulimits: Some(vec![ulimit("nofile", 1024), ulimit("core", 0), ulimit("fsize", disk_bytes), ulimit("memlock", 64 << 10)]),
        tmpfs: Some(HashMap::from([("/tmp".to_owned(), tmp)])),
        mounts: Some(vec![volume_mount(workspace, WORKSPACE, false), volume_mount(meta, META_DIR, meta_read_only)]),
        log_config: Some(HostConfigLogConfig { typ: Some("none".to_owned()), config: None }),
        ipc_mode: Some("private".to_owned()),
        init: Some(false),
        ..Default::default()
    }
}

/// A container running `cmd` as the sandbox user in `cwd` with `env` and `host`.
pub fn container(
    image: &str,
    cmd: Vec<String>,
    env: Vec<String>,
    cwd: &str,
    stdin: bool,
    host: HostConfig,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd),
        entrypoint: Some(Vec::new()),
        env: Some(env),
        user: Some(USER.to_owned()),
        working_dir: Some(if cwd.is_empty() { WORKSPACE.to_owned() } else { format!("{WORKSPACE}/{cwd}") }),
        hostname: Some("sandbox".to_owned()),
        attach_stdin: Some(stdin),
        open_stdin: Some(stdin),
        stdin_once: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(host),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_locked_down() {
        let host = host_config(&Limits::default(), "{}", "ws", "meta", true);
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.memory, host.memory_swap);
        let opts = host.security_opt.unwrap();
        assert!(opts.iter().any(|o| o.starts_with("no-new-privileges")) && opts.iter().any(|o| o.starts_with("seccomp=")));
        let body = container("img", vec!["true".into()], vec![], "", false, HostConfig::default(), labels("s", "o"));
        assert_eq!(body.user.as_deref(), Some(USER));
        assert_eq!(body.working_dir.as_deref(), Some("/workspace"));
        let volume = tmpfs_volume("v", 64, true, labels("s", "o"));
        let o = &volume.driver_opts.unwrap()["o"];
        assert!(o.starts_with("size=64m,") && o.contains("uid=65534"));
    }
}
