//! Who holds a claim: a host, a process (with its start time, so a reused pid is not taken for
//! the original) and a nonce. On its own host, a holder whose process is gone has lost its
//! claim at once; elsewhere, its lease runs out.

use std::fmt;

/// This process as a claim holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start: u64,
    /// Distinguishes holders within one process.
    pub nonce: String,
}

impl Holder {
    /// The holder identity of the running process.
    pub fn current() -> Holder {
        let pid = std::process::id();
        Holder { host: hostname(), pid, start: process_start(pid).unwrap_or(0), nonce: nonce() }
    }

    /// The running process `pid` of this host as a holder (nonce `-`); `None` when it is gone.
    pub fn of_process(pid: u32) -> Option<Holder> {
        Some(Holder { host: hostname(), pid, start: process_start(pid)?, nonce: "-".into() })
    }

    /// Parses `host:pid:start:nonce`.
    pub fn parse(s: &str) -> Option<Holder> {
        let mut parts = s.rsplitn(4, ':');
        let nonce = parts.next()?.to_owned();
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_owned();
        Some(Holder { host, pid, start, nonce })
    }

    /// Whether the holder's process is certainly gone: it ran on this host and no process with
    /// its pid and start time exists. A holder on another host is never known to be gone.
    pub fn is_dead_here(&self) -> bool {
        self.host == hostname() && process_start(self.pid) != Some(self.start)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:{}", self.host, self.pid, self.start, self.nonce)
    }
}

/// `PLANCD_HOST` if set (a controller's identity where host names repeat), else the host name.
fn hostname() -> String {
    if let Some(host) = std::env::var("PLANCD_HOST").ok().filter(|h| !h.trim().is_empty()) {
        return host.trim().replace(':', "_");
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
        .replace(':', "_")
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its closing parenthesis.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_knows_itself_alive() {
        let me = Holder::current();
        assert!(me.start > 0, "this process has a start time");
        assert_eq!(Holder::parse(&me.to_string()), Some(me.clone()));
        assert!(!me.is_dead_here());
    }

    #[test]
    fn a_finished_process_is_dead_and_other_hosts_are_not_judged() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid).unwrap_or(1);
        child.wait().unwrap();
        let gone = Holder { host: hostname(), pid, start, nonce: "x".into() };
        assert!(gone.is_dead_here());
        let elsewhere = Holder { host: "another-host".into(), ..gone };
        assert!(!elsewhere.is_dead_here());
    }
}
