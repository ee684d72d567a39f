//! The model gateway's overhead, each figure printed next to the same request made directly to
//! the same local upstream (the fake that speaks OpenAI's wire format) in the same process:
//!
//! 1. a small chat completion: the round trip through the gateway versus direct;
//! 2. a streamed reply of 2,000 tokens: time to the first byte and to the last.
//!
//! The way through the gateway is the one a sandbox takes: TCP to a relay (as the session's
//! forwarder does) that carries each connection to the gateway's unix socket, then the
//! gateway (token, cache lookup, budget, metering, transcript) and the upstream.
//!
//! Run with `cargo bench --bench gateway`.

use std::path::Path;
use std::time::{Duration, Instant};

use plancd::agent::model::budget::Ledger;
use plancd::config::{Config, Env};
use plancd::gateway::fake::{FakeConfig, FakeUpstream};
use plancd::gateway::{Gateway, Opening, Upstream};
use plancd::state::Cost;
use serde_json::json;

const KEY: &str = "sk-bench";
const SMALL: usize = 300;
const STREAMS: usize = 30;

/// A TCP port that relays every connection to `socket`, as a session's forwarder does.
async fn relay(socket: &Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let socket = socket.to_owned();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    url
}

async fn gateway(fake: &FakeUpstream) -> (Gateway, String, String) {
    let config: Config = serde_json::from_value(json!({"models": {"default": {
        "provider": "openai", "base_url": fake.base_url("openai"), "model": "m", "api_key_env": "KEY"}}}))
    .expect("a valid configuration");
    let upstream = Upstream::open("default", &config, &Env::from_pairs([("KEY", KEY)])).expect("the model opens");
    let opening = Opening { upstream, ledger: Ledger::default(), workflow: "wf".into(), task_spent: Cost::default(), cache: None };
    let gateway = Gateway::open(opening).await.expect("the gateway starts");
    let url = relay(gateway.socket()).await;
    let token = gateway.env().into_iter().find(|(k, _)| k == "OPENAI_API_KEY").expect("a token").1;
    (gateway, url, token)
}

/// One chat completion at `base` (`.../v1`): the time to the first byte and to the last.
async fn ask(client: &reqwest::Client, base: &str, token: &str, stream: bool) -> (Duration, Duration) {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "write add"}], "stream": stream});
    let started = Instant::now();
    let mut response = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("a reply");
    assert!(response.status().is_success(), "{}", response.status());
    let mut first = None;
    while let Some(chunk) = response.chunk().await.expect("the body") {
        if !chunk.is_empty() {
            first.get_or_insert(started.elapsed());
        }
    }
    (first.unwrap_or_default(), started.elapsed())
}

/// The median of `n` runs of [`ask`]: (first byte, whole).
async fn median(client: &reqwest::Client, base: &str, token: &str, stream: bool, n: usize) -> (Duration, Duration) {
    let mut firsts = Vec::with_capacity(n);
    let mut totals = Vec::with_capacity(n);
    for _ in 0..n {
        let (first, total) = ask(client, base, token, stream).await;
        firsts.push(first);
        totals.push(total);
    }
    firsts.sort();
    totals.sort();
    (firsts[n / 2], totals[n / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench() {
    let client = plancd::agent::model::http::client();
    let small = FakeUpstream::start(FakeConfig::new(KEY, "def add(a, b):\n    return a + b\n")).await.expect("the fake starts");
    let (_g, through, token) = gateway(&small).await;
    let direct = small.base_url("openai");
    // Warm both ways (connections, lazy statics).
    median(&client, &direct, KEY, false, 20).await;
    median(&client, &format!("{through}/v1"), &token, false, 20).await;
    let (_, d) = median(&client, &direct, KEY, false, SMALL).await;
    let (_, g) = median(&client, &format!("{through}/v1"), &token, false, SMALL).await;
    println!(
        "small request: direct {:.3} ms, through the gateway {:.3} ms: {:+.3} ms added ({:.2}x), median of {SMALL}",
        ms(d),
        ms(g),
        ms(g) - ms(d),
        g.as_secs_f64() / d.as_secs_f64()
    );

    let words = "token ".repeat(2000);
    let long = FakeUpstream::start(FakeConfig::new(KEY, &words)).await.expect("the fake starts");
    let (_g2, through, token) = gateway(&long).await;
    let direct = long.base_url("openai");
    median(&client, &direct, KEY, true, 3).await;
    median(&client, &format!("{through}/v1"), &token, true, 3).await;
    let (df, dt) = median(&client, &direct, KEY, true, STREAMS).await;
    let (gf, gt) = median(&client, &format!("{through}/v1"), &token, true, STREAMS).await;
    println!(
        "streamed 2,000-token reply: first byte direct {:.3} ms, through {:.3} ms ({:.2}x); whole stream direct {:.2} ms, through {:.2} ms ({:.2}x), median of {STREAMS}",
        ms(df),
        ms(gf),
        gf.as_secs_f64() / df.as_secs_f64(),
        ms(dt),
        ms(gt),
        gt.as_secs_f64() / dt.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(bench());
}
