//! Writing files into a session's workspace from the host without following anything the
//! sandboxed code planted: every folder and file is opened beneath the workspace with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and an existing entry is unlinked first
//! (never truncated: it could be a hard link to something else).

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::{FileEntry, SandboxError, check_relative};

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

fn io(e: rustix::io::Errno) -> SandboxError {
    SandboxError::Io(e.into())
}

/// Opens (creating when absent) the folder `name` in `dir`.
fn subdir(dir: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> Result<OwnedFd, SandboxError> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => {
            if let Some((uid, gid)) = owner {
                let fd = open_dir(dir, name)?;
                std::os::unix::fs::fchown(&fd, Some(uid), Some(gid))?;
                return Ok(fd);
            }
        }
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(io(e)),
    }
    open_dir(dir, name)
}

fn open_dir(dir: &OwnedFd, name: &str) -> Result<OwnedFd, SandboxError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat2(dir, name, flags, Mode::empty(), resolve()).map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::XDEV => SandboxError::BadPath(name.to_owned()),
        e => io(e),
    })
}

/// Writes `files` under `root`, owned by `owner` when given.
pub fn put(root: &Path, files: &[FileEntry], owner: Option<(u32, u32)>) -> Result<(), SandboxError> {
    for f in files {
        check_relative(&f.path)?;
    }
    let top: OwnedFd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io)?;
    for f in files {
        let mut parts: Vec<&str> = f.path.split('/').collect();
        let name = parts.pop().expect("a checked path has a last component");
        let mut dir = top.try_clone()?;
        for part in parts {
            dir = subdir(&dir, part, owner).map_err(|e| match e {
                SandboxError::BadPath(_) => SandboxError::BadPath(f.path.clone()),
                e => e,
            })?;
        }
        write_file(&dir, name, f, owner)?;
    }
    Ok(())
}

fn write_file(dir: &OwnedFd, name: &str, f: &FileEntry, owner: Option<(u32, u32)>) -> Result<(), SandboxError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => return Err(SandboxError::BadPath(f.path.clone())),
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io)?,
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(io(e)),
    }
    let mode = Mode::from_raw_mode(if f.executable { 0o755 } else { 0o644 });
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat2(dir, OsStr::new(name), flags, mode, resolve()).map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&fd, Some(uid), Some(gid))?;
    }
    // The mode is set explicitly: the umask must not strip the executable bit.
    rustix::fs::fchmod(&fd, mode).map_err(io)?;
    std::fs::File::from(fd).write_all(&f.data)?;
    Ok(())
}

/// Whether the files under `root` take more than `limit` bytes of disk (symlinks not followed;
/// stops counting as soon as they do).
pub fn usage_over(root: &Path, limit: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut used = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            used = used.saturating_add(meta.blocks().saturating_mul(512));
            if used > limit {
                return true;
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn files_land_beneath_the_root_and_planted_links_are_refused() {
        let root = std::env::temp_dir().join(format!("plancd-put-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let outside = std::env::temp_dir().join(format!("plancd-put-outside-{}", std::process::id()));
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("escape")).unwrap();
        std::fs::write(outside.join("victim"), "safe").unwrap();
        symlink(outside.join("victim"), root.join("victim")).unwrap();

        let run = FileEntry { path: "bin/run.sh".into(), executable: true, data: b"#!/bin/sh\n".to_vec() };
        put(&root, &[FileEntry::new("a/b/c.txt", "hello"), run], None).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("a/b/c.txt")).unwrap(), "hello");
        assert_eq!(std::fs::metadata(root.join("bin/run.sh")).unwrap().permissions().mode() & 0o777, 0o755);

        assert!(matches!(put(&root, &[FileEntry::new("escape/x", "evil")], None), Err(SandboxError::BadPath(_))));
        assert!(!outside.join("x").exists());
        // A symlink in the file's place is replaced, never written through.
        put(&root, &[FileEntry::new("victim", "new")], None).unwrap();
        assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "safe");
        assert_eq!(std::fs::read_to_string(root.join("victim")).unwrap(), "new");
        assert!(put(&root, &[FileEntry::new("../up", "x")], None).is_err());
        assert!(usage_over(&root, 10));
        assert!(!usage_over(&root, 1 << 30));
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
