//! Copy-back: files from a sandbox written into a folder on the host, the one way plancd
//! brings sandbox files onto the host's filesystem.
//!
//! [`CopyBack`] is a [`FileSink`]: files arrive one at a time, in chunks, from a backend's
//! streaming copy-out. Names are checked again ([`crate::names`]: never `.git` in any form,
//! never control characters); every folder on a file's path is opened from the folder above it
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (`openat` + `O_NOFOLLOW` where the
//! kernel lacks it), so a symlink already in the folder (`docs -> /elsewhere`, `up -> ..`)
//! is never written through; a file is written under a temporary name beside its target and
//! renamed over it, so a link or hard link in its place is replaced, not written into, and a
//! file is never left half-written.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::SandboxError;
use crate::copyout::{FileSink, Skip};

/// A file being written.
struct Pending {
    path: String,
    dir: OwnedFd,
    name: String,
    temp: String,
    file: std::fs::File,
}

/// Writes copied-out files beneath a host folder; see the module's documentation.
pub struct CopyBack {
    root: OwnedFd,
    current: Option<Pending>,
    written: Vec<String>,
    skipped: Vec<(String, Skip)>,
    next: u64,
}

/// What a copy-back did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyBackReport {
    /// Paths written, in the order they came.
    pub written: Vec<String>,
    /// Paths not written (by the copy-out or on the host), with why, sorted.
    pub skipped: Vec<(String, Skip)>,
}

fn io(e: rustix::io::Errno) -> SandboxError {
    SandboxError::Io(e.into())
}

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

fn open_at(dir: &OwnedFd, name: &str, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::openat2(dir, OsStr::new(name), flags, mode, resolve()) {
        Err(rustix::io::Errno::NOSYS) => rustix::fs::openat(dir, OsStr::new(name), flags, mode),
        other => other,
    }
}

/// Opens the folder `name` in `dir`, creating it when absent; `None` when something else
/// (a symlink, a file) has that name.
fn subdir(dir: &OwnedFd, name: &str) -> Result<Option<OwnedFd>, SandboxError> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(io(e)),
    }
    match open_at(dir, name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::XDEV) => Ok(None),
        Err(e) => Err(io(e)),
    }
}

impl CopyBack {
    /// A copy-back into `root`, which must be a folder.
    pub fn new(root: &Path) -> Result<CopyBack, SandboxError> {
        let root = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io)?;
        Ok(CopyBack { root, current: None, written: Vec::new(), skipped: Vec::new(), next: 0 })
    }

    /// What was written and what was not.
    pub fn finish(mut self) -> CopyBackReport {
        self.abort(Skip::Changed);
        self.skipped.sort();
        CopyBackReport { written: std::mem::take(&mut self.written), skipped: std::mem::take(&mut self.skipped) }
    }

    /// The folder that holds `path`, opened beneath the root; `None` when a folder on the way
    /// is not one.
    fn parent(&self, path: &str) -> Result<Option<OwnedFd>, SandboxError> {
        let mut dir = self.root.try_clone()?;
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        for part in parts {
            match subdir(&dir, part)? {
                Some(next) => dir = next,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }
}

impl FileSink for CopyBack {
    fn begin(&mut self, path: &str, executable: bool, _size: u64) -> Result<bool, SandboxError> {
        self.abort(Skip::Changed);
        if let Some(refused) = crate::names::refusal(path) {
            self.skipped.push((path.to_owned(), Skip::Name(refused)));
            return Ok(false);
        }
        let Some(dir) = self.parent(path)? else {
            self.skipped.push((path.to_owned(), Skip::HostPathNotFolder));
            return Ok(false);
        };
        let name = path.rsplit('/').next().expect("a checked path has a last component").to_owned();
        match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                self.skipped.push((path.to_owned(), Skip::HostFolderInTheWay));
                return Ok(false);
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io(e)),
        }
        self.next += 1;
        let temp = format!(".plancd-copyback-{}-{}", std::process::id(), self.next);
        let mode = Mode::from_raw_mode(if executable { 0o755 } else { 0o644 });
        let fd = open_at(&dir, &temp, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, mode).map_err(io)?;
        // The mode is set explicitly: the umask must not strip the executable bit.
        rustix::fs::fchmod(&fd, mode).map_err(io)?;
        self.current = Some(Pending { path: path.to_owned(), dir, name, temp, file: std::fs::File::from(fd) });
        Ok(true)
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), SandboxError> {
        match &mut self.current {
            Some(p) => Ok(p.file.write_all(chunk)?),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), SandboxError> {
        let Some(p) = self.current.take() else { return Ok(()) };
        drop(p.file);
        if let Err(e) = rustix::fs::renameat(&p.dir, p.temp.as_str(), &p.dir, p.name.as_str()) {
            let _ = rustix::fs::unlinkat(&p.dir, p.temp.as_str(), AtFlags::empty());
            return Err(io(e));
        }
        self.written.push(p.path);
        Ok(())
    }

    fn abort(&mut self, why: Skip) {
        if let Some(p) = self.current.take() {
            let _ = rustix::fs::unlinkat(&p.dir, p.temp.as_str(), AtFlags::empty());
            self.skipped.push((p.path, why));
        }
    }

    fn skip(&mut self, path: &str, why: Skip) {
        self.skipped.push((path.to_owned(), why));
    }
}

impl Drop for CopyBack {
    fn drop(&mut self) {
        if let Some(p) = self.current.take() {
            let _ = rustix::fs::unlinkat(&p.dir, p.temp.as_str(), AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copyout::replay;
    use crate::names::NameRefusal;
    use crate::{CopyOut, FileEntry};
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("plancd-copyback-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn copy_back(dir: &Path, files: Vec<FileEntry>) -> CopyBackReport {
        let mut sink = CopyBack::new(dir).unwrap();
        replay(CopyOut { files, skipped: vec![] }, &mut sink).unwrap();
        sink.finish()
    }

    #[test]
    fn git_folders_never_come_back() {
        let dir = tempdir("git");
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git/config"), "[core]\n").unwrap();
        let evil = "[core]\n\tfsmonitor = touch /tmp/plancd-pwned\n";
        let report = copy_back(
            &dir,
            vec![FileEntry::new(".git/config", evil), FileEntry::new("sub/.GIT/config", evil), FileEntry::new("GIT~1/config", evil)],
        );
        assert!(report.written.is_empty());
        assert_eq!(std::fs::read_to_string(dir.join(".git/config")).unwrap(), "[core]\n");
        assert!(!dir.join("sub").exists());
        assert!(report.skipped.iter().all(|(_, w)| *w == Skip::Name(NameRefusal::GitDir)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinked_folders_on_the_host_are_never_written_through() {
        let dir = tempdir("links");
        let elsewhere = tempdir("elsewhere");
        symlink(&elsewhere, dir.join("docs")).unwrap();
        symlink("..", dir.join("up")).unwrap();
        std::fs::create_dir_all(dir.join("real")).unwrap();
        symlink(&elsewhere, dir.join("real/deep")).unwrap();
        std::fs::write(elsewhere.join("victim"), "safe").unwrap();
        symlink(elsewhere.join("victim"), dir.join("victim")).unwrap();
        std::fs::write(dir.join("file"), "a file").unwrap();
        let report = copy_back(
            &dir,
            vec![
                FileEntry::new("docs/index.md", "evil"),
                FileEntry::new("up/escaped", "evil"),
                FileEntry::new("real/deep/x", "evil"),
                FileEntry::new("file/under", "evil"),
                FileEntry::new("victim", "replaced"),
                FileEntry { path: "bin/run".into(), executable: true, data: b"#!/bin/sh\n".to_vec() },
            ],
        );
        assert_eq!(report.written, ["victim", "bin/run"]);
        let refused: Vec<&str> = report.skipped.iter().filter(|(_, w)| *w == Skip::HostPathNotFolder).map(|(p, _)| p.as_str()).collect();
        assert_eq!(refused, ["docs/index.md", "file/under", "real/deep/x", "up/escaped"]);
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);
        assert_eq!(std::fs::read_to_string(elsewhere.join("victim")).unwrap(), "safe");
        assert!(!dir.parent().unwrap().join("escaped").exists());
        assert_eq!(std::fs::read_to_string(dir.join("victim")).unwrap(), "replaced");
        assert_eq!(std::fs::metadata(dir.join("bin/run")).unwrap().permissions().mode() & 0o777, 0o755);
        let leftovers: Vec<_> =
            std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".plancd")).collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn hard_links_and_folders_in_the_way_are_not_written_into() {
        let dir = tempdir("hard");
        let outside = tempdir("hard-outside");
        std::fs::write(outside.join("target"), "safe").unwrap();
        std::fs::hard_link(outside.join("target"), dir.join("twin")).unwrap();
        std::fs::create_dir_all(dir.join("folder")).unwrap();
        let report = copy_back(&dir, vec![FileEntry::new("twin", "new"), FileEntry::new("folder", "x"), FileEntry::new("a\nb", "x")]);
        assert_eq!(report.written, ["twin"]);
        assert_eq!(std::fs::read_to_string(outside.join("target")).unwrap(), "safe");
        assert_eq!(std::fs::read_to_string(dir.join("twin")).unwrap(), "new");
        assert!(report.skipped.contains(&("folder".to_owned(), Skip::HostFolderInTheWay)));
        assert!(report.skipped.contains(&("a\nb".to_owned(), Skip::Name(NameRefusal::ControlCharacter))));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
