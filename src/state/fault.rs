//! Fault injection for crash tests: with `PLANCD_FAULT_KILL_AFTER_WRITES=N` in the
//! environment, the process kills itself with SIGKILL right after its N-th ref write. The
//! crash-safety tests use it to stop plancd at every point between two writes.

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
