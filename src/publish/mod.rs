//! Publishing accepted results: the result commit with provenance trailers, the result branch
//! `refs/heads/ai/generated/<workflow>/<task>`, and the immutable annotated tag
//! `refs/tags/ai/<workflow>/<task>/<n>` of the n-th accepted result.
//!
//! Writes go objects first, then branch, then tag; the task's status is written after them by
//! the caller (the commit point). A run that finds a result already published for the current
//! spec hash adopts it instead of publishing again.

use git2::{Oid, Repository};

use crate::spec::SpecHash;
use crate::state::objects::retrying;
use crate::state::{StateError, TaskKey, cas_ref, commit_message, parse_trailers, signature};

/// Where a result came from, written as commit trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The task.
    pub key: TaskKey,
    /// Its spec hash.
    pub spec_hash: SpecHash,
    /// The attempt that produced it.
    pub attempt: u32,
    /// The agent, e.g. `coder: command python3 agents/coder.py`.
    pub agent: String,
    /// The model, `scripted` for recorded replies, `none` when no model was involved.
    pub model: String,
    /// The hash of the prompt sent to the model, or `none`.
    pub prompt_hash: String,
    /// Ties together everything one reconcile pass did.
    pub correlation_id: String,
    /// The watched commit.
    pub plan_commit: Oid,
}

impl Provenance {
    fn trailers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Plancd-Workflow", self.key.workflow.clone()),
            ("Plancd-Task", self.key.task.clone()),
            ("Plancd-Spec-Hash", self.spec_hash.to_string()),
            ("Plancd-Attempt", self.attempt.to_string()),
            ("Plancd-Agent", self.agent.clone()),
            ("Plancd-Model", self.model.clone()),
            ("Plancd-Prompt-Hash", self.prompt_hash.clone()),
            ("Plancd-Correlation-Id", self.correlation_id.clone()),
            ("Plancd-Plan-Commit", self.plan_commit.to_string()),
        ]
    }
}

/// `ai/generated/<workflow>/<task>`.
pub fn branch_name(key: &TaskKey) -> String {
    format!("ai/generated/{}/{}", key.workflow, key.task)
}

/// `ai/<workflow>/<task>/<n>`.
pub fn tag_name(key: &TaskKey, n: u32) -> String {
    format!("ai/{}/{}/{n}", key.workflow, key.task)
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The result commit.
    pub commit: Oid,
    /// The branch name (without `refs/heads/`).
    pub branch: String,
    /// The tag name (without `refs/tags/`).
    pub tag: String,
    /// The tag's number: results accepted so far, this one included.
    pub n: u32,
    /// The pull request from the branch, once one is open.
    pub pull_request: Option<String>,
}

/// The commit a task's result goes on: the watched commit for a task without dependencies, the
/// dependency's result when there is one and it already holds the whole input, otherwise a merge
/// of the dependencies' results (and the watched commit, when none of them contains it) whose
/// tree is the task's input tree.
pub fn base_commit(repo: &Repository, key: &TaskKey, watched: Oid, deps: &[(String, Oid)], input_tree: Oid) -> Result<Oid, git2::Error> {
    if deps.is_empty() {
        return Ok(watched);
    }
    if let [(_, only)] = deps
        && repo.find_commit(*only)?.tree_id() == input_tree
    {
        return Ok(*only);
    }
    let mut parents: Vec<Oid> = deps.iter().map(|(_, oid)| *oid).collect();
    let contains_watched = |p: Oid| -> Result<bool, git2::Error> {
        // Results built from this watched commit contain it; only older ones need the walk.
        Ok(p == watched || result_plan_commit(repo, p) == Some(watched) || repo.graph_descendant_of(p, watched)?)
    };
    if !parents.iter().try_fold(false, |found, p| Ok::<bool, git2::Error>(found || contains_watched(*p)?))? {
        parents.push(watched);
    }
    let parents: Vec<git2::Commit<'_>> = parents.iter().map(|p| repo.find_commit(*p)).collect::<Result<_, _>>()?;
    let names: Vec<&str> = deps.iter().map(|(id, _)| id.as_str()).collect();
    let message = commit_message(
        &format!("Merge results of {} for {key}", names.join(", ")),
        "",
        &[("Plancd-Workflow", key.workflow.clone()), ("Plancd-Task", key.task.clone())],
    );
    let sig = signature()?;
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let tree = repo.find_tree(input_tree)?;
    retrying(|| repo.commit(None, &sig, &sig, &message, &tree, &refs))
}

/// The result commit: `tree` on top of `base`, titled by the task, with provenance trailers.
pub fn result_commit(repo: &Repository, base: Oid, tree: Oid, title: &str, body: &str, prov: &Provenance) -> Result<Oid, git2::Error> {
    let sig = signature()?;
    let message = commit_message(title, body, &prov.trailers());
    let (tree, base) = (repo.find_tree(tree)?, repo.find_commit(base)?);
    retrying(|| repo.commit(None, &sig, &sig, &message, &tree, &[&base]))
}

/// Points the result branch at `commit` and tags it as result number `accepted + 1` (or the
/// next free number, should that tag already name another commit). Both steps are skipped
/// when already done, so a re-run after a crash writes nothing twice.
pub fn publish(repo: &Repository, key: &TaskKey, commit: Oid, accepted: u32) -> Result<Published, StateError> {
    let branch = branch_name(key);
    let branch_ref = format!("refs/heads/{branch}");
    let current = repo.find_reference(&branch_ref).ok().and_then(|r| r.target());
    if current != Some(commit) {
        cas_ref(repo, &branch_ref, current, Some(commit), &format!("plancd: result of {key}"))?;
    }
    let mut n = accepted + 1;
    loop {
        let tag = tag_name(key, n);
        match tagged_commit(repo, &tag) {
            Some(existing) if existing == commit => return Ok(Published { commit, branch, tag, n, pull_request: None }),
            Some(_) => n += 1,
            None => {
                let message = commit_message(&format!("plancd result {n} of {key}"), "", &[("Plancd-Result", commit.to_string())]);
                let target = repo.find_object(commit, Some(git2::ObjectType::Commit))?;
                let sig = signature()?;
                // The tag object first, then its ref, created under the ref's lock: of two
                // writers, one makes it and the other finds it made.
                let object = repo.tag_annotation_create(&tag, &target, &sig, &message)?;
                match cas_ref(repo, &format!("refs/tags/{tag}"), None, Some(object), &format!("plancd: tag {tag}")) {
                    Ok(()) => return Ok(Published { commit, branch, tag, n, pull_request: None }),
                    Err(StateError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// The watched commit a result was built from (its `Plancd-Plan-Commit` trailer).
fn result_plan_commit(repo: &Repository, commit: Oid) -> Option<Oid> {
    let commit = repo.find_commit(commit).ok()?;
    Oid::from_str(parse_trailers(&String::from_utf8_lossy(commit.message_bytes())).get("Plancd-Plan-Commit")?).ok()
}

/// The attempt that produced a result commit (its `Plancd-Attempt` trailer).
pub fn result_attempt(repo: &Repository, commit: Oid) -> Option<u32> {
    let commit = repo.find_commit(commit).ok()?;
    parse_trailers(&String::from_utf8_lossy(commit.message_bytes())).get("Plancd-Attempt")?.parse().ok()
}

fn tagged_commit(repo: &Repository, tag: &str) -> Option<Oid> {
    let reference = repo.find_reference(&format!("refs/tags/{tag}")).ok()?;
    reference.peel_to_commit().ok().map(|c| c.id())
}

/// A result already published for `spec_hash` but not yet recorded in the task's status (a run
/// that stopped between publishing and its commit point): the branch's tip, and its tag number
/// when the tag was written too.
pub fn adoptable(repo: &Repository, key: &TaskKey, spec_hash: &SpecHash, accepted: u32) -> Option<(Oid, Option<u32>)> {
    let tip = repo.find_reference(&format!("refs/heads/{}", branch_name(key))).ok()?.target()?;
    let commit = repo.find_commit(tip).ok()?;
    let trailers = parse_trailers(&String::from_utf8_lossy(commit.message_bytes()));
    let matches = trailers.get("Plancd-Workflow") == Some(&key.workflow)
        && trailers.get("Plancd-Task") == Some(&key.task)
        && trailers.get("Plancd-Spec-Hash").map(String::as_str) == Some(spec_hash.as_str());
    if !matches {
        return None;
    }
    let n = (accepted + 1..accepted + 8).find(|n| tagged_commit(repo, &tag_name(key, *n)) == Some(tip));
    Some((tip, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let c = repo.commit(Some("refs/heads/main"), &sig, &sig, "init", &repo.find_tree(tree).unwrap(), &[]).unwrap();
        (dir, repo, c)
    }

    fn prov(key: &TaskKey, watched: Oid) -> Provenance {
        Provenance {
            key: key.clone(),
            spec_hash: SpecHash::parse(&"a".repeat(64)).unwrap(),
            attempt: 1,
            agent: "coder: command true".into(),
            model: "scripted".into(),
            prompt_hash: "none".into(),
            correlation_id: "c0ffee".into(),
            plan_commit: watched,
        }
    }

    #[test]
    fn publishes_once_and_adopts_what_is_there() {
        let (_dir, repo, watched) = repo();
        let key = TaskKey::new("wf", "t1");
        let tree = repo.find_commit(watched).unwrap().tree_id();
        let base = base_commit(&repo, &key, watched, &[], tree).unwrap();
        assert_eq!(base, watched);
        let p = prov(&key, watched);
        let commit = result_commit(&repo, base, tree, "Task one", "what it does", &p).unwrap();
        assert_eq!(adoptable(&repo, &key, &p.spec_hash, 0), None);

        let first = publish(&repo, &key, commit, 0).unwrap();
        assert_eq!((first.branch.as_str(), first.tag.as_str(), first.n), ("ai/generated/wf/t1", "ai/wf/t1/1", 1));
        // Publishing the same commit again writes nothing new.
        assert_eq!(publish(&repo, &key, commit, 0).unwrap(), first);
        assert_eq!(adoptable(&repo, &key, &p.spec_hash, 0), Some((commit, Some(1))));
        assert_eq!(adoptable(&repo, &key, &SpecHash::parse(&"b".repeat(64)).unwrap(), 0), None);

        let message = String::from_utf8_lossy(repo.find_commit(commit).unwrap().message_bytes()).into_owned();
        let trailers = parse_trailers(&message);
        assert_eq!(trailers["Plancd-Model"], "scripted");
        assert_eq!(trailers["Plancd-Correlation-Id"], "c0ffee");
        assert!(message.starts_with("Task one\n\nwhat it does\n\n"));

        // A second accepted result gets the next number; tags never move.
        let again = result_commit(&repo, base, tree, "Task one, again", "", &p).unwrap();
        let second = publish(&repo, &key, again, 1).unwrap();
        assert_eq!(second.tag, "ai/wf/t1/2");
        assert_eq!(tagged_commit(&repo, "ai/wf/t1/1"), Some(commit));
    }

    #[test]
    fn several_dependencies_are_merged_under_the_result() {
        let (_dir, repo, watched) = repo();
        let key = TaskKey::new("wf", "t3");
        let tree = repo.find_commit(watched).unwrap().tree_id();
        let p = prov(&TaskKey::new("wf", "t1"), watched);
        let r1 = result_commit(&repo, watched, tree, "one", "", &p).unwrap();
        let r2 = result_commit(&repo, watched, tree, "two", "", &p).unwrap();
        assert_eq!(base_commit(&repo, &key, watched, &[("t1".into(), r1)], tree).unwrap(), r1);
        let merge = base_commit(&repo, &key, watched, &[("t1".into(), r1), ("t2".into(), r2)], tree).unwrap();
        let merge = repo.find_commit(merge).unwrap();
        assert_eq!(merge.parent_ids().collect::<Vec<_>>(), vec![r1, r2]);
        assert_eq!(merge.summary().unwrap(), Some("Merge results of t1, t2 for wf/t3"));
    }
}
