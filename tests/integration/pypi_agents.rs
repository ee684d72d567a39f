//! Coding agents from PyPI play the coder through the model gateway: aider and mini-swe-agent,
//! installed by sandbox/images/build.sh in venvs of their own, run in the sandbox exactly as
//! examples/aider and examples/mini-swe-agent configure them, against a local upstream that
//! answers in each agent's own protocol (aider's whole-file edit format; mini-swe-agent's bash
//! blocks, then its submit command). Each test checks what tests/integration/gateway.rs checks:
//! the result is published, tokens and cost recorded, the real key found nowhere, the ended
//! attempt's token refused, and a replay with only the cache refs asks the upstream nothing and
//! yields the same files.

use std::path::PathBuf;

use plancd::gateway::fake::{FakeConfig, FakeUpstream};
use serde_json::Value;

use crate::util::{Backend, Repo, plancd_async, project_root, skip};

const CANARY: &str = "sk-canary-pypi-agents-3d8e1a7c";
const CODE: &str = "def add(a, b):\n    return a + b\n";

/// A coding agent from PyPI, as its example plays it.
struct Agent {
    /// Its example's folder under examples/.
    example: &'static str,
    /// Its venv under /opt (build.sh writes the pinned requirement to `.plancd-installed`).
    venv: &'static str,
    /// What the model answers, call by call, for the agent to write add.py and stop.
    replies: &'static [&'static str],
}

const AIDER: Agent = Agent {
    example: "aider",
    venv: "aider",
    // aider's `whole` edit format: the file's path, then its whole content fenced.
    replies: &["add.py\n```python\ndef add(a, b):\n    return a + b\n```\n"],
};

const MINI: Agent = Agent {
    example: "mini-swe-agent",
    venv: "mini-swe-agent",
    // mini-swe-agent's text-based protocol: one bash block a turn; a command whose output starts
    // with COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT submits.
    replies: &[
        "THOUGHT: I write the module.\n\n```mswea_bash_command\ncat <<'EOF' > add.py\ndef add(a, b):\n    return a + b\nEOF\n```\n",
        "THOUGHT: Done.\n\n```mswea_bash_command\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```\n",
    ],
};

/// What the fake counts for `text`: a token per word or blank.
fn tokens(text: &str) -> u64 {
    let ends = text.chars().filter(|c| *c == ' ' || *c == '\n').count() as u64;
    ends + u64::from(!text.ends_with([' ', '\n']))
}

/// The pinned version build.sh installed, as the root's (or image's) marker says.
fn installed(marker: Option<String>) -> Option<String> {
    marker.map(|m| m.trim().to_owned()).filter(|m| m.contains("=="))
}

/// The sandbox root when it holds `agent`, or `None` (and a visible skip, or a failure with
/// `PLANCD_REQUIRE_CLIENTS=1`).
fn agent_root(agent: &Agent) -> Option<(Backend, String)> {
    let root = PathBuf::from(std::env::var("PLANCD_SANDBOX_ROOT").unwrap_or_else(|_| "/var/cache/plancd/sandbox-root".into()));
    let marker = std::fs::read_to_string(root.join("opt").join(agent.venv).join(".plancd-installed")).ok();
    match installed(marker) {
        Some(version) => Some((Backend::Process(root), version)),
        None => {
            let why = format!("the sandbox root {} lacks {} (sandbox/images/build.sh adds it)", root.display(), agent.example);
            skip(&why, "PLANCD_REQUIRE_CLIENTS");
            None
        }
    }
}

/// The docker backend when an engine answers with the image and the image holds `agent`.
fn agent_image(agent: &Agent) -> Option<(Backend, String)> {
    let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().ok().filter(|o| o.status.success());
    if docker(&["image", "inspect", "plancd-sandbox:python"]).is_none() {
        skip("no docker engine with plancd-sandbox:python", "PLANCD_REQUIRE_DOCKER");
        return None;
    }
    let marker = format!("/opt/{}/.plancd-installed", agent.venv);
    let out = docker(&["run", "--rm", "--network", "none", "plancd-sandbox:python", "cat", &marker]);
    match installed(out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())) {
        Some(version) => Some((Backend::Docker, version)),
        None => {
            let why = format!("the image plancd-sandbox:python lacks {} (sandbox/images/build.sh adds it)", agent.example);
            skip(&why, "PLANCD_REQUIRE_CLIENTS");
            None
        }
    }
}

/// Tries the token the coder's attempt had (left in add_token.txt) against this attempt's
/// gateway, which must refuse it now that that attempt is over.
const PROBE: &str = r#"import json, os, urllib.error, urllib.request

token = open("add_token.txt").read().strip()
body = json.dumps({"model": "any", "messages": [{"role": "user", "content": "hi"}]}).encode()
request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=body,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    urllib.request.urlopen(request)
    print("stale token: accepted")
except urllib.error.HTTPError as e:
    print("stale token: refused", e.code, json.load(e)["error"]["code"])
with open("probe.txt", "w") as f:
    f.write("probed\n")
"#;

/// The agent's example, pointed at `fake` and `backend`. Its coder first shows its environment
/// and leaves its token for the probe: a tester task after it, which tries that token.
fn project(agent: &Agent, fake: &FakeUpstream, backend: &Backend) -> Repo {
    let repo = Repo::new();
    let example = project_root().join("examples").join(agent.example).join(".");
    assert!(std::process::Command::new("cp").arg("-a").arg(example).arg(repo.path()).status().unwrap().success());
    let sandbox = backend.config();
    let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
    let rewritten = config
        .replace("https://api.openai.com/v1", &fake.base_url("openai"))
        .replace("sandbox:\n  root: /var/cache/plancd/sandbox-root\n", &sandbox)
        .replace(
            "    command: >-\n      ",
            &format!("    command: >-\n      env | sort; printenv OPENAI_API_KEY > add_token.txt; export TZ={};\n      ", noon()),
        )
        .replace("roles:\n", "roles:\n  tester: { command: [\"python3\", \"agents/probe.py\"], model: default }\n");
    assert_eq!(rewritten.matches("add_token.txt").count(), 1, "the example's coder is not where expected:\n{config}");
    repo.write("plancd.yaml", &rewritten);
    repo.write("agents/probe.py", PROBE);
    let plan = std::fs::read_to_string(repo.path().join("plans/sums.yaml")).unwrap();
    let probe = "  - id: probe\n    title: Try the coder's token\n    agent_role: tester\n    description: Try the token of the coder's attempt.\n    dependencies: [add]\n    outputs: [probe.txt]\n    acceptance_criteria:\n      tests:\n        - cmd: python3 -m unittest -v tests/test_add.py\n          timeout_seconds: 30\n      files: [tests/test_add.py]\n";
    repo.write("plans/sums.yaml", &format!("{plan}{probe}"));
    repo.commit("the example, against the local upstream, with a probe of the coder's token");
    repo
}

/// A time zone where it is about noon now. aider's system prompt carries the date: with it, a
/// run and its replay a minute later see the same date whenever the test runs.
fn noon() -> String {
    let hour = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 3600 % 24;
    // POSIX TZ: `PLANCD-3` is three hours east of UTC.
    format!("PLANCD{}", hour as i64 - 12)
}

fn status(repo: &Repo, task: &str) -> Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/sums/{task}:status.json")])).unwrap()
}

/// Plays the agent's example through the gateway, checks everything the gateway promises, then
/// replays it in a copy that keeps only the cache refs.
async fn play(agent: &Agent, found: Option<(Backend, String)>) {
    let Some((backend, version)) = found else { return };
    eprintln!("{}: {version} (build.sh's pin)", agent.example);
    let mut config = FakeConfig::sequence(CANARY, agent.replies);
    config.rate_limited = 1; // the first call gets a 429 with retry-after: the agent waits and retries
    let fake = FakeUpstream::start(config).await.unwrap();
    let repo = project(agent, &fake, &backend);
    let env = [("OPENAI_API_KEY", CANARY)];
    let run = plancd_async(repo.path(), &["reconcile"], &env).await;
    let logs = plancd_async(repo.path(), &["logs", "sums/add"], &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}\n{}", run.stdout, run.stderr, logs.stdout);
    let calls = agent.replies.len() + 1;
    assert_eq!(fake.calls(), calls, "one call a reply, and the one refused with a 429\n{}", logs.stdout);
    assert!(fake.received().iter().all(|r| !format!("{:?}", r.headers).contains("plancd-gw-")), "a token went upstream");

    let s = status(&repo, "add");
    assert_eq!(s["phase"], "Succeeded", "{s}");
    let cost = &s["cost"];
    assert_eq!(cost["output_tokens"].as_u64(), Some(agent.replies.iter().map(|r| tokens(r)).sum()), "{s}");
    assert!(cost["input_tokens"].as_u64().unwrap() > 0 && cost["usd"].as_f64().unwrap() > 0.0, "{s}");
    let branch = "refs/heads/ai/generated/sums/add";
    assert_eq!(repo.git(&["show", &format!("{branch}:add.py")]), CODE);
    let files = repo.git(&["ls-tree", "-r", "--name-only", branch]);
    assert!(!files.contains(".aider") && !files.contains("traj"), "the agent's own files are no result:\n{files}");
    let model = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Model,valueonly)", branch]);
    assert_eq!(model.trim(), "openai/gpt-4o-mini");
    let attempt = "refs/ai/tasks/sums/add:attempts/1";
    let transcript = repo.git(&["show", &format!("{attempt}/transcript.jsonl")]);
    assert!(transcript.contains("\"event\":\"reply\"") && transcript.contains("\"cached\":false"), "{transcript}");
    // What the agent saw: the gateway and a token, never the key; no fetch from the internet.
    let agent_log = repo.git(&["show", &format!("{attempt}/agent.log")]);
    for seen in ["OPENAI_API_BASE=http://127.0.0.1:4747/v1", "OPENAI_API_KEY=plancd-gw-", "=openai/gpt-4o-mini"] {
        assert!(agent_log.contains(seen), "{seen} not in\n{agent_log}");
    }
    assert!(!agent_log.contains("githubusercontent"), "{agent_log}");
    let number = version.rsplit("==").next().unwrap();
    assert!(agent_log.contains(number), "the agent that ran is not {version}:\n{agent_log}");
    let probe_log = repo.git(&["show", "refs/ai/tasks/sums/probe:attempts/1/agent.log"]);
    assert!(probe_log.contains("stale token: refused 401 invalid_api_key"), "{probe_log}");
    let status_table = plancd_async(repo.path(), &["status"], &[]).await;
    crate::util::assert_secret_nowhere(&repo, CANARY, &[&run.stdout, &run.stderr, &logs.stdout, &status_table.stdout]);

    // A replay in a copy that keeps the cache refs only: nothing goes upstream, the same files.
    let replay = repo.clone_dir();
    for name in replay.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks", "refs/heads/ai", "refs/tags/ai"]).lines() {
        replay.git(&["update-ref", "-d", name]);
    }
    assert!(!replay.git(&["for-each-ref", "refs/ai/cache/"]).is_empty());
    let again = plancd_async(replay.path(), &["reconcile"], &env).await;
    let again_logs = plancd_async(replay.path(), &["logs", "sums/add"], &[]).await;
    assert_eq!(again.code, Some(0), "{}\n{}\n{}", again.stdout, again.stderr, again_logs.stdout);
    assert_eq!(fake.calls(), calls, "the replay sent requests upstream");
    assert_eq!(replay.git(&["show", &format!("{branch}:add.py")]), CODE);
    let transcript = replay.git(&["show", "refs/ai/tasks/sums/add:attempts/1/transcript.jsonl"]);
    assert!(transcript.contains("\"cached\":true") && !transcript.contains("\"cached\":false"), "{transcript}");
    crate::util::assert_secret_nowhere(&replay, CANARY, &[&again.stdout, &again.stderr, &again_logs.stdout]);
}

fn run(test: impl Future<Output = ()>) {
    crate::util::block_on_within(400, test);
}

#[test]
fn aider_plays_the_coder_of_its_example_through_the_gateway() {
    run(play(&AIDER, agent_root(&AIDER)));
}

#[test]
fn aider_plays_the_coder_of_its_example_through_the_gateway_in_docker() {
    run(play(&AIDER, agent_image(&AIDER)));
}

#[test]
fn mini_swe_agent_plays_the_coder_of_its_example_through_the_gateway() {
    run(play(&MINI, agent_root(&MINI)));
}

#[test]
fn mini_swe_agent_plays_the_coder_of_its_example_through_the_gateway_in_docker() {
    run(play(&MINI, agent_image(&MINI)));
}

#[test]
fn the_fake_counts_tokens_as_the_gateway_tests_do() {
    assert_eq!(tokens(CODE), 11);
    assert_eq!(tokens("a b"), 2);
    assert_eq!(tokens(""), 1);
}
