//! The work tree against the watched commit: which plan and contract files differ (reconcile
//! reads the commit, so uncommitted edits do nothing yet), and a commit object of the work tree
//! for `plancd diff --work-tree` to decide on.

use std::path::Path;

use git2::{IndexAddOption, Oid, Repository};
use globset::{Glob, GlobSetBuilder};

use super::reconcile::{DiffReport, ReconcileError, decide_on};
use crate::config::{Config, Env};
use crate::reconcile::{LoadError, Snapshot};
use crate::state::Store;

/// Plan and contract files (by `config`'s globs) whose content in the work tree differs from
/// `watched`, sorted. Empty for a bare repository.
pub fn drift(repo_path: &Path, watched: Oid, config: &Config) -> Result<Vec<String>, git2::Error> {
    let repo = Repository::open(repo_path)?;
    if repo.is_bare() {
        return Ok(Vec::new());
    }
    let mut globs = GlobSetBuilder::new();
    for pattern in config.plans.iter().chain(&config.contracts) {
        if let Ok(glob) = Glob::new(pattern) {
            globs.add(glob);
        }
    }
    let globs = globs.build().map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let tree = repo.find_commit(watched)?.tree()?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let diff = repo.diff_tree_to_workdir(Some(&tree), Some(&mut opts))?;
    let mut files: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()).map(|p| p.to_string_lossy().into_owned()))
        .filter(|p| globs.is_match(p))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// A commit (not on any ref) of the work tree's files, ignored files left out, on top of
/// `parent`: what the plans would be if the work tree were committed.
pub fn work_tree_commit(repo_path: &Path, parent: Oid) -> Result<Oid, git2::Error> {
    let repo = Repository::open(repo_path)?;
    // The repository's index, changed in memory only: it is never written back.
    let mut index = repo.index()?;
    index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
    index.update_all(["*"], None)?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = crate::state::signature()?;
    repo.commit(None, &sig, &sig, "plancd diff --work-tree", &tree, &[&repo.find_commit(parent)?])
}

/// What a reconcile would do if the work tree's plans were committed on the watched branch (the
/// configuration still comes from the watched commit).
pub fn diff_work_tree(repo: &Path, branch: Option<&str>, env: &Env) -> Result<DiffReport, ReconcileError> {
    let store = Store::open(repo)?;
    let watched = Snapshot::load(store.path(), branch, env)?;
    let commit = work_tree_commit(store.path(), watched.plan_commit).map_err(LoadError::Git)?;
    let snapshot = Snapshot::load_at(store.path(), &watched.branch, commit, watched.plan_commit, env)?;
    decide_on(&store, snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_plan_edits_are_found_and_can_be_decided_on() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("plans")).unwrap();
        std::fs::write(dir.path().join("plans/a.yaml"), "one\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let head = repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap();
        let config = Config::default();
        assert!(drift(dir.path(), head, &config).unwrap().is_empty());

        std::fs::write(dir.path().join("plans/a.yaml"), "two\n").unwrap();
        std::fs::write(dir.path().join("plans/new.yml"), "new\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "y\n").unwrap();
        assert_eq!(drift(dir.path(), head, &config).unwrap(), ["plans/a.yaml", "plans/new.yml"]);

        let commit = work_tree_commit(dir.path(), head).unwrap();
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        let blob = tree.get_path(Path::new("plans/new.yml")).unwrap().to_object(&repo).unwrap().peel_to_blob().unwrap();
        assert_eq!(blob.content(), b"new\n");
        // The index on disk is untouched.
        assert!(repo.index().unwrap().get_path(Path::new("plans/new.yml"), 0).is_none());
    }
}
