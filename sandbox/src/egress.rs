//! The egress proxy: an HTTP proxy on a host unix socket, a session's one way to the internet,
//! and only to the host names on its [`Allowlist`].
//!
//! A session reaches it through a [`PortForward`](crate::PortForward) at `127.0.0.1:<port>`
//! with [`session_env`] set. `CONNECT host:443` to an allowed host opens a tunnel (TLS stays
//! end to end: the proxy sees names and byte counts, never contents nor credentials); a plain
//! `GET`/`HEAD http://host/...` to an allowed host is passed on with `Connection: close`. An
//! allowlist entry `host:port` opens that port of the host instead, to both.
//! Everything else gets an error status with a body that says why. Names are resolved on the
//! host. Every request leaves an [`EgressRecord`] (also logged), for the attempt's log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where Debian and its derivatives keep the system's CA bundle.
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest request head read from a client.
const MAX_HEAD: usize = 16 << 10;
/// How long a client may take to send its request head.
const HEAD_PATIENCE: Duration = Duration::from_secs(10);
/// How long resolving and connecting to an upstream may take.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);
/// Records kept per proxy; later ones are logged only.
const MAX_RECORDS: usize = 10_000;

/// A package ecosystem, with the registry hosts its installers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    /// PyPI (pip, uv).
    Python,
    /// The npm registry (npm, yarn, pnpm).
    Node,
    /// crates.io (cargo).
    Rust,
}

impl Ecosystem {
    /// The hosts its installers reach for packages.
    pub fn hosts(self) -> &'static [&'static str] {
        match self {
            Ecosystem::Python => &["pypi.org", "files.pythonhosted.org"],
            Ecosystem::Node => &["registry.npmjs.org"],
            Ecosystem::Rust => &["crates.io", "static.crates.io", "index.crates.io"],
        }
    }
}

/// Why an allowlist is refused.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A pattern that is neither a host name nor `*.` and a host name.
    #[error("allowlist entry `{0}` is not a host name or `*.` and one, each with an optional `:port` (1 to 65535)")]
    BadPattern(String),
    /// The proxy's socket.
    #[error("egress proxy socket {path}: {source}")]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Host names a session may reach: exact names and `*.suffix` patterns (any name below the
/// suffix, not the suffix itself), each on the usual ports (443 for tunnels, 80 for plain HTTP)
/// or, written `name:port`, on that port alone (a private index such as devpi on 3141). Names
/// compare without case and trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    exact: Vec<(String, Option<u16>)>,
    suffixes: Vec<(String, Option<u16>)>,
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Allowlist {
    /// An allowlist of `patterns`: `pypi.org`, `*.pythonhosted.org`, `devpi.internal:3141`.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<Allowlist, EgressError> {
        let mut list = Allowlist::default();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let bad = || EgressError::BadPattern(pattern.to_owned());
            let (name, port) = match pattern.rsplit_once(':') {
                Some((name, port)) => (name, Some(port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?)),
                None => (pattern, None),
            };
            let (wild, name) = match name.strip_prefix("*.") {
                Some(rest) => (true, normal(rest)),
                None => (false, normal(name)),
            };
            if !is_host_name(&name) {
                return Err(bad());
            }
            if wild { list.suffixes.push((name, port)) } else { list.exact.push((name, port)) }
        }
        Ok(list)
    }

    /// The registry hosts of `ecosystems`.
    pub fn for_ecosystems(ecosystems: &[Ecosystem]) -> Allowlist {
        Allowlist::new(ecosystems.iter().flat_map(|e| e.hosts().iter())).expect("the ecosystems' hosts are host names")
    }

    /// Whether `host` may be reached (on some port).
    pub fn allows(&self, host: &str) -> bool {
        !self.ports_of(host).is_empty()
    }

    /// Whether `host` may be reached on `port`, where `usual` is the port of an entry that
    /// names none (443 for tunnels, 80 for plain HTTP).
    pub fn allows_on(&self, host: &str, port: u16, usual: u16) -> bool {
        self.ports_of(host).iter().any(|p| p.unwrap_or(usual) == port)
    }

    /// The ports of the entries that match `host` (`None`: the usual ones).
    fn ports_of(&self, host: &str) -> Vec<Option<u16>> {
        let host = normal(host);
        let below = |s: &str| host.strip_suffix(s).is_some_and(|head| head.len() > 1 && head.ends_with('.'));
        let exact = self.exact.iter().filter(|(name, _)| *name == host);
        exact.chain(self.suffixes.iter().filter(|(s, _)| below(s))).map(|(_, port)| *port).collect()
    }
}

/// The kind of request a client made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `CONNECT host:port`: a tunnel.
    Connect,
    /// `GET` or `HEAD` of an `http://` URL.
    Http,
}

/// Why a request was refused; each has its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The host is not on the allowlist.
    NotAllowed,
    /// A port other than 443 for tunnels, 80 for plain HTTP, or the port the allowlist names.
    PortNotAllowed,
    /// A method other than CONNECT, GET and HEAD, or a URL other than `http://`.
    MethodNotAllowed,
    /// Not an HTTP request head (or too large, or too slow).
    Malformed,
    /// The name does not resolve on the host.
    Unresolvable,
    /// No address of the host answers.
    Unreachable,
}

impl Refusal {
    /// The HTTP status the client gets.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::NotAllowed | Refusal::PortNotAllowed => (403, "Forbidden"),
            Refusal::MethodNotAllowed => (405, "Method Not Allowed"),
            Refusal::Malformed => (400, "Bad Request"),
            Refusal::Unresolvable | Refusal::Unreachable => (502, "Bad Gateway"),
        }
    }

    /// A CamelCase reason for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "NotAllowed",
            Refusal::PortNotAllowed => "PortNotAllowed",
            Refusal::MethodNotAllowed => "MethodNotAllowed",
            Refusal::Malformed => "Malformed",
            Refusal::Unresolvable => "Unresolvable",
            Refusal::Unreachable => "Unreachable",
        }
    }

    /// The body the client gets: what was refused and why.
    fn body(self, host: &str, port: u16) -> String {
        let why = match self {
            Refusal::NotAllowed => format!("{host} is not on this sandbox's egress allowlist"),
            Refusal::PortNotAllowed => {
                format!("port {port} of {host} is closed: tunnels go to 443, plain HTTP to 80, unless the allowlist names a port")
            }
            Refusal::MethodNotAllowed => "only CONNECT host:443 and GET/HEAD of http:// URLs pass".to_owned(),
            Refusal::Malformed => "not an HTTP proxy request".to_owned(),
            Refusal::Unresolvable => format!("{host} does not resolve"),
            Refusal::Unreachable => format!("{host}:{port} does not answer"),
        };
        format!("plancd egress proxy: refused: {why}\n")
    }
}

/// What a request asks the proxy for, once read and allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Tunnel or plain HTTP.
    pub method: Method,
    /// The host name (lowercase).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Plain HTTP: the head to send upstream (origin-form request line, no proxy headers,
    /// `Connection: close`). Tunnels: empty.
    pub upstream_head: String,
}

/// `host[:port]` with `default` as the port.
fn host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, default),
    };
    is_host_name(&normal(host)).then(|| (normal(host), port))
}

/// Decides on a request head (without its blank line): the target when allowed, else why not
/// (with the host and port it named, when it named one).
pub fn decide(head: &str, allow: &Allowlist) -> Result<Target, (Refusal, String, u16)> {
    let malformed = || (Refusal::Malformed, String::new(), 0);
    let mut lines = head.split("\r\n");
    let request = lines.next().ok_or_else(malformed)?;
    let mut parts = request.split(' ');
    let (Some(verb), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(malformed());
    }
    let (method, host, port, path) = match verb {
        "CONNECT" => {
            let (host, port) = host_port(uri, 443).ok_or_else(malformed)?;
            (Method::Connect, host, port, String::new())
        }
        "GET" | "HEAD" => {
            let rest = uri.strip_prefix("http://").ok_or((Refusal::MethodNotAllowed, String::new(), 0))?;
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let (host, port) = host_port(authority, 80).ok_or_else(malformed)?;
            (Method::Http, host, port, path.to_owned())
        }
        _ => return Err((Refusal::MethodNotAllowed, String::new(), 0)),
    };
    if !allow.allows(&host) {
        return Err((Refusal::NotAllowed, host, port));
    }
    let usual = if method == Method::Connect { 443 } else { 80 };
    if !allow.allows_on(&host, port, usual) {
        return Err((Refusal::PortNotAllowed, host, port));
    }
    let upstream_head = match method {
        Method::Connect => String::new(),
        Method::Http => {
            let mut out = format!("{verb} {path} {version}\r\n");
            for line in lines.filter(|l| !l.is_empty()) {
                let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
                if !name.starts_with("proxy-") && name != "connection" && name != "keep-alive" {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
            out.push_str("Connection: close\r\n\r\n");
            out
        }
    };
    Ok(Target { method, host, port, upstream_head })
}

/// One request through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRecord {
    /// Tunnel or plain HTTP (`None`: the request could not be read).
    pub method: Option<Method>,
    /// The host asked for (empty when the request named none).
    pub host: String,
    /// The port asked for.
    pub port: u16,
    /// Why it was refused; `None`: it went through.
    pub refused: Option<Refusal>,
    /// Bytes from the sandbox to the host.
    pub bytes_up: u64,
    /// Bytes from the host to the sandbox.
    pub bytes_down: u64,
    /// From the request to the end of the connection.
    pub duration: Duration,
}

impl fmt::Display for EgressRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method {
            Some(Method::Connect) => "CONNECT",
            Some(Method::Http) => "HTTP",
            None => "?",
        };
        let host = if self.host.is_empty() { "-" } else { &self.host };
        match self.refused {
            None => write!(
                f,
                "{method} {host}:{} allowed, {} B up, {} B down, {:.2}s",
                self.port,
                self.bytes_up,
                self.bytes_down,
                self.duration.as_secs_f64()
            ),
            Some(r) => write!(f, "{method} {host}:{} refused ({})", self.port, r.reason()),
        }
    }
}

type Records = Arc<Mutex<Vec<EgressRecord>>>;

/// Connections being served, and a signal each time one ends.
#[derive(Default)]
struct Open {
    count: std::sync::atomic::AtomicUsize,
    ended: tokio::sync::Notify,
}

/// A running proxy. Stopping or dropping it closes every connection and removes its socket.
pub struct EgressProxy {
    socket: PathBuf,
    records: Records,
    open: Arc<Open>,
    task: tokio::task::JoinHandle<()>,
}

impl EgressProxy {
    /// Serves `allow` on a new unix socket at `socket` (its folder must exist; a file there
    /// is replaced). The socket is open to every host user: sandboxes run as their own.
    pub async fn start(socket: &Path, allow: Allowlist) -> Result<EgressProxy, EgressError> {
        let fail = |source| EgressError::Socket { path: socket.to_owned(), source };
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(socket).map_err(fail)?;
        std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).map_err(fail)?;
        let records = Records::default();
        let open = Arc::new(Open::default());
        let task = tokio::spawn(serve(listener, Arc::new(allow), Arc::clone(&records), Arc::clone(&open)));
        Ok(EgressProxy { socket: socket.to_owned(), records, open, task })
    }

    /// The socket it serves on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The requests so far that have ended (open tunnels are recorded when they close).
    pub fn records(&self) -> Vec<EgressRecord> {
        self.records.lock().expect("the records lock is never poisoned").clone()
    }

    /// Closes the socket and every connection; returns the records.
    pub fn stop(self) -> Vec<EgressRecord> {
        self.records()
    }

    /// Waits (at most `patience`) for the connections being served to end, so that their
    /// records are in (once the session's processes are gone, their connections end at
    /// once); then stops as [`EgressProxy::stop`] does.
    pub async fn finish(self, patience: Duration) -> Vec<EgressRecord> {
        let open = Arc::clone(&self.open);
        let wait = async {
            loop {
                let ended = open.ended.notified();
                if open.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                ended.await;
            }
        };
        let _ = tokio::time::timeout(patience, wait).await;
        self.stop()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its set of connections, which aborts them.
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn serve(listener: tokio::net::UnixListener, allow: Arc<Allowlist>, records: Records, open: Arc<Open>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (allow, records, open) = (Arc::clone(&allow), Arc::clone(&records), Arc::clone(&open));
        open.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        connections.spawn(async move {
            let record = handle(client, &allow).await;
            match record.refused {
                None => tracing::info!(host = %record.host, port = record.port, up = record.bytes_up, down = record.bytes_down, "egress allowed"),
                Some(r) => tracing::warn!(host = %record.host, port = record.port, reason = r.reason(), "egress refused"),
            }
            {
                let mut records = records.lock().expect("the records lock is never poisoned");
                if records.len() < MAX_RECORDS {
                    records.push(record);
                }
            }
            open.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            open.ended.notify_waiters();
        });
    }
}

/// Reads up to the end of the request head; returns the head and the bytes after it.
async fn read_head(client: &mut tokio::net::UnixStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Some((String::from_utf8(buf).ok()?, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn refuse(client: &mut tokio::net::UnixStream, refusal: Refusal, host: &str, port: u16) {
    let (code, text) = refusal.status();
    let body = refusal.body(host, port);
    let response =
        format!("HTTP/1.1 {code} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Resolves `host` on the host and connects to the first address that answers.
async fn connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, Refusal> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port)).await.map_err(|_| Refusal::Unresolvable)?.collect();
    if addrs.is_empty() {
        return Err(Refusal::Unresolvable);
    }
    for addr in addrs {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            let _ = stream.set_nodelay(true);
            return Ok(stream);
        }
    }
    Err(Refusal::Unreachable)
}

/// Serves one client connection to its end.
async fn handle(mut client: tokio::net::UnixStream, allow: &Allowlist) -> EgressRecord {
    let start = Instant::now();
    let mut record =
        EgressRecord { method: None, host: String::new(), port: 0, refused: None, bytes_up: 0, bytes_down: 0, duration: Duration::ZERO };
    let Ok(Some((head, rest))) = tokio::time::timeout(HEAD_PATIENCE, read_head(&mut client)).await else {
        refuse(&mut client, Refusal::Malformed, "", 0).await;
        record.refused = Some(Refusal::Malformed);
        return record;
    };
    let target = match decide(&head, allow) {
        Ok(target) => target,
        Err((refusal, host, port)) => {
            refuse(&mut client, refusal, &host, port).await;
            let method = match head.split(' ').next() {
                Some("CONNECT") => Some(Method::Connect),
                Some("GET" | "HEAD") => Some(Method::Http),
                _ => None,
            };
            return EgressRecord { method, host, port, refused: Some(refusal), duration: start.elapsed(), ..record };
        }
    };
    record.method = Some(target.method);
    record.host = target.host.clone();
    record.port = target.port;
    let upstream =
        match tokio::time::timeout(CONNECT_PATIENCE, connect(&target.host, target.port)).await.unwrap_or(Err(Refusal::Unreachable)) {
            Ok(stream) => stream,
            Err(refusal) => {
                refuse(&mut client, refusal, &target.host, target.port).await;
                return EgressRecord { refused: Some(refusal), duration: start.elapsed(), ..record };
            }
        };
    let mut first = target.upstream_head.into_bytes();
    if target.method == Method::Connect && client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
        return EgressRecord { duration: start.elapsed(), ..record };
    }
    first.extend_from_slice(&rest);
    let (up, down) = pipe(client, upstream, first).await;
    EgressRecord { bytes_up: up, bytes_down: down, duration: start.elapsed(), ..record }
}

/// Pipes both ways until both directions end; `first` goes upstream before the client's
/// bytes. Returns the bytes each way (what passed before an error counts).
async fn pipe(client: tokio::net::UnixStream, upstream: tokio::net::TcpStream, first: Vec<u8>) -> (u64, u64) {
    let (client_read, client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let up = async move {
        if upstream_write.write_all(&first).await.is_err() {
            return 0;
        }
        first.len() as u64 + copy_counted(client_read, upstream_write).await
    };
    tokio::join!(up, copy_counted(upstream_read, client_write))
}

async fn copy_counted(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) -> u64 {
    let mut buf = vec![0u8; 16 << 10];
    let mut total = 0;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                total += n as u64;
            }
        }
    }
    let _ = to.shutdown().await;
    total
}

/// The CA bundle of this host, where installers inside a session find it: Debian's path, or
/// the first of the other usual ones that exists.
pub fn host_ca_bundle() -> Option<PathBuf> {
    [DEFAULT_CA_BUNDLE, "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The environment that sends a session's HTTP(S) through the proxy at `127.0.0.1:port`
/// (the variables curl, pip, requests, npm, cargo and uv read) and makes its installers trust
/// `ca_bundle`, the bundle's path inside the session.
pub fn session_env(port: u16, ca_bundle: &Path) -> Vec<(String, String)> {
    let proxy = format!("http://127.0.0.1:{port}");
    let ca = ca_bundle.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> =
        ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy", "npm_config_https_proxy"]
            .into_iter()
            .map(|k| (k.to_owned(), proxy.clone()))
            .collect();
    env.extend(["NO_PROXY", "no_proxy"].into_iter().map(|k| (k.to_owned(), String::new())));
    env.extend(
        ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CARGO_HTTP_CAINFO", "npm_config_cafile"]
            .into_iter()
            .map(|k| (k.to_owned(), ca.clone())),
    );
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_match_names_and_suffixes() {
        let list = Allowlist::new(["pypi.org", "*.pythonhosted.org", "Crates.IO."]).unwrap();
        // Host, allowed.
        let cases = [
            ("pypi.org", true),
            ("PyPI.org.", true),
            ("files.pythonhosted.org", true),
            ("a.b.pythonhosted.org", true),
            ("pythonhosted.org", false),
            ("evilpythonhosted.org", false),
            ("crates.io", true),
            ("pypi.org.evil.com", false),
            ("xpypi.org", false),
            ("", false),
        ];
        for (host, allowed) in cases {
            assert_eq!(list.allows(host), allowed, "{host}");
        }
        for bad in ["", "*", "*.", "a..b", "a/b", "a b", "**.x", "x.*", "a:", "a:0", "a:65536", "a:x", ":80", "a:80:80"] {
            assert!(Allowlist::new([bad]).is_err(), "{bad:?}");
        }
        // An entry with a port allows that port alone; one without, the usual port.
        let ported = Allowlist::new(["devpi.internal:3141", "*.mirror.test:8080", "pypi.org"]).unwrap();
        // Host, port, usual port, allowed.
        let ports = [
            ("devpi.internal", 3141, 443, true),
            ("devpi.internal", 3141, 80, true),
            ("devpi.internal", 443, 443, false),
            ("a.mirror.test", 8080, 80, true),
            ("a.mirror.test", 80, 80, false),
            ("pypi.org", 443, 443, true),
            ("pypi.org", 3141, 443, false),
            ("other.org", 3141, 443, false),
        ];
        for (host, port, usual, allowed) in ports {
            assert_eq!(ported.allows_on(host, port, usual), allowed, "{host}:{port}");
        }
        let python = Allowlist::for_ecosystems(&[Ecosystem::Python]);
        assert!(python.allows("files.pythonhosted.org") && !python.allows("registry.npmjs.org"));
    }

    #[test]
    fn requests_are_decided_by_method_host_and_port() {
        let allow = Allowlist::new(["pypi.org", "*.example.org", "index.test:8080"]).unwrap();
        let ok = |method, host: &str, port| Ok::<_, (Refusal, String, u16)>((method, host.to_owned(), port));
        let no = |r, host: &str, port| Err::<(Method, String, u16), _>((r, host.to_owned(), port));
        // The head, the decision.
        let cases = [
            ("CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443", ok(Method::Connect, "pypi.org", 443)),
            ("CONNECT PyPI.org:443 HTTP/1.0", ok(Method::Connect, "pypi.org", 443)),
            ("CONNECT a.example.org:443 HTTP/1.1", ok(Method::Connect, "a.example.org", 443)),
            ("CONNECT evil.com:443 HTTP/1.1", no(Refusal::NotAllowed, "evil.com", 443)),
            ("CONNECT pypi.org:22 HTTP/1.1", no(Refusal::PortNotAllowed, "pypi.org", 22)),
            ("CONNECT 10.0.0.1:443 HTTP/1.1", no(Refusal::NotAllowed, "10.0.0.1", 443)),
            ("CONNECT [::1]:443 HTTP/1.1", no(Refusal::Malformed, "", 0)),
            ("GET http://pypi.org/simple/ HTTP/1.1", ok(Method::Http, "pypi.org", 80)),
            ("GET http://pypi.org:8080/ HTTP/1.1", no(Refusal::PortNotAllowed, "pypi.org", 8080)),
            ("GET http://index.test:8080/simple/ HTTP/1.1", ok(Method::Http, "index.test", 8080)),
            ("CONNECT index.test:8080 HTTP/1.1", ok(Method::Connect, "index.test", 8080)),
            ("GET http://index.test/simple/ HTTP/1.1", no(Refusal::PortNotAllowed, "index.test", 80)),
            ("GET http://evil.com/ HTTP/1.1", no(Refusal::NotAllowed, "evil.com", 80)),
            ("POST http://pypi.org/ HTTP/1.1", no(Refusal::MethodNotAllowed, "", 0)),
            ("GET /simple/ HTTP/1.1", no(Refusal::MethodNotAllowed, "", 0)),
            ("GET ftp://pypi.org/ HTTP/1.1", no(Refusal::MethodNotAllowed, "", 0)),
            ("CONNECT pypi.org:443", no(Refusal::Malformed, "", 0)),
            ("CONNECT pypi.org:443 SPDY/3", no(Refusal::Malformed, "", 0)),
            ("", no(Refusal::Malformed, "", 0)),
        ];
        for (head, want) in cases {
            let got = decide(head, &allow).map(|t| (t.method, t.host, t.port));
            assert_eq!(got, want, "{head:?}");
        }
    }

    #[test]
    fn plain_requests_go_upstream_without_proxy_headers() {
        let allow = Allowlist::new(["pypi.org"]).unwrap();
        let head = "GET http://pypi.org/simple/six/ HTTP/1.1\r\nHost: pypi.org\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*";
        let target = decide(head, &allow).unwrap();
        assert_eq!(target.upstream_head, "GET /simple/six/ HTTP/1.1\r\nHost: pypi.org\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn records_read_as_one_line() {
        let record = EgressRecord {
            method: Some(Method::Connect),
            host: "pypi.org".into(),
            port: 443,
            refused: None,
            bytes_up: 10,
            bytes_down: 2000,
            duration: Duration::from_millis(250),
        };
        assert_eq!(record.to_string(), "CONNECT pypi.org:443 allowed, 10 B up, 2000 B down, 0.25s");
        let refused = EgressRecord { host: "evil.com".into(), refused: Some(Refusal::NotAllowed), ..record };
        assert_eq!(refused.to_string(), "CONNECT evil.com:443 refused (NotAllowed)");
        assert_eq!(Refusal::NotAllowed.status().0, 403);
    }

    #[test]
    fn the_session_environment_names_the_proxy_and_the_bundle() {
        let env = session_env(3128, Path::new(DEFAULT_CA_BUNDLE));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy", "npm_config_https_proxy"] {
            assert_eq!(get(k), Some("http://127.0.0.1:3128"), "{k}");
        }
        assert_eq!(get("NO_PROXY"), Some(""));
        for k in ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"] {
            assert_eq!(get(k), Some(DEFAULT_CA_BUNDLE), "{k}");
        }
    }
}
