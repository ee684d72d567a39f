//! The docker backend against a real engine: files in and out, commands, labels and sweeping.

use std::time::Duration;

use plancd_sandbox::docker::DockerSandbox;
use plancd_sandbox::{CopyOutLimits, FileEntry, Sandbox};

use crate::util::{docker, run, sh, small_spec};

#[test]
fn commands_run_in_a_container_with_files_in_and_out() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let session = sandbox.create(&small_spec()).await.unwrap();
        session.put_files(&[FileEntry::new("in/a.txt", "hello")]).await.unwrap();
        session.put_meta(&[FileEntry::new("task.json", "{}")]).await.unwrap();
        let out = sh(&*session, "pwd; id -u; cat in/a.txt; cat /run/plancd/task.json; echo made > out.txt; echo err >&2; exit 3", 30).await;
        let (stdout, stderr) = out.output_text();
        assert_eq!(out.exit_code, Some(3), "{out:?}");
        assert_eq!(stdout, "/workspace\n65534\nhello{}");
        assert_eq!(stderr, "err\n");
        let again = sh(&*session, "cat out.txt; touch /run/plancd/x 2>&1 || true", 30).await;
        assert!(again.output_text().0.starts_with("made\n"), "{again:?}");
        assert!(again.output_text().0.contains("Read-only file system"), "{again:?}");
        let files = session.get_files(&CopyOutLimits::default()).await.unwrap();
        let paths: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["in/a.txt", "out.txt"]);
        session.destroy().await.unwrap();
    });
}

#[test]
fn leftovers_of_a_crashed_owner_are_swept_at_connect() {
    run(Duration::from_secs(120), async {
        let Some(first) = docker().await else { return };
        let owner = format!("plancd-sweep-{}", std::process::id());
        let crashed = DockerSandbox::connect(&owner).await.unwrap();
        let mut spec = small_spec();
        spec.owner = owner.clone();
        let session = crashed.create(&spec).await.unwrap();
        // A crash: the session is never destroyed or dropped.
        std::mem::forget(session);
        let labelled = |d: &DockerSandbox| {
            let filters = std::collections::HashMap::from([("label", vec![format!("plancd.owner={owner}")])]);
            let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
            let client = d.client().clone();
            async move { client.list_containers(Some(options)).await.unwrap().len() }
        };
        assert_eq!(labelled(&crashed).await, 1, "the keeper is left behind");
        let again = DockerSandbox::connect(&owner).await.unwrap();
        assert_eq!(labelled(&again).await, 0, "connect swept it");
        assert_eq!(again.sweep().await.unwrap(), 0, "volumes went too");
        drop(first);
    });
}

#[test]
fn a_session_whose_containers_were_removed_is_gone() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let session = sandbox.create(&small_spec()).await.unwrap();
        assert_eq!(sandbox.sweep().await.unwrap(), 3, "the keeper and two volumes");
        let err = session.exec(&plancd_sandbox::ExecRequest::new(["true"], Duration::from_secs(10))).await.unwrap_err();
        assert!(matches!(err, plancd_sandbox::SandboxError::Gone(_)), "{err}");
    });
}
