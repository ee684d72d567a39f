//! A task's workspace: the watched commit's tree with the results of the task's upstream
//! tasks applied in dependency order, and what an agent changed in it.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Delta, FileMode, Oid, Repository, Tree};
use plancd_sandbox::SandboxError;
use plancd_sandbox::copyout::{FileSink, Skip};

use super::input::Input;
use crate::state::objects::retrying;

/// One upstream task's own change: what its result commit changed relative to its base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Paths written, with their blob and whether executable.
    pub upserts: BTreeMap<String, (Oid, bool)>,
    /// Paths removed.
    pub removals: BTreeSet<String>,
}

impl Change {
    /// Every path the change touches, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut all: BTreeSet<&String> = self.upserts.keys().collect();
        all.extend(&self.removals);
        all.into_iter().cloned().collect()
    }
}

/// Own changes of result commits, computed once per commit: a result never changes, and every
/// downstream task of a pass needs those of all its upstream tasks.
#[derive(Default)]
pub struct ChangeCache {
    changes: std::sync::Mutex<std::collections::HashMap<Oid, std::sync::Arc<Change>>>,
}

impl ChangeCache {
    /// The own change of `result`, from the cache or computed.
    pub fn get(&self, repo: &Repository, result: Oid) -> Result<std::sync::Arc<Change>, git2::Error> {
        let mut map = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = map.get(&result) {
            return Ok(found.clone());
        }
        let change = std::sync::Arc::new(own_change(repo, result)?);
        map.insert(result, change.clone());
        Ok(change)
    }
}

/// What a result commit changed relative to its first parent (the base it was built on).
pub fn own_change(repo: &Repository, result: Oid) -> Result<Change, git2::Error> {
    let commit = repo.find_commit(result)?;
    let base = commit.parent(0)?.tree()?;
    diff_trees(repo, &base, &commit.tree()?)
}

/// What changed from one tree to another.
pub fn change_between(repo: &Repository, old: Oid, new: Oid) -> Result<Change, git2::Error> {
    diff_trees(repo, &repo.find_tree(old)?, &repo.find_tree(new)?)
}

fn diff_trees(repo: &Repository, old: &Tree<'_>, new: &Tree<'_>) -> Result<Change, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    let mut change = Change { upserts: BTreeMap::new(), removals: BTreeSet::new() };
    for delta in diff.deltas() {
        let path = |f: &git2::DiffFile<'_>| f.path().and_then(|p| p.to_str()).map(str::to_owned);
        match delta.status() {
            Delta::Deleted => change.removals.extend(path(&delta.old_file())),
            Delta::Added | Delta::Modified | Delta::Typechange => {
                let file = delta.new_file();
                if let Some(p) = path(&file) {
                    change.upserts.insert(p, (file.id(), file.mode() == FileMode::BlobExecutable));
                }
            }
            _ => {}
        }
    }
    Ok(change)
}

/// Applies `changes` in order on top of `base`, returning the new tree.
pub fn apply<C: std::ops::Deref<Target = Change>>(repo: &Repository, base: &Tree<'_>, changes: &[C]) -> Result<Oid, git2::Error> {
    if changes.is_empty() {
        return Ok(base.id());
    }
    // Later changes win: fold them into one set of final operations first.
    let mut upserts: BTreeMap<&str, (Oid, bool)> = BTreeMap::new();
    let mut removals: BTreeSet<&str> = BTreeSet::new();
    for change in changes.iter().map(|c| &**c) {
        for path in &change.removals {
            upserts.remove(path.as_str());
            removals.insert(path);
        }
        for (path, entry) in &change.upserts {
            removals.remove(path.as_str());
            upserts.insert(path, *entry);
        }
    }
    let mut update = git2::build::TreeUpdateBuilder::new();
    for path in removals {
        if base.get_path(std::path::Path::new(path)).is_ok() {
            update.remove(path);
        }
    }
    for (path, (oid, exec)) in upserts {
        update.upsert(path, oid, if exec { FileMode::BlobExecutable } else { FileMode::Blob });
    }
    retrying(|| update.create_updated(repo, base))
}

/// Paths an agent's change may not include: tool caches and what the repository ignores.
pub struct Ignore {
    matcher: ignore::gitignore::Gitignore,
}

/// Caches that tools leave behind; never artifacts.
const DEFAULT_IGNORES: &[&str] =
    &["__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".coverage", ".hypothesis/", "node_modules/", ".cache/"];

impl Ignore {
    /// The default rules plus the repository's root `.gitignore` (its text, if any).
    pub fn new(gitignore: Option<&str>) -> Ignore {
        let mut b = ignore::gitignore::GitignoreBuilder::new("/");
        for line in DEFAULT_IGNORES.iter().copied().chain(gitignore.into_iter().flat_map(str::lines)) {
            // A line the matcher cannot read is skipped, as git itself does.
            let _ = b.add_line(None, line);
        }
        Ignore { matcher: b.build().unwrap_or_else(|_| ignore::gitignore::Gitignore::empty()) }
    }

    /// Whether `path` (relative) is ignored, by itself or through a parent folder.
    pub fn is_ignored(&self, path: &str) -> bool {
        self.matcher.matched_path_or_any_parents(std::path::Path::new("/").join(path), false).is_ignore()
    }
}

/// A file an agent wrote, already stored as a blob in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Relative path.
    pub path: String,
    /// Whether it is executable.
    pub executable: bool,
    /// Its blob.
    pub blob: Oid,
    /// Its content, kept only where a check reads it (see [`ChangeSink::new`]'s `keep`).
    pub content: Option<Vec<u8>>,
}

/// What an agent did to its workspace: the copy-out compared with the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentChange {
    /// Files added or modified (ignored paths and pinned files left out), sorted by path.
    pub written: Vec<WrittenFile>,
    /// Input files that are gone.
    pub removed: Vec<String>,
    /// Pinned files the agent changed or removed (they are restored, not kept).
    pub pinned_touched: Vec<String>,
    /// Ignored paths the agent wrote: never published, but present while the tests run.
    pub ignored: Vec<String>,
}

impl AgentChange {
    /// Every path changed, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut all: Vec<String> = self.written.iter().map(|f| f.path.clone()).chain(self.removed.iter().cloned()).collect();
        all.sort();
        all
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Files larger than this are never kept in memory beside their blob.
const KEPT_CONTENT_MAX: u64 = 1 << 20;

/// Writes a blob and returns its id.
pub type BlobWriter<'a> = Box<dyn FnMut(&[u8]) -> Result<Oid, git2::Error> + Send + 'a>;

/// Compares a session's copy-out with the files that went in, as it streams: each file is held
/// only until its blob is written (or found unchanged), so what plancd holds stays at one file
/// (the copy-out's largest allowed) whatever the workspace holds.
pub struct ChangeSink<'a> {
    before: BTreeMap<String, (Oid, bool)>,
    pinned: &'a [String],
    ignore: &'a Ignore,
    keep: fn(&str) -> bool,
    write_blob: BlobWriter<'a>,
    current: Option<(String, bool, Vec<u8>)>,
    seen: BTreeSet<String>,
    skipped: Vec<(String, Skip)>,
    change: AgentChange,
}

impl<'a> ChangeSink<'a> {
    /// A sink comparing against `input`; `keep` says which written files keep their content
    /// (small ones only) for the checks that read it; `write_blob` stores what changed.
    pub fn new(input: &Input, pinned: &'a [String], ignore: &'a Ignore, keep: fn(&str) -> bool, write_blob: BlobWriter<'a>) -> Self {
        let before = input.files().iter().map(|f| (f.path.clone(), (f.blob, f.executable))).collect();
        ChangeSink {
            before,
            pinned,
            ignore,
            keep,
            write_blob,
            current: None,
            seen: BTreeSet::new(),
            skipped: Vec::new(),
            change: AgentChange::default(),
        }
    }

    /// The change, and what was left in the sandbox with why.
    pub fn finish(mut self) -> (AgentChange, Vec<(String, Skip)>) {
        let left: BTreeSet<&str> = self.skipped.iter().map(|(p, _)| p.as_str()).collect();
        // Past an archive's budget the rest was not read: what it held is unknown, not removed.
        let read_whole = !self.skipped.iter().any(|(_, why)| matches!(why, Skip::ArchiveOverBudget(_)));
        for path in self.before.keys().filter(|p| read_whole && !self.seen.contains(*p) && !left.contains(p.as_str())) {
            if self.pinned.iter().any(|p| p == path) {
                self.change.pinned_touched.push(path.clone());
            } else {
                self.change.removed.push(path.clone());
            }
        }
        self.change.written.sort_by(|a, b| a.path.cmp(&b.path));
        self.change.ignored.sort();
        self.change.pinned_touched.sort();
        self.skipped.sort();
        (self.change, self.skipped)
    }

    fn settle(&mut self, path: String, executable: bool, data: Vec<u8>) -> Result<(), git2::Error> {
        let id = Oid::hash_object(git2::ObjectType::Blob, &data)?;
        if self.before.get(&path) == Some(&(id, executable)) {
            return Ok(());
        }
        if self.ignore.is_ignored(&path) {
            self.change.ignored.push(path);
        } else if self.pinned.contains(&path) {
            self.change.pinned_touched.push(path);
        } else {
            let blob = (self.write_blob)(&data)?;
            let content = ((self.keep)(&path) && data.len() as u64 <= KEPT_CONTENT_MAX).then_some(data);
            self.change.written.push(WrittenFile { path, executable, blob, content });
        }
        Ok(())
    }
}

impl FileSink for ChangeSink<'_> {
    fn begin(&mut self, path: &str, executable: bool, size: u64) -> Result<bool, SandboxError> {
        self.seen.insert(path.to_owned());
        // Sizes were capped by the copy-out's gate; bounded again in case a source lies.
        self.current = Some((path.to_owned(), executable, Vec::with_capacity(size.min(1 << 24) as usize)));
        Ok(true)
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), SandboxError> {
        if let Some((_, _, data)) = &mut self.current {
            data.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), SandboxError> {
        let Some((path, executable, data)) = self.current.take() else { return Ok(()) };
        self.settle(path, executable, data).map_err(|e| SandboxError::Io(std::io::Error::other(format!("storing a copied-out file: {e}"))))
    }

    fn abort(&mut self, why: Skip) {
        if let Some((path, ..)) = self.current.take() {
            self.skipped.push((path, why));
        }
    }

    fn skip(&mut self, path: &str, why: Skip) {
        self.skipped.push((path.to_owned(), why));
    }
}

/// Writes an agent's change onto `base` as a new tree.
pub fn apply_agent_change(repo: &Repository, base: Oid, change: &AgentChange) -> Result<Oid, git2::Error> {
    let base = repo.find_tree(base)?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    for path in &change.removed {
        update.remove(path.as_str());
    }
    for file in &change.written {
        let mode = if file.executable { FileMode::BlobExecutable } else { FileMode::Blob };
        update.upsert(file.path.as_str(), file.blob, mode);
    }
    retrying(|| update.create_updated(repo, &base))
}

#[cfg(test)]
mod tests {
    use plancd_sandbox::FileEntry;

    use super::*;

    fn f(path: &str, data: &str) -> FileEntry {
        FileEntry::new(path, data)
    }

    /// The change `output` makes to `input`, streamed through a [`ChangeSink`] into `repo`.
    fn streamed(
        repo: &Repository,
        input: &[FileEntry],
        output: Vec<FileEntry>,
        skipped: &[&str],
        pinned: &[String],
        ignore: &Ignore,
    ) -> AgentChange {
        let keep: fn(&str) -> bool = |p| p.ends_with(".json");
        let dir = repo.path().to_owned();
        let input = Input::from_files(input.to_vec());
        let mut sink = ChangeSink::new(
            &input,
            pinned,
            ignore,
            keep,
            Box::new(move |data| Repository::open(&dir).and_then(|r| retrying(|| r.blob(data)))),
        );
        let out =
            plancd_sandbox::CopyOut { files: output, skipped: skipped.iter().map(|p| ((*p).to_owned(), Skip::TooLarge(1))).collect() };
        plancd_sandbox::copyout::replay(out, &mut sink).unwrap();
        sink.finish().0
    }

    #[test]
    fn changes_leave_out_caches_ignored_paths_and_pinned_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let ignore = Ignore::new(Some("build/\n*.log\n"));
        let input = [f("a.py", "1"), f("tests/test_a.py", "t"), f("gone.txt", "x"), f("big.bin", "b"), f("same.txt", "s")];
        let output = vec![
            f("a.py", "2"),
            f("new.py", "n"),
            f("package.json", "{}"),
            f("same.txt", "s"),
            f("tests/test_a.py", "hacked"),
            f("pkg/__pycache__/m.cpython-311.pyc", "c"),
            f("build/out.o", "o"),
            f("run.log", "l"),
        ];
        let change = streamed(&repo, &input, output, &["big.bin"], &["tests/test_a.py".into()], &ignore);
        let written: Vec<&str> = change.written.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(written, ["a.py", "new.py", "package.json"]);
        assert_eq!(change.removed, ["gone.txt"]);
        assert_eq!(change.pinned_touched, ["tests/test_a.py"]);
        assert_eq!(change.paths(), ["a.py", "gone.txt", "new.py", "package.json"]);
        assert_eq!(change.ignored, ["build/out.o", "pkg/__pycache__/m.cpython-311.pyc", "run.log"]);
        // What changed is in the repository; content is kept only where asked.
        assert_eq!(repo.find_blob(change.written[0].blob).unwrap().content(), b"2");
        assert_eq!(change.written[0].content, None);
        assert_eq!(change.written[2].content.as_deref(), Some(&b"{}"[..]));
        // Unchanged, ignored and pinned files were never stored.
        for unstored in ["s", "c", "o", "l", "hacked"] {
            let id = Oid::hash_object(git2::ObjectType::Blob, unstored.as_bytes()).unwrap();
            assert!(repo.find_blob(id).is_err(), "{unstored} was stored");
        }
    }

    /// Seen on docker: 40 sparse files of 1000 MiB pass the archive's budget, the rest of the
    /// archive is not read, and every input file it held would count as removed (plancd.yaml
    /// among them: a ProtectedPath refusal of a change the agent never made).
    #[test]
    fn files_past_an_archive_read_only_in_part_are_not_taken_as_removed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let ignore = Ignore::new(None);
        let input = Input::from_files([f("a.py", "1"), f("plancd.yaml", "branch: main\n"), f("tests/test_a.py", "t")]);
        let keep: fn(&str) -> bool = |_| false;
        let git = repo.path().to_owned();
        let pinned = ["tests/test_a.py".to_owned()];
        let mut sink = ChangeSink::new(
            &input,
            &pinned,
            &ignore,
            keep,
            Box::new(move |data| Repository::open(&git).and_then(|r| retrying(|| r.blob(data)))),
        );
        let out = plancd_sandbox::CopyOut {
            files: vec![f("a.py", "2")],
            skipped: vec![("huge.bin".to_owned(), Skip::ArchiveOverBudget(1 << 34))],
        };
        plancd_sandbox::copyout::replay(out, &mut sink).unwrap();
        let (change, skipped) = sink.finish();
        assert_eq!(change.paths(), ["a.py"]);
        assert!(change.removed.is_empty() && change.pinned_touched.is_empty(), "{change:?}");
        assert_eq!(skipped.len(), 1);
    }

    #[test]
    fn upstream_changes_apply_in_order_and_round_trip_through_commits() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = |s: &str| repo.blob(s.as_bytes()).unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("keep.txt", blob("k"), 0o100644).unwrap();
        tb.insert("old.txt", blob("o"), 0o100644).unwrap();
        let base = repo.find_tree(tb.write().unwrap()).unwrap();

        let written = |path: &str, data: &str| WrittenFile { path: path.into(), executable: false, blob: blob(data), content: None };
        let first = AgentChange {
            written: vec![written("src/a.py", "a1"), written("old.txt", "o2")],
            removed: vec![],
            pinned_touched: vec![],
            ignored: vec![],
        };
        let t1 = repo.find_tree(apply_agent_change(&repo, base.id(), &first).unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let base_commit = repo.commit(None, &sig, &sig, "base", &base, &[]).unwrap();
        let r1 = repo.commit(None, &sig, &sig, "r1", &t1, &[&repo.find_commit(base_commit).unwrap()]).unwrap();
        let c1 = own_change(&repo, r1).unwrap();
        assert_eq!(c1.paths(), ["old.txt", "src/a.py"]);

        let second = Change {
            upserts: BTreeMap::from([("src/a.py".to_owned(), (blob("a2"), true))]),
            removals: BTreeSet::from(["old.txt".to_owned()]),
        };
        let merged = apply(&repo, &base, &[&c1, &second]).unwrap();
        let files = Input::of_tree(&repo, merged).unwrap().entries(|_| true).unwrap();
        let shown: Vec<(&str, bool, &[u8])> = files.iter().map(|f| (f.path.as_str(), f.executable, f.data.as_slice())).collect();
        assert_eq!(shown, [("keep.txt", false, &b"k"[..]), ("src/a.py", true, &b"a2"[..])]);
    }
}
