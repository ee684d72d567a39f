//! The response cache, in the repository: one ref per reply,
//! `refs/ai/cache/<hash[..2]>/<hash[2..]>`, naming a commit whose tree holds `response.json`.
//! The hash is sha256 over the canonical JSON of the model's identity and the whole request,
//! so a lookup is one ref read and a reply is reused only where everything before it is the
//! same: a re-run, or a replay of a recorded run, sends nothing and gets the same replies.

use std::sync::Arc;

use git2::{ErrorCode, Oid};

use super::{ChatRequest, ChatResponse};
use crate::spec::{canonical_json, sha256_hex};
use crate::state::{Store, signature};

/// Where cache entries live.
pub const CACHE_REFS: &str = "refs/ai/cache/";

/// The cache of one repository.
#[derive(Clone)]
pub struct Cache {
    store: Arc<Store>,
}

/// The key of `req` sent to the model `identity` (`provider/model`).
pub fn key(identity: &str, req: &ChatRequest) -> String {
    let value = serde_json::json!({"model": identity, "request": req});
    sha256_hex(&canonical_json(&value))
}

/// The ref of a key.
pub fn ref_name(key: &str) -> String {
    format!("{CACHE_REFS}{}/{}", &key[..2], &key[2..])
}

impl Cache {
    /// The cache in `store`'s repository.
    pub fn new(store: Arc<Store>) -> Cache {
        Cache { store }
    }

    /// The reply stored under `key`.
    pub fn get(&self, key: &str) -> Result<Option<ChatResponse>, git2::Error> {
        let repo = self.store.repo();
        let commit = match repo.find_reference(&ref_name(key)) {
            Ok(r) => r.peel_to_commit()?,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let entry = commit.tree()?.get_name("response.json").map(|e| e.id());
        let Some(blob) = entry.map(|id| repo.find_blob(id)).transpose()? else { return Ok(None) };
        Ok(serde_json::from_slice(blob.content()).ok())
    }

    /// Stores `reply` under `key` (an entry that exists already stays: it is the same reply,
    /// or an equally valid one).
    pub fn put(&self, key: &str, identity: &str, reply: &ChatResponse) -> Result<(), git2::Error> {
        let json = serde_json::to_vec_pretty(reply).expect("a reply always serialises");
        let repo = self.store.repo();
        let mut tree = repo.treebuilder(None)?;
        tree.insert("response.json", repo.blob(&json)?, git2::FileMode::Blob.into())?;
        let tree = repo.find_tree(tree.write()?)?;
        let sig = signature()?;
        let message = format!("cache {identity}\n\nPlancd-Cache-Key: {key}\n");
        let commit: Oid = repo.commit(None, &sig, &sig, &message, &tree, &[])?;
        match repo.reference(&ref_name(key), commit, false, "plancd: cache a model reply") {
            Ok(_) => Ok(()),
            Err(e) if e.code() == ErrorCode::Exists => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::{Message, Usage, testing};

    #[test]
    fn replies_round_trip_and_keys_follow_the_request() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let cache = Cache::new(Arc::new(Store::open(dir.path()).unwrap()));
        let req = testing::request(vec![Message::User { text: "go".into() }]);
        let k = key("openai/m", &req);
        assert_eq!(k.len(), 64);
        assert_ne!(k, key("openai/other", &req));
        let mut other = req.clone();
        other.key.attempt = 9; // the scripted lookup key is not part of the request
        assert_eq!(k, key("openai/m", &other));
        assert!(cache.get(&k).unwrap().is_none());
        let reply = ChatResponse {
            text: "hi".into(),
            calls: vec![],
            usage: Usage { input_tokens: 3, output_tokens: 4, estimated: false },
            stop_reason: "stop".into(),
        };
        cache.put(&k, "openai/m", &reply).unwrap();
        cache.put(&k, "openai/m", &reply).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Some(reply));
        let listed = std::process::Command::new("git").args(["-C", dir.path().to_str().unwrap(), "for-each-ref", CACHE_REFS]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);
    }
}
