//! Copy-out of a workspace: regular files only, no symlink followed, names checked
//! ([`crate::names`]), sizes and counts capped; everything left behind is reported with why.
//!
//! Two sources ([`walk_dir`], a host folder, for the process backend; [`read_tar`], the tar
//! stream Docker's archive API returns) feed a [`FileSink`] one file at a time, in chunks:
//! nothing holds more than one chunk of a file. [`Collector`] is the sink that keeps the files
//! in memory (a [`CopyOut`], under the caps); [`crate::copyback::CopyBack`] writes them onto
//! the host as they come. Both sources run only once every process of the session is dead.

mod tar;
mod walk;

use std::fmt;

use crate::names::NameRefusal;
use crate::{CopyOut, CopyOutLimits, FileEntry, SandboxError};

pub use tar::{OverBudget, read_tar};
pub use walk::walk_dir;

/// Why an entry was left behind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO.
    Fifo,
    /// A unix socket.
    Socket,
    /// A device node.
    Device,
    /// Some other kind of entry.
    NotRegular,
    /// A file with this many hard links (one of them may be a host file).
    HardLink(u64),
    /// The name is refused.
    Name(NameRefusal),
    /// Nested deeper than this many folders.
    TooDeep(usize),
    /// Larger than this many bytes.
    TooLarge(u64),
    /// More than this many files.
    TooMany(usize),
    /// Over this copy-out total, bytes.
    OverTotal(u64),
    /// The archive grew past this many bytes (sparse files, say); the rest was not read.
    ArchiveOverBudget(u64),
    /// Changed while being copied.
    Changed,
    /// Could not be read (the error).
    Unreadable(String),
    /// On the host, a folder on its path is a symbolic link or not a folder.
    HostPathNotFolder,
    /// On the host, a folder stands where the file would go.
    HostFolderInTheWay,
}

impl Skip {
    /// The CamelCase reason, for status and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::Symlink => "Symlink",
            Skip::Fifo => "Fifo",
            Skip::Socket => "Socket",
            Skip::Device => "Device",
            Skip::NotRegular => "NotRegular",
            Skip::HardLink(_) => "HardLink",
            Skip::Name(n) => n.reason(),
            Skip::TooDeep(_) => "TooDeep",
            Skip::TooLarge(_) => "TooLarge",
            Skip::TooMany(_) => "TooMany",
            Skip::OverTotal(_) => "OverTotal",
            Skip::ArchiveOverBudget(_) => "ArchiveOverBudget",
            Skip::Changed => "Changed",
            Skip::Unreadable(_) => "Unreadable",
            Skip::HostPathNotFolder => "HostPathNotFolder",
            Skip::HostFolderInTheWay => "HostFolderInTheWay",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Symlink => f.write_str("symbolic link"),
            Skip::Fifo => f.write_str("fifo"),
            Skip::Socket => f.write_str("socket"),
            Skip::Device => f.write_str("device"),
            Skip::NotRegular => f.write_str("not a regular file"),
            Skip::HardLink(n) => write!(f, "hard link ({n} links)"),
            Skip::Name(n) => n.fmt(f),
            Skip::TooDeep(n) => write!(f, "nested deeper than {n} folders"),
            Skip::TooLarge(n) => write!(f, "larger than {n} bytes"),
            Skip::TooMany(n) => write!(f, "more than {n} files"),
            Skip::OverTotal(n) => write!(f, "over the {n} bytes copy-out total"),
            Skip::ArchiveOverBudget(n) => write!(f, "the archive passed {n} bytes here; the rest was not read"),
            Skip::Changed => f.write_str("changed while copying"),
            Skip::Unreadable(e) => write!(f, "not read: {e}"),
            Skip::HostPathNotFolder => f.write_str("a folder on its path is a symbolic link or a file on the host"),
            Skip::HostFolderInTheWay => f.write_str("a folder of that name is on the host"),
        }
    }
}

/// Where copied-out files go, one at a time: `begin`, any number of `write`s, then `end` (or
/// `abort`). Sources call it only for regular files that passed the names and the caps.
pub trait FileSink: Send {
    /// Starts a file of `size` bytes; `Ok(false)` when the sink refuses it (having recorded
    /// why), and its data is then not offered.
    fn begin(&mut self, path: &str, executable: bool, size: u64) -> Result<bool, SandboxError>;
    /// The next chunk of the file begun last.
    fn write(&mut self, chunk: &[u8]) -> Result<(), SandboxError>;
    /// The file begun last is complete.
    fn end(&mut self) -> Result<(), SandboxError>;
    /// The file begun last is not to be kept, because of `why`.
    fn abort(&mut self, why: Skip);
    /// Records an entry left behind.
    fn skip(&mut self, path: &str, why: Skip);
}

/// The caps of one copy-out: counts files and bytes as they are admitted.
#[derive(Debug)]
pub struct Gate {
    limits: CopyOutLimits,
    files: usize,
    total: u64,
}

impl Gate {
    /// A gate for `limits`.
    pub fn new(limits: CopyOutLimits) -> Gate {
        Gate { limits, files: 0, total: 0 }
    }

    /// Admits a regular file of `size` bytes, or says why not.
    pub fn admit(&mut self, size: u64) -> Result<(), Skip> {
        let l = &self.limits;
        if size > l.max_file_bytes {
            Err(Skip::TooLarge(l.max_file_bytes))
        } else if self.files >= l.max_files {
            Err(Skip::TooMany(l.max_files))
        } else if self.total.saturating_add(size) > l.max_total_bytes {
            Err(Skip::OverTotal(l.max_total_bytes))
        } else {
            self.files += 1;
            self.total += size;
            Ok(())
        }
    }
}

/// The sink that keeps files in memory.
#[derive(Debug, Default)]
pub struct Collector {
    current: Option<FileEntry>,
    out: CopyOut,
}

impl Collector {
    /// An empty copy-out.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// The copy-out, sorted by path.
    pub fn finish(mut self) -> CopyOut {
        self.out.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.out.skipped.sort();
        self.out
    }
}

impl FileSink for Collector {
    fn begin(&mut self, path: &str, executable: bool, size: u64) -> Result<bool, SandboxError> {
        // Sizes were capped by the gate; the capacity is still bounded in case a source lies.
        let data = Vec::with_capacity(size.min(1 << 24) as usize);
        self.current = Some(FileEntry { path: path.to_owned(), executable, data });
        Ok(true)
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), SandboxError> {
        if let Some(f) = &mut self.current {
            f.data.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), SandboxError> {
        self.out.files.extend(self.current.take());
        Ok(())
    }

    fn abort(&mut self, why: Skip) {
        if let Some(f) = self.current.take() {
            self.out.skipped.push((f.path, why));
        }
    }

    fn skip(&mut self, path: &str, why: Skip) {
        self.out.skipped.push((path.to_owned(), why));
    }
}

/// Feeds an in-memory copy-out to `sink`, names checked again (backends that only implement
/// [`crate::Session::get_files`]).
pub fn replay(out: CopyOut, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
    for (path, why) in out.skipped {
        sink.skip(&path, why);
    }
    for f in out.files {
        if let Some(refused) = crate::names::refusal(&f.path) {
            sink.skip(&f.path, Skip::Name(refused));
        } else if sink.begin(&f.path, f.executable, f.data.len() as u64)? {
            sink.write(&f.data)?;
            sink.end()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_size_count_and_total() {
        let mut gate = Gate::new(CopyOutLimits { max_file_bytes: 10, max_total_bytes: 15, max_files: 2 });
        assert_eq!(gate.admit(11), Err(Skip::TooLarge(10)));
        assert_eq!(gate.admit(10), Ok(()));
        assert_eq!(gate.admit(6), Err(Skip::OverTotal(15)));
        assert_eq!(gate.admit(5), Ok(()));
        assert_eq!(gate.admit(0), Err(Skip::TooMany(2)));
        assert_eq!(Skip::TooLarge(10).to_string(), "larger than 10 bytes");
        assert_eq!(Skip::Name(NameRefusal::GitDir).reason(), "GitDir");
    }

    #[test]
    fn replays_refuse_names_the_backend_let_through() {
        let out = CopyOut { files: vec![FileEntry::new(".git/config", "x"), FileEntry::new("ok", "y")], skipped: vec![] };
        let mut c = Collector::new();
        replay(out, &mut c).unwrap();
        let c = c.finish();
        assert_eq!(c.files, vec![FileEntry::new("ok", "y")]);
        assert_eq!(c.skipped, vec![(".git/config".to_owned(), Skip::Name(NameRefusal::GitDir))]);
    }
}
