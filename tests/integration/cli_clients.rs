//! Real coding CLIs play the coder through the model gateway: Codex CLI (`@openai/codex`) and
//! Claude Code (`@anthropic-ai/claude-code`), as sandbox/images/build.sh installs them in the
//! sandbox root, run the shipped examples (`examples/codex`, `examples/claude-code`) in the
//! process sandbox against a local upstream that speaks the providers' wire formats and drives
//! them with scripted turns: a call of the client's own file-writing tool, then a closing text.
//! Each test checks that the results are published, tokens and cost recorded, the real key found
//! nowhere, an ended attempt's token refused, and that a replay with only the cache refs asks
//! the upstream nothing and publishes the same files.

use std::path::PathBuf;

use plancd::gateway::fake::{FakeConfig, FakeUpstream, Turn};
use serde_json::{Value, json};

use crate::util::{Backend, Repo, plancd_async, skip};

const CANARY: &str = "sk-canary-cli-clients-3d81c07a";
const ADD: &str = "def add(a, b):\n    return a + b\n";
const TOTAL: &str =
    "from add import add\n\n\ndef total(xs):\n    result = 0\n    for x in xs:\n        result = add(result, x)\n    return result\n";
const DONE: &str = "Done: the module is written.";

/// One of the CLIs, as its example plays it.
struct Client {
    /// The example's folder under `examples/`, and the binary in the root's /usr/local/bin.
    example: &'static str,
    binary: &'static str,
    /// `models.default.provider` of the example.
    provider: &'static str,
    /// The example's default upstream, replaced by the fake's.
    base_url: &'static str,
    /// The variable that holds the real key for plancd.
    key_env: &'static str,
    /// How the ended attempt's token is tried: the API's path and its auth header.
    stale_path: &'static str,
    stale_header: &'static str,
    /// The tool call that writes `file` with `content`, as the model would ask for it.
    write: fn(&str, &str) -> Turn,
}

const CODEX: Client = Client {
    example: "codex",
    binary: "codex",
    provider: "openai",
    base_url: "https://api.openai.com/v1",
    key_env: "OPENAI_API_KEY",
    stale_path: "/v1/responses",
    stale_header: "Authorization: Bearer",
    // Codex edits files with apply_patch, which it runs itself when its shell tool is asked to.
    write: |file, content| {
        let added: String = content.lines().map(|l| format!("+{l}\n")).collect();
        let patch = format!("*** Begin Patch\n*** Add File: {file}\n{added}*** End Patch\n");
        Turn::tool("exec_command", json!({"cmd": format!("apply_patch <<'EOF'\n{patch}EOF\n")}))
    },
};

const CLAUDE_CODE: Client = Client {
    example: "claude-code",
    binary: "claude",
    provider: "anthropic",
    base_url: "https://api.anthropic.com",
    key_env: "ANTHROPIC_API_KEY",
    stale_path: "/v1/messages",
    stale_header: "x-api-key:",
    write: |file, content| Turn::tool("Write", json!({"file_path": format!("/workspace/{file}"), "content": content})),
};

/// The client's version, as its binary in the root or the image says.
fn version(backend: &Backend, client: &Client) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = match backend {
        Backend::Process(root) => std::process::Command::new(root.join("usr/local/bin").join(client.binary))
            .arg("--version")
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", "/usr/bin:/bin")
            .output(),
        Backend::Docker => std::process::Command::new("docker")
            .args(["run", "--rm", "--network", "none", "-e", "HOME=/tmp", IMAGE, client.binary, "--version"])
            .output(),
    };
    String::from_utf8_lossy(&out.unwrap().stdout).trim().to_owned()
}

const IMAGE: &str = "plancd-sandbox:python";

/// The sandbox root when it has `client`'s binary, or `None` (and a visible skip); with
/// `PLANCD_REQUIRE_CLIENTS=1`, a missing client fails the test instead.
fn client_root(client: &Client) -> Option<Backend> {
    let root = PathBuf::from(std::env::var("PLANCD_SANDBOX_ROOT").unwrap_or_else(|_| "/var/cache/plancd/sandbox-root".into()));
    // The root's links are relative, so they resolve inside the root from here too.
    if root.join("usr/local/bin").join(client.binary).is_file() {
        return Some(Backend::Process(root));
    }
    let why = format!("the sandbox root {} lacks {} (sandbox/images/build.sh adds it)", root.display(), client.binary);
    skip(&why, "PLANCD_REQUIRE_CLIENTS");
    None
}

/// The docker backend when an engine answers with the image and the image has `client`.
fn client_image(client: &Client) -> Option<Backend> {
    let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().is_ok_and(|o| o.status.success());
    if !docker(&["image", "inspect", IMAGE]) {
        skip(&format!("no docker engine with {IMAGE}"), "PLANCD_REQUIRE_DOCKER");
        return None;
    }
    if !docker(&["run", "--rm", "--network", "none", "-e", "HOME=/tmp", IMAGE, client.binary, "--version"]) {
        skip(&format!("the image {IMAGE} lacks {} (sandbox/images/build.sh adds it)", client.binary), "PLANCD_REQUIRE_CLIENTS");
        return None;
    }
    Some(Backend::Docker)
}

/// Runs before the client in the test: shows what the agent saw, tries the token of the `add`
/// attempt (over by now) when one was left, and leaves this attempt's token for `total`.
const PROBE: &str = r#"env | sort | sed 's/^/ENV /'
if [ -f token.txt ]; then
  python3 - "$(cat token.txt)" <<'EOF'
import os, sys, urllib.error, urllib.request
path, header = os.environ["STALE_PATH"], os.environ["STALE_HEADER"]
name, _, prefix = header.partition(":")
req = urllib.request.Request(os.environ["PLANCD_GATEWAY_URL"] + path, data=b'{"model": "m", "input": "hi"}', method="POST")
req.add_header(name, (prefix.strip() + " " + sys.argv[1]).strip())
req.add_header("anthropic-version", "2023-06-01")
req.add_header("content-type", "application/json")
try:
    urllib.request.urlopen(req)
    print("stale token: accepted")
except urllib.error.HTTPError as e:
    print("stale token: refused", e.code)
EOF
fi
if [ "$PLANCD_TASK_ID" = add ]; then printf %s "$OPENAI_API_KEY" > token.txt; fi
"#;

/// The example of `client`, against `fake` and on `backend`, with [`PROBE`] run before the client.
fn example(client: &Client, fake: &FakeUpstream, backend: &Backend) -> Repo {
    let repo = Repo::new();
    let dir = crate::util::project_root().join("examples").join(client.example).join(".");
    assert!(std::process::Command::new("cp").arg("-a").arg(dir).arg(repo.path()).status().unwrap().success());
    let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
    let exec = format!("exec {} ", client.binary);
    assert!(config.contains(&exec), "the example runs {}", client.binary);
    let probe = format!("export STALE_PATH={} STALE_HEADER='{}'; sh agents/probe.sh && {exec}", client.stale_path, client.stale_header);
    let config = config
        .replacen(&exec, &probe, 1)
        .replace(client.base_url, &fake.base_url(client.provider))
        .replace("sandbox:\n  root: /var/cache/plancd/sandbox-root\n", &backend.config());
    repo.write("plancd.yaml", &config);
    repo.write("agents/probe.sh", PROBE);
    repo.commit("the example, against the local upstream");
    repo
}

fn status(repo: &Repo, task: &str) -> Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/sums/{task}:status.json")])).unwrap()
}

/// Plays the example of `client` through the gateway, checks everything the gateway promises,
/// then replays it in a copy that keeps only the cache refs.
async fn play(client: &Client, backend: Option<Backend>) {
    let Some(backend) = backend else { return };
    eprintln!("{}: {}", client.example, version(&backend, client));
    // Per task: the client's tool writes the module, then a text ends its turn.
    let turns = vec![(client.write)("add.py", ADD), Turn::Text(DONE.into()), (client.write)("total.py", TOTAL), Turn::Text(DONE.into())];
    let tokens: Vec<u64> = turns.iter().map(Turn::tokens).collect();
    let mut config = FakeConfig::new(CANARY, DONE);
    config.turns = turns;
    config.rate_limited = 1; // the first call gets a 429 with retry-after: the client waits and retries
    let fake = FakeUpstream::start(config).await.unwrap();
    let repo = example(client, &fake, &backend);
    let env = [(client.key_env, CANARY)];
    let run = plancd_async(repo.path(), &["reconcile"], &env).await;
    let logs = plancd_async(repo.path(), &["logs", "sums/total"], &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}\n{}", run.stdout, run.stderr, logs.stdout);
    assert_eq!(fake.calls(), 5, "two calls a task, and the one refused with a 429");
    assert!(fake.received().iter().all(|r| !format!("{:?}", r.headers).contains("plancd-gw-")), "a token went upstream");
    assert!(fake.received().iter().all(|r| r.body["stream"] == true), "the client streams");

    let mut outputs = Vec::new();
    for (i, (id, file, content)) in [("add", "add.py", ADD), ("total", "total.py", TOTAL)].into_iter().enumerate() {
        let s = status(&repo, id);
        assert_eq!(s["phase"], "Succeeded", "{id}: {s}");
        let cost = &s["cost"];
        assert_eq!(cost["output_tokens"].as_u64(), Some(tokens[2 * i] + tokens[2 * i + 1]), "{id}: {s}");
        assert!(cost["input_tokens"].as_u64().unwrap() > 0 && cost["usd"].as_f64().unwrap() > 0.0, "{id}: {s}");
        let branch = format!("refs/heads/ai/generated/sums/{id}");
        outputs.push(repo.git(&["show", &format!("{branch}:{file}")]));
        assert_eq!(outputs.last().unwrap(), content, "{id}");
        // The CLI leaves nothing else behind in the workspace (its state lives in HOME).
        let changed = repo.git(&["diff", "--name-only", &format!("{branch}^"), &branch]);
        let want = if id == "add" { "add.py\ntoken.txt\n".to_owned() } else { format!("{file}\n") };
        assert_eq!(changed, want, "{id}");
        let model = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Model,valueonly)", &branch]);
        assert!(model.trim().starts_with(&format!("{}/", client.provider)), "{id}: {model}");
        let attempt = format!("refs/ai/tasks/sums/{id}:attempts/1");
        let transcript = repo.git(&["show", &format!("{attempt}/transcript.jsonl")]);
        assert_eq!(transcript.matches("\"status\":200").count(), 2, "{id}: two replies (and a 429 for the first): {transcript}");
        assert!(transcript.contains("\"cached\":false") && !transcript.contains("\"cached\":true"), "{id}: {transcript}");
        // What the agent saw: the gateway and a token, never the key.
        let agent_log = repo.git(&["show", &format!("{attempt}/agent.log")]);
        let base = if client.provider == "openai" {
            "ENV OPENAI_BASE_URL=http://127.0.0.1:4747/v1"
        } else {
            "ENV ANTHROPIC_BASE_URL=http://127.0.0.1:4747"
        };
        assert!(agent_log.contains(base) && agent_log.contains("plancd-gw-"), "{id}: {agent_log}");
        if id == "total" {
            assert!(agent_log.contains("stale token: refused 401"), "{agent_log}");
        }
    }
    let status_table = plancd_async(repo.path(), &["status"], &[]).await;
    crate::util::assert_secret_nowhere(&repo, CANARY, &[&run.stdout, &run.stderr, &logs.stdout, &status_table.stdout]);

    // A replay in a copy that keeps the cache refs only: nothing goes upstream, the same files,
    // every reply given again as the stream the client asked for.
    let replay = repo.clone_dir();
    for name in replay.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks", "refs/heads/ai", "refs/tags/ai"]).lines() {
        replay.git(&["update-ref", "-d", name]);
    }
    assert!(!replay.git(&["for-each-ref", "refs/ai/cache/"]).is_empty());
    let again = plancd_async(replay.path(), &["reconcile"], &env).await;
    let again_logs = plancd_async(replay.path(), &["logs", "sums/total"], &[]).await;
    assert_eq!(again.code, Some(0), "{}\n{}\n{}", again.stdout, again.stderr, again_logs.stdout);
    assert_eq!(fake.calls(), 5, "the replay sent requests upstream");
    for ((id, file), output) in [("add", "add.py"), ("total", "total.py")].into_iter().zip(&outputs) {
        assert_eq!(&replay.git(&["show", &format!("refs/heads/ai/generated/sums/{id}:{file}")]), output);
        let transcript = replay.git(&["show", &format!("refs/ai/tasks/sums/{id}:attempts/1/transcript.jsonl")]);
        assert_eq!(transcript.matches("\"cached\":true").count(), 2, "{id}: {transcript}");
        assert!(!transcript.contains("\"cached\":false") && transcript.contains("\"stream\":true"), "{id}: {transcript}");
    }
    crate::util::assert_secret_nowhere(&replay, CANARY, &[&again.stdout, &again.stderr, &again_logs.stdout]);
}

fn run(test: impl Future<Output = ()>) {
    crate::util::block_on_within(300, test);
}

#[test]
fn codex_cli_plays_the_coder_of_its_example_through_the_gateway() {
    run(play(&CODEX, client_root(&CODEX)));
}

#[test]
fn codex_cli_plays_the_coder_of_its_example_through_the_gateway_in_docker() {
    run(play(&CODEX, client_image(&CODEX)));
}

#[test]
fn claude_code_plays_the_coder_of_its_example_through_the_gateway() {
    run(play(&CLAUDE_CODE, client_root(&CLAUDE_CODE)));
}

#[test]
fn claude_code_plays_the_coder_of_its_example_through_the_gateway_in_docker() {
    run(play(&CLAUDE_CODE, client_image(&CLAUDE_CODE)));
}
