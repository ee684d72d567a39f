//! Docker sessions through the `plancd` binary against a real engine: a session dies with its
//! deadline even when plancd is killed, and the next start sweeps what is left.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{plancd_command, project_root};

/// Whether an engine answers and has the sandbox image; a visible skip otherwise, a failure
/// under PLANCD_REQUIRE_DOCKER=1.
pub(crate) fn engine_with_image() -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", "plancd-sandbox:python"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("PLANCD_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "PLANCD_REQUIRE_DOCKER=1 but no engine with plancd-sandbox:python answers"
        );
        eprintln!("skipping: no docker engine with plancd-sandbox:python");
    }
    ok
}

/// `docker ps` ids of the containers (running or not, with `all`) labelled with `owner`.
fn containers_of(owner: &str, all: bool) -> Vec<String> {
    let mut args = vec!["ps", "-q", "--no-trunc", "--filter"];
    let filter = format!("label=plancd.owner={owner}");
    args.push(&filter);
    if all {
        args.push("-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Host pids of processes but `except` whose command line holds `marker` (processes in
/// containers are host processes too).
fn processes_with(marker: &str, except: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != except && String::from_utf8_lossy(&cmdline).split('\0').any(|arg| arg == marker) {
            pids.push(pid);
        }
    }
    pids
}

fn owner_of(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("plancd-cli-{}-{pid}", host.trim())
}

fn remove_everything_of(owner: &str) {
    for id in containers_of(owner, true) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
    let filter = format!("label=plancd.owner={owner}");
    let out = Command::new("docker").args(["volume", "ls", "-q", "--filter", &filter]).output().unwrap();
    for volume in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("docker").args(["volume", "rm", "-f", volume]).output();
    }
}

#[test]
fn a_killed_plancd_leaves_no_container_of_its_session_past_the_deadline() {
    if !engine_with_image() {
        return;
    }
    const DEADLINE: u64 = 5;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let marker = format!("600.{nanos:09}");
    let deadline = DEADLINE.to_string();
    let args = ["sandbox", "run", "--backend", "docker", "--timeout", &deadline, "--", "sleep", &marker];
    let mut child = plancd_command(&project_root(), &args, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let (pid, owner) = (child.id(), owner_of(child.id()));

    // The command has started at the latest when its process shows.
    let waiting = Instant::now();
    while processes_with(&marker, child.id()).is_empty() {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the command never started");
        assert!(child.try_wait().unwrap().is_none(), "plancd ended before its command started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    assert!(!containers_of(&owner, false).is_empty(), "the session's containers carry the owner label {owner}");

    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap(); // SIGKILL: plancd gets no chance to clean up
    child.wait().unwrap();

    std::thread::sleep((started + Duration::from_secs(DEADLINE + 2)).saturating_duration_since(Instant::now()));
    let left = containers_of(&owner, true);
    let alive = processes_with(&marker, pid);
    remove_everything_of(&owner);
    assert!(left.is_empty(), "2 s past the deadline, containers of the killed plancd's session remain: {left:?}");
    assert!(alive.is_empty(), "2 s past the deadline, the command still runs: {alive:?}");
}

#[test]
fn a_start_of_plancd_sweeps_the_volumes_a_killed_plancd_left() {
    if !engine_with_image() {
        return;
    }
    let args = ["sandbox", "run", "--backend", "docker", "--timeout", "30", "--", "sleep", "30"];
    let mut child = plancd_command(&project_root(), &args, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let owner = owner_of(child.id());
    let volumes = || {
        let filter = format!("label=plancd.owner={owner}");
        let out = Command::new("docker").args(["volume", "ls", "-q", "--filter", &filter]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().count()
    };
    let waiting = Instant::now();
    while containers_of(&owner, false).len() < 2 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the session never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(volumes(), 2, "the killed plancd left its workspace and metadata volumes");

    let next = plancd_command(&project_root(), &["sandbox", "run", "--backend", "docker", "--", "true"], &[]).output().unwrap();
    let (left_volumes, left_containers) = (volumes(), containers_of(&owner, true));
    remove_everything_of(&owner);
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert_eq!((left_volumes, left_containers.len()), (0, 0), "the next start swept the dead plancd's volumes and containers");
}
