//! The deployment files: the Kubernetes manifests, the compose file and the controller
//! configuration they mount are well-formed and wired to what `plancd serve` offers.

use plancd::spec::{Document, Format, Limits};

use crate::util::project_root;

fn documents(path: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(project_root().join(path)).unwrap();
    text.split("\n---\n").map(|d| Document::parse(d.as_bytes(), Format::Yaml, &Limits::default()).unwrap().value).collect()
}

#[test]
fn the_kubernetes_manifests_probe_health_and_readiness_and_keep_secrets_in_a_secret() {
    let docs = documents("deploy/kubernetes/plancd.yaml");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service"]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["args"][0], "serve");
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "plancd");
    // The ConfigMap's serve.yaml is a valid controller configuration.
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]["serve.yaml"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("serve.yaml"), config).unwrap();
    let serve = plancd::ops::serve::load_config(Some(std::path::Path::new("serve.yaml")), dir.path()).unwrap();
    // Replicas share the remote they clone into their cache, each with its own identity.
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() > 1);
    assert!(serve.sources.iter().all(|s| s.url.is_some()), "replicas reconcile a remote source");
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "PLANCD_HOST" && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"));
    let cache = serve.cache_dir.unwrap();
    assert!(container["volumeMounts"].as_array().unwrap().iter().any(|m| cache.starts_with(m["mountPath"].as_str().unwrap())));
}

#[test]
fn the_compose_file_and_its_configuration_match_the_controller() {
    let compose = &documents("deploy/compose.yaml")[0];
    let service = &compose["services"]["plancd"];
    assert_eq!(service["command"][0], "serve");
    assert_eq!(service["ports"][0], "8080:8080");
    let config = plancd::ops::serve::load_config(Some(std::path::Path::new("deploy/serve.yaml")), &project_root()).unwrap();
    assert_eq!(config.sources.len(), 1);
    assert_eq!(config.listen.unwrap().port(), 8080);
}

#[test]
fn the_dockerfile_runs_the_controller_as_a_non_root_user_with_git_and_bubblewrap() {
    let text = std::fs::read_to_string(project_root().join("Dockerfile")).unwrap();
    assert_eq!(text.matches("\nFROM ").count(), 2, "a build stage and a runtime stage");
    assert!(text.contains("git bubblewrap"));
    assert!(text.contains("\nUSER 10001:10001\n"));
    assert!(text.contains("CMD [\"serve\""));
}

#[test]
fn a_bad_controller_configuration_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("serve.yaml"), "listen: \"0.0.0.0:8080\"\nsources:\n  - nmae: x\n").unwrap();
    let run = crate::util::plancd_in(dir.path(), &["serve", "--config", "serve.yaml"]);
    run.expect_code(2);
    assert!(run.stderr.contains("serve.yaml:3:5: error[unknown-field]: sources[0].nmae"), "{}", run.stderr);
}
