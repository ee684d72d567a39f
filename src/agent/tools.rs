//! The tools of a model agent — `list_files`, `read_file`, `write_file`, `run` and `finish` —
//! and their execution in the task's sandbox session. The model never touches the sandbox
//! itself: the controller runs each call and hands back the result as text, capped.

use std::time::{Duration, Instant};

use plancd_sandbox::{ExecOutcome, ExecRequest, FileEntry, SandboxError, Session, check_relative};
use serde_json::{Value, json};

use super::model::{ToolCall, ToolResult, ToolSpec};
use crate::spec::Role;

/// Most bytes of a file `read_file` returns.
const READ_CAP: usize = 100_000;
/// Most bytes of each output stream `run` returns (the end is kept: errors come last).
const RUN_CAP: usize = 12_000;
/// Most paths `list_files` returns.
const LIST_CAP: usize = 2_000;

/// The tools offered to `role`; the debugger's `finish` can report a spec mismatch.
pub fn specs(role: Role) -> Vec<ToolSpec> {
    let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    let mut finish_props = json!({"summary": {"type": "string", "description": "What you did, in a few sentences."}});
    if role == Role::Debugger {
        finish_props["result"] = json!({"type": "string", "enum": ["fixed", "spec_mismatch"],
            "description": "fixed: the failure is fixed; spec_mismatch: the contract or the tests ask for something inconsistent."});
    }
    vec![
        ToolSpec {
            name: "list_files".into(),
            description: "List the files of the workspace, or of one folder of it.".into(),
            parameters: object(
                json!({"path": {"type": "string", "description": "A folder, relative to the workspace (default: all)."}}),
                &[],
            ),
        },
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file of the workspace.".into(),
            parameters: object(json!({"path": {"type": "string"}}), &["path"]),
        },
        ToolSpec {
            name: "write_file".into(),
            description: "Create or replace a file of the workspace with the whole of its new content. Pinned test files are read-only."
                .into(),
            parameters: object(json!({"path": {"type": "string"}, "content": {"type": "string"}}), &["path", "content"]),
        },
        ToolSpec {
            name: "run".into(),
            description: "Run a shell command in the workspace (no network) and get its exit code and output.".into(),
            parameters: object(json!({"cmd": {"type": "string"}}), &["cmd"]),
        },
        ToolSpec {
            name: "finish".into(),
            description: "End the task when the work is complete.".into(),
            parameters: object(finish_props, &["summary"]),
        },
    ]
}

/// What a call did beyond its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing that changes the workspace.
    None,
    /// A file was written, with this content.
    Wrote {
        /// The path.
        path: String,
        /// Its new content.
        content: String,
    },
    /// The agent says it is done.
    Finish {
        /// Its summary.
        summary: String,
        /// The debugger found the spec inconsistent.
        spec_mismatch: bool,
    },
}

/// The task's workspace as the tools see it.
pub struct Workspace<'a> {
    /// The session.
    pub session: &'a dyn Session,
    /// Files that must not be written.
    pub pinned: &'a [String],
    /// The time limit of one command.
    pub command_timeout: Duration,
    /// When the attempt's time is up.
    pub deadline: Instant,
}

fn text(args: &Value, name: &str) -> Option<String> {
    args.get(name).and_then(Value::as_str).map(str::to_owned)
}

impl Workspace<'_> {
    /// Runs one call. A sandbox failure is the outer error; anything the call did wrong is an
    /// error result the model reads.
    pub async fn call(&self, call: &ToolCall) -> Result<(ToolResult, Effect), SandboxError> {
        let args = &call.arguments;
        let (outcome, effect) = match call.name.as_str() {
            "list_files" => (self.list(text(args, "path").as_deref()).await?, Effect::None),
            "read_file" => match text(args, "path") {
                Some(path) => (self.read(&path).await?, Effect::None),
                None => (Err("read_file needs `path`".to_owned()), Effect::None),
            },
            "write_file" => match (text(args, "path"), text(args, "content")) {
                (Some(path), Some(content)) => self.write(path, content).await?,
                _ => (Err("write_file needs `path` and `content` strings".to_owned()), Effect::None),
            },
            "run" => match text(args, "cmd") {
                Some(cmd) => (Ok(self.run(&cmd).await?), Effect::None),
                None => (Err("run needs `cmd`".to_owned()), Effect::None),
            },
            "finish" => {
                let summary = text(args, "summary").unwrap_or_default();
                let spec_mismatch = text(args, "result").as_deref() == Some("spec_mismatch");
                (Ok("finished".to_owned()), Effect::Finish { summary, spec_mismatch })
            }
            other => (Err(format!("no tool `{other}`: use list_files, read_file, write_file, run or finish")), Effect::None),
        };
        let (content, is_error) = match outcome {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
        Ok((ToolResult { call_id: call.id.clone(), name: call.name.clone(), content, is_error }, effect))
    }

    fn timeout(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now()).min(self.command_timeout).max(Duration::from_millis(1))
    }

    async fn exec(&self, argv: Vec<String>, limit: usize) -> Result<ExecOutcome, SandboxError> {
        let mut req = ExecRequest::new(argv, self.timeout());
        req.output_limit = limit;
        self.session.exec(&req).await
    }

    async fn list(&self, dir: Option<&str>) -> Result<Result<String, String>, SandboxError> {
        let dir = dir.map(|d| d.trim_end_matches('/')).filter(|d| !d.is_empty() && *d != ".");
        if let Some(d) = dir
            && check_relative(d).is_err()
        {
            return Ok(Err(format!("`{d}` is not a path inside the workspace")));
        }
        let o = self.exec(vec!["find".into(), dir.unwrap_or(".").into(), "-type".into(), "f".into()], 1 << 20).await?;
        if !o.success() {
            return Ok(Err(format!("cannot list `{}`: {}", dir.unwrap_or("."), String::from_utf8_lossy(&o.stderr).trim())));
        }
        let mut paths: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap_or_default().lines().map(|l| l.trim_start_matches("./")).collect();
        paths.sort_unstable();
        let total = paths.len();
        let mut out = paths.into_iter().take(LIST_CAP).collect::<Vec<_>>().join("\n");
        if total > LIST_CAP {
            out.push_str(&format!("\n[{} more files not shown]", total - LIST_CAP));
        }
        Ok(Ok(out))
    }

    async fn read(&self, path: &str) -> Result<Result<String, String>, SandboxError> {
        if check_relative(path).is_err() {
            return Ok(Err(format!("`{path}` is not a path inside the workspace")));
        }
        let o = self.exec(vec!["cat".into(), "--".into(), path.into()], READ_CAP).await?;
        if !o.success() {
            return Ok(Err(format!("cannot read `{path}`: {}", String::from_utf8_lossy(&o.stderr).trim())));
        }
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.stdout_truncated {
            text.push_str(&format!("\n[truncated at {READ_CAP} bytes]"));
        }
        Ok(Ok(text))
    }

    /// A file's content, `None` when it cannot be read.
    pub async fn read_bytes(&self, path: &str) -> Result<Option<Vec<u8>>, SandboxError> {
        if check_relative(path).is_err() {
            return Ok(None);
        }
        let o = self.exec(vec!["cat".into(), "--".into(), path.into()], 16 << 20).await?;
        Ok(o.success().then_some(o.stdout))
    }

    async fn write(&self, path: String, content: String) -> Result<(Result<String, String>, Effect), SandboxError> {
        if check_relative(&path).is_err() {
            return Ok((Err(format!("`{path}` is not a path inside the workspace")), Effect::None));
        }
        if self.pinned.contains(&path) {
            return Ok((Err(format!("`{path}` is a pinned acceptance test: it is read-only")), Effect::None));
        }
        self.session.put_files(&[FileEntry::new(path.clone(), content.clone())]).await?;
        Ok((Ok(format!("wrote {path} ({} bytes)", content.len())), Effect::Wrote { path, content }))
    }

    async fn run(&self, cmd: &str) -> Result<String, SandboxError> {
        let o = self.exec(vec!["/bin/sh".into(), "-c".into(), cmd.into()], 1 << 20).await?;
        let mut out = match (o.exit_code, o.signal) {
            _ if o.timed_out => format!("timed out after {}s", self.command_timeout.as_secs()),
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by {}", plancd_sandbox::signal_words(sig)),
            (None, None) => "no exit status".to_owned(),
        };
        for (name, stream) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            if !stream.is_empty() {
                out.push_str(&format!("\n--- {name}\n{}", tail(stream, RUN_CAP)));
            }
        }
        Ok(out)
    }
}

/// The last `cap` bytes of `bytes` as text, saying so when cut.
fn tail(bytes: &[u8], cap: usize) -> String {
    if bytes.len() <= cap {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    format!("[{} bytes cut]\n{}", bytes.len() - cap, String::from_utf8_lossy(&bytes[bytes.len() - cap..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plancd_sandbox::fake::FakeSandbox;
    use plancd_sandbox::{Sandbox, SessionSpec};

    /// A fake whose `cat` and `find` read its files, and whose `sh -c` echoes the command.
    pub fn fake() -> FakeSandbox {
        FakeSandbox::new(|req, files| {
            let ok = |out: String| ExecOutcome { exit_code: Some(0), stdout: out.into_bytes(), ..Default::default() };
            match req.argv[0].as_str() {
                "cat" => match files.get(&req.argv[2]) {
                    Some(f) => ok(String::from_utf8_lossy(&f.data).into_owned()),
                    None => ExecOutcome { exit_code: Some(1), stderr: b"No such file or directory".to_vec(), ..Default::default() },
                },
                "find" => ok(files.keys().map(|k| format!("./{k}\n")).collect()),
                _ => ExecOutcome {
                    exit_code: Some(2),
                    stdout: vec![b'x'; 20_000],
                    stderr: req.argv[2].clone().into_bytes(),
                    ..Default::default()
                },
            }
        })
    }

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall { id: "c1".into(), name: name.into(), arguments }
    }

    #[tokio::test]
    async fn tools_read_write_list_and_run_in_the_session() {
        let sandbox = fake();
        let session = sandbox.create(&SessionSpec::default()).await.unwrap();
        session.put_files(&[FileEntry::new("tests/test_a.py", "pinned")]).await.unwrap();
        let pinned = vec!["tests/test_a.py".to_owned()];
        let ws = Workspace {
            session: session.as_ref(),
            pinned: &pinned,
            command_timeout: Duration::from_secs(5),
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let (r, e) = ws.call(&call("write_file", json!({"path": "src/a.py", "content": "x = 1\n"}))).await.unwrap();
        assert_eq!((r.content.as_str(), r.is_error), ("wrote src/a.py (6 bytes)", false));
        assert_eq!(e, Effect::Wrote { path: "src/a.py".into(), content: "x = 1\n".into() });
        let (r, e) = ws.call(&call("write_file", json!({"path": "tests/test_a.py", "content": "gone"}))).await.unwrap();
        assert!(r.is_error && r.content.contains("pinned acceptance test"), "{r:?}");
        assert_eq!(e, Effect::None);
        assert!(ws.call(&call("write_file", json!({"path": "../x", "content": ""}))).await.unwrap().0.is_error);
        assert_eq!(ws.call(&call("read_file", json!({"path": "src/a.py"}))).await.unwrap().0.content, "x = 1\n");
        assert!(ws.call(&call("read_file", json!({"path": "nope"}))).await.unwrap().0.content.contains("No such file"));
        assert_eq!(ws.call(&call("list_files", json!({}))).await.unwrap().0.content, "src/a.py\ntests/test_a.py");
        let run = ws.call(&call("run", json!({"cmd": "make"}))).await.unwrap().0.content;
        assert!(run.starts_with("exit 2\n--- stdout\n[8000 bytes cut]\nxxx"), "{run}");
        assert!(run.ends_with("--- stderr\nmake"), "{run}");
        let (r, e) = ws.call(&call("finish", json!({"summary": "done", "result": "spec_mismatch"}))).await.unwrap();
        assert!(!r.is_error);
        assert_eq!(e, Effect::Finish { summary: "done".into(), spec_mismatch: true });
        assert!(ws.call(&call("delete_file", json!({}))).await.unwrap().0.content.starts_with("no tool `delete_file`"));
        assert_eq!(session.get_files(&Default::default()).await.unwrap().files[1].data, b"pinned");
    }

    #[test]
    fn only_the_debugger_can_report_a_spec_mismatch() {
        let finish = |role| specs(role).into_iter().find(|t| t.name == "finish").unwrap().parameters;
        assert!(finish(Role::Debugger)["properties"]["result"].is_object());
        assert!(finish(Role::Coder)["properties"].get("result").is_none());
    }
}
