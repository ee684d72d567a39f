//! A session's one door out to the internet: an egress proxy (plancd-sandbox's) on a socket in
//! a folder of its own, forwarded into the session at a port of its loopback with the proxy
//! variables set. Environment setup opens one for the registries it needs; an agent whose role
//! has `network.allow` opens one for those hosts. Nothing else of a session reaches out.

use std::path::PathBuf;

use plancd_sandbox::egress::{self, Allowlist, EgressProxy, EgressRecord, Refusal};
use plancd_sandbox::{PortForward, SessionSpec};

use crate::state::{Egress, NetworkUse};

/// The port on a session's loopback where a door's proxy answers (squid's, the usual one).
pub const PROXY_PORT: u16 = 3128;

/// How long closing a door waits for the connections still being served to end.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// A running egress proxy for one session; closing it (or dropping it) stops the proxy and
/// removes its folder.
pub struct Door {
    proxy: EgressProxy,
    hosts: Vec<String>,
    dir: tempfile::TempDir,
}

impl Door {
    /// Serves `hosts` (allowlist patterns) on a socket in a new folder whose name starts with
    /// `prefix`, readable by the session's user.
    pub async fn open(hosts: &[String], prefix: &str) -> Result<Door, String> {
        let allow = Allowlist::new(hosts).map_err(|e| e.to_string())?;
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().map_err(|e| e.to_string())?;
        // The session's user (another uid under docker) must reach the socket.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(|e| e.to_string())?;
        let proxy = EgressProxy::start(&dir.path().join("egress.sock"), allow).await.map_err(|e| e.to_string())?;
        Ok(Door { proxy, hosts: hosts.to_vec(), dir })
    }

    /// The allowlist it serves.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// `spec` with the proxy forwarded to [`PROXY_PORT`] and the variables that send HTTP(S)
    /// through it (replacing any of the same names), trusting the host's CA bundle.
    pub fn apply(&self, spec: &mut SessionSpec) {
        spec.ports.push(PortForward { port: PROXY_PORT, socket: self.proxy.socket().to_owned() });
        let ca = egress::host_ca_bundle().unwrap_or_else(|| PathBuf::from(egress::DEFAULT_CA_BUNDLE));
        let env = egress::session_env(PROXY_PORT, &ca);
        spec.env.retain(|(k, _)| !env.iter().any(|(n, _)| n == k));
        spec.env.extend(env);
    }

    /// Stops the proxy once its connections have ended (at most [`SETTLE`] after the
    /// session): what went through it, and what it refused.
    pub async fn close(self) -> Vec<EgressRecord> {
        let records = self.proxy.finish(SETTLE).await;
        drop(self.dir);
        records
    }
}

/// How a request the proxy recorded ended, as status counts it.
pub fn egress_of(record: &EgressRecord) -> Egress {
    match record.refused {
        None => Egress::Used,
        Some(Refusal::Unresolvable | Refusal::Unreachable) => Egress::Failed,
        Some(Refusal::NotAllowed | Refusal::PortNotAllowed | Refusal::MethodNotAllowed | Refusal::Malformed) => Egress::Blocked,
    }
}

/// What attempt `attempt`'s requests through a door serving `allow` come to.
pub fn network_use(attempt: u32, allow: &[String], records: &[EgressRecord]) -> NetworkUse {
    NetworkUse::tally(attempt, allow, records.iter().map(|r| (egress_of(r), r.host.as_str(), r.port)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use plancd_sandbox::egress::Method;

    use super::*;

    #[test]
    fn refusals_by_policy_are_blocked_and_dead_allowed_hosts_failed() {
        let record = |host: &str, port, refused| EgressRecord {
            method: Some(Method::Connect),
            host: host.into(),
            port,
            refused,
            bytes_up: 0,
            bytes_down: 0,
            duration: Duration::ZERO,
        };
        // The refusal, how status counts it.
        let rows = [
            (None, Egress::Used),
            (Some(Refusal::NotAllowed), Egress::Blocked),
            (Some(Refusal::PortNotAllowed), Egress::Blocked),
            (Some(Refusal::MethodNotAllowed), Egress::Blocked),
            (Some(Refusal::Malformed), Egress::Blocked),
            (Some(Refusal::Unresolvable), Egress::Failed),
            (Some(Refusal::Unreachable), Egress::Failed),
        ];
        for (refused, want) in rows {
            assert_eq!(egress_of(&record("h", 443, refused)), want, "{refused:?}");
        }
        let records = [record("pypi.org", 443, None), record("evil.com", 443, Some(Refusal::NotAllowed))];
        let n = network_use(2, &["pypi.org".to_owned()], &records);
        assert_eq!((n.used.len(), n.blocked.len(), n.blocked_total, n.attempt), (1, 1, 1, 2));
    }

    #[tokio::test]
    async fn a_door_forwards_its_proxy_and_names_it_in_the_environment() {
        let door = Door::open(&["pypi.org".to_owned()], "plancd-door-test-").await.unwrap();
        let mut spec = SessionSpec { env: vec![("HTTPS_PROXY".into(), "http://elsewhere:1".into())], ..SessionSpec::default() };
        door.apply(&mut spec);
        assert_eq!(spec.ports.len(), 1);
        assert_eq!(spec.ports[0].port, PROXY_PORT);
        let socket = spec.ports[0].socket.clone();
        assert!(socket.exists());
        let proxies: Vec<&str> = spec.env.iter().filter(|(k, _)| k == "HTTPS_PROXY").map(|(_, v)| v.as_str()).collect();
        assert_eq!(proxies, ["http://127.0.0.1:3128"], "the door's proxy replaces any other");
        assert!(door.close().await.is_empty());
        assert!(!socket.exists(), "closed with its folder");
    }
}
