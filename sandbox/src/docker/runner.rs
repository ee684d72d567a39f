//! The container of one command. It is started before its command is known and waits for it
//! on standard input (so that a pool can start it ahead), then runs it under `timeout` as the
//! container's first process: the deadline holds on the engine's side even when plancd is
//! gone, and the engine removes the container once it stops (`AutoRemove`).

use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::exits::Exit;
use super::{Shared, backend, config};
use crate::capture::Capture;
use crate::{ExecOutcome, ExecRequest, Limits, OutputStream, OutputTee, SandboxError, WORKSPACE, command_env};

/// What a runner runs: one line from standard input, the command as made by [`script`]. `N`
/// holds a newline for the script to quote. Exits 125 when standard input closes first.
pub const RUNNER: &str = "N='\n'; IFS= read -r s || exit 125; eval \"$s\"";

/// How much later than plancd's own deadline the engine-side one kills a command: plancd,
/// when alive, is first and reports the timeout itself.
pub const ENGINE_SLACK: Duration = Duration::from_millis(500);

/// How long output may keep arriving once a command's container has stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const SIGKILL: i32 = 9;
/// How long a killed container may take to stop.
const KILL_PATIENCE: Duration = Duration::from_secs(20);
/// How many containers a runner's start is tried with.
const START_TRIES: u32 = 3;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Where a runner runs: the session's image, limits and volumes.
pub struct Place<'a> {
    /// The image.
    pub image: &'a str,
    /// The session's limits.
    pub limits: &'a Limits,
    /// The workspace volume.
    pub workspace: &'a str,
    /// The metadata volume (mounted read-only).
    pub meta: &'a str,
    /// The session's labels.
    pub labels: std::collections::HashMap<String, String>,
    /// Host binds of the session's mounts and port forwards (none for the keeper).
    pub binds: &'a [bollard::models::Mount],
}

/// A started container waiting for its command.
pub struct Runner {
    /// The container's name.
    pub name: String,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
    exit: oneshot::Receiver<Exit>,
}

/// `value` in single quotes for `sh`; newlines become `$N` (the runner reads one line).
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''").replace('\n', "'\"$N\"'"))
}

/// The line a runner evaluates: change into `cwd`, then, as the container's first process,
/// `timeout` kills the command `deadline` after it started, with exactly `env`.
pub fn script(env: &[(String, String)], argv: &[String], cwd: &str, deadline: Duration) -> Result<String, SandboxError> {
    let program = argv.first().ok_or_else(|| backend("a command needs at least a program"))?;
    if program.contains('=') {
        return Err(backend(format!("refused program name `{program}`: it holds `=`")));
    }
    let all = env.iter().flat_map(|(k, v)| [k, v]).chain(argv);
    if all.clone().any(|s| s.contains('\0')) {
        return Err(backend("a command's arguments and environment may not hold NUL"));
    }
    let mut line = String::new();
    if !cwd.is_empty() {
        line.push_str(&format!("cd -- {} || exit 126; ", quote(&format!("{WORKSPACE}/{cwd}"))));
    }
    // `timeout` and `env` are found on the runner's PATH, never on the command's.
    line.push_str(&format!("exec timeout -s KILL {:.3} env -i --", deadline.as_secs_f64()));
    for (name, value) in env {
        line.push(' ');
        line.push_str(&quote(&format!("{name}={value}")));
    }
    for arg in argv {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line.push('\n');
    Ok(line)
}

impl Runner {
    /// Creates, attaches to and starts a runner named `name`. A start the engine's runtime
    /// fails (a 500, seen under load) is tried again with a fresh container (`name-2`, ...).
    pub(super) async fn start(shared: &Shared, name: String, place: &Place<'_>) -> Result<Runner, SandboxError> {
        let mut tries = 1;
        loop {
            let this = if tries == 1 { name.clone() } else { format!("{name}-{tries}") };
            match Runner::start_once(shared, this, place).await {
                Err(e) if tries < START_TRIES && super::engine_fault(&e) => tries += 1,
                Err(e) => return Err(backend(e)),
                Ok(Ok(runner)) => return Ok(runner),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// One try: `Err(_)` is a failed attach or start (the container is removed), `Ok(Err(_))`
    /// a failed create.
    async fn start_once(shared: &Shared, name: String, place: &Place<'_>) -> Result<Result<Runner, SandboxError>, bollard::errors::Error> {
        let docker = &shared.docker;
        let mut host = config::host_config(place.limits, &shared.seccomp, place.workspace, place.meta, true);
        host.auto_remove = Some(true);
        host.mounts.get_or_insert_with(Vec::new).extend(place.binds.iter().cloned());
        let cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), RUNNER.to_owned()];
        let env = vec![format!("PATH={}", crate::DEFAULT_PATH)];
        let body = config::container(place.image, cmd, env, "", true, host, place.labels.clone());
        if let Err(e) = docker.create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body).await {
            return Ok(Err(backend(e)));
        }
        let exit = shared.exits.expect(&name);
        let attach = AttachContainerOptionsBuilder::default().stream(true).stdin(true).stdout(true).stderr(true).build();
        let started = match docker.attach_container(&name, Some(attach)).await {
            Ok(attached) => super::start_container(docker, &name).await.map(|()| attached),
            Err(e) => Err(e),
        };
        match started {
            Ok(attached) => Ok(Ok(Runner { name, input: attached.input, output: attached.output, exit })),
            Err(e) => {
                shared.exits.forget(&name);
                super::remove_container(docker, &name).await;
                Err(e)
            }
        }
    }

    /// Whether it stopped before getting a command (a sweep, an engine restart).
    pub fn stopped(&mut self) -> bool {
        !matches!(self.exit.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }

    /// Runs `req` with the session's environment `session_env`; returns once the container
    /// has stopped, every process of the command dead.
    pub(super) async fn run(
        self,
        shared: &Shared,
        session_env: &[(String, String)],
        req: &ExecRequest,
    ) -> Result<ExecOutcome, SandboxError> {
        let line = script(&command_env(session_env, &req.env)?, &req.argv, &req.cwd, req.timeout + ENGINE_SLACK)?;
        let Runner { name, mut input, output, mut exit } = self;
        let start = Instant::now();
        let drain = tokio::spawn(drain(output, req.output_limit, req.tee.clone()));
        let data = req.stdin.clone();
        let feeder = tokio::spawn(async move {
            if input.write_all(line.as_bytes()).await.is_ok() && input.write_all(&data).await.is_ok() {
                let _ = input.shutdown().await;
            }
        });
        let (ended, timed_out) = match tokio::time::timeout(req.timeout, &mut exit).await {
            Ok(ended) => (ended, false),
            Err(_) => {
                // A command cannot be killed alone: its container is.
                let kill = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
                let _ = shared.docker.kill_container(&name, Some(kill)).await;
                match tokio::time::timeout(KILL_PATIENCE, &mut exit).await {
                    Ok(ended) => (ended, true),
                    Err(_) => return Err(backend(format!("container {name} still runs {KILL_PATIENCE:?} after SIGKILL"))),
                }
            }
        };
        let ended = ended.map_err(|_| backend(format!("the engine's events never told how {name} ended")))?;
        let duration = start.elapsed();
        let (stdout, stderr) = collect(drain).await;
        feeder.abort();
        Ok(outcome(ended, timed_out || (duration >= req.timeout && ended.code == Some(137)), duration, stdout, stderr))
    }

    /// Gives up a runner that never got a command: closing its input ends it, and the engine
    /// removes it.
    pub async fn close(mut self) {
        let _ = self.input.shutdown().await;
    }
}

fn outcome(ended: Exit, timed_out: bool, duration: Duration, stdout: Capture, stderr: Capture) -> ExecOutcome {
    let killed = timed_out || ended.oom_killed;
    ExecOutcome {
        exit_code: if killed { None } else { ended.code.and_then(|c| i32::try_from(c).ok()) },
        signal: killed.then_some(SIGKILL),
        stdout: stdout.bytes,
        stderr: stderr.bytes,
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        duration,
        timed_out,
        oom_killed: ended.oom_killed,
    }
}

/// Reads an attach stream into stdout and stderr captures until it ends, handing every chunk
/// to `tee` as it comes.
async fn drain(mut output: Output, limit: usize, tee: Option<OutputTee>) -> (Capture, Capture) {
    let (mut stdout, mut stderr) = (Capture::new(limit), Capture::new(limit));
    while let Some(Ok(chunk)) = output.next().await {
        let (capture, stream, message) = match &chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => (&mut stdout, OutputStream::Stdout, message),
            LogOutput::StdErr { message } => (&mut stderr, OutputStream::Stderr, message),
            LogOutput::StdIn { .. } => continue,
        };
        if let Some(tee) = &tee {
            tee.write(stream, message);
        }
        capture.push(message);
    }
    (stdout, stderr)
}

async fn collect(mut task: tokio::task::JoinHandle<(Capture, Capture)>) -> (Capture, Capture) {
    match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(captures)) => captures,
        _ => {
            task.abort();
            (Capture::default(), Capture::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn scripts_quote_everything_and_run_under_the_deadline() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // Environment, arguments, folder, deadline in ms, the line.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str, u64, &'a str);
        let cases: &[Case] = &[
            (&[("A", "1")], &["true"], "", 5000, "exec timeout -s KILL 5.000 env -i -- 'A=1' 'true'\n"),
            (
                &[],
                &["sh", "-c", "echo 'hi'; exit 3"],
                "src",
                250,
                "cd -- '/workspace/src' || exit 126; exec timeout -s KILL 0.250 env -i -- 'sh' '-c' 'echo '\\''hi'\\''; exit 3'\n",
            ),
            (
                &[("X", "a\nb")],
                &["echo", "$HOME `id`"],
                "",
                1000,
                "exec timeout -s KILL 1.000 env -i -- 'X=a'\"$N\"'b' 'echo' '$HOME `id`'\n",
            ),
        ];
        for (env, args, cwd, ms, want) in cases {
            assert_eq!(script(&owned(env), &argv(args), cwd, Duration::from_millis(*ms)).unwrap(), *want);
        }
    }

    #[test]
    fn scripts_refuse_what_the_runner_cannot_carry() {
        let d = Duration::from_secs(1);
        assert!(script(&[], &[], "", d).is_err(), "no program");
        assert!(script(&[], &["A=1".into()], "", d).is_err(), "env would take it for a variable");
        assert!(script(&owned(&[("A", "x\0y")]), &["true".into()], "", d).is_err());
        assert!(script(&[], &["echo".into(), "x\0".into()], "", d).is_err());
    }

    #[test]
    fn outcomes_follow_the_exit_the_timer_and_the_memory_kill() {
        let exit = |code, oom_killed| Exit { code: Some(code), oom_killed };
        let d = Duration::from_millis(10);
        let plain = outcome(exit(3, false), false, d, Capture::default(), Capture::default());
        assert_eq!((plain.exit_code, plain.signal, plain.timed_out, plain.oom_killed), (Some(3), None, false, false));
        let late = outcome(exit(137, false), true, d, Capture::default(), Capture::default());
        assert_eq!((late.exit_code, late.signal, late.timed_out), (None, Some(9), true));
        let oom = outcome(exit(137, true), false, d, Capture::default(), Capture::default());
        assert_eq!((oom.exit_code, oom.signal, oom.oom_killed, oom.timed_out), (None, Some(9), true, false));
    }
}
