//! A task's input: the files of its workspace tree, listed up front and read from the
//! repository only where something needs their content. An attempt then holds the list and
//! one run of file data at a time, whatever the repository holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use git2::{FileMode, ObjectType, Oid, Repository};
use plancd_sandbox::{CopyOutLimits, FileEntry, SandboxError, Session};

/// The most file data one copy into a session carries (a larger file goes alone).
pub const PUT_RUN_BYTES: u64 = 8 << 20;

/// One regular file of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Relative path with `/` separators.
    pub path: String,
    /// Whether it is executable.
    pub executable: bool,
    /// Its blob.
    pub blob: Oid,
    /// Its size in bytes.
    pub size: u64,
}

/// The files of a tree (symlinks and submodules left out), sorted by path.
pub struct Input {
    files: Vec<InputFile>,
    source: Arc<Source>,
}

enum Source {
    /// Blobs are read from this repository.
    Repository(Mutex<Repository>),
    /// Blobs given with the files (small inputs built in place).
    Memory(HashMap<Oid, Vec<u8>>),
}

/// Why an input could not be copied into a session.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// A blob could not be read.
    #[error("reading the input: {0}")]
    Git(#[from] git2::Error),
    /// The session refused the files.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl Default for Input {
    fn default() -> Self {
        Input::from_files(Vec::new())
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("files", &self.files.len()).field("bytes", &self.bytes()).finish()
    }
}

impl Input {
    /// The regular files of `tree`, their content left in `repo`.
    pub fn of_tree(repo: &Repository, tree: Oid) -> Result<Input, git2::Error> {
        let odb = repo.odb()?;
        let mut files = Vec::new();
        let mut failed = None;
        repo.find_tree(tree)?.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            let mode = e.filemode();
            if e.kind() == Some(ObjectType::Blob) && mode != i32::from(FileMode::Link) {
                match odb.read_header(e.id()) {
                    Ok((size, _)) => files.push(InputFile {
                        path: format!("{root}{}", e.name().unwrap_or_default()),
                        executable: mode == i32::from(FileMode::BlobExecutable),
                        blob: e.id(),
                        size: size as u64,
                    }),
                    Err(err) => {
                        failed = Some(err);
                        return git2::TreeWalkResult::Abort;
                    }
                }
            }
            git2::TreeWalkResult::Ok
        })?;
        if let Some(err) = failed {
            return Err(err);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Input { files, source: Arc::new(Source::Repository(Mutex::new(Repository::open(repo.path())?))) })
    }

    /// An input of `files` given whole.
    pub fn from_files(files: impl IntoIterator<Item = FileEntry>) -> Input {
        let mut blobs = HashMap::new();
        let mut listed = Vec::new();
        for f in files {
            let blob = Oid::hash_object(ObjectType::Blob, &f.data).unwrap_or(Oid::ZERO_SHA1);
            listed.push(InputFile { path: f.path, executable: f.executable, blob, size: f.data.len() as u64 });
            blobs.insert(blob, f.data);
        }
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        listed.dedup_by(|later, earlier| later.path == earlier.path);
        Input { files: listed, source: Arc::new(Source::Memory(blobs)) }
    }

    /// The input as a command run from the folder `dir` sees it: the files under `dir`, by
    /// their paths from there, and the files directly in each folder above it that `dir` has
    /// none of (configuration and manifests that tools look for upwards: `pyproject.toml`,
    /// `package.json`), the nearest first. `dir` is relative to the workspace.
    pub fn within(&self, dir: &str) -> Input {
        let dir = dir.trim_matches('/');
        if dir.is_empty() {
            return Input { files: self.files.clone(), source: Arc::clone(&self.source) };
        }
        let prefix = format!("{dir}/");
        let mut files: Vec<InputFile> =
            self.files.iter().filter_map(|f| Some(InputFile { path: f.path.strip_prefix(&prefix)?.to_owned(), ..f.clone() })).collect();
        let mut ancestors: Vec<&str> = dir.match_indices('/').map(|(i, _)| &dir[..i]).collect();
        ancestors.reverse();
        ancestors.push("");
        for ancestor in ancestors {
            let above = self.files.iter().filter(|f| match ancestor {
                "" => !f.path.contains('/'),
                a => f.path.strip_prefix(a).and_then(|rest| rest.strip_prefix('/')).is_some_and(|name| !name.contains('/')),
            });
            for f in above {
                let name = f.path.rsplit('/').next().unwrap_or(&f.path);
                if !files.iter().any(|g| g.path == name) {
                    files.push(InputFile { path: name.to_owned(), ..f.clone() });
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Input { files, source: Arc::clone(&self.source) }
    }

    /// Every file, sorted by path.
    pub fn files(&self) -> &[InputFile] {
        &self.files
    }

    /// Every path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&InputFile> {
        self.files.binary_search_by(|f| f.path.as_str().cmp(path)).ok().map(|i| &self.files[i])
    }

    /// Whether there is a file at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// How many bytes the files hold together.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The caps of a copy-out of a workspace that started as this input: the defaults for what
    /// an agent adds, plus room for every file that went in (unchanged files are read too, to
    /// be compared). A file larger than the default cap stays out; unchanged, it is no loss.
    pub fn copy_out_limits(&self) -> CopyOutLimits {
        let base = CopyOutLimits::default();
        CopyOutLimits { max_total_bytes: base.max_total_bytes + self.bytes(), max_files: base.max_files + self.files.len(), ..base }
    }

    /// The content of the file at `path`; none when there is no such file or it cannot be read.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.blob(self.get(path)?.blob).ok()
    }

    /// The content of the file at `path` as text (invalid UTF-8 replaced).
    pub fn text(&self, path: &str) -> Option<String> {
        self.read(path).map(|data| String::from_utf8_lossy(&data).into_owned())
    }

    /// The files `chosen` says yes to, with their content.
    pub fn entries(&self, chosen: impl Fn(&str) -> bool) -> Result<Vec<FileEntry>, git2::Error> {
        self.load(self.files.iter().filter(|f| chosen(&f.path)))
    }

    /// `files` with their content.
    pub fn load<'a>(&self, files: impl IntoIterator<Item = &'a InputFile>) -> Result<Vec<FileEntry>, git2::Error> {
        files.into_iter().map(|f| Ok(FileEntry { path: f.path.clone(), executable: f.executable, data: self.blob(f.blob)? })).collect()
    }

    /// Copies every file but those `left_out` says yes to into `session`, one run of at most
    /// [`PUT_RUN_BYTES`] at a time. No files still make one (empty) copy, which checks the
    /// session.
    pub async fn put_into(&self, session: &dyn Session, left_out: impl Fn(&str) -> bool) -> Result<(), PutError> {
        let chosen: Vec<&InputFile> = self.files.iter().filter(|f| !left_out(&f.path)).collect();
        if chosen.is_empty() {
            return Ok(session.put_files(&[]).await?);
        }
        for run in plancd_sandbox::runs_by_size(&chosen, PUT_RUN_BYTES, |f| f.size) {
            let files = self.load(run.iter().copied())?;
            session.put_files(&files).await?;
        }
        Ok(())
    }

    fn blob(&self, id: Oid) -> Result<Vec<u8>, git2::Error> {
        match self.source.as_ref() {
            Source::Repository(repo) => {
                let repo = repo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(repo.find_blob(id)?.content().to_vec())
            }
            Source::Memory(blobs) => blobs.get(&id).cloned().ok_or_else(|| git2::Error::from_str("no such blob in the input")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(repo: &Repository, files: &[(&str, &[u8], bool)]) -> Oid {
        let mut index = git2::Index::new().unwrap();
        for (path, data, exec) in files {
            let id = repo.blob(data).unwrap();
            let mode = if *exec { 0o100755 } else { 0o100644 };
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode,
                uid: 0,
                gid: 0,
                file_size: data.len() as u32,
                id,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        }
        index.write_tree_to(repo).unwrap()
    }

    #[test]
    fn a_tree_is_listed_with_sizes_and_read_only_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let id = tree(&repo, &[("b/run.sh", b"#!/bin/sh\n", true), ("a.py", b"x = 1\n", false), ("big.bin", &[7u8; 5000], false)]);
        let input = Input::of_tree(&repo, id).unwrap();
        assert_eq!(input.paths().collect::<Vec<_>>(), ["a.py", "b/run.sh", "big.bin"]);
        assert_eq!(input.get("big.bin").map(|f| f.size), Some(5000));
        assert!(input.get("b/run.sh").unwrap().executable);
        assert_eq!(input.bytes(), 5000 + 6 + 10);
        assert_eq!(input.text("a.py").as_deref(), Some("x = 1\n"));
        assert_eq!(input.read("missing"), None);
        let chosen = input.entries(|p| p.ends_with(".py")).unwrap();
        assert_eq!(chosen, [FileEntry::new("a.py", "x = 1\n")]);
        // The same files given whole list alike.
        let whole = Input::from_files([FileEntry::new("a.py", "x = 1\n"), FileEntry::new("big.bin", vec![7u8; 5000])]);
        assert_eq!(whole.get("a.py"), input.get("a.py"));
        assert_eq!(whole.read("big.bin").map(|d| d.len()), Some(5000));
    }

    #[test]
    fn a_copy_out_has_room_for_the_input_besides_what_an_agent_adds() {
        let base = CopyOutLimits::default();
        assert_eq!(Input::default().copy_out_limits(), base);
        let input = Input::from_files((0..3).map(|i| FileEntry::new(format!("f{i}"), vec![0u8; 1000])));
        let limits = input.copy_out_limits();
        assert_eq!(limits.max_total_bytes, base.max_total_bytes + 3000);
        assert_eq!(limits.max_files, base.max_files + 3);
        assert_eq!(limits.max_file_bytes, base.max_file_bytes);
    }

    #[test]
    fn a_folder_sees_its_files_and_the_nearest_ones_above_it() {
        let input = Input::from_files([
            FileEntry::new("pyproject.toml", "root"),
            FileEntry::new("README.md", "readme"),
            FileEntry::new("pkg/pyproject.toml", "pkg"),
            FileEntry::new("pkg/setup.cfg", "pkg setup"),
            FileEntry::new("pkg/sub/tests/test_a.py", "t"),
            FileEntry::new("pkg/sub/a.py", "a"),
            FileEntry::new("other/x.py", "x"),
        ]);
        let view = input.within("pkg/sub/");
        assert_eq!(view.paths().collect::<Vec<_>>(), ["README.md", "a.py", "pyproject.toml", "setup.cfg", "tests/test_a.py"]);
        assert_eq!(view.text("pyproject.toml").as_deref(), Some("pkg"), "the nearest wins");
        assert_eq!(view.text("tests/test_a.py").as_deref(), Some("t"));
        assert_eq!(input.within("").paths().count(), 7);
    }
}
