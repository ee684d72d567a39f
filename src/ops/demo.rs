//! `plancd demo`: the sma-crossover example in a fresh repository, ready to reconcile.

use std::path::Path;

use git2::{Repository, Signature};

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// Writes the example into `dir` (a new repository) and commits it on `main`. Returns the
/// commit.
pub fn create_repository(dir: &Path) -> Result<git2::Oid, git2::Error> {
    let mut init = git2::RepositoryInitOptions::new();
    init.initial_head("main");
    let repo = Repository::init_opts(dir, &init)?;
    for (path, data) in DEMO_FILES {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| git2::Error::from_str(&e.to_string()))?;
        }
        std::fs::write(&full, data).map_err(|e| git2::Error::from_str(&e.to_string()))?;
    }
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = Signature::now("plancd demo", "demo@plancd.localhost")?;
    repo.commit(Some("HEAD"), &sig, &sig, "Add the SMA crossover plan", &tree, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_is_the_one_on_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sma-crossover");
        for (path, data) in DEMO_FILES {
            assert_eq!(std::fs::read(root.join(path)).unwrap(), *data, "{path}");
        }
        assert!(DEMO_FILES.iter().any(|(p, _)| *p == "plans/sma-crossover.yaml"));
        assert!(DEMO_FILES.iter().any(|(p, _)| *p == ".plancd/scripted.yaml"));
        // Its agents are model agents of the scripted model, whose replies load.
        let (_, replies) = DEMO_FILES.iter().find(|(p, _)| *p == ".plancd/scripted.yaml").unwrap();
        let script = crate::agent::model::scripted::Script::parse(".plancd/scripted.yaml", replies).unwrap();
        // The four tasks, and the branch todo that fixes the indicator coder's first attempt.
        assert_eq!(script.workflows["sma-crossover"].len(), 5);
        assert!(script.workflows["sma-crossover"].contains_key("t2_indicators_branch_01"));
    }

    #[test]
    fn the_repository_has_the_plan_on_main() {
        let dir = tempfile::tempdir().unwrap();
        let commit = create_repository(dir.path()).unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        assert_eq!(repo.find_branch("main", git2::BranchType::Local).unwrap().get().target(), Some(commit));
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        assert!(tree.get_path(Path::new("plans/sma-crossover.yaml")).is_ok());
    }
}
