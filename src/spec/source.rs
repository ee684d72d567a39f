//! Where plan, contract and test files come from: a directory here, a commit's tree in the
//! engine. Paths are repository-relative with `/` separators.

use std::io;
use std::path::{Path, PathBuf};

/// Read access to the files of one repository snapshot.
pub trait FileSource: Sync {
    /// A name for messages, e.g. the directory or the commit.
    fn describe(&self) -> String;

    /// The content of `path`, or `None` when there is no such file.
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;

    /// Whether `path` is a file.
    fn is_file(&self, path: &str) -> bool;

    /// Every file, sorted.
    fn files(&self) -> io::Result<Vec<String>>;
}

/// The files under a directory (a work tree); `.git` is skipped and symlinks are not followed.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// Files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> DirSource {
        DirSource { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

impl FileSource for DirSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        if super::ids::relative_path_problem(path).is_some() {
            return Ok(None);
        }
        match std::fs::read(self.full(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn is_file(&self, path: &str) -> bool {
        super::ids::relative_path_problem(path).is_none() && std::fs::symlink_metadata(self.full(path)).is_ok_and(|m| m.is_file())
    }

    fn files(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let walk =
            walkdir::WalkDir::new(&self.root).follow_links(false).into_iter().filter_entry(|e| e.depth() == 0 || e.file_name() != ".git");
        for entry in walk {
            let entry = entry.map_err(io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).map_err(io::Error::other)?;
            let Some(rel) = rel.to_str() else { continue };
            out.push(rel.replace(std::path::MAIN_SEPARATOR, "/"));
        }
        out.sort();
        Ok(out)
    }
}
