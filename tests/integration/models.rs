//! Model agents end to end: `plancd reconcile` with the process sandbox against a local
//! OpenAI-compatible server (wiremock, failing on any request it was not told to expect):
//! published results with the model in their provenance, a replay from the cache that sends
//! nothing, budgets that stop spending, API failures that exit 3 with the reason in status, no
//! trace of the API key anywhere, the pull request of a result with its model and cost; and
//! `plancd plan`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::util::{Repo, Run, plancd_env, plancd_in};

const CANARY: &str = "sk-canary-7d41e09b5c3f";

/// Replies by task: each reply is the tool calls of one turn.
type Script = HashMap<&'static str, Vec<Vec<(&'static str, Value)>>>;

/// Runs an async test under a time limit, on a runtime that keeps the server serving while
/// plancd runs.
fn with_server<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async { tokio::time::timeout(Duration::from_secs(240), test()).await.expect("the test finished in time") });
}

/// A server speaking OpenAI's chat completions: it finds the task in the brief, counts the
/// turns so far and answers with the script's calls; every reply costs 100 + 20 tokens.
async fn openai_server(script: Script) -> MockServer {
    let server = MockServer::start().await;
    let script = Arc::new(script);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(move |req: &Request| reply(&script, req))
        .mount(&server)
        .await;
    catch_all(&server).await;
    server
}

async fn catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(418))
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: no request the test did not expect")
        .mount(server)
        .await;
}

fn reply(script: &Script, req: &Request) -> ResponseTemplate {
    if req.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {CANARY}")) {
        return ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "no key"}}));
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    let brief = messages.iter().find(|m| m["role"] == "user").unwrap()["content"].as_str().unwrap();
    let task = brief.split('/').nth(1).unwrap().split(' ').next().unwrap();
    let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
    let calls = &script[task][turn];
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{turn}_{i}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen2.5-coder",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": tool_calls}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    }))
}

/// A repository whose coder and tester are played by `default`, a model at `server`.
fn repo(server: &MockServer, extra_config: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nmodels:\n  default:\n    provider: openai\n    base_url: {}/v1\n    model: qwen2.5-coder\n    api_key_env: MODEL_API_KEY\n    max_retries: 1\n    retry_delay_ms: 10\n    prices: {{ input_per_mtok: 1.0, output_per_mtok: 4.0 }}\nroles:\n  coder: {{ model: default }}\n  tester: {{ model: default }}\n{extra_config}",
            server.uri()
        ),
    );
    repo.write(
        "plans/hello.yaml",
        "todo_list_id: hello\ntitle: Hello\ntasks:\n  - id: greet\n    title: Write hello.py\n    agent_role: coder\n    max_attempts: 1\n    outputs: [hello.py]\n    acceptance_criteria:\n      tests: [{cmd: \"python3 hello.py | grep -qx 'hello, world'\"}]\n  - id: check\n    title: Test hello.py\n    agent_role: tester\n    dependencies: [greet]\n    outputs: [tests/test_hello.py]\n    acceptance_criteria:\n      tests: [{cmd: python3 tests/test_hello.py}]\n",
    );
    repo.commit("plan");
    repo
}

fn script() -> Script {
    let test = "import subprocess\nout = subprocess.run(['python3', 'hello.py'], capture_output=True, text=True).stdout\nassert out == 'hello, world\\n', out\n";
    HashMap::from([
        (
            "greet",
            vec![
                vec![("list_files", json!({}))],
                vec![("write_file", json!({"path": "hello.py", "content": "print('hello, world')\n"}))],
                vec![("run", json!({"cmd": "python3 hello.py; env"}))],
                vec![("finish", json!({"summary": "hello.py prints the greeting"}))],
            ],
        ),
        (
            "check",
            vec![
                vec![("read_file", json!({"path": "hello.py"}))],
                vec![("write_file", json!({"path": "tests/test_hello.py", "content": test}))],
                vec![("finish", json!({"summary": "a test of the output"}))],
            ],
        ),
    ])
}

async fn reconcile(repo: &Repo) -> Run {
    let dir = repo.path().to_path_buf();
    tokio::task::spawn_blocking(move || plancd_env(&dir, &["reconcile"], &[("MODEL_API_KEY", CANARY)])).await.unwrap()
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn status(repo: &Repo, task: &str) -> Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/hello/{task}:status.json")])).unwrap()
}

/// Every ref, every object and `extra` output: none may hold the key.
fn assert_no_canary(repo: &Repo, extra: &[&str]) {
    crate::util::assert_secret_nowhere(repo, CANARY, extra);
}

#[test]
fn a_plan_played_by_an_openai_compatible_model_is_published_and_replayed_from_the_cache() {
    with_server(|| async {
        let server = openai_server(script()).await;
        let repo = repo(&server, "");
        let run = reconcile(&repo).await;
        run.expect_code(0);
        assert!(run.stdout.contains("2/2 tasks satisfied, 2 attempt(s) run"), "{}", run.stdout);
        assert_eq!(requests(&server).await, 7);
        let received = server.received_requests().await.unwrap();
        assert_eq!(received[0].headers.get("authorization").unwrap(), &format!("Bearer {CANARY}"), "the key is sent, to the model only");

        // The files came from tool calls, the provenance names the model and the prompt.
        assert_eq!(repo.git(&["show", "refs/heads/ai/generated/hello/greet:hello.py"]), "print('hello, world')\n");
        let trailers = repo.git(&[
            "log",
            "-1",
            "--format=%(trailers:key=Plancd-Model,valueonly)%(trailers:key=Plancd-Prompt-Hash,valueonly)",
            "ai/generated/hello/greet",
        ]);
        let lines: Vec<&str> = trailers.lines().collect();
        assert_eq!(lines[0], "openai/qwen2.5-coder");
        assert!(lines[1].len() == 64 && lines[1].chars().all(|c| c.is_ascii_hexdigit()), "{trailers}");
        // Tokens and dollars in the status; the transcript in the attempt's logs.
        let greet = status(&repo, "greet");
        assert_eq!((greet["cost"]["input_tokens"].as_u64(), greet["cost"]["output_tokens"].as_u64()), (Some(400), Some(80)));
        assert!((greet["cost"]["usd"].as_f64().unwrap() - 0.00072).abs() < 1e-9, "{greet}");
        let transcript = repo.git(&["show", "refs/ai/tasks/hello/greet:attempts/1/transcript.jsonl"]);
        assert_eq!(transcript.lines().filter(|l| l.contains("\"event\":\"request\"")).count(), 4);
        // The run tool's output is in it: the command ran in the sandbox, whose environment has no key.
        assert!(transcript.contains("hello, world\\nHOME=/tmp") && !transcript.contains("MODEL_API_KEY"), "{transcript}");
        let table = repo.plancd(&["status"]);
        assert!(table.stdout.contains("COST") && table.stdout.contains("480 tok"), "{}", table.stdout);
        let logs = repo.plancd(&["logs", "hello/greet"]);
        assert_no_canary(&repo, &[&run.stdout, &run.stderr, &logs.stdout, &transcript]);

        // A replay: without any state but the cache, the same plan spends nothing and yields the
        // same results.
        let trees: Vec<String> =
            ["greet", "check"].iter().map(|t| repo.git(&["rev-parse", &format!("ai/generated/hello/{t}^{{tree}}")])).collect();
        for name in repo.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks", "refs/heads/ai", "refs/tags/ai"]).lines() {
            repo.git(&["update-ref", "-d", name]);
        }
        let replay = reconcile(&repo).await;
        replay.expect_code(0);
        assert_eq!(requests(&server).await, 7, "the replay asked the model");
        let again: Vec<String> =
            ["greet", "check"].iter().map(|t| repo.git(&["rev-parse", &format!("ai/generated/hello/{t}^{{tree}}")])).collect();
        assert_eq!(again, trees);
        assert!(status(&repo, "greet").get("cost").is_none(), "a cached run spends 0 tokens");
        assert!(repo.git(&["show", "refs/ai/tasks/hello/greet:attempts/1/transcript.jsonl"]).contains("\"cached\":true"));
    });
}

#[test]
fn api_failures_that_cannot_pass_exit_3_with_the_reason_in_status() {
    with_server(|| async {
        let server = MockServer::start().await;
        // The server echoes the key it got: it must not get into anything plancd writes.
        let body = json!({"error": {"message": format!("Incorrect API key provided: {CANARY}"), "type": "invalid_request_error"}});
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(401).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        catch_all(&server).await;
        let repo = repo(&server, "");
        let run = reconcile(&repo).await;
        run.expect_code(3);
        assert!(run.stderr.contains("HTTP 401: Incorrect API key provided: [REDACTED]"), "{}", run.stderr);
        let greet = status(&repo, "greet");
        assert_eq!((greet["phase"].as_str(), greet["reason"].as_str()), (Some("Released"), Some("ModelError")));
        assert!(greet["message"].as_str().unwrap().contains("HTTP 401"), "{greet}");
        assert_no_canary(&repo, &[&run.stdout, &run.stderr]);
    });
}

#[test]
fn a_role_whose_models_key_is_not_set_claims_nothing_says_what_to_set_and_runs_once_it_is() {
    with_server(|| async {
        let server = MockServer::start().await;
        let script = script();
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(move |req: &Request| reply(&script, req))
            .mount(&server)
            .await;
        let repo = repo(&server, "");
        let dir = repo.path().to_path_buf();
        for _ in 0..2 {
            let dir = dir.clone();
            let run = tokio::task::spawn_blocking(move || plancd_in(&dir, &["reconcile"])).await.unwrap();
            run.no_panic().expect_code(1);
            assert!(
                run.all().contains("the coder agent cannot start: model `default` needs its key: MODEL_API_KEY is not set")
                    && run.all().contains("models.default.api_key_env"),
                "{}",
                run.all()
            );
            assert_eq!(repo.git(&["for-each-ref", "refs/ai/tasks"]), "", "nothing is claimed, no attempt is spent");
            assert_eq!(requests(&server).await, 0);
        }
        let run = reconcile(&repo).await;
        run.expect_code(0);
        assert_eq!(status(&repo, "greet")["attempt"], 1, "the first attempt is the one that ran");
    });
}

#[test]
fn budgets_stop_spending_keep_the_partial_work_and_wait_for_a_retry() {
    with_server(|| async {
        let writes: Vec<Vec<(&str, Value)>> =
            (0..6).map(|i| vec![("write_file", json!({"path": format!("part{i}.py"), "content": "x\n"}))]).collect();
        let server = openai_server(HashMap::from([("greet", writes)])).await;
        let repo = repo(&server, "budget: { tokens_per_attempt: 250 }\n");
        let run = reconcile(&repo).await;
        run.expect_code(1);
        assert_eq!(requests(&server).await, 3, "240 tokens spent before the third request, 360 after it: no fourth");
        let greet = status(&repo, "greet");
        assert_eq!((greet["phase"].as_str(), greet["failure_type"].as_str()), (Some("BudgetExceeded"), Some("budget_exceeded")));
        assert_eq!(greet["message"], "stopped at the budget: the attempt's budget is spent: 360 of 250 tokens");
        assert_eq!(greet["cost"]["input_tokens"], 300);
        let transcript = repo.git(&["show", "refs/ai/tasks/hello/greet:attempts/1/transcript.jsonl"]);
        assert!(transcript.contains("part2.py") && transcript.contains("\"outcome\":\"budget_exceeded\""), "{transcript}");
        // It stays stopped: nothing more is spent until a person retries.
        reconcile(&repo).await.expect_code(1);
        assert_eq!(requests(&server).await, 3);
        let retry = repo.plancd(&["retry", "hello/greet"]);
        retry.expect_code(0);
    });
}

#[test]
fn plancd_plan_feeds_problems_back_and_writes_a_valid_plan() {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "models:\n  offline: { provider: scripted, file: .plancd/scripted.yaml }\nroles:\n  planner: { model: offline }\n  architect: { model: offline }\n  coder: { model: offline }\n",
    );
    let plan = |deps: &str| {
        format!(
            "todo_list_id: momentum\\ntitle: Momentum strategy\\ntasks:\\n  - id: t1_contract\\n    title: Write the contract\\n    agent_role: architect\\n    outputs: [contracts/momentum.json]\\n  - id: t2_code\\n    title: Implement it\\n    agent_role: coder\\n    dependencies: [{deps}]\\n    contract: contracts/momentum.json\\n    outputs: [momentum.py]\\n"
        )
    };
    repo.write(
        ".plancd/scripted.yaml",
        &format!("planner:\n  default:\n    - calls: [{{ submit_plan: {{ plan: \"{}\" }} }}]\n    - calls: [{{ submit_plan: {{ plan: \"{}\" }} }}]\n", plan("t1_contrct"), plan("t1_contract")),
    );
    repo.commit("config");
    let run = repo.plancd(&["plan", "Create momentum strategy", "-o", "plans/"]);
    run.expect_code(0);
    assert!(run.stdout.contains("t2_code      coder      t1_contract  Implement it"), "{}", run.stdout);
    assert!(run.stdout.contains("wrote plans/momentum.yaml (2 task(s), model scripted, 2 tries, 0 tokens"), "{}", run.stdout);
    repo.plancd(&["validate"]).expect_code(0);
    // It does not overwrite what exists.
    let again = repo.plancd(&["plan", "Create momentum strategy"]);
    again.expect_code(2);
    assert!(again.stderr.contains("momentum.yaml exists: pass --force to replace it"), "{}", again.stderr);
}

#[test]
fn the_pull_request_of_a_model_agents_result_shows_the_model_and_what_it_cost() {
    with_server(|| async {
        let server = openai_server(script()).await;
        let fake = crate::fake_github::FakeGitHub::start("", "ghs_pr_token").await;
        let remote = crate::util::bare();
        let forge = format!("forge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n", fake.api_url());
        let repo = repo(&server, &forge);
        repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
        repo.git(&["push", "-q", "origin", "main"]);
        let dir = repo.path().to_path_buf();
        let run = tokio::task::spawn_blocking(move || {
            plancd_env(&dir, &["reconcile"], &[("MODEL_API_KEY", CANARY), ("GITHUB_TOKEN", "ghs_pr_token")])
        })
        .await
        .unwrap();
        run.expect_code(0);
        let pulls = fake.with(|s| s.pulls.clone());
        assert_eq!(pulls.len(), 2);
        let body = pulls[0]["body"].as_str().unwrap();
        // 4 replies of 100 + 20 tokens at $1 and $4 per million.
        for part in ["| model | `openai/qwen2.5-coder` |", "| cost | `$0.0007 (480 tokens)` |"] {
            assert!(body.contains(part), "{part} missing from\n{body}");
        }
        assert!(!fake.everything_sent().await.contains(CANARY), "the model's key reached GitHub");
    });
}

/// Seen: model tokens and dollars were registered metrics that nothing ever counted. Through a
/// running controller: the coder's and tester's tokens and dollars by workflow, role and model;
/// then, with the task refs gone and a pass requested, the same work replayed from the cache.
#[test]
fn a_controller_counts_model_tokens_dollars_and_cache_hits_by_workflow_role_and_model() {
    use crate::serve::{sample, scrape, start, wait_for};
    with_server(|| async {
        let server = openai_server(script()).await;
        let repo = repo(&server, "");
        tokio::task::spawn_blocking(move || {
            let c = start(&repo, &[("MODEL_API_KEY", CANARY)]);
            let coder = [("workflow", "hello"), ("role", "coder"), ("model", "default")];
            let tester_output = [("role", "tester"), ("direction", "output")];
            wait_for(Duration::from_secs(120), || sample(&scrape(&c), "plancd_model_tokens_total", &tester_output).unwrap_or(0.0) > 0.0);
            let m = scrape(&c);
            let tokens = |role: &str, direction: &str| {
                sample(&m, "plancd_model_tokens_total", &[coder[0], ("role", role), coder[2], ("direction", direction)])
            };
            assert_eq!((tokens("coder", "input"), tokens("coder", "output")), (Some(400.0), Some(80.0)), "{m}");
            assert_eq!((tokens("tester", "input"), tokens("tester", "output")), (Some(300.0), Some(60.0)), "{m}");
            let usd = sample(&m, "plancd_model_cost_usd_total", &coder).unwrap();
            assert!((usd - 0.00072).abs() < 1e-9, "{m}");
            wait_for(Duration::from_secs(30), || sample(&scrape(&c), "plancd_workflow_spend_usd", &[coder[0]]).unwrap_or(0.0) > 0.001);
            assert_eq!(sample(&m, "plancd_model_cache_hits_total", &coder), Some(0.0), "{m}");

            // The replay: every reply from the cache, nothing more spent.
            for name in repo.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks", "refs/heads/ai", "refs/tags/ai"]).lines() {
                repo.git(&["update-ref", "-d", name]);
            }
            repo.plancd(&["reconcile", "--request"]).expect_code(0);
            wait_for(Duration::from_secs(120), || sample(&scrape(&c), "plancd_model_cache_hits_total", &coder).unwrap_or(0.0) >= 4.0);
            let again = scrape(&c);
            assert_eq!(sample(&again, "plancd_model_tokens_total", &[coder[0], coder[1], ("direction", "input")]), Some(400.0), "{again}");
        })
        .await
        .unwrap();
    });
}
