//! The model gateway end to end: the official `openai`, `anthropic` and `google-genai` Python
//! SDKs, whole and streaming, run inside the process sandbox (on the image's root, where sandbox/images/build.sh
//! installs them) as the coder command of a small plan, and reach a local upstream that speaks
//! the providers' wire formats only through plancd's gateway. Each test checks that the results
//! are published, tokens and cost recorded, the real key found nowhere, an ended attempt's token
//! refused, and that a replay with only the cache refs asks the upstream nothing.

use std::path::PathBuf;

use plancd::gateway::fake::{FakeConfig, FakeUpstream};
use serde_json::Value;

use crate::util::{Backend, Repo, plancd_async, skip};

const CANARY: &str = "sk-canary-gateway-7f3a9c1e5b";
const REPLY: &str = "def add(a, b):\n    return a + b\n";
/// What the fake counts for REPLY: a token per word or blank.
const REPLY_TOKENS: u64 = 11;

/// The docker backend when an engine answers with the image and the image has the clients.
fn clients_image() -> Option<Backend> {
    let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().is_ok_and(|o| o.status.success());
    if !docker(&["image", "inspect", "plancd-sandbox:python"]) {
        skip("no docker engine with plancd-sandbox:python", "PLANCD_REQUIRE_DOCKER");
        return None;
    }
    if !docker(&["run", "--rm", "--network", "none", "plancd-sandbox:python", "python3", "-c", "import openai, anthropic"]) {
        skip("the image plancd-sandbox:python lacks the Python clients (sandbox/images/build.sh adds them)", "PLANCD_REQUIRE_CLIENTS");
        return None;
    }
    Some(Backend::Docker)
}

/// The sandbox root with the clients installed, or `None` (and a visible skip) when it lacks
/// them; with `PLANCD_REQUIRE_CLIENTS=1`, a missing client fails the test instead.
fn clients_root() -> Option<Backend> {
    let root = PathBuf::from(std::env::var("PLANCD_SANDBOX_ROOT").unwrap_or_else(|_| "/var/cache/plancd/sandbox-root".into()));
    let lib = std::fs::read_dir(root.join("usr/local/lib")).into_iter().flatten().flatten().map(|e| e.path().join("dist-packages"));
    let libs: Vec<PathBuf> = lib.collect();
    let missing: Vec<&str> = ["openai", "anthropic", "google/genai"]
        .into_iter()
        .filter(|m| !libs.iter().any(|l| l.join(m).join("__init__.py").exists()))
        .collect();
    if missing.is_empty() {
        return Some(Backend::Process(root));
    }
    let why = format!("the sandbox root {} lacks the Python clients {missing:?} (sandbox/images/build.sh adds them)", root.display());
    skip(&why, "PLANCD_REQUIRE_CLIENTS");
    None
}

/// The coder: asks the model through the SDK the task names, writes the reply as its output,
/// and shows what it saw. A task with a dependency first tries the token the dependency's
/// attempt had (left in `whole_token.txt`), which must be refused now that attempt is over.
const AGENT: &str = r#"import json, os, sys

task = json.load(open(os.environ["PLANCD_TASK"]))
tid, sdk = task["task_id"], sys.argv[1]
prompt = task["description"]
model = os.environ.get("PLANCD_GATEWAY_MODEL", "any")
print("ENV " + json.dumps(dict(sorted(os.environ.items()))))

if sdk == "openai":
    import openai
    client = openai.OpenAI(max_retries=3)
    def stale(token):
        try:
            openai.OpenAI(api_key=token, max_retries=0).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            return "accepted"
        except openai.AuthenticationError as e:
            return f"refused {e.status_code} {e.code}"
    if tid == "whole":
        text = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}]).choices[0].message.content
    elif tid == "twice":
        first = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}]).choices[0].message.content
        with open("partial.py", "w") as f:
            f.write(first)
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "and again"}])
        except openai.RateLimitError as e:
            print("second call refused:", e.status_code, e.code)
            raise
    elif tid == "streamed":
        chunks = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        events = client.responses.create(model=model, input=prompt, stream=True)
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
elif sdk == "gemini":
    from google import genai
    from google.genai import errors, types
    # The key and the base URL come from GEMINI_API_KEY/GOOGLE_API_KEY and GOOGLE_GEMINI_BASE_URL.
    retry = types.HttpRetryOptions(attempts=4, initial_delay=0.2, max_delay=2.0)
    client = genai.Client(http_options=types.HttpOptions(retry_options=retry))
    def stale(token):
        try:
            # Held by a name: a client no longer referenced closes its connection.
            stale_client = genai.Client(api_key=token, http_options=types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1)))
            stale_client.models.generate_content(model=model, contents="hi")
            return "accepted"
        except errors.ClientError as e:
            return f"refused {e.code} {e.status}"
    if tid == "whole":
        text = client.models.generate_content(model=model, contents=prompt).text
    else:
        text = "".join(c.text or "" for c in client.models.generate_content_stream(model=model, contents=prompt))
else:
    import anthropic
    client = anthropic.Anthropic(max_retries=3)
    def stale(token):
        try:
            anthropic.Anthropic(api_key=token, max_retries=0).messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
            return "accepted"
        except anthropic.AuthenticationError as e:
            return f"refused {e.status_code} {e.body['error']['type']}"
    messages = [{"role": "user", "content": prompt}]
    if tid == "whole":
        text = client.messages.create(model=model, max_tokens=256, messages=messages).content[0].text
    else:
        with client.messages.stream(model=model, max_tokens=256, messages=messages) as stream:
            text = stream.get_final_text()

if os.path.exists("whole_token.txt"):
    print("stale token:", stale(open("whole_token.txt").read().strip()))
if tid == "whole":
    with open("whole_token.txt", "w") as f:
        f.write(os.environ["OPENAI_API_KEY"])
with open(task["outputs"][0], "w") as f:
    f.write(text)
"#;

fn task(id: &str, deps: &str) -> String {
    format!(
        "  - id: {id}\n    title: Write {id}.py\n    description: Write a Python function add(a, b) that returns their sum.\n    agent_role: coder\n    dependencies: [{deps}]\n    outputs: [{id}.py]\n    acceptance_criteria:\n      tests:\n        - cmd: python3 -m unittest -v tests/test_{id}.py\n          timeout_seconds: 60\n      files: [tests/test_{id}.py]\n"
    )
}

/// A plan of `tasks` (id, dependencies) played by the `sdk` client against `fake` as `provider`.
fn project(fake: &FakeUpstream, provider: &str, sdk: &str, backend: &Backend, tasks: &[(&str, &str)]) -> Repo {
    project_with(fake, provider, sdk, backend, tasks, "")
}

/// [`project`] with more of plancd.yaml.
fn project_with(fake: &FakeUpstream, provider: &str, sdk: &str, backend: &Backend, tasks: &[(&str, &str)], more: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nconcurrency: 2\n{more}{}roles:\n  coder: {{ command: [\"python3\", \"agents/coder.py\", \"{sdk}\"], model: default }}\nmodels:\n  default:\n    provider: {provider}\n    base_url: \"{}\"\n    model: fake-1\n    api_key_env: FAKE_UPSTREAM_KEY\n    prices: {{ input_per_mtok: 3.0, output_per_mtok: 15.0 }}\n",
            backend.config(),
            fake.base_url(provider)
        ),
    );
    repo.write("agents/coder.py", AGENT);
    for (id, _) in tasks {
        repo.write(
            &format!("tests/test_{id}.py"),
            &format!("import unittest\nfrom {id} import add\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n"),
        );
    }
    let plan: String = tasks.iter().map(|(id, deps)| task(id, deps)).collect();
    repo.write("plans/wf.yaml", &format!("todo_list_id: wf\ntitle: Sums through the gateway\ntasks:\n{plan}"));
    repo.commit("A plan whose coder reaches its model through the gateway");
    repo
}

fn status(repo: &Repo, task: &str) -> Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/wf/{task}:status.json")])).unwrap()
}

/// Every ref, every object and `extra` output: none may hold the key.
fn assert_no_canary(repo: &Repo, extra: &[&str]) {
    crate::util::assert_secret_nowhere(repo, CANARY, extra);
}

/// Plays `tasks` with `sdk` through the gateway, checks everything the gateway promises, then
/// replays the plan in a copy that keeps only the cache refs.
async fn play(backend: Option<Backend>, provider: &str, sdk: &str, tasks: &[(&str, &str)]) {
    let Some(backend) = backend else { return };
    let mut config = FakeConfig::new(CANARY, REPLY);
    config.rate_limited = 1; // the first call gets a 429 with retry-after: the client waits and retries
    let fake = FakeUpstream::start(config).await.unwrap();
    let repo = project(&fake, provider, sdk, &backend, tasks);
    let env = [("FAKE_UPSTREAM_KEY", CANARY)];
    let run = plancd_async(repo.path(), &["reconcile"], &env).await;
    let logs = plancd_async(repo.path(), &["logs", "wf/streamed"], &[]).await;
    let first = plancd_async(repo.path(), &["logs", &format!("wf/{}", tasks[0].0)], &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}\n{}\n{}", run.stdout, run.stderr, first.stdout, logs.stdout);
    let calls = tasks.len() + 1;
    assert_eq!(fake.calls(), calls, "one call a task, and the one refused with a 429");
    assert!(fake.received().iter().all(|r| !format!("{:?}", r.headers).contains("plancd-gw-")), "a token went upstream");

    let mut outputs = Vec::new();
    for (id, _) in tasks {
        let s = status(&repo, id);
        assert_eq!(s["phase"], "Succeeded", "{id}: {s}");
        let cost = &s["cost"];
        assert_eq!(cost["output_tokens"].as_u64(), Some(REPLY_TOKENS), "{id}: {s}");
        assert!(cost["input_tokens"].as_u64().unwrap() > 0 && cost["usd"].as_f64().unwrap() > 0.0, "{id}: {s}");
        let branch = format!("refs/heads/ai/generated/wf/{id}");
        outputs.push(repo.git(&["show", &format!("{branch}:{id}.py")]));
        assert_eq!(outputs.last().unwrap(), REPLY);
        let model = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Model,valueonly)", &branch]);
        assert_eq!(model.trim(), format!("{provider}/fake-1"));
        let attempt = format!("refs/ai/tasks/wf/{id}:attempts/1");
        let transcript = repo.git(&["show", &format!("{attempt}/transcript.jsonl")]);
        assert!(transcript.contains("\"event\":\"reply\"") && transcript.contains("\"cached\":false"), "{id}: {transcript}");
        // What the agent saw: the gateway and a token, never the key.
        let agent_log = repo.git(&["show", &format!("{attempt}/agent.log")]);
        let base = match provider {
            "openai" => "\"OPENAI_BASE_URL\": \"http://127.0.0.1:4747/v1\"",
            "gemini" => "\"GOOGLE_GEMINI_BASE_URL\": \"http://127.0.0.1:4747\"",
            _ => "\"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:4747\"",
        };
        assert!(agent_log.contains(base) && agent_log.contains("plancd-gw-"), "{id}: {agent_log}");
        if *id == "streamed" {
            let code = match sdk {
                "openai" => "invalid_api_key",
                "gemini" => "UNAUTHENTICATED",
                _ => "authentication_error",
            };
            assert!(agent_log.contains(&format!("stale token: refused 401 {code}")), "{agent_log}");
        }
    }
    let status_table = plancd_async(repo.path(), &["status"], &[]).await;
    assert_no_canary(&repo, &[&run.stdout, &run.stderr, &logs.stdout, &status_table.stdout]);

    // A replay in a copy that keeps the cache refs only: nothing goes upstream, the same files.
    let replay = repo.clone_dir();
    for name in replay.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks", "refs/heads/ai", "refs/tags/ai"]).lines() {
        replay.git(&["update-ref", "-d", name]);
    }
    assert!(!replay.git(&["for-each-ref", "refs/ai/cache/"]).is_empty());
    let again = plancd_async(replay.path(), &["reconcile"], &env).await;
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    assert_eq!(fake.calls(), calls, "the replay sent requests upstream");
    for ((id, _), output) in tasks.iter().zip(&outputs) {
        assert_eq!(&replay.git(&["show", &format!("refs/heads/ai/generated/wf/{id}:{id}.py")]), output);
        let transcript = replay.git(&["show", &format!("refs/ai/tasks/wf/{id}:attempts/1/transcript.jsonl")]);
        assert!(transcript.contains("\"cached\":true") && !transcript.contains("\"cached\":false"), "{id}: {transcript}");
    }
    assert_no_canary(&replay, &[&again.stdout, &again.stderr]);
}

fn run(test: impl Future<Output = ()>) {
    crate::util::block_on_within(300, test);
}

#[test]
fn the_openai_sdk_plays_the_coder_through_the_gateway_whole_streamed_and_over_responses() {
    run(play(clients_root(), "openai", "openai", &[("whole", ""), ("streamed", "whole"), ("responses", "whole")]));
}

#[test]
fn the_openai_sdk_plays_the_coder_through_the_gateway_in_docker() {
    run(play(clients_image(), "openai", "openai", &[("whole", ""), ("streamed", "whole")]));
}

#[test]
fn a_request_over_the_budget_is_refused_in_the_apis_shape_and_the_attempt_keeps_its_partial_work() {
    run(async {
        let Some(backend) = clients_root() else { return };
        let fake = FakeUpstream::start(FakeConfig::new(CANARY, REPLY)).await.unwrap();
        let budget = "budget: { tokens_per_attempt: 20 }\n";
        let repo = project_with(&fake, "openai", "openai", &backend, &[("twice", "")], budget);
        let run = plancd_async(repo.path(), &["reconcile"], &[("FAKE_UPSTREAM_KEY", CANARY)]).await;
        assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
        assert_eq!(fake.calls(), 1, "the second request never left plancd");
        let s = status(&repo, "twice");
        assert_eq!(s["phase"], "BudgetExceeded", "{s}");
        assert!(s["message"].as_str().unwrap().contains("the attempt's budget is spent"), "{s}");
        assert_eq!(s["cost"]["output_tokens"].as_u64(), Some(REPLY_TOKENS), "{s}");
        let attempt = "refs/ai/tasks/wf/twice:attempts/1";
        let agent_log = repo.git(&["show", &format!("{attempt}/agent.log")]);
        assert!(agent_log.contains("second call refused: 429 insufficient_quota"), "{agent_log}");
        assert_eq!(repo.git(&["show", &format!("{attempt}/work/partial.py")]), REPLY, "the partial work is kept");
        let transcript = repo.git(&["show", &format!("{attempt}/transcript.jsonl")]);
        assert!(transcript.contains("\"event\":\"refused\""), "{transcript}");
        assert_no_canary(&repo, &[&run.stdout, &run.stderr]);
    });
}

#[test]
fn the_anthropic_sdk_plays_the_coder_through_the_gateway_whole_and_streamed() {
    run(play(clients_root(), "anthropic", "anthropic", &[("whole", ""), ("streamed", "whole")]));
}

#[test]
fn the_google_genai_sdk_plays_the_coder_through_the_gateway_whole_and_streamed() {
    run(play(clients_root(), "gemini", "gemini", &[("whole", ""), ("streamed", "whole")]));
}

#[test]
fn the_openai_sdk_example_plays_through_the_gateway() {
    run(async {
        let Some(backend) = clients_root() else { return };
        let fake = FakeUpstream::start(FakeConfig::new(CANARY, REPLY)).await.unwrap();
        let repo = Repo::new();
        let example = crate::util::project_root().join("examples/openai-sdk/.");
        assert!(std::process::Command::new("cp").arg("-a").arg(example).arg(repo.path()).status().unwrap().success());
        let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
        let config = config
            .replace("https://api.openai.com/v1", &fake.base_url("openai"))
            .replace("sandbox:\n  root: /var/cache/plancd/sandbox-root\n", &backend.config());
        repo.write("plancd.yaml", &config);
        repo.commit("the openai-sdk example, against the local upstream");
        let run = plancd_async(repo.path(), &["reconcile"], &[("OPENAI_API_KEY", CANARY)]).await;
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        assert_eq!(repo.git(&["show", "refs/heads/ai/generated/sums/add:add.py"]), REPLY);
        assert_eq!(fake.calls(), 1);
        assert!(fake.received()[0].body["stream"].as_bool().unwrap_or(false), "the example streams");
        let s = serde_json::from_str::<Value>(&repo.git(&["show", "refs/ai/tasks/sums/add:status.json"])).unwrap();
        assert_eq!(s["cost"]["output_tokens"].as_u64(), Some(REPLY_TOKENS), "{s}");
        assert_no_canary(&repo, &[&run.stdout, &run.stderr]);
    });
}
