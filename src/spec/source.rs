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

/// The files of one commit's tree, read through git (never the work tree): plans are loaded
/// from the watched commit, whatever is checked out.
pub struct TreeSource {
    repo: std::sync::Mutex<git2::Repository>,
    commit: git2::Oid,
    /// Path -> (blob id, executable).
    entries: std::collections::BTreeMap<String, (git2::Oid, bool)>,
}

impl TreeSource {
    /// The tree of `commit` in the repository at `repo_path`.
    pub fn new(repo_path: &Path, commit: git2::Oid) -> Result<TreeSource, git2::Error> {
        let repo = git2::Repository::open(repo_path)?;
        let mut entries = std::collections::BTreeMap::new();
        repo.find_commit(commit)?.tree()?.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            let mode = entry.filemode();
            if entry.kind() == Some(git2::ObjectType::Blob) && mode != i32::from(git2::FileMode::Link) {
                let path = format!("{root}{}", entry.name().unwrap_or_default());
                entries.insert(path, (entry.id(), mode == i32::from(git2::FileMode::BlobExecutable)));
            }
            git2::TreeWalkResult::Ok
        })?;
        Ok(TreeSource { repo: std::sync::Mutex::new(repo), commit, entries })
    }

    /// The commit.
    pub fn commit(&self) -> git2::Oid {
        self.commit
    }

    /// Every regular file: path, blob id, executable.
    pub fn entries(&self) -> impl Iterator<Item = (&str, git2::Oid, bool)> {
        self.entries.iter().map(|(p, (oid, x))| (p.as_str(), *oid, *x))
    }
}

impl FileSource for TreeSource {
    fn describe(&self) -> String {
        format!("commit {}", &self.commit.to_string()[..12])
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let Some((oid, _)) = self.entries.get(path) else { return Ok(None) };
        let repo = self.repo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let blob = repo.find_blob(*oid).map_err(io::Error::other)?;
        Ok(Some(blob.content().to_vec()))
    }

    fn is_file(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    fn files(&self) -> io::Result<Vec<String>> {
        Ok(self.entries.keys().cloned().collect())
    }
}
