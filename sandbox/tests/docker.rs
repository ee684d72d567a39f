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

/// Files larger than the keeper's own needs go in whole: its file size limit is the
/// workspace's, and so is its memory beyond its own (the workspace is a tmpfs, charged to the
/// writer).
#[test]
fn files_of_several_mebibytes_go_in_and_come_out_whole() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let session = sandbox.create(&small_spec()).await.unwrap();
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        let mut files = vec![FileEntry::new("big.bin", data.clone())];
        files.extend((0..10).map(|i| FileEntry::new(format!("more/{i}.bin"), vec![i as u8; 4 << 20])));
        session.put_files(&files).await.unwrap();
        let out = sh(&*session, "wc -c < big.bin; cat more/* | wc -c", 30).await;
        assert_eq!(out.output_text().0, format!("{}\n{}\n", 3u32 << 20, 40u32 << 20), "{out:?}");
        let files = session.get_files(&CopyOutLimits::default()).await.unwrap();
        assert_eq!(files.files.iter().find(|f| f.path == "big.bin").map(|f| &f.data), Some(&data));
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
        assert_eq!(labelled(&crashed).await, 2, "the keeper and the waiting runner are left behind");
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
        assert_eq!(sandbox.sweep().await.unwrap(), 4, "the keeper, the waiting runner and two volumes");
        let err = session.exec(&plancd_sandbox::ExecRequest::new(["true"], Duration::from_secs(10))).await.unwrap_err();
        assert!(matches!(err, plancd_sandbox::SandboxError::Gone(_)), "{err}");
    });
}

/// Names of the containers, running or not, labelled with `session`.
async fn containers_of(sandbox: &DockerSandbox, session: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([("label", vec![format!("plancd.session={session}")])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let listed = sandbox.client().list_containers(Some(options)).await.expect("the engine lists containers");
    listed.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
}

#[test]
fn a_command_dies_at_its_deadline_on_the_engine_side_when_plancd_stops_watching() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let session = std::sync::Arc::new(sandbox.create(&small_spec()).await.unwrap());
        let id = session.id().to_owned();
        let running = std::sync::Arc::clone(&session);
        // plancd's side of the exec (its timer, its kill) goes away mid-command.
        let exec = tokio::spawn(async move { sh(&**running, "sleep 600", 2).await });
        tokio::time::sleep(Duration::from_millis(1000)).await;
        exec.abort();
        let commands = |names: Vec<String>| names.into_iter().filter(|n| !n.ends_with("-keeper")).collect::<Vec<_>>();
        assert_eq!(commands(containers_of(&sandbox, &id).await).len(), 1, "the command's container runs");
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(commands(containers_of(&sandbox, &id).await), Vec::<String>::new(), "gone 2 s past the deadline");
        let again = sh(&**session, "echo still here", 10).await;
        assert_eq!(again.output_text().0, "still here\n", "the session lives on: {again:?}");
        let session = std::sync::Arc::try_unwrap(session).ok().expect("the aborted exec let go of the session");
        session.destroy().await.unwrap();
        sandbox.settle().await;
    });
}

#[test]
fn arguments_environment_folders_and_input_reach_commands_as_given() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let mut spec = small_spec();
        spec.env = vec![("MULTI".into(), "a\nb 'c'".into())];
        let session = sandbox.create(&spec).await.unwrap();
        session.put_files(&[FileEntry::new("sub/x.txt", "x")]).await.unwrap();
        for round in 0..3 {
            let mut req = plancd_sandbox::ExecRequest::new(
                [
                    "python3",
                    "-c",
                    "import os, sys; print(os.getcwd(), repr(sys.argv[1:]), repr(os.environ['MULTI']), repr(sys.stdin.read()), sorted(os.environ))",
                    "it's",
                    "$HOME `id`",
                    "two\nlines",
                ],
                Duration::from_secs(20),
            );
            req.cwd = "sub".into();
            req.stdin = format!("input {round}").into_bytes();
            let out = session.exec(&req).await.unwrap();
            let want = format!(
                "/workspace/sub [\"it's\", '$HOME `id`', 'two\\nlines'] \"a\\nb 'c'\" 'input {round}' ['HOME', 'LANG', 'MULTI', 'PATH', 'TMPDIR']\n"
            );
            assert_eq!(out.output_text().0, want, "round {round}: {out:?}");
        }
        let code = sh(&*session, "exit 7", 10).await;
        assert_eq!(code.exit_code, Some(7));
        let late = sh(&*session, "sleep 30", 1).await;
        assert!(late.timed_out && late.exit_code.is_none(), "{late:?}");
        session.destroy().await.unwrap();
        sandbox.settle().await;
        assert_eq!(sandbox.sweep().await.unwrap(), 0, "destroy and settle left nothing");
    });
}

#[test]
fn pooled_sessions_are_used_once_and_replaced() {
    run(Duration::from_secs(180), async {
        let Some(sandbox) = docker().await else { return };
        sandbox.keep_warm(1);
        let spec = small_spec();
        sandbox.warm(&spec).await;
        let wait_ready = || async {
            let start = std::time::Instant::now();
            while sandbox.warm_sessions(&spec).await == 0 {
                assert!(start.elapsed() < Duration::from_secs(60), "the pool never filled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        wait_ready().await;
        let first = sandbox.create(&spec).await.unwrap();
        let out = sh(&*first, "echo x > /workspace/mark && echo ok", 10).await;
        assert_eq!(out.output_text().0, "ok\n");
        let first_id = first.id().to_owned();
        first.destroy().await.unwrap();
        wait_ready().await;
        let second = sandbox.create(&spec).await.unwrap();
        assert_ne!(second.id(), first_id, "a fresh session");
        let out = sh(&*second, "ls -A /workspace; id -u; cat /proc/self/status | grep -i '^NoNewPrivs\\|^Seccomp:\\|^CapEff'", 10).await;
        let text = out.output_text().0;
        assert!(!text.contains("mark"), "nothing of an earlier session: {text}");
        assert!(text.contains("65534") && text.contains("NoNewPrivs:\t1") && text.contains("Seccomp:\t2"), "{text}");
        assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
        second.destroy().await.unwrap();
        sandbox.settle().await;
        assert_eq!(sandbox.warm_sessions(&spec).await, 0, "settle gave the warm sessions up");
        assert_eq!(sandbox.sweep().await.unwrap(), 0, "and removed them");
    });
}

/// A tag moved to another image (a rebuild of the sandbox image or of an environment) while
/// sessions of the old one are warm: the next session runs the image the tag names now, and
/// the warm one of the old image is never handed out.
#[test]
fn a_warm_session_is_never_taken_for_a_tag_that_moved_to_another_image() {
    run(Duration::from_secs(180), async {
        let Some(sandbox) = docker().await else { return };
        let tag = format!("plancd-test-retag:{}", std::process::id());
        let docker = |args: &[&str]| {
            let out = std::process::Command::new("docker").args(args).output().unwrap();
            assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        docker(&["tag", plancd_sandbox::docker::DEFAULT_IMAGE, &tag]);
        let mut spec = small_spec();
        spec.image = Some(tag.clone());
        sandbox.keep_warm(1);
        sandbox.warm(&spec).await;
        let start = std::time::Instant::now();
        while sandbox.warm_sessions(&spec).await == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "the pool never filled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The rebuilt image: the old one with a marker file, under the same tag.
        let builder = docker(&["create", plancd_sandbox::docker::DEFAULT_IMAGE, "true"]);
        let marker = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(marker.path(), "rebuilt\n").unwrap();
        std::fs::set_permissions(marker.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        docker(&["cp", marker.path().to_str().unwrap(), &format!("{builder}:/rebuilt")]);
        docker(&["commit", &builder, &tag]);
        docker(&["rm", "-f", &builder]);
        assert_eq!(sandbox.warm_sessions(&spec).await, 0, "the warm session is of the image the tag named before");
        let session = sandbox.create(&spec).await.unwrap();
        let out = sh(&*session, "cat /rebuilt", 10).await;
        assert_eq!(out.output_text().0, "rebuilt\n", "{out:?}");
        session.destroy().await.unwrap();
        sandbox.settle().await;
        let image = docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        docker(&["rmi", "-f", &tag]);
        let _ = std::process::Command::new("docker").args(["rmi", &image]).output();
    });
}

#[test]
fn files_put_through_planted_links_stay_in_the_workspace_and_the_channel_stays_in_step() {
    run(Duration::from_secs(120), async {
        let Some(sandbox) = docker().await else { return };
        let session = sandbox.create(&small_spec()).await.unwrap();
        session.put_meta(&[FileEntry::new("task.json", "{\"id\":1}")]).await.unwrap();
        let planted =
            sh(&*session, "ln -s /run/plancd docs && ln -s /run/plancd/task.json f && head -c 3000000 /dev/zero > big && echo ok", 10)
                .await;
        assert_eq!(planted.output_text().0, "ok\n", "{planted:?}");
        session.put_files(&[FileEntry::new("docs/x.txt", "through?"), FileEntry::new("f", "replaced")]).await.unwrap();
        let out = sh(
            &*session,
            "ls /run/plancd; cat /run/plancd/task.json; echo; test -L docs || echo docs-is-a-folder; test -L f || echo f-is-a-file",
            10,
        )
        .await;
        assert_eq!(out.output_text().0, "task.json\n{\"id\":1}\ndocs-is-a-folder\nf-is-a-file\n", "{out:?}");
        for round in 0..2 {
            let files = session.get_files(&CopyOutLimits::default()).await.unwrap();
            let sizes: Vec<(&str, usize)> = files.files.iter().map(|f| (f.path.as_str(), f.data.len())).collect();
            assert_eq!(sizes, [("big", 3_000_000), ("docs/x.txt", 8), ("f", 8)], "round {round}");
            session.put_files(&[FileEntry::new(format!("r{round}"), "x")]).await.unwrap();
            if round == 0 {
                let rm = sh(&*session, "rm r0", 10).await;
                assert!(rm.success(), "{rm:?}");
            }
        }
        session.destroy().await.unwrap();
    });
}

/// A host folder at `/env`: written through a writable mount (the sandbox user owns it), then
/// read-only in later sessions; warm sessions are kept per mounts and never taken for others.
#[test]
fn mounts_are_read_only_unless_writable_and_warm_sessions_keep_to_their_mounts() {
    run(Duration::from_secs(180), async {
        let Some(sandbox) = docker().await else { return };
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("marker"), "b\n").unwrap();
        let with = |host: &std::path::Path, writable| {
            let mut spec = small_spec();
            spec.mounts.push(plancd_sandbox::Mount { host: host.to_owned(), inside: "/env".into(), writable });
            spec
        };
        let setup = sandbox.create(&with(&a, true)).await.unwrap();
        let out = sh(&*setup, "echo a > /env/marker && mkdir /env/bin && echo ok", 30).await;
        assert_eq!(out.output_text().0, "ok\n", "{out:?}");
        setup.destroy().await.unwrap();
        assert_eq!(std::fs::read_to_string(a.join("marker")).unwrap(), "a\n", "written on the host");

        sandbox.keep_warm(1);
        let (spec_a, spec_b) = (with(&a, false), with(&b, false));
        sandbox.warm(&spec_a).await;
        let start = std::time::Instant::now();
        while sandbox.warm_sessions(&spec_a).await == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "the pool never filled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sandbox.warm_sessions(&spec_b).await, 0, "a warm session is kept for its own mounts");
        assert_eq!(sandbox.warm_sessions(&small_spec()).await, 0);
        for (spec, want) in [(&spec_a, "a"), (&spec_b, "b")] {
            let session = sandbox.create(spec).await.unwrap();
            let out = sh(&*session, "cat /env/marker; touch /env/x 2>&1; echo made > out.txt; cat out.txt", 30).await;
            let text = out.output_text().0;
            assert!(text.starts_with(&format!("{want}\n")) && text.contains("Read-only file system"), "{want}: {text}");
            assert!(text.ends_with("made\n"), "the workspace stays writable: {text}");
            session.destroy().await.unwrap();
        }
        let bare = sandbox.create(&small_spec()).await.unwrap();
        // The image may have an empty /env (a mount point); nothing of a mount is there.
        let out = sh(&*bare, "ls -A /env 2>/dev/null; echo end", 30).await;
        assert_eq!(out.output_text().0, "end\n", "{out:?}");
        bare.destroy().await.unwrap();
        sandbox.settle().await;
        assert!(!a.join("x").exists() && !b.join("x").exists());
    });
}

#[test]
fn an_image_the_engine_lacks_is_named_with_what_to_do() {
    run(Duration::from_secs(60), async {
        let Some(sandbox) = docker().await else { return };
        let mut spec = small_spec();
        spec.image = Some("plancd-test-absent:never".into());
        let err = sandbox.create(&spec).await.err().expect("no such image");
        let text = err.to_string();
        assert!(text.contains("plancd-test-absent:never") && text.contains("docker pull plancd-test-absent:never"), "{text}");
    });
}
