//! What an attempt's sandbox asked of the network through its egress proxy (a role's
//! `network.allow`): the hosts it reached and those refused, each with how many requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most hosts kept in each list of a [`NetworkUse`]; the rest are counted in its totals only.
pub const MAX_HOSTS: usize = 50;

/// How one request through the proxy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// It went through to the host.
    Used,
    /// The proxy refused it: a host outside the allowlist, a port or method it does not pass.
    Blocked,
    /// The host is allowed but did not resolve or answer.
    Failed,
}

/// Requests to one host and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCount {
    /// The host asked for (`-` when the request named none).
    pub host: String,
    /// The port asked for.
    pub port: u16,
    /// How many requests.
    pub count: u32,
}

/// The network an attempt's agent had, and what it did with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkUse {
    /// The attempt.
    pub attempt: u32,
    /// The role's allowlist.
    pub allow: Vec<String>,
    /// Hosts reached, most requests first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used: Vec<HostCount>,
    /// Requests the proxy refused, most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<HostCount>,
    /// Allowed hosts that did not resolve or answer, most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<HostCount>,
    /// Every refused request, listed or not.
    #[serde(default)]
    pub blocked_total: u32,
}

impl NetworkUse {
    /// Counts `requests` (how each ended, host, port) of `attempt` under `allow`.
    pub fn tally<'a>(attempt: u32, allow: &[String], requests: impl IntoIterator<Item = (Egress, &'a str, u16)>) -> NetworkUse {
        let mut counts: [BTreeMap<(String, u16), u32>; 3] = Default::default();
        let mut blocked_total = 0u32;
        for (how, host, port) in requests {
            let host = if host.is_empty() { "-" } else { host };
            let i = match how {
                Egress::Used => 0,
                Egress::Blocked => {
                    blocked_total = blocked_total.saturating_add(1);
                    1
                }
                Egress::Failed => 2,
            };
            *counts[i].entry((host.to_owned(), port)).or_default() += 1;
        }
        let [used, blocked, failed] = counts.map(|m| {
            let mut list: Vec<HostCount> = m.into_iter().map(|((host, port), count)| HostCount { host, port, count }).collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.host.cmp(&b.host)).then(a.port.cmp(&b.port)));
            list.truncate(MAX_HOSTS);
            list
        });
        NetworkUse { attempt, allow: allow.to_vec(), used, blocked, failed, blocked_total }
    }

    /// What a record of attempt `attempt` says of the network: what the attempt's door
    /// recorded (`fresh`), else what an earlier record of the same attempt said; an earlier
    /// attempt's network is not this one's.
    pub fn carried(previous: Option<NetworkUse>, fresh: Option<NetworkUse>, attempt: u32) -> Option<NetworkUse> {
        fresh.or(previous.filter(|n| n.attempt == attempt))
    }

    /// `host:port ×n, ...` of `list`, at most `max` entries, then how many more.
    pub fn list_text(list: &[HostCount], max: usize) -> String {
        let mut parts: Vec<String> = list.iter().take(max).map(|h| format!("{}:{} ×{}", h.host, h.port, h.count)).collect();
        if list.len() > max {
            parts.push(format!("and {} more", list.len() - max));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_host_and_port_most_first() {
        let allow = vec!["pypi.org".to_owned()];
        let requests = [
            (Egress::Used, "pypi.org", 443),
            (Egress::Blocked, "evil.com", 443),
            (Egress::Used, "pypi.org", 443),
            (Egress::Blocked, "evil.com", 80),
            (Egress::Blocked, "evil.com", 443),
            (Egress::Blocked, "", 0),
            (Egress::Failed, "pypi.org", 443),
        ];
        let n = NetworkUse::tally(3, &allow, requests);
        let hc = |host: &str, port, count| HostCount { host: host.into(), port, count };
        assert_eq!(n.attempt, 3);
        assert_eq!(n.used, [hc("pypi.org", 443, 2)]);
        assert_eq!(n.blocked, [hc("evil.com", 443, 2), hc("-", 0, 1), hc("evil.com", 80, 1)]);
        assert_eq!(n.failed, [hc("pypi.org", 443, 1)]);
        assert_eq!(n.blocked_total, 4);
        assert_eq!(NetworkUse::list_text(&n.blocked, 2), "evil.com:443 ×2, -:0 ×1, and 1 more");
        // Nothing asked: nothing listed.
        let quiet = NetworkUse::tally(1, &allow, []);
        assert!(quiet.used.is_empty() && quiet.blocked.is_empty() && quiet.blocked_total == 0);
    }

    #[test]
    fn a_record_keeps_its_own_attempts_network_only() {
        let of = |attempt| Some(NetworkUse { attempt, ..NetworkUse::default() });
        // (previous, fresh, the record's attempt, kept)
        let rows =
            [(of(1), of(2), 2, of(2)), (of(2), None, 2, of(2)), (of(1), None, 2, None), (None, None, 2, None), (None, of(3), 3, of(3))];
        for (previous, fresh, attempt, want) in rows {
            assert_eq!(NetworkUse::carried(previous.clone(), fresh.clone(), attempt), want, "{previous:?} {fresh:?} {attempt}");
        }
    }

    #[test]
    fn long_lists_are_cut_but_the_total_counts_every_refusal() {
        let hosts: Vec<String> = (0..MAX_HOSTS + 10).map(|i| format!("h{i}.example")).collect();
        let n = NetworkUse::tally(1, &[], hosts.iter().map(|h| (Egress::Blocked, h.as_str(), 443)));
        assert_eq!(n.blocked.len(), MAX_HOSTS);
        assert_eq!(n.blocked_total, (MAX_HOSTS + 10) as u32);
    }

    #[test]
    fn records_without_the_field_still_read() {
        let n: NetworkUse = serde_json::from_str(r#"{"attempt": 1, "allow": ["pypi.org"]}"#).unwrap();
        assert_eq!(n, NetworkUse { attempt: 1, allow: vec!["pypi.org".into()], ..NetworkUse::default() });
    }
}
