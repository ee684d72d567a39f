//! The host side of the suite: what attacks aim at, and the evidence that they missed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Host fixtures: a loopback listener, a canary process and file, and plancd's environment.
pub struct Host {
    /// Port of the listener on the host's 127.0.0.1.
    pub port: u16,
    hits: Arc<AtomicUsize>,
    listener: JoinHandle<()>,
    canary: std::sync::Mutex<std::process::Child>,
    /// The canary process's pid (as the host sees it).
    pub canary_pid: u32,
    /// A word only the canary's command line holds.
    pub canary_marker: String,
    /// A secret only the canary's environment holds.
    pub canary_secret: String,
    /// A file in /root holding `canary_secret`, when /root is writable.
    pub root_canary: Option<PathBuf>,
    /// plancd's own environment values worth hiding (long enough to be recognised).
    pub env_values: Vec<(String, String)>,
}

fn nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

impl Host {
    /// Starts the fixtures.
    pub async fn start() -> std::io::Result<Host> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let listener = tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let n = nonce();
        let canary_marker = format!("86400.{}", n.chars().filter(char::is_ascii_digit).take(12).collect::<String>());
        let canary_secret = format!("plancd-canary-secret-{n}");
        let canary = std::process::Command::new("sleep")
            .arg(&canary_marker)
            .env("PLANCD_CANARY_SECRET", &canary_secret)
            .stdin(std::process::Stdio::null())
            .spawn()?;
        let canary_pid = canary.id();
        let root_canary = PathBuf::from(format!("/root/.plancd-canary-{n}"));
        let root_canary = std::fs::write(&root_canary, &canary_secret).ok().map(|()| root_canary);
        Ok(Host {
            port,
            hits,
            listener,
            canary: std::sync::Mutex::new(canary),
            canary_pid,
            canary_marker,
            canary_secret,
            root_canary,
            env_values: secret_like_env(),
        })
    }

    /// Connections the listener accepted.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Whether the canary process still runs.
    pub fn canary_alive(&self) -> bool {
        let mut child = self.canary.lock().expect("the canary lock is never poisoned");
        matches!(child.try_wait(), Ok(None))
    }

    /// Which of the host's secrets `text` holds (names only).
    pub fn leaks_in(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = self.env_values.iter().filter(|(_, v)| text.contains(v.as_str())).map(|(k, _)| k.clone()).collect();
        if text.contains(&self.canary_secret) {
            found.push("PLANCD_CANARY_SECRET".to_owned());
        }
        found
    }

    /// Stops the fixtures.
    pub fn stop(&self) {
        self.listener.abort();
        if let Ok(mut child) = self.canary.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(file) = &self.root_canary {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
    }
}

/// plancd's environment values a sandbox must not see: long enough to be recognised, and
/// not equal to what a sandbox has anyway (its own defaults).
fn secret_like_env() -> Vec<(String, String)> {
    let ordinary = ["C.UTF-8", "/tmp", "/bin/sh", "/bin/bash", "/usr/bin", "en_US.UTF-8", "xterm-256color", "/workspace"];
    std::env::vars().filter(|(_, v)| v.len() >= 6 && !ordinary.contains(&v.as_str()) && v != crate::DEFAULT_PATH).collect()
}
