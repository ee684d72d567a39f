//! Fault injection for crash tests: the process killed right after its N-th ref write
//! (`PLANCD_FAULT_KILL_AFTER_WRITES=N`) or while it holds the lock of one
//! (`PLANCD_FAULT_KILL_WHILE_LOCKED=N`), and ref writes that fail as on a full disk
//! (`PLANCD_FAULT_FAIL_WRITES_AFTER=N`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms the fault.
pub const KILL_AFTER_WRITES: &str = "PLANCD_FAULT_KILL_AFTER_WRITES";

static WRITES: AtomicU64 = AtomicU64::new(0);

fn limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| std::env::var(KILL_AFTER_WRITES).ok().and_then(|v| v.parse().ok()))
}

/// Counts one ref write; kills the process when the armed count is reached.
pub fn after_ref_write() {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if limit() == Some(n) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should delivery lag, do not write anything more.
        std::process::abort();
    }
}

/// The environment variable that kills the process while it holds the lock of its N-th ref
/// write (after it recorded itself as the lock's writer).
pub const KILL_WHILE_LOCKED: &str = "PLANCD_FAULT_KILL_WHILE_LOCKED";

static LOCKED: AtomicU64 = AtomicU64::new(0);

/// Counts one ref lock taken; kills the process, lock held, when the armed count is reached.
pub fn while_ref_locked() {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    let limit = *LIMIT.get_or_init(|| std::env::var(KILL_WHILE_LOCKED).ok().and_then(|v| v.parse().ok()));
    let Some(limit) = limit else { return };
    if LOCKED.fetch_add(1, Ordering::SeqCst) + 1 == limit {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// The environment variable that makes every ref write after the first N fail, as on a full
/// disk (the writes before it succeed).
pub const FAIL_WRITES_AFTER: &str = "PLANCD_FAULT_FAIL_WRITES_AFTER";

/// Whether this ref write must fail (counting it): a disk that filled up.
pub fn write_fails() -> bool {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static TRIED: AtomicU64 = AtomicU64::new(0);
    let limit = *LIMIT.get_or_init(|| std::env::var(FAIL_WRITES_AFTER).ok().and_then(|v| v.parse().ok()));
    limit.is_some_and(|limit| TRIED.fetch_add(1, Ordering::SeqCst) >= limit)
}
