//! The agent loop: files written through tool calls with each provider's real shapes over
//! HTTP; finishing, stuck detection, turn and time limits, the architect's contract check,
//! the debugger's spec mismatch, and pinned files.

use std::time::{Duration, Instant};

use plancd_sandbox::{FileEntry, Sandbox, Session, SessionSpec};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use super::model::budget::{Ledger, Meter};
use super::model::testing::{self, Server, canned};
use super::model::transcript::Transcript;
use super::model::{ChatRequest, Message, Model, ReplyKey, open};
use super::tools::{self, Workspace};
use super::turns::{Conversation, End, LoopReport, TurnLimits};
use crate::config::{Config, Env};
use crate::spec::{DirSource, Role};
use crate::state::Cost;

fn limits() -> TurnLimits {
    TurnLimits { max_turns: 10, max_idle_turns: 4, validation_tries: 2, deadline: Instant::now() + Duration::from_secs(30) }
}

async fn converse(model: &Model, session: &dyn Session, role: Role, limits: TurnLimits, contracts: Vec<String>) -> LoopReport {
    converse_live(model, session, role, limits, contracts, None).await
}

async fn converse_live(
    model: &Model,
    session: &dyn Session,
    role: Role,
    limits: TurnLimits,
    contracts: Vec<String>,
    live: Option<&crate::live::LiveAttempt>,
) -> LoopReport {
    let ledger = Ledger::default();
    let meter = Meter::new(model.limits, &ledger, "wf", Cost::default());
    let transcript = Transcript::new(Vec::new());
    let pinned = vec!["tests/test_pinned.py".to_owned()];
    let workspace = Workspace { session, pinned: &pinned, command_timeout: Duration::from_secs(5), deadline: limits.deadline };
    let conversation = Conversation { model, meter: &meter, transcript: &transcript, workspace: &workspace, limits, contracts, live };
    let req = ChatRequest {
        system: "You write files.".into(),
        messages: vec![Message::User { text: "Write hello.py.".into() }],
        tools: tools::specs(role),
        max_output_tokens: 512,
        temperature: None,
        key: ReplyKey { workflow: "wf".into(), task: "t".into(), attempt: 1 },
    };
    conversation.run(req).await.unwrap()
}

async fn session() -> Box<dyn Session> {
    let session = tools_fake().create(&SessionSpec::default()).await.unwrap();
    session.put_files(&[FileEntry::new("tests/test_pinned.py", "pinned")]).await.unwrap();
    session
}

fn tools_fake() -> plancd_sandbox::fake::FakeSandbox {
    plancd_sandbox::fake::FakeSandbox::new(|req, files| {
        let out = match req.argv[0].as_str() {
            "cat" => files.get(&req.argv[2]).map(|f| f.data.clone()),
            _ => Some(b"ran".to_vec()),
        };
        plancd_sandbox::ExecOutcome {
            exit_code: Some(if out.is_some() { 0 } else { 1 }),
            stdout: out.unwrap_or_default(),
            ..Default::default()
        }
    })
}

async fn file(session: &dyn Session, path: &str) -> Option<String> {
    let files = session.get_files(&Default::default()).await.unwrap().files;
    files.into_iter().find(|f| f.path == path).map(|f| String::from_utf8(f.data).unwrap())
}

/// Each provider's reply shapes for: write hello.py, then finish.
fn provider_replies(provider: &str) -> (String, [Value; 2]) {
    let args = json!({"path": "hello.py", "content": "print('hello')\n"});
    let done = json!({"summary": "wrote hello.py"});
    match provider {
        "openai" => {
            let call = |id: &str, name: &str, a: &Value| {
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": a.to_string()}}]}, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}})
            };
            ("/v1/chat/completions".into(), [call("call_a", "write_file", &args), call("call_b", "finish", &done)])
        }
        "anthropic" => {
            let call = |id: &str, name: &str, a: &Value| {
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                "content": [{"type": "tool_use", "id": id, "name": name, "input": a}], "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 9}})
            };
            ("/v1/messages".into(), [call("toolu_a", "write_file", &args), call("toolu_b", "finish", &done)])
        }
        _ => {
            let call = |name: &str, a: &Value| {
                json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": a}}]},
                "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 9}})
            };
            ("/v1beta/models/m:generateContent".into(), [call("write_file", &args), call("finish", &done)])
        }
    }
}

#[tokio::test]
async fn the_agent_writes_files_through_tool_calls_with_every_provider() {
    testing::timeout(async {
        for provider in ["openai", "anthropic", "gemini"] {
            let server = Server::start().await;
            let (at, [first, second]) = provider_replies(provider);
            for (priority, reply) in [(1, first), (2, second)] {
                Mock::given(method("POST"))
                    .and(wiremock::matchers::path(at.clone()))
                    .respond_with(ResponseTemplate::new(200).set_body_json(reply))
                    .up_to_n_times(1)
                    .with_priority(priority)
                    .expect(1)
                    .mount(&server.inner)
                    .await;
            }
            let base = if provider == "openai" { format!("{}/v1", server.uri()) } else { server.uri() };
            let config: Config =
                serde_json::from_value(json!({"models": {"m": {"provider": provider, "base_url": base, "model": "m"}}})).unwrap();
            let model = open("m", &config, &Env::default(), &DirSource::new(std::env::temp_dir()), None).unwrap();
            let session = session().await;
            let report = converse(&model, session.as_ref(), Role::Coder, limits(), vec![]).await;
            assert!(matches!(&report.end, End::Finished(s) if s == "wrote hello.py"), "{provider}: {report:?}");
            assert_eq!(file(session.as_ref(), "hello.py").await.as_deref(), Some("print('hello')\n"), "{provider}");
            let second = &server.bodies().await[1];
            assert!(second.to_string().contains("wrote hello.py (15 bytes)"), "{provider} did not get the tool result back: {second}");
        }
    })
    .await;
}

#[tokio::test]
async fn each_turn_and_call_is_told_to_the_live_attempt_as_it_happens() {
    testing::timeout(async {
        let git = tempfile::tempdir().unwrap();
        let key = crate::state::TaskKey::new("wf", "t");
        let live = crate::live::LiveAttempt::start(git.path(), &key, 1).unwrap();
        live.step(crate::live::Step::Agent);
        let session = session().await;
        let model = canned(vec![
            vec![("write_file", json!({"path": "hello.py", "content": "print(1)\n"}))],
            vec![("finish", json!({"summary": "done"}))],
        ]);
        let report = converse_live(&model, session.as_ref(), Role::Coder, limits(), vec![], Some(&live)).await;
        assert!(matches!(report.end, End::Finished(_)), "{report:?}");
        let log = std::fs::read_to_string(crate::live::attempt_dir(git.path(), &key, 1).join("agent.log")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 4, "{log}");
        assert!(lines[0].starts_with("turn 1 (") && lines[0].contains("[so far: "), "{log}");
        assert!(lines[1].contains("write_file hello.py"), "{log}");
        assert!(lines[2].starts_with("turn 2 ("), "{log}");
    })
    .await;
}

#[tokio::test]
async fn the_same_call_with_the_same_result_three_times_is_stuck() {
    testing::timeout(async {
        let session = session().await;
        let model = canned(vec![vec![("read_file", json!({"path": "tests/test_pinned.py"}))]]);
        let report = converse(&model, session.as_ref(), Role::Coder, limits(), vec![]).await;
        match report.end {
            End::Stuck(why) => {
                assert_eq!(why, "`read_file tests/test_pinned.py` called 3 times with the same arguments and the same result")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(report.turns, 3);
    })
    .await;
}

#[tokio::test]
async fn turns_without_a_file_change_and_too_many_turns_are_stuck() {
    testing::timeout(async {
        let session = session().await;
        let reads: Vec<Vec<(&str, Value)>> = (0..20).map(|i| vec![("run", json!({"cmd": format!("echo {i}")}))]).collect();
        let report = converse(&canned(reads.clone()), session.as_ref(), Role::Coder, limits(), vec![]).await;
        assert!(matches!(&report.end, End::Stuck(why) if why == "4 turns in a row without changing a file"), "{report:?}");
        let writes: Vec<Vec<(&str, Value)>> =
            (0..20).map(|i| vec![("write_file", json!({"path": "a.txt", "content": i.to_string()}))]).collect();
        let report = converse(&canned(writes), session.as_ref(), Role::Coder, TurnLimits { max_turns: 5, ..limits() }, vec![]).await;
        assert!(matches!(&report.end, End::Stuck(why) if why.starts_with("no `finish` after 5 turns")), "{report:?}");
        let late = TurnLimits { deadline: Instant::now(), ..limits() };
        assert!(matches!(converse(&canned(reads), session.as_ref(), Role::Coder, late, vec![]).await.end, End::TimedOut));
    })
    .await;
}

#[tokio::test]
async fn the_architect_finishes_only_with_a_valid_contract() {
    testing::timeout(async {
        let bad = json!({"path": "contracts/c.json", "content": "{\"contract_id\": \"c\", \"interfaces\": [{\"name\": \"f\"}]}"});
        let good = json!({"path": "contracts/c.json", "content": "{\"contract_id\": \"c\", \"interfaces\": [{\"name\": \"f\", \"type\": \"function\", \"signature\": \"def f()\"}]}"});
        let finish = ("finish", json!({"summary": "contract written"}));
        let contracts = vec!["contracts/c.json".to_owned()];
        let session = session().await;
        let model = canned(vec![vec![("write_file", bad.clone()), finish.clone()], vec![("write_file", good), finish.clone()]]);
        let report = converse(&model, session.as_ref(), Role::Architect, limits(), contracts.clone()).await;
        assert!(matches!(&report.end, End::Finished(_)), "{report:?}");
        assert_eq!(report.turns, 2);
        let session = self::session().await;
        let model = canned(vec![vec![("write_file", bad), finish]]);
        match converse(&model, session.as_ref(), Role::Architect, limits(), contracts).await.end {
            End::InvalidContract(why) => assert!(why.contains("missing required field `type`"), "{why}"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn the_debugger_can_report_a_spec_mismatch_and_nobody_writes_pinned_files() {
    testing::timeout(async {
        let session = session().await;
        let model = canned(vec![
            vec![("write_file", json!({"path": "tests/test_pinned.py", "content": "assert True"}))],
            vec![("finish", json!({"summary": "the tests want 3 windows, the contract 2", "result": "spec_mismatch"}))],
        ]);
        let report = converse(&model, session.as_ref(), Role::Debugger, limits(), vec![]).await;
        assert!(matches!(&report.end, End::SpecMismatch(s) if s.contains("3 windows")), "{report:?}");
        assert_eq!(file(session.as_ref(), "tests/test_pinned.py").await.as_deref(), Some("pinned"));
        assert!(
            report.log.contains("write_file tests/test_pinned.py -> `tests/test_pinned.py` is a pinned acceptance test"),
            "{}",
            report.log
        );
    })
    .await;
}
