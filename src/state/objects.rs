//! Writing git objects while someone else runs `git gc` in the same repository.
//!
//! libgit2 writes a loose object to a temporary file, creates its fan-out folder
//! (`objects/ab/`) and renames the file into it. A `git gc` (or `git prune-packed`) running at
//! the same time, as `git commit` starts one on its own once loose objects pile up, removes the
//! fan-out folders it emptied, and a rename that lands between the two fails with "No such file
//! or directory". Git retries such a write; libgit2 does not, so plancd does: objects are
//! addressed by their content, so writing one again is harmless.

/// How often a write that lost that race is tried again. A `git gc` removes a folder once, so
/// one more try nearly always lands; the margin is for a machine so loaded that the same
/// folder is emptied again and again between libgit2's two steps (each try costs microseconds).
const RETRIES: usize = 50;

/// Runs `write` (which only writes objects and moves no ref) until it does not fail for a
/// fan-out folder removed under it, at most 50 more times.
pub fn retrying<T>(mut write: impl FnMut() -> Result<T, git2::Error>) -> Result<T, git2::Error> {
    let mut tries = 0;
    loop {
        match write() {
            Err(e) if tries < RETRIES && lost_to_gc(&e) => tries += 1,
            other => return other,
        }
    }
}

/// Whether `e` is libgit2 failing to move a written object into a folder that vanished.
fn lost_to_gc(e: &git2::Error) -> bool {
    e.class() == git2::ErrorClass::Os && e.message().contains("No such file or directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vanished() -> git2::Error {
        git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Os,
            "failed to rename lockfile to '/r/.git/objects/23/bad5': No such file or directory",
        )
    }

    #[test]
    fn a_write_whose_folder_vanished_is_tried_again_and_other_failures_are_not() {
        let mut calls = 0;
        let r = retrying(|| {
            calls += 1;
            if calls < 3 { Err(vanished()) } else { Ok(calls) }
        });
        assert_eq!(r.unwrap(), 3, "two lost races, then the write lands");

        let mut calls = 0;
        let r: Result<(), _> = retrying(|| {
            calls += 1;
            Err(git2::Error::new(git2::ErrorCode::GenericError, git2::ErrorClass::Os, "No space left on device"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "a full disk is not a race");

        let mut calls = 0;
        let r: Result<(), _> = retrying(|| {
            calls += 1;
            Err(vanished())
        });
        assert!(r.is_err());
        assert_eq!(calls, RETRIES + 1, "it gives up in the end");
    }

    #[test]
    fn objects_are_written_while_git_prunes_the_fan_out_folders() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let objects = dir.path().join("objects");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // What `git prune-packed` does to the fan-out folders: remove those it finds empty.
        let pruner = {
            let (objects, stop) = (objects.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for n in 0..=255u8 {
                        let _ = std::fs::remove_dir(objects.join(format!("{n:02x}")));
                    }
                }
            })
        };
        // Each object into a fresh folder: written, then its folder emptied for the next round.
        let mut lost = 0;
        for i in 0..3000u32 {
            let id = retrying(|| repo.blob(format!("object {i}").as_bytes())).unwrap();
            let file = objects.join(&id.to_string()[..2]).join(&id.to_string()[2..]);
            if std::fs::remove_file(&file).is_err() {
                lost += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        pruner.join().unwrap();
        assert_eq!(lost, 0, "every write landed where git looks for it");
    }
}
