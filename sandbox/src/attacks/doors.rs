//! Attacks on a session's one door out: the egress proxy behind a port forward, asked for
//! hosts and ports its allowlist does not hold, and the host's ports that are not forwarded.

use std::time::Duration;

use super::{Ctx, Verdict, said, suite_limits};
use crate::egress::{Allowlist, EgressProxy};
use crate::{ExecRequest, PortForward, SandboxError, SessionSpec};

/// The proxy's port inside.
const PORT: u16 = 3128;
/// The one host the proxy allows: a name that resolves nowhere.
const ALLOWED: &str = "plancd-allowed.invalid";

/// Asks the proxy for the host's listener in several spellings, then tries the listener and
/// the proxy's allowed host on a closed port directly.
const SCRIPT: &str = "import socket, sys
port, proxy, allowed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
asks = [f'CONNECT localhost:{port} HTTP/1.1', f'CONNECT 127.0.0.1:{port} HTTP/1.1', f'GET http://127.0.0.1:{port}/ HTTP/1.1',
        f'CONNECT {allowed}:22 HTTP/1.1', f'CONNECT 127.0.0.1:{port}#{allowed}:443 HTTP/1.1', f'GET http://{allowed}@127.0.0.1:{port}/ HTTP/1.1']
for line in asks:
    try:
        c = socket.create_connection(('127.0.0.1', proxy), timeout=5)
        c.sendall(line.encode() + b'\\r\\nHost: x\\r\\n\\r\\n')
        print('proxy', line.split(' ')[1], '->', c.recv(200).decode(errors='replace').split('\\r\\n')[0])
    except Exception as e:
        print('proxy-error', type(e).__name__)
for host in ('127.0.0.1', '::1'):
    try:
        socket.create_connection((host, port), timeout=3)
        print('CONNECTED', host)
    except Exception as e:
        print('blocked', host, type(e).__name__)
";

/// `net-egress-proxy`: contained when the proxy refused every ask (and answered them all:
/// the door itself works), no direct connection got through, and the host's listener saw
/// nothing.
pub(super) async fn egress_proxy(ctx: &Ctx<'_>) -> Result<Verdict, SandboxError> {
    // One folder per run: the suite runs on several backends at once in one process, and a
    // shared folder would be removed under the other run's proxy.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("plancd-suite-doors-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let allow = Allowlist::new([ALLOWED]).expect("a host name");
    let proxy = EgressProxy::start(&dir.join("proxy.sock"), allow).await.map_err(|e| SandboxError::Io(std::io::Error::other(e)))?;
    let spec = SessionSpec {
        owner: ctx.options.owner.clone(),
        image: ctx.options.image.clone(),
        root: ctx.options.root.clone(),
        limits: suite_limits(),
        ports: vec![PortForward { port: PORT, socket: proxy.socket().to_owned() }],
        ..SessionSpec::default()
    };
    let session = ctx.sandbox.create(&spec).await;
    let out = match session {
        Ok(s) => {
            let argv = ["python3", "-c", SCRIPT, &ctx.host.port.to_string(), &PORT.to_string(), ALLOWED];
            let out = s.exec(&ExecRequest::new(argv, Duration::from_secs(60))).await;
            s.destroy().await?;
            out
        }
        Err(e) => Err(e),
    };
    let records = proxy.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let stdout = out.output_text().0;
    let answers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("proxy ")).collect();
    let all_refused = answers.iter().all(|l| [" 403 ", " 400 ", " 405 "].iter().any(|code| l.contains(code)));
    let through = stdout.contains("CONNECTED") || records.iter().any(|r| r.refused.is_none());
    let hits = ctx.host.hits();
    let contained = hits == 0 && !through && all_refused && answers.len() == 6;
    Ok(Verdict::new(
        contained,
        format!(
            "proxy answered {} of 6 asks, refused {}; host listener saw {hits}; {}",
            answers.len(),
            records.iter().filter(|r| r.refused.is_some()).count(),
            said(&out)
        ),
    ))
}
