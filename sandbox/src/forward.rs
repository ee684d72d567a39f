//! Port forwards: how a session with no network reaches a host unix socket at
//! `127.0.0.1:<port>`, and nothing else.
//!
//! A command of a session with [`PortForward`]s runs under the forwarder: plancd's own binary
//! (or `plancd-forward`), shown read-only inside at [`INSIDE_PROGRAM`]. In the command's
//! network namespace (which has only its loopback) it listens on each port, then starts the
//! command as its child, relays each connection to its socket (whose folder is shown
//! read-only inside under [`INSIDE_DIR`]), and ends as the command ends, with its status. It
//! lives in the command's namespaces and control group, so it dies with the command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{PortForward, SandboxError};

/// The first argument that makes plancd (or `plancd-forward`) the forwarder.
pub const SUBCOMMAND: &str = "__forward";

/// Where port forwards are inside a session: the forwarder program at [`INSIDE_PROGRAM`] and
/// the `i`-th forward's socket folder at `<INSIDE_DIR>/<i>`, all read-only. A read-only root
/// (`SessionSpec::root`) must hold this folder as a mount point.
pub const INSIDE_DIR: &str = "/run/plancd-net";

/// Where the forwarder's program is inside a session.
pub const INSIDE_PROGRAM: &str = "/run/plancd-net/forward";

/// Exit status of the forwarder when it cannot start the command (as `env` does).
const CANNOT_RUN: i32 = 127;
/// Exit status of the forwarder when its own setup fails (arguments, a port taken).
const SETUP_FAILED: i32 = 125;

/// The forwarder program to use when none is configured: the running binary (plancd).
pub fn default_program() -> Option<PathBuf> {
    std::env::current_exe().ok()
}

/// The folder of the `i`-th forward's socket inside a session.
pub fn inside_dir(i: usize) -> String {
    format!("{INSIDE_DIR}/{i}")
}

/// Checks forwards: ports not 0 and distinct, sockets absolute paths with a file name.
pub fn check(ports: &[PortForward]) -> Result<(), SandboxError> {
    let bad = |message: String| SandboxError::Backend { backend: "sandbox", message };
    for (i, p) in ports.iter().enumerate() {
        if p.port == 0 {
            return Err(bad("port forward to port 0: a port is needed".into()));
        }
        if ports[..i].iter().any(|q| q.port == p.port) {
            return Err(bad(format!("port {} is forwarded twice", p.port)));
        }
        if !p.socket.is_absolute() || p.socket.file_name().is_none() || p.socket.parent().is_none() {
            return Err(bad(format!("port {}: socket `{}` is not an absolute file path", p.port, p.socket.display())));
        }
    }
    Ok(())
}

/// The host folders to show read-only inside, with where: each socket's folder.
pub fn socket_binds(ports: &[PortForward]) -> Vec<(PathBuf, String)> {
    ports.iter().enumerate().filter_map(|(i, p)| Some((p.socket.parent()?.to_path_buf(), inside_dir(i)))).collect()
}

/// The argv that runs `argv` under the forwarder with `ports` (unchanged without ports).
pub fn wrap(ports: &[PortForward], argv: &[String]) -> Vec<String> {
    if ports.is_empty() {
        return argv.to_vec();
    }
    let mut wrapped = vec![INSIDE_PROGRAM.to_owned(), SUBCOMMAND.to_owned()];
    for (i, p) in ports.iter().enumerate() {
        let name = p.socket.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        wrapped.push(format!("{}={}/{name}", p.port, inside_dir(i)));
    }
    wrapped.push("--".to_owned());
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// What the forwarder was asked: ports with their sockets, then the command.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    ports: Vec<(u16, PathBuf)>,
    command: Vec<OsString>,
}

/// Reads `PORT=SOCKET... -- PROGRAM ARGS...` (after [`SUBCOMMAND`]).
fn parse(args: &[OsString]) -> Result<Args, String> {
    let split = args.iter().position(|a| a == "--").ok_or("missing `--` before the command")?;
    let command = args[split + 1..].to_vec();
    if command.is_empty() {
        return Err("missing the command after `--`".into());
    }
    let ports = args[..split]
        .iter()
        .map(|a| {
            let a = a.to_str().ok_or("a forward is not UTF-8")?;
            let (port, socket) = a.split_once('=').ok_or_else(|| format!("`{a}` is not PORT=SOCKET"))?;
            let port: u16 = port.parse().map_err(|_| format!("`{port}` is not a port"))?;
            Ok((port, PathBuf::from(socket)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Args { ports, command })
}

/// The forwarder: `args` are what follows [`SUBCOMMAND`]. Returns the command's exit code;
/// a command killed by a signal is mirrored by the forwarder dying of the same signal.
pub fn main(args: &[OsString]) -> i32 {
    let args = match parse(args) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("plancd forward: {why}");
            return SETUP_FAILED;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plancd forward: {e}");
            return SETUP_FAILED;
        }
    };
    let status = runtime.block_on(serve(args));
    // Connections still open die with the runtime.
    drop(runtime);
    match status {
        Ok(status) => mirror(status),
        Err((code, why)) => {
            eprintln!("plancd forward: {why}");
            code
        }
    }
}

/// Listens on every port, starts the command, relays until it ends.
async fn serve(args: Args) -> Result<std::process::ExitStatus, (i32, String)> {
    let mut listeners = Vec::with_capacity(args.ports.len());
    for (port, socket) in args.ports {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| (SETUP_FAILED, format!("port {port}: {e}")))?;
        listeners.push((listener, socket));
    }
    let mut child = tokio::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .spawn()
        .map_err(|e| (CANNOT_RUN, format!("{}: {e}", args.command[0].to_string_lossy())))?;
    for (listener, socket) in listeners {
        tokio::spawn(accept(listener, socket));
    }
    child.wait().await.map_err(|e| (SETUP_FAILED, format!("waiting for the command: {e}")))
}

async fn accept(listener: tokio::net::TcpListener, socket: PathBuf) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of descriptors, say: wait for some to close rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            let _ = relay(tcp, &socket).await;
        });
    }
}

/// Pipes one connection to the socket and back until both sides are done.
async fn relay(mut tcp: tokio::net::TcpStream, socket: &Path) -> std::io::Result<()> {
    let mut unix = tokio::net::UnixStream::connect(socket).await?;
    let _ = tcp.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut tcp, &mut unix).await?;
    Ok(())
}

/// The forwarder's own end for the command's `status`: the same code, or the same signal.
fn mirror(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return code;
    }
    let signal = status.signal().unwrap_or(libc::SIGKILL);
    if let Some(sig) = rustix::process::Signal::from_named_raw(signal) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), sig);
    }
    // Still alive: the signal is ignored here (or this is a pid namespace's first process).
    128 + signal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(port: u16, socket: &str) -> PortForward {
        PortForward { port, socket: PathBuf::from(socket) }
    }

    #[test]
    fn commands_with_forwards_run_under_the_forwarder() {
        let argv = vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        assert_eq!(wrap(&[], &argv), argv);
        let wrapped = wrap(&[forward(8080, "/tmp/a/proxy.sock"), forward(9, "/b/c")], &argv);
        let want = [INSIDE_PROGRAM, SUBCOMMAND, "8080=/run/plancd-net/0/proxy.sock", "9=/run/plancd-net/1/c", "--", "sh", "-c", "true"];
        assert_eq!(wrapped, want);
        let parsed = parse(&wrapped[2..].iter().map(OsString::from).collect::<Vec<_>>()).unwrap();
        assert_eq!(parsed.ports, [(8080, PathBuf::from("/run/plancd-net/0/proxy.sock")), (9, PathBuf::from("/run/plancd-net/1/c"))]);
        assert_eq!(parsed.command, ["sh", "-c", "true"]);
        assert_eq!(socket_binds(&[forward(1, "/tmp/a/p.sock")]), [(PathBuf::from("/tmp/a"), "/run/plancd-net/0".to_owned())]);
    }

    #[test]
    fn bad_forwards_are_refused() {
        // Forwards, and whether they pass.
        let cases: &[(&[PortForward], bool)] = &[
            (&[], true),
            (&[forward(80, "/s/p.sock")], true),
            (&[forward(0, "/s/p.sock")], false),
            (&[forward(80, "/s/p.sock"), forward(80, "/t/q.sock")], false),
            (&[forward(80, "p.sock")], false),
            (&[forward(80, "/")], false),
        ];
        for (ports, ok) in cases {
            assert_eq!(check(ports).is_ok(), *ok, "{ports:?}");
        }
        let os = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(parse(&os(&["80=/s", "true"])).is_err(), "no --");
        assert!(parse(&os(&["80=/s", "--"])).is_err(), "no command");
        assert!(parse(&os(&["x=/s", "--", "true"])).is_err(), "no port");
        assert!(parse(&os(&["80", "--", "true"])).is_err(), "no socket");
    }
}
