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
        let out = sh(&*session, "pwd; id -u; cat in/a.txt; echo made > out.txt; echo err >&2; exit 3", 20).await;
        let (stdout, stderr) = out.output_text();
        assert_eq!(out.exit_code, Some(3), "{out:?}");
        assert_eq!(stdout, "/workspace\n65534\nhello");
        assert_eq!(stderr, "err\n");
        let files = session.get_files(&CopyOutLimits::default()).await.unwrap();
        let paths: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["in/a.txt", "out.txt"]);
        session.destroy().await.unwrap();
    });
}

#[test]
fn a_command_takes_little_more_than_bubblewrap_itself() {
    run(Duration::from_secs(60), async {
        let sandbox = process();
        let session = sandbox.create(&small_spec()).await.unwrap();
        let start = Instant::now();
        for _ in 0..10 {
            assert!(session.exec(&ExecRequest::new(["true"], Duration::from_secs(10))).await.unwrap().success());
        }
        eprintln!("10 execs of true: {:?}", start.elapsed());
        session.destroy().await.unwrap();
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
