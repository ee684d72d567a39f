//! The GitHub forge against the fake GitHub: one pull request per head, sticky comments edited in
//! place, pagination, rate limits waited out, an Enterprise base URL, the hourly cap, errors,
//! and a GitHub App signing in as its installation.

use std::time::{Duration, Instant};

use plancd::config::{Env, GithubConfig};
use plancd::forge::github::GitHub;
use plancd::forge::{Forge, ForgeError, PullRequestSpec, marker};
use serde_json::json;

use crate::fake_github::{App, FakeGitHub, Limit, REPO};
use crate::util::{project_root, within};

/// `fake`'s repository, with the token in `FAKE_TOKEN`.
fn config(fake: &FakeGitHub) -> GithubConfig {
    GithubConfig {
        repo: REPO.into(),
        token_env: "FAKE_TOKEN".into(),
        api_url: fake.api_url(),
        app_id: None,
        private_key_file: None,
        max_prs_per_hour: 20,
        labels: vec![],
    }
}

fn github(fake: &FakeGitHub, max_prs_per_hour: u32) -> GitHub {
    let config = GithubConfig { max_prs_per_hour, labels: vec!["plancd".into()], ..config(fake) };
    GitHub::new(&config, &Env::from_pairs([("FAKE_TOKEN", fake.token())])).unwrap()
}

fn spec(head: &str, body: &str) -> PullRequestSpec {
    PullRequestSpec {
        head: head.into(),
        base: "main".into(),
        title: format!("plancd: {head}"),
        body: body.into(),
        labels: vec!["plancd".into()],
    }
}

#[tokio::test]
async fn one_pull_request_per_head_updated_in_place_on_an_enterprise_server() {
    within(60, async {
        let fake = FakeGitHub::start("/api/v3", "ghp_test").await;
        let gh = github(&fake, 20);
        let first = gh.ensure_pull_request(&spec("ai/generated/wf/a", "one")).await.unwrap().unwrap();
        assert!(first.opened);
        assert_eq!(first.url, format!("https://github.example/{REPO}/pull/1"));
        let again = gh.ensure_pull_request(&spec("ai/generated/wf/a", "one")).await.unwrap().unwrap();
        assert_eq!((again.number, again.opened), (1, false));
        let changed = gh.ensure_pull_request(&spec("ai/generated/wf/a", "two")).await.unwrap().unwrap();
        assert_eq!(changed.number, 1);
        gh.ensure_pull_request(&spec("ai/generated/wf/b", "b")).await.unwrap();
        fake.with(|s| {
            assert_eq!(s.pulls.len(), 2);
            assert_eq!(s.pulls[0]["body"], "two");
            assert_eq!(s.pulls[0]["labels"], json!([{"name": "plancd"}]));
        });
        assert_eq!(fake.count("POST", "/api/v3/repos/acme/widgets/pulls").await, 2);
        assert_eq!(fake.count("PATCH", "/pulls/1").await, 1, "only the changed body is written");
        assert!(fake.calls().await.iter().all(|c| c.contains(" /api/v3/")), "{:?}", fake.calls().await);
    })
    .await;
}

#[tokio::test]
async fn a_sticky_comment_is_found_on_a_later_page_and_edited_not_duplicated() {
    within(60, async {
        let fake = FakeGitHub::start("", "ghp_test").await;
        let gh = github(&fake, 20);
        gh.ensure_pull_request(&spec("ai/generated/wf/a", "x")).await.unwrap();
        fake.with(|s| {
            for i in 0..150 {
                s.comments.push(json!({"id": 10_000 + i, "issue": 1, "body": format!("a person's comment {i}"), "html_url": "u"}));
            }
        });
        let key = marker("task:wf/a");
        gh.upsert_comment(1, &key, "first").await.unwrap();
        gh.upsert_comment(1, &key, "second").await.unwrap();
        gh.upsert_comment(1, &key, "second").await.unwrap();
        let mine: Vec<String> =
            fake.with(|s| s.comments.iter().filter_map(|c| c["body"].as_str()).filter(|b| b.contains(&key)).map(str::to_owned).collect());
        assert_eq!(mine, [format!("{key}\nsecond")]);
        assert_eq!(fake.count("POST", "/issues/1/comments").await, 1);
        assert_eq!(fake.count("PATCH", "/issues/comments/101").await, 1, "edited once; the third call changed nothing");
        let pages =
            fake.server.received_requests().await.unwrap().iter().filter(|r| r.url.query().is_some_and(|q| q.contains("page=2"))).count();
        assert_eq!(pages, 3, "each lookup read the second page");
    })
    .await;
}

#[tokio::test]
async fn every_page_of_a_listing_is_read() {
    within(60, async {
        let fake = FakeGitHub::start("", "ghp_test").await;
        fake.with(|s| s.files = (0..250).map(|i| format!("plans/p{i}.yaml")).collect());
        let files = github(&fake, 20).pull_request_files(9).await.unwrap();
        assert_eq!(files.len(), 250);
        assert_eq!(files[249], "plans/p249.yaml");
        assert_eq!(fake.count("GET", "/pulls/9/files").await, 3);
    })
    .await;
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    within(90, async {
        let fake = FakeGitHub::start("", "ghp_test").await;
        fake.with(|s| {
            s.limits.push_back(("/pulls".into(), Limit::Secondary(1)));
            s.limits.push_back(("/pulls".into(), Limit::Primary(1)));
        });
        let started = Instant::now();
        let pr = github(&fake, 20).ensure_pull_request(&spec("ai/generated/wf/a", "x")).await.unwrap().unwrap();
        assert_eq!(pr.number, 1);
        assert!(started.elapsed() >= Duration::from_secs(2), "waited {:?}", started.elapsed());
        assert_eq!(fake.count("GET", "/repos/acme/widgets/pulls").await, 3 + 1, "two refused, then the lookup and the cap's listing");
        fake.with(|s| assert!(s.limits.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn the_hourly_cap_stops_a_pull_request_from_opening() {
    within(60, async {
        let fake = FakeGitHub::start("", "ghp_test").await;
        let gh = github(&fake, 1);
        gh.ensure_pull_request(&spec("ai/generated/wf/a", "x")).await.unwrap();
        let err = gh.ensure_pull_request(&spec("ai/generated/wf/b", "x")).await.unwrap_err();
        assert!(matches!(err, ForgeError::PullRequestCap { opened: 1 }), "{err}");
        // Another process sees the same hour through the API.
        let err = github(&fake, 1).ensure_pull_request(&spec("ai/generated/wf/c", "x")).await.unwrap_err();
        assert_eq!(err.reason(), "PullRequestCapReached");
        // Updating an open one is no opening.
        github(&fake, 1).ensure_pull_request(&spec("ai/generated/wf/a", "y")).await.unwrap();
        fake.with(|s| assert_eq!(s.pulls.len(), 1));
    })
    .await;
}

#[tokio::test]
async fn api_errors_say_what_failed_and_never_show_the_token() {
    within(60, async {
        let fake = FakeGitHub::start("", "ghp_right").await;
        let config = config(&fake);
        let wrong = GitHub::new(&config, &Env::from_pairs([("FAKE_TOKEN", "ghp_wrong_canary")])).unwrap();
        let err = wrong.pull_request(3).await.unwrap_err();
        let shown = format!("{err} {err:?} {wrong:?}");
        assert_eq!(err.to_string(), "GET /repos/acme/widgets/pulls/3: 401 Bad credentials");
        assert!(!shown.contains("ghp_wrong_canary"), "{shown}");
        let missing = GitHub::new(&config, &Env::default()).unwrap_err();
        assert_eq!(missing.to_string(), "forge configuration: FAKE_TOKEN is not set: it holds the GitHub token (forge.github.token_env)");
    })
    .await;
}

/// The App configuration for `fake`, with the test key of `tests/data/github-app`.
fn app_config(fake: &FakeGitHub, app_id: u64) -> GithubConfig {
    let key = project_root().join("tests/data/github-app/app-key.pem");
    GithubConfig { app_id: Some(app_id), private_key_file: Some(key.to_str().unwrap().to_owned()), ..config(fake) }
}

fn test_app() -> App {
    App::new(31337, 4242, &std::fs::read(project_root().join("tests/data/github-app/app-key.pub.pem")).unwrap())
}

#[tokio::test]
async fn a_github_app_signs_in_as_its_installation_and_reuses_the_token() {
    within(60, async {
        let (fake, issued) = FakeGitHub::start_app("/api/v3", "ghs_installation_canary", test_app()).await;
        // No GITHUB_TOKEN: the App's key is all it has.
        let gh = GitHub::connect(&app_config(&fake, 31337), &Env::default()).await.unwrap();
        gh.ensure_pull_request(&spec("ai/generated/wf/a", "x")).await.unwrap().unwrap();
        gh.ensure_pull_request(&spec("ai/generated/wf/b", "y")).await.unwrap().unwrap();
        fake.with(|s| assert_eq!(s.pulls.len(), 2));
        // The installation token pushes too; it was asked for once.
        let token = gh.git_token().await.unwrap().unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "ghs_installation_canary");
        assert_eq!(*issued.lock().unwrap(), 1);
        assert_eq!(fake.count("GET", "/api/v3/repos/acme/widgets/installation").await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_github_app_with_the_wrong_id_or_key_is_refused_with_a_clear_error() {
    within(60, async {
        let (fake, issued) = FakeGitHub::start_app("", "ghs_installation_canary", test_app()).await;
        let err = GitHub::connect(&app_config(&fake, 999), &Env::default()).await.unwrap_err();
        assert!(err.to_string().starts_with("GET /repos/acme/widgets/installation: 401"), "{err}");
        assert_eq!(*issued.lock().unwrap(), 0);

        let dir = tempfile::tempdir().unwrap();
        let not_a_key = dir.path().join("key.pem");
        std::fs::write(&not_a_key, "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n").unwrap();
        let config = GithubConfig { private_key_file: Some(not_a_key.to_str().unwrap().into()), ..app_config(&fake, 31337) };
        let err = GitHub::new(&config, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("is not an RSA private key in PEM"), "{err}");
        let config = GithubConfig { private_key_file: None, ..app_config(&fake, 31337) };
        assert!(GitHub::new(&config, &Env::default()).unwrap_err().to_string().contains("app_id and private_key_file go together"));
    })
    .await;
}
