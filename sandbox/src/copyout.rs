//! Copy-out of a workspace: regular files only, no symlink followed, names checked, sizes
//! capped; everything left behind is reported with why.
//!
//! Two sources feed one [`Collector`]: a folder on the host ([`walk_dir`], for the process
//! backend; every path is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from
//! the workspace's descriptor) and a tar stream ([`read_tar`], what Docker's archive API
//! returns). Both run only once every process of the session is dead.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};

use crate::{CopyOut, CopyOutLimits, FileEntry, SandboxError, check_relative};

/// Deepest folder nesting walked; deeper folders are reported and skipped.
const MAX_DEPTH: usize = 64;

/// Gathers files under the limits, and the reasons for everything skipped.
#[derive(Debug)]
pub struct Collector {
    limits: CopyOutLimits,
    total: u64,
    out: CopyOut,
}

impl Collector {
    /// An empty copy-out under `limits`.
    pub fn new(limits: CopyOutLimits) -> Collector {
        Collector { limits, total: 0, out: CopyOut::default() }
    }

    /// Records a path left behind.
    pub fn skip(&mut self, path: impl Into<String>, why: impl Into<String>) {
        self.out.skipped.push((path.into(), why.into()));
    }

    /// Whether a regular file of `size` bytes fits; records why not when it does not.
    pub fn admit(&mut self, path: &str, size: u64) -> bool {
        let why = if size > self.limits.max_file_bytes {
            format!("larger than {} bytes", self.limits.max_file_bytes)
        } else if self.out.files.len() >= self.limits.max_files {
            format!("more than {} files", self.limits.max_files)
        } else if self.total + size > self.limits.max_total_bytes {
            format!("over the {} bytes copy-out total", self.limits.max_total_bytes)
        } else {
            return true;
        };
        self.skip(path, why);
        false
    }

    /// Adds a file [`Collector::admit`] accepted.
    pub fn push(&mut self, file: FileEntry) {
        self.total += file.data.len() as u64;
        self.out.files.push(file);
    }

    /// The copy-out, sorted by path.
    pub fn finish(mut self) -> CopyOut {
        self.out.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.out.skipped.sort();
        self.out
    }
}

/// Why a non-regular entry is left behind.
fn kind_reason(kind: FileType) -> &'static str {
    match kind {
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice | FileType::BlockDevice => "device",
        _ => "not a regular file",
    }
}

/// Joins a checked relative path, or says why the name is refused.
fn child_path(prefix: &str, name: &OsStr) -> Result<String, String> {
    let name = name.to_str().ok_or_else(|| format!("{prefix}/{}", name.to_string_lossy()))?;
    let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
    check_relative(&path).map(|()| path.clone()).map_err(|_| path)
}

fn open_beneath(dir: impl AsFd, name: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::openat2(&dir, name, flags, Mode::empty(), resolve) {
        Err(rustix::io::Errno::NOSYS) => rustix::fs::openat(&dir, name, flags, Mode::empty()),
        other => other,
    }
}

/// Copies the regular files under `root` (a host folder) out.
pub fn walk_dir(root: &Path, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
    let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(std::io::Error::from)?;
    let mut collector = Collector::new(*limits);
    walk(fd, "", 0, &mut collector)?;
    Ok(collector.finish())
}

fn walk(dir: OwnedFd, prefix: &str, depth: usize, collector: &mut Collector) -> Result<(), SandboxError> {
    let mut entries = Vec::new();
    for entry in Dir::read_from(&dir).map_err(std::io::Error::from)? {
        let entry = entry.map_err(std::io::Error::from)?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_owned();
        if name != "." && name != ".." {
            entries.push(name);
        }
    }
    entries.sort();
    for name in entries {
        let path = match child_path(prefix, &name) {
            Ok(path) => path,
            Err(shown) => {
                collector.skip(shown, "name refused (not UTF-8, or not a plain relative path)");
                continue;
            }
        };
        let stat = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(std::io::Error::from)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth >= MAX_DEPTH => collector.skip(path, format!("nested deeper than {MAX_DEPTH} folders")),
            FileType::Directory => match open_beneath(&dir, &name, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(sub) => walk(sub, &path, depth + 1, collector)?,
                Err(e) => collector.skip(path, format!("folder not opened: {e}")),
            },
            FileType::RegularFile if stat.st_nlink > 1 => collector.skip(path, format!("hard link ({} links)", stat.st_nlink)),
            FileType::RegularFile => read_regular(&dir, &name, path, &stat, collector),
            other => collector.skip(path, kind_reason(other)),
        }
    }
    Ok(())
}

fn read_regular(dir: &OwnedFd, name: &OsStr, path: String, stat: &rustix::fs::Stat, collector: &mut Collector) {
    let size = stat.st_size.max(0) as u64;
    if !collector.admit(&path, size) {
        return;
    }
    let fd = match open_beneath(dir, name, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => return collector.skip(path, format!("not opened: {e}")),
    };
    // The entry read must be the entry checked.
    match rustix::fs::fstat(&fd) {
        Ok(now) if now.st_ino == stat.st_ino && FileType::from_raw_mode(now.st_mode) == FileType::RegularFile => {}
        _ => return collector.skip(path, "changed while copying"),
    }
    let mut data = Vec::with_capacity(size as usize);
    let read = std::fs::File::from(fd).take(size + 1).read_to_end(&mut data);
    match read {
        Ok(_) if data.len() as u64 == size => {
            let executable = stat.st_mode & 0o111 != 0;
            collector.push(FileEntry { path, executable, data });
        }
        Ok(_) => collector.skip(path, "changed size while copying"),
        Err(e) => collector.skip(path, format!("not read: {e}")),
    }
}

/// Copies the regular files of a tar stream out; `strip` is the leading folder the archive
/// puts every path under (Docker names the archived folder itself, e.g. `workspace/`).
pub fn read_tar(reader: impl Read, strip: &str, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
    let mut collector = Collector::new(*limits);
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let trimmed = raw.trim_end_matches('/');
        let rel = trimmed.strip_prefix(strip).map(|r| r.trim_start_matches('/')).unwrap_or(trimmed);
        if rel.is_empty() || rel == "." {
            continue;
        }
        if std::str::from_utf8(&entry.path_bytes()).is_err() || check_relative(rel).is_err() {
            collector.skip(rel, "name refused (not UTF-8, or not a plain relative path)");
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_dir() {
            continue;
        }
        let reason = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => None,
            tar::EntryType::Symlink => Some("symbolic link"),
            tar::EntryType::Link => Some("hard link"),
            tar::EntryType::Fifo => Some("fifo"),
            tar::EntryType::Char | tar::EntryType::Block => Some("device"),
            _ => Some("not a regular file"),
        };
        if let Some(why) = reason {
            collector.skip(rel, why);
            continue;
        }
        let size = header.size()?;
        let executable = header.mode().map(|m| m & 0o111 != 0).unwrap_or(false);
        if !collector.admit(rel, size) {
            continue;
        }
        let mut data = Vec::with_capacity(size.min(1 << 24) as usize);
        (&mut entry).take(size).read_to_end(&mut data)?;
        collector.push(FileEntry { path: rel.to_owned(), executable, data });
    }
    Ok(collector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("plancd-copyout-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn walking_takes_regular_files_and_reports_the_rest() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("src/deep")).unwrap();
        std::fs::write(dir.join("src/deep/a.py"), "print(1)").unwrap();
        std::fs::write(dir.join("big.bin"), vec![0u8; 2048]).unwrap();
        std::fs::write(dir.join("twin"), "x").unwrap();
        std::fs::hard_link(dir.join("twin"), dir.join("twin2")).unwrap();
        symlink("/etc/passwd", dir.join("passwd")).unwrap();
        symlink("/", dir.join("rootdir")).unwrap();
        std::process::Command::new("mkfifo").arg(dir.join("pipe")).status().unwrap();
        let limits = CopyOutLimits { max_file_bytes: 1024, ..Default::default() };
        let out = walk_dir(&dir, &limits).unwrap();
        let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/deep/a.py"]);
        let skipped: Vec<(&str, &str)> = out.skipped.iter().map(|(p, w)| (p.as_str(), w.as_str())).collect();
        assert!(skipped.contains(&("passwd", "symbolic link")));
        assert!(skipped.contains(&("rootdir", "symbolic link")));
        assert!(skipped.contains(&("pipe", "fifo")));
        assert!(skipped.contains(&("big.bin", "larger than 1024 bytes")));
        assert!(skipped.iter().any(|(p, w)| *p == "twin" && w.starts_with("hard link")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tar_streams_keep_regular_files_and_refuse_escapes() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &[u8], kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..path.len()].copy_from_slice(path);
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            builder.append(&h, data).unwrap();
        };
        add(b"workspace/", tar::EntryType::Directory, b"");
        add(b"workspace/ok.txt", tar::EntryType::Regular, b"fine");
        add(b"workspace/../../etc/evil", tar::EntryType::Regular, b"evil");
        add(b"/etc/abs", tar::EntryType::Regular, b"evil");
        add(b"workspace/link", tar::EntryType::Symlink, b"");
        add(b"workspace/fifo", tar::EntryType::Fifo, b"");
        let bytes = builder.into_inner().unwrap();
        let out = read_tar(&bytes[..], "workspace", &CopyOutLimits::default()).unwrap();
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].path, "ok.txt");
        assert!(out.files[0].executable);
        let skipped: Vec<&str> = out.skipped.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
    }
}
