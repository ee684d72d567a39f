//! Benchmarks of model agents, each printed next to a baseline measured in the same process:
//!
//! 1. the agent loop's overhead per turn, excluding the model: a conversation of 40 turns
//!    (each writes a 2 KiB file) against a provider that answers at once in this process and
//!    an in-memory session, through the whole loop (cache key, budget, transcript, stuck
//!    detection, tool dispatch) versus the same provider and tool calls made directly;
//! 2. the same with the response cache in a git repository: the first run (every reply
//!    stored) and a re-run, which must be served from the cache and spend 0 tokens.
//!
//! Run with `cargo bench --bench agent`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use plancd::agent::model::budget::{Ledger, Meter};
use plancd::agent::model::cache::Cache;
use plancd::agent::model::transcript::Transcript;
use plancd::agent::model::{ChatModel, ChatRequest, ChatResponse, Message, Model, ModelError, ReplyKey, ToolCall, Usage};
use plancd::agent::tools::{self, Workspace};
use plancd::agent::turns::{Conversation, End, TurnLimits};
use plancd::spec::Role;
use plancd::state::{Cost, Store};
use plancd_sandbox::fake::FakeSandbox;
use plancd_sandbox::{ExecOutcome, Sandbox, Session, SessionSpec};
use serde_json::json;

const TURNS: u32 = 40;

/// Answers at once: turn n writes `src/f{n}.py` (2 KiB), the last turn finishes.
struct Instantly;

fn calls(turn: u32) -> Vec<ToolCall> {
    let (name, arguments) = if turn < TURNS {
        ("write_file", json!({"path": format!("src/f{turn}.py"), "content": format!("# {turn}\n{}", "x = 1\n".repeat(340))}))
    } else {
        ("finish", json!({"summary": "done"}))
    };
    vec![ToolCall { id: format!("call_{turn}"), name: name.into(), arguments }]
}

#[async_trait]
impl ChatModel for Instantly {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let usage = Usage { input_tokens: 1000, output_tokens: 500, estimated: false };
        Ok(ChatResponse { text: String::new(), calls: calls(req.turn()), usage, stop_reason: "tool_calls".into() })
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        system: plancd::agent::roles::embedded_prompt(Role::Coder).into(),
        messages: vec![Message::User { text: "Write the files.".into() }],
        tools: tools::specs(Role::Coder),
        max_output_tokens: 4096,
        temperature: None,
        key: ReplyKey { workflow: "wf".into(), task: "t".into(), attempt: 1 },
    }
}

async fn session() -> Box<dyn Session> {
    let fake = FakeSandbox::new(|_, _| ExecOutcome { exit_code: Some(0), ..Default::default() });
    fake.create(&SessionSpec::default()).await.expect("the fake creates sessions")
}

/// One conversation through the loop: (time, turns, tokens spent).
async fn through_the_loop(model: &Model) -> (Duration, u32, Cost) {
    let session = session().await;
    let ledger = Ledger::default();
    let meter = Meter::new(model.limits, &ledger, "wf", Cost::default());
    let transcript = Transcript::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(600);
    let workspace = Workspace { session: session.as_ref(), pinned: &[], command_timeout: Duration::from_secs(5), deadline };
    let limits = TurnLimits { max_turns: TURNS + 1, max_idle_turns: 5, validation_tries: 3, deadline };
    let conversation =
        Conversation { model, meter: &meter, transcript: &transcript, workspace: &workspace, limits, contracts: Vec::new(), live: None };
    let started = Instant::now();
    let report = conversation.run(request()).await.expect("the fake sandbox does not fail");
    assert!(matches!(report.end, End::Finished(_)), "{:?}", report.end);
    (started.elapsed(), report.turns, meter.spent())
}

/// The baseline: the same provider calls and tool calls, made directly.
async fn directly() -> Duration {
    let session = session().await;
    let workspace = Workspace {
        session: session.as_ref(),
        pinned: &[],
        command_timeout: Duration::from_secs(5),
        deadline: Instant::now() + Duration::from_secs(600),
    };
    let mut req = request();
    let started = Instant::now();
    for _ in 0..TURNS {
        let reply = Instantly.complete(&req).await.expect("instant replies do not fail");
        let mut results = Vec::new();
        for call in &reply.calls {
            results.push(workspace.call(call).await.expect("the fake sandbox does not fail").0);
        }
        req.messages.push(Message::Assistant { text: reply.text, calls: reply.calls });
        req.messages.push(Message::Tool { results });
    }
    started.elapsed()
}

fn per_turn(d: Duration, turns: u32) -> f64 {
    d.as_secs_f64() * 1000.0 / f64::from(turns)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let rounds = 20;
        let (mut looped, mut direct) = (Duration::ZERO, Duration::ZERO);
        let model = Model::from_provider("instant", Box::new(Instantly));
        for _ in 0..rounds {
            looped += through_the_loop(&model).await.0;
            direct += directly().await;
        }
        let (l, d) = (per_turn(looped, rounds * TURNS), per_turn(direct, rounds * TURNS));
        println!("agent loop, {TURNS} turns x {rounds} conversations, instant in-process provider:");
        println!("  through the loop: {l:.3} ms/turn; provider and tools called directly: {d:.3} ms/turn; loop overhead: {:.3} ms/turn (aim <= 1 ms)", l - d);

        let dir = tempfile::tempdir().expect("a temporary folder");
        git2::Repository::init(dir.path()).expect("a repository");
        let store = Arc::new(Store::open(dir.path()).expect("the repository opens"));
        let cached = Model::from_provider("instant", Box::new(Instantly)).with_cache(Cache::new(store));
        let (first, turns, spent) = through_the_loop(&cached).await;
        let (again, _, respent) = through_the_loop(&cached).await;
        println!("with the response cache in a git repository:");
        println!("  first run: {:.3} ms/turn, {} tokens; re-run: {:.3} ms/turn, {} tokens (aim 0)", per_turn(first, turns), spent.tokens(), per_turn(again, turns), respent.tokens());
        assert_eq!(respent.tokens(), 0, "a cached re-run spends nothing");
    });
}
