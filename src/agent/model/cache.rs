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

/// The key of `req` sent to the model `identity` (`provider/model`): the hash of the request
/// normalised — canonical JSON, and durations in tool results (`Ran 3 tests in 0.012s`)
/// masked, since they differ between runs that are otherwise the same.
pub fn key(identity: &str, req: &ChatRequest) -> String {
    let mut request = serde_json::to_value(req).expect("a request always serialises");
    if let Some(messages) = request.get_mut("messages").and_then(|m| m.as_array_mut()) {
        for result in messages.iter_mut().filter_map(|m| m.get_mut("results")).filter_map(|r| r.as_array_mut()).flatten() {
            if let Some(content) = result.get_mut("content")
                && let Some(text) = content.as_str()
            {
                *content = mask_durations(text).into();
            }
        }
    }
    sha256_hex(&canonical_json(&serde_json::json!({"model": identity, "request": request})))
}

/// `text` with every duration (`0.012s`, `15 ms`, `3 seconds`) replaced by `<duration>`.
pub fn mask_durations(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit() && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'));
        if starts_number && let Some(end) = duration_end(bytes, i) {
            out.push_str("<duration>");
            i = end;
            continue;
        }
        let ch = text[i..].chars().next().expect("i is on a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Where a duration that starts at `start` ends, if one does.
fn duration_end(bytes: &[u8], start: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i = digits(i + 1);
    }
    if i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let rest = &bytes[i..];
    let unit = ["seconds", "second", "secs", "ms", "s"].iter().find(|u| rest.starts_with(u.as_bytes()))?;
    let end = i + unit.len();
    (end == bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] >= 0x80)).then_some(end)
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
        Ok(self.get_file(key, "response.json")?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Stores `reply` under `key` (an entry that exists already stays: it is the same reply,
    /// or an equally valid one).
    pub fn put(&self, key: &str, identity: &str, reply: &ChatResponse) -> Result<(), git2::Error> {
        let json = serde_json::to_vec_pretty(reply).expect("a reply always serialises");
        self.put_file(key, identity, "response.json", &json)
    }

    /// The file `name` of the entry under `key` (the gateway keeps whole HTTP replies).
    pub fn get_file(&self, key: &str, name: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        let repo = self.store.repo();
        let commit = match repo.find_reference(&ref_name(key)) {
            Ok(r) => r.peel_to_commit()?,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let entry = commit.tree()?.get_name(name).map(|e| e.id());
        let Some(blob) = entry.map(|id| repo.find_blob(id)).transpose()? else { return Ok(None) };
        Ok(Some(blob.content().to_vec()))
    }

    /// Stores `bytes` as the file `name` of the entry under `key` (an entry that exists
    /// already stays).
    pub fn put_file(&self, key: &str, identity: &str, name: &str, bytes: &[u8]) -> Result<(), git2::Error> {
        let repo = self.store.repo();
        let sig = signature()?;
        let message = format!("cache {identity}\n\nPlancd-Cache-Key: {key}\n");
        let commit: Oid = crate::state::objects::retrying(|| {
            let mut tree = repo.treebuilder(None)?;
            tree.insert(name, repo.blob(bytes)?, git2::FileMode::Blob.into())?;
            let tree = repo.find_tree(tree.write()?)?;
            repo.commit(None, &sig, &sig, &message, &tree, &[])
        })?;
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
    fn durations_are_masked_and_nothing_else() {
        assert_eq!(mask_durations("Ran 3 tests in 0.012s\nOK"), "Ran 3 tests in <duration>\nOK");
        assert_eq!(mask_durations("took 15 ms, then 3 seconds; 2 passed"), "took <duration>, then <duration>; 2 passed");
        assert_eq!(mask_durations("v1.2s x3s 10 sets 7 süß"), "v1.2s x3s 10 sets 7 süß");
    }

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
        let listed =
            std::process::Command::new("git").args(["-C", dir.path().to_str().unwrap(), "for-each-ref", CACHE_REFS]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);
    }
}
