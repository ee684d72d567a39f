//! Copy-out from a host folder (the process backend's workspace): every entry is opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from its folder's descriptor, and files are
//! streamed to the sink in chunks.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};

use super::{FileSink, Gate, Skip};
use crate::{CopyOutLimits, SandboxError};

/// Deepest folder nesting walked; deeper folders are reported and skipped.
const MAX_DEPTH: usize = 64;
/// Bytes read at a time.
const CHUNK: usize = 64 << 10;

/// Why a non-regular entry is left behind.
fn kind_skip(kind: FileType) -> Skip {
    match kind {
        FileType::Symlink => Skip::Symlink,
        FileType::Fifo => Skip::Fifo,
        FileType::Socket => Skip::Socket,
        FileType::CharacterDevice | FileType::BlockDevice => Skip::Device,
        _ => Skip::NotRegular,
    }
}

/// Joins a checked relative path, or says (with the name as shown) why it is refused.
fn child_path(prefix: &str, name: &OsStr) -> Result<String, (String, Skip)> {
    let bytes = name.as_bytes();
    let joined = if prefix.is_empty() { bytes.to_vec() } else { [prefix.as_bytes(), b"/", bytes].concat() };
    match crate::names::refusal_bytes(&joined) {
        None => Ok(String::from_utf8(joined).expect("names without a refusal are UTF-8")),
        Some(refused) => Err((String::from_utf8_lossy(&joined).into_owned(), Skip::Name(refused))),
    }
}

pub(super) fn open_beneath(dir: impl AsFd, name: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::openat2(&dir, name, flags, Mode::empty(), resolve) {
        Err(rustix::io::Errno::NOSYS) => rustix::fs::openat(&dir, name, flags, Mode::empty()),
        other => other,
    }
}

/// Streams the regular files under `root` (a host folder) to `sink`, within `limits`.
pub fn walk_dir(root: &Path, limits: &CopyOutLimits, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
    let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(std::io::Error::from)?;
    walk(fd, "", 0, &mut Gate::new(*limits), sink)
}

fn walk(dir: OwnedFd, prefix: &str, depth: usize, gate: &mut Gate, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
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
            Err((shown, why)) => {
                sink.skip(&shown, why);
                continue;
            }
        };
        let stat = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(std::io::Error::from)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth >= MAX_DEPTH => sink.skip(&path, Skip::TooDeep(MAX_DEPTH)),
            FileType::Directory => match open_beneath(&dir, &name, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(sub) => walk(sub, &path, depth + 1, gate, sink)?,
                Err(e) => sink.skip(&path, Skip::Unreadable(e.to_string())),
            },
            FileType::RegularFile if stat.st_nlink > 1 => sink.skip(&path, Skip::HardLink(stat.st_nlink)),
            FileType::RegularFile => match gate.admit(stat.st_size.max(0) as u64) {
                Ok(()) => read_regular(&dir, &name, &path, &stat, sink)?,
                Err(why) => sink.skip(&path, why),
            },
            other => sink.skip(&path, kind_skip(other)),
        }
    }
    Ok(())
}

fn read_regular(dir: &OwnedFd, name: &OsStr, path: &str, stat: &rustix::fs::Stat, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
    let size = stat.st_size.max(0) as u64;
    let fd = match open_beneath(dir, name, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => {
            sink.skip(path, Skip::Unreadable(e.to_string()));
            return Ok(());
        }
    };
    // The entry read must be the entry checked.
    match rustix::fs::fstat(&fd) {
        Ok(now) if now.st_ino == stat.st_ino && FileType::from_raw_mode(now.st_mode) == FileType::RegularFile => {}
        _ => {
            sink.skip(path, Skip::Changed);
            return Ok(());
        }
    }
    if !sink.begin(path, stat.st_mode & 0o111 != 0, size)? {
        return Ok(());
    }
    match stream(std::fs::File::from(fd), size, sink)? {
        None => sink.end(),
        Some(why) => {
            sink.abort(why);
            Ok(())
        }
    }
}

/// Sends exactly `size` bytes of `file` to the sink; why not, when it holds another size.
fn stream(file: std::fs::File, size: u64, sink: &mut dyn FileSink) -> Result<Option<Skip>, SandboxError> {
    let mut file = file.take(size + 1);
    let mut buf = vec![0u8; CHUNK.min(size as usize + 1)];
    let mut read = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) if read == size => return Ok(None),
            Ok(0) => return Ok(Some(Skip::Changed)),
            Ok(n) if read + n as u64 > size => return Ok(Some(Skip::Changed)),
            Ok(n) => {
                read += n as u64;
                sink.write(&buf[..n])?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Ok(Some(Skip::Unreadable(e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copyout::Collector;
    use crate::names::NameRefusal;
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
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git/config"), "[core]\n\tfsmonitor = touch /tmp/pwned\n").unwrap();
        std::fs::write(dir.join("esc\u{1b}[2Jname"), "x").unwrap();
        std::fs::write(dir.join("src/deep/a.py"), "print(1)").unwrap();
        std::fs::write(dir.join("big.bin"), vec![0u8; 2048]).unwrap();
        std::fs::write(dir.join("twin"), "x").unwrap();
        std::fs::hard_link(dir.join("twin"), dir.join("twin2")).unwrap();
        symlink("/etc/passwd", dir.join("passwd")).unwrap();
        symlink("/", dir.join("rootdir")).unwrap();
        std::process::Command::new("mkfifo").arg(dir.join("pipe")).status().unwrap();
        let limits = CopyOutLimits { max_file_bytes: 1024, ..Default::default() };
        let mut sink = Collector::new();
        walk_dir(&dir, &limits, &mut sink).unwrap();
        let out = sink.finish();
        let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/deep/a.py"]);
        let skipped: Vec<(&str, &Skip)> = out.skipped.iter().map(|(p, w)| (p.as_str(), w)).collect();
        assert!(skipped.contains(&("passwd", &Skip::Symlink)));
        assert!(skipped.contains(&("rootdir", &Skip::Symlink)));
        assert!(skipped.contains(&("pipe", &Skip::Fifo)));
        assert!(skipped.contains(&("big.bin", &Skip::TooLarge(1024))));
        assert!(skipped.contains(&(".git", &Skip::Name(NameRefusal::GitDir))));
        assert!(skipped.contains(&("esc\u{1b}[2Jname", &Skip::Name(NameRefusal::ControlCharacter))));
        assert!(skipped.iter().any(|(p, w)| *p == "twin" && matches!(w, Skip::HardLink(2))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
