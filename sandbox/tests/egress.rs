//! Port forwards and the egress proxy on every backend: a session reaches a host unix socket at
//! `127.0.0.1:<port>` and nothing else, and reaches package registries only through the proxy
//! and its allowlist.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plancd_sandbox::docker::DockerSandbox;
use plancd_sandbox::egress::{self, Allowlist, Ecosystem, EgressProxy, Refusal};
use plancd_sandbox::{ExecOutcome, ExecRequest, PortForward, Sandbox, Session, SessionSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{FORWARDER, docker, process, run, small_spec};

const PORT: u16 = 3128;

/// A host folder for sockets, removed when dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> SocketDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("plancd-doors-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        SocketDir(dir)
    }

    /// A unique socket path in it (unique names let a test find the forwarder's processes).
    fn socket(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}-{}.sock", self.0.file_name().and_then(|n| n.to_str()).unwrap_or("x")))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Both backends that run here, with the crate's forwarder.
async fn backends() -> Vec<Box<dyn Sandbox>> {
    let mut all: Vec<Box<dyn Sandbox>> = vec![Box::new(process())];
    if let Some(d) = docker().await {
        all.push(Box::new(d));
    }
    all
}

fn spec_with(ports: Vec<PortForward>, env: Vec<(String, String)>) -> SessionSpec {
    SessionSpec { ports, env, ..small_spec() }
}

async fn sh(session: &dyn Session, script: &str, timeout: Duration) -> ExecOutcome {
    session.exec(&ExecRequest::shell(script, timeout)).await.expect("the sandbox runs commands")
}

/// A one-answer HTTP server on a unix socket: every request gets `body`; counts requests.
fn serve_http(socket: &Path, body: &'static str) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the socket");
    std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    (task, served)
}

/// Live processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

const FETCH: &str = "import sys, time, urllib.request\nstart = time.time()\nfor _ in range(int(sys.argv[2])):\n    body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()\nprint(body, round((time.time() - start) * 1000 / int(sys.argv[2]), 2))\n";

#[test]
fn a_forwarded_port_reaches_its_host_socket_and_dies_with_the_command() {
    run(Duration::from_secs(240), async {
        for sandbox in backends().await {
            let dir = SocketDir::new();
            let socket = dir.socket("web");
            let (server, served) = serve_http(&socket, "through-the-door");
            let session = sandbox.create(&spec_with(vec![PortForward { port: 8080, socket: socket.clone() }], vec![])).await.unwrap();
            let argv = ["python3", "-c", FETCH, "http://127.0.0.1:8080/x", "20"];
            let out = session.exec(&ExecRequest::new(argv, Duration::from_secs(60))).await.unwrap();
            let (stdout, stderr) = out.output_text();
            assert!(out.success() && stdout.starts_with("through-the-door "), "{}: {out:?} {stderr}", sandbox.name());
            assert_eq!(served.load(Ordering::Relaxed), 20, "{}", sandbox.name());
            eprintln!(
                "{}: {} ms per request through the forward (python urllib, new connection each)",
                sandbox.name(),
                stdout.trim().rsplit(' ').next().unwrap_or("?")
            );
            // The forwarder ended with the command: no process of this host holds its socket's name.
            let name = socket.file_name().and_then(|n| n.to_str()).expect("a name").to_owned();
            assert_eq!(processes_with(&name), Vec::<String>::new(), "{}", sandbox.name());
            // Exit codes pass through it.
            assert_eq!(sh(&*session, "exit 7", Duration::from_secs(30)).await.exit_code, Some(7), "{}", sandbox.name());
            session.destroy().await.unwrap();
            sandbox.settle().await;
            server.abort();
        }
    });
}

/// Tries the host's TCP listener at `port` (not forwarded), an outside address, and a public name.
const ESCAPES: &str = "import socket, sys\nfor host, port in (('127.0.0.1', int(sys.argv[1])), ('203.0.113.80', 443), ('1.1.1.1', 53), ('pypi.org', 443)):\n    try:\n        socket.create_connection((host, port), timeout=3)\n        print('CONNECTED', host, port)\n    except Exception as e:\n        print('blocked', host, port, type(e).__name__)\n";

#[test]
fn nothing_but_the_forwarded_port_is_reachable() {
    run(Duration::from_secs(240), async {
        let host = std::net::TcpListener::bind("127.0.0.1:0").expect("a host listener");
        host.set_nonblocking(true).expect("nonblocking");
        let host_port = host.local_addr().expect("an address").port();
        for sandbox in backends().await {
            let dir = SocketDir::new();
            let socket = dir.socket("web");
            let (server, _) = serve_http(&socket, "ok");
            let session = sandbox.create(&spec_with(vec![PortForward { port: 8080, socket }], vec![])).await.unwrap();
            let out =
                session.exec(&ExecRequest::new(["python3", "-c", ESCAPES, &host_port.to_string()], Duration::from_secs(60))).await.unwrap();
            let (stdout, stderr) = out.output_text();
            assert!(
                out.success() && !stdout.contains("CONNECTED") && stdout.matches("blocked").count() == 4,
                "{}: {stdout} {stderr}",
                sandbox.name()
            );
            assert!(host.accept().is_err(), "{}: the host listener saw a connection", sandbox.name());
            session.destroy().await.unwrap();
            sandbox.settle().await;
            server.abort();
        }
    });
}

const PIP: &str =
    "python3 -m pip download six==1.16.0 --no-deps --retries 1 --timeout 20 --disable-pip-version-check -d /tmp/x 2>&1 && ls /tmp/x";

#[test]
fn pip_reaches_pypi_through_the_proxy_only_when_allowed() {
    run(Duration::from_secs(420), async {
        for sandbox in backends().await {
            for (allow, works) in
                [(Allowlist::for_ecosystems(&[Ecosystem::Python]), true), (Allowlist::for_ecosystems(&[Ecosystem::Node]), false)]
            {
                let dir = SocketDir::new();
                let proxy = EgressProxy::start(&dir.socket("proxy"), allow).await.unwrap();
                let env = egress::session_env(PORT, Path::new(egress::DEFAULT_CA_BUNDLE));
                let ports = vec![PortForward { port: PORT, socket: proxy.socket().to_owned() }];
                let session = sandbox.create(&spec_with(ports, env)).await.unwrap();
                let start = Instant::now();
                let out = sh(&*session, PIP, Duration::from_secs(180)).await;
                let (stdout, _) = out.output_text();
                let records = proxy.records();
                eprintln!("{} allowed={works}: {out} in {:.1}s; proxy: {records:?}", sandbox.name(), start.elapsed().as_secs_f64());
                if works {
                    assert!(out.success() && stdout.contains("six-1.16.0-py2.py3-none-any.whl"), "{}: {stdout}", sandbox.name());
                    assert!(records.iter().any(|r| r.host == "pypi.org" && r.refused.is_none() && r.bytes_down > 0), "{records:?}");
                    assert!(records.iter().any(|r| r.host == "files.pythonhosted.org" && r.refused.is_none()), "{records:?}");
                } else {
                    assert!(!out.success() && stdout.contains("403"), "{}: {stdout}", sandbox.name());
                    assert!(records.iter().all(|r| r.refused == Some(Refusal::NotAllowed)) && !records.is_empty(), "{records:?}");
                }
                session.destroy().await.unwrap();
                let socket = proxy.socket().to_owned();
                drop(proxy);
                assert!(!socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_err(), "the proxy is gone");
            }
            sandbox.settle().await;
        }
    });
}

#[test]
fn npm_reaches_its_registry_through_the_proxy_only_when_allowed() {
    run(Duration::from_secs(240), async {
        // The process backend shows the host's /usr, where npm is (the docker image has none).
        if !Path::new("/usr/bin/npm").exists() {
            eprintln!("skipping: no /usr/bin/npm on this host");
            return;
        }
        let sandbox = process();
        for (allow, works) in
            [(Allowlist::for_ecosystems(&[Ecosystem::Node]), true), (Allowlist::for_ecosystems(&[Ecosystem::Python]), false)]
        {
            let dir = SocketDir::new();
            let proxy = EgressProxy::start(&dir.socket("proxy"), allow).await.unwrap();
            let env = egress::session_env(PORT, Path::new(egress::DEFAULT_CA_BUNDLE));
            let session =
                sandbox.create(&spec_with(vec![PortForward { port: PORT, socket: proxy.socket().to_owned() }], env)).await.unwrap();
            let out =
                sh(&*session, "npm view is-number version --fetch-retries=0 --update-notifier=false 2>&1", Duration::from_secs(120)).await;
            let (stdout, _) = out.output_text();
            if works {
                assert!(
                    out.success() && stdout.trim().split('.').count() == 3 && stdout.trim().split('.').all(|n| n.parse::<u32>().is_ok()),
                    "{stdout}"
                );
            } else {
                assert!(!out.success() && stdout.contains("403"), "{stdout}");
            }
            session.destroy().await.unwrap();
        }
    });
}

#[test]
fn a_docker_session_with_forwards_leaves_no_container_behind() {
    run(Duration::from_secs(180), async {
        if docker().await.is_none() {
            return;
        }
        let owner = format!("plancd-doors-{}", std::process::id());
        let sandbox = DockerSandbox::connect(&owner).await.unwrap();
        sandbox.set_forwarder(FORWARDER.into());
        let dir = SocketDir::new();
        let (server, _) = serve_http(&dir.socket("web"), "ok");
        let spec = spec_with(vec![PortForward { port: 8080, socket: dir.socket("web") }], vec![]);
        let session = sandbox.create(&spec).await.unwrap();
        let out = session
            .exec(&ExecRequest::new(["python3", "-c", FETCH, "http://127.0.0.1:8080/", "1"], Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
        session.destroy().await.unwrap();
        sandbox.settle().await;
        let filters = std::collections::HashMap::from([("label", vec![format!("plancd.owner={owner}")])]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let left = sandbox.client().list_containers(Some(options)).await.unwrap();
        assert!(left.is_empty(), "{left:?}");
        server.abort();
    });
}

/// Sends `head` to the proxy at `socket`; returns what it answered, up to `limit` bytes.
async fn ask(socket: &Path, head: &str, limit: usize) -> String {
    let mut conn = tokio::net::UnixStream::connect(socket).await.expect("the proxy listens");
    conn.write_all(head.as_bytes()).await.expect("a request");
    let mut answer = vec![0u8; limit];
    let mut got = 0;
    while got < limit {
        match tokio::time::timeout(Duration::from_secs(20), conn.read(&mut answer[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
        if answer[..got].windows(4).any(|w| w == b"\r\n\r\n") && head.starts_with("CONNECT") {
            break;
        }
    }
    String::from_utf8_lossy(&answer[..got]).into_owned()
}

#[test]
fn the_proxy_tunnels_relays_and_refuses_with_a_reason() {
    run(Duration::from_secs(120), async {
        let dir = SocketDir::new();
        let proxy = EgressProxy::start(&dir.socket("proxy"), Allowlist::new(["pypi.org", "*.pythonhosted.org"]).unwrap()).await.unwrap();
        let socket = proxy.socket().to_owned();
        let tunnel = ask(&socket, "CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n", 4096).await;
        assert!(tunnel.starts_with("HTTP/1.1 200 Connection established\r\n"), "{tunnel}");
        let plain =
            ask(&socket, "GET http://pypi.org/simple/six/ HTTP/1.1\r\nHost: pypi.org\r\nProxy-Connection: keep-alive\r\n\r\n", 1 << 16)
                .await;
        assert!(plain.starts_with("HTTP/1.") && !plain.contains("plancd egress proxy"), "an answer from pypi.org itself: {plain}");
        // Request, status, what the body says.
        let refusals = [
            ("CONNECT example.com:443 HTTP/1.1\r\n\r\n", "403", "example.com is not on this sandbox's egress allowlist"),
            ("CONNECT files.pythonhosted.org:8443 HTTP/1.1\r\n\r\n", "403", "port 8443 of files.pythonhosted.org is closed"),
            ("POST http://pypi.org/ HTTP/1.1\r\n\r\n", "405", "only CONNECT host:443"),
            ("hello\r\n\r\n", "400", "not an HTTP proxy request"),
        ];
        for (head, status, why) in refusals {
            let answer = ask(&socket, head, 4096).await;
            assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")) && answer.contains(why), "{head:?}: {answer}");
        }
        // A tunnel is recorded once both of its ends have closed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while proxy.records().len() < 6 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let records = proxy.stop();
        let lines: Vec<String> = records.iter().map(ToString::to_string).collect();
        assert_eq!(records.len(), 6, "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("CONNECT pypi.org:443 allowed")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("HTTP pypi.org:80 allowed") && !l.contains(" 0 B down")), "{lines:?}");
        assert!(lines.iter().any(|l| l == "CONNECT example.com:443 refused (NotAllowed)"), "{lines:?}");
        assert!(!socket.exists(), "the socket goes with the proxy");
    });
}
