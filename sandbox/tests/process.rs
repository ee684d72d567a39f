//! The process backend: what a command sees, gets and leaves behind.

use std::time::{Duration, Instant};

use plancd_sandbox::{CopyOutLimits, ExecRequest, FileEntry, Sandbox};

use crate::util::{process, run, sh, small_spec};

#[test]
fn commands_run_in_the_workspace_with_files_in_and_out() {
    run(Duration::from_secs(60), async {
        let sandbox = process();
        let session = sandbox.create(&small_spec()).await.unwrap();
        session.put_files(&[FileEntry::new("in/a.txt", "hello")]).await.unwrap();
        session.put_meta(&[FileEntry::new("task.json", "{}")]).await.unwrap();
        let script = "pwd; id -u; cat in/a.txt; cat /run/plancd/task.json; touch /run/plancd/x 2>/dev/null && echo META-WRITABLE; echo made > out.txt; echo err >&2; exit 3";
        let out = sh(&*session, script, 20).await;
        let (stdout, stderr) = out.output_text();
        assert_eq!(out.exit_code, Some(3), "{out:?}");
        assert_eq!(stdout, "/workspace\n65534\nhello{}");
        assert_eq!(stderr, "err\n");
        let files = session.get_files(&CopyOutLimits::default()).await.unwrap();
        let paths: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["in/a.txt", "out.txt"]);
        session.destroy().await.unwrap();
    });
}

/// Folders that hold `id` under the cgroup hierarchies and plancd's session folder.
fn traces_of(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for root in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/unified",
    ] {
        let dir = std::path::Path::new(root).join("plancd").join(id);
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo is readable");
    found.extend(mounts.lines().filter(|l| l.contains(id)).map(str::to_owned));
    let folder = std::env::temp_dir().join("plancd-sandbox").join(id);
    if folder.exists() {
        found.push(folder.display().to_string());
    }
    found
}

#[test]
fn sessions_leave_no_cgroups_mounts_or_folders_behind() {
    run(Duration::from_secs(60), async {
        let sandbox = process();
        let session = sandbox.create(&small_spec()).await.unwrap();
        let id = session.id().to_owned();
        assert!(!traces_of(&id).is_empty(), "a live session has a folder at least");
        for _ in 0..5 {
            assert!(session.exec(&ExecRequest::new(["true"], Duration::from_secs(10))).await.unwrap().success());
        }
        let daemon = sh(&*session, "sleep 300 & echo started", 10).await;
        assert_eq!(daemon.output_text().0, "started\n");
        let leaves: Vec<String> = traces_of(&id)
            .iter()
            .filter(|t| t.starts_with("/sys/"))
            .flat_map(|d| std::fs::read_dir(d).unwrap().flatten().filter(|e| e.path().is_dir()).map(|e| e.path().display().to_string()))
            .collect();
        assert!(leaves.is_empty(), "command leaves outlive their commands: {leaves:?}");
        let start = Instant::now();
        session.destroy().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(traces_of(&id), Vec::<String>::new());
    });
}

#[test]
fn only_standard_descriptors_reach_the_command() {
    run(Duration::from_secs(60), async {
        let sandbox = process();
        let session = sandbox.create(&small_spec()).await.unwrap();
        let out = sh(&*session, "python3 -c 'import os; print(sorted(os.listdir(\"/proc/self/fd\")))'", 20).await;
        assert_eq!(out.output_text().0.trim(), "['0', '1', '2', '3']", "{out:?}");
        session.destroy().await.unwrap();
    });
}

/// Not a test on its own: the crashing plancd of the test below (it runs only when asked).
#[test]
#[ignore = "run by sessions_of_a_crashed_plancd_are_swept_at_start"]
fn crash_helper() {
    if std::env::var("PLANCD_CRASH_HELPER").is_err() {
        return;
    }
    run(Duration::from_secs(120), async {
        let session = process().create(&small_spec()).await.unwrap();
        let out = sh(&*session, "sleep 300 & echo started", 10).await;
        assert!(out.success());
        println!("SESSION {}", session.id());
        std::mem::forget(session);
        tokio::time::sleep(Duration::from_secs(100)).await;
    });
}

#[test]
fn sessions_of_a_crashed_plancd_are_swept_at_start() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "process::crash_helper", "--nocapture", "--test-threads=1"])
        .env("PLANCD_CRASH_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let id = lines
        .map_while(Result::ok)
        .find_map(|l| l.split_once("SESSION ").map(|(_, id)| id.trim().to_owned()))
        .expect("the helper made a session");
    assert!(!traces_of(&id).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = process();
    assert_eq!(traces_of(&id), Vec::<String>::new(), "the crashed session's mount, folder and cgroups are gone");
}
