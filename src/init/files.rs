//! The files `plancd init` writes: plancd.yaml with the environment and a commented role
//! section, one example plan whose acceptance test is the project's own test command, and the
//! recorded replies that let the example reconcile offline.

use super::conventions::DetectedEnvironment;
use super::detect::{Language, Project};

/// The example plan's workflow id.
pub const WORKFLOW: &str = "first-plan";
/// The example plan's task id.
pub const TASK: &str = "testing_notes";
/// Where the example plan is written.
pub const PLAN_FILE: &str = "plans/first-plan.yaml";
/// Where the offline model's replies are written.
pub const REPLIES_FILE: &str = ".plancd/scripted.yaml";

/// What the files are made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The detected project.
    pub project: &'a Project,
    /// The environment to write (the project's, or one read from the repository's conventions).
    pub environment: &'a DetectedEnvironment,
    /// The watched branch.
    pub branch: &'a str,
    /// The file the example task writes (one the repository does not have yet).
    pub notes_file: &'a str,
}

/// `text` as a YAML scalar: plain when that reads back as the same string, else double-quoted.
pub fn yaml_scalar(text: &str) -> String {
    let first_ok = text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || "/._".contains(c));
    let plain = first_ok
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\n')
        && !text.contains('"')
        && !text.ends_with([':', ' '])
        && !matches!(text.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~")
        && text.parse::<f64>().is_err();
    if plain { text.to_owned() } else { serde_json::to_string(text).expect("a string always serialises") }
}

fn block_list(out: &mut String, indent: &str, items: &[String]) {
    for item in items {
        out.push_str(&format!("{indent}- {}\n", yaml_scalar(item)));
    }
}

/// An image a project in `language` could start from, for the commented example.
fn example_image(language: Language) -> &'static str {
    match language {
        Language::Python => "python:3.12-slim",
        Language::Node => "node:22-slim",
        Language::Rust => "rust:1-slim",
        Language::Go => "golang:1.23",
    }
}

/// The `environment:` section, in the schema's field names.
pub fn environment_yaml(env: &DetectedEnvironment, language: Language) -> String {
    let mut out = String::from("environment:\n  setup:\n");
    block_list(&mut out, "    ", &env.setup);
    if !env.cache.is_empty() {
        out.push_str("  cache:\n");
        block_list(&mut out, "    ", &env.cache);
    }
    match &env.image {
        Some(image) => out.push_str(&format!("  image: {}   # docker backend only\n", yaml_scalar(image))),
        None => out.push_str(&format!("  # image: {}   # docker backend only: the image the setup starts from\n", example_image(language))),
    }
    if !env.network.is_empty() {
        out.push_str("  network:   # the hosts the setup may reach\n");
        block_list(&mut out, "    ", &env.network);
    }
    out.push_str("  timeout_seconds: 1200\n");
    out
}

/// plancd.yaml.
pub fn config(inputs: &Inputs<'_>) -> String {
    let Inputs { project, environment, branch, .. } = inputs;
    let mut out = format!(
        "# plancd's configuration. Detected: a {} project, tested with `{}`.\n\
         # Reference: schemas/config.schema.json in plancd's repository.\n\
         branch: {}\n\n",
        project.language,
        project.test_command,
        yaml_scalar(branch)
    );
    out.push_str(&format!(
        "# The environment every attempt runs in, built once by the setup commands (run in the\n\
         # workspace, with network to the hosts below only) and cached by the content of the `cache:`\n\
         # files. Only /env persists into the cached environment; /env/bin comes first on PATH when\n\
         # agents, checks and tests run, offline.\n\
         # Taken from: {}.\n",
        environment.source
    ));
    out.push_str(&environment_yaml(environment, project.language));
    out.push_str(&format!(
        "\n# Who plays each role. The `offline` model replays the replies recorded in\n\
         # {REPLIES_FILE}, so the example plan reconciles without a network or a key.\n\
         # For real work, replace `models:` and `roles:` below with a model of your own:\n\
         #\n\
         # models:\n\
         #   default:\n\
         #     provider: openai                      # or anthropic, gemini; Ollama and vLLM speak openai\n\
         #     base_url: https://api.openai.com/v1\n\
         #     model: gpt-4o-mini\n\
         #     api_key_env: OPENAI_API_KEY           # read from plancd's environment, never sent to the sandbox\n\
         # roles:\n\
         #   coder:    {{ model: default }}\n\
         #   tester:   {{ model: default }}\n\
         #   debugger: {{ model: default }}\n\
         #\n\
         # or any program as an agent: it runs in the sandbox, in the workspace, with PLANCD_TASK\n\
         # naming a JSON file that describes the task; the files it changes are its work.\n\
         #\n\
         #   coder: {{ command: [\"python3\", \"agents/coder.py\"] }}\n\
         #\n\
         # Agents have no network; under a role, `network: {{ allow: [pypi.org, \"*.pythonhosted.org\"] }}`\n\
         # lets its agent reach those hosts, and only those, through plancd's egress proxy.\n\
         models:\n  \
           offline: {{ provider: scripted, file: {REPLIES_FILE} }}\n\
         roles:\n  \
           coder: {{ model: offline }}\n"
    ));
    out
}

/// The example plan: one task whose acceptance test is the project's own test command.
pub fn plan(inputs: &Inputs<'_>) -> String {
    let Inputs { project, notes_file, .. } = inputs;
    let test = &project.test_command;
    format!(
        "# The first plan: one task, accepted when the project's own tests pass.\n\
         # Check it with `plancd validate`, see what would run with `plancd diff`, run it with\n\
         # `plancd reconcile`. Reference: schemas/todo_list.schema.json in plancd's repository.\n\
         todo_list_id: {WORKFLOW}\n\
         title: Write down how to run the tests\n\
         tasks:\n  \
           - id: {TASK}\n    \
             title: Write down how to run the tests\n    \
             agent_role: coder\n    \
             description: >-\n      \
               Write {notes_file}: in a few lines, how to install this project for development and\n      \
               how to run its tests ({}). Change no other file.\n    \
             outputs: [{}]\n    \
             timeout_seconds: 1800\n    \
             acceptance_criteria:\n      \
               tests:\n        \
                 - cmd: {}\n          \
                   timeout_seconds: 900\n",
        test.replace('\n', " "),
        yaml_scalar(notes_file),
        yaml_scalar(test)
    )
}

/// The offline model's replies for the example task: write the notes, then finish.
pub fn replies(inputs: &Inputs<'_>) -> String {
    let Inputs { project, environment, notes_file, .. } = inputs;
    let mut notes = String::from("# Running the tests\n\nSet up an environment (plancd runs these once, in `/env`):\n\n```sh\n");
    for command in &environment.setup {
        notes.push_str(command);
        notes.push('\n');
    }
    notes.push_str(&format!("```\n\nThen, with `/env/bin` first on `PATH`:\n\n```sh\n{}\n```\n", project.test_command));
    format!(
        "# Recorded replies of the `offline` model, turn by turn: plancd runs the calls for real.\n\
         # Reference: schemas/scripted.schema.json in plancd's repository.\n\
         workflows:\n  \
           {WORKFLOW}:\n    \
             {TASK}:\n      \
               default:\n        \
                 - say: Writing down how to run the tests.\n          \
                   calls:\n            \
                     - write_file: {{ path: {}, content: {} }}\n        \
                 - calls:\n            \
                     - finish: {{ summary: {} written. }}\n",
        yaml_scalar(notes_file),
        serde_json::to_string(&notes).expect("a string always serialises"),
        notes_file
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> Project {
        let entries = ["pyproject.toml".to_owned(), "tests/".to_owned()];
        let read = |_: &str| Some(b"[project]\nname = \"w\"\n[project.optional-dependencies]\ntest = [\"pytest\"]\n".to_vec());
        crate::init::detect(&crate::init::Root::new(&entries, &read)).expect("a Python project")
    }

    #[test]
    fn the_files_people_read() {
        let project = python();
        let mut environment = project.environment.clone();
        environment.source = "the Python project's files".into();
        let inputs = Inputs { project: &project, environment: &environment, branch: "trunk", notes_file: "TESTING.md" };
        insta::assert_snapshot!("plancd_yaml", config(&inputs));
        insta::assert_snapshot!("first_plan", plan(&inputs));
        insta::assert_snapshot!("replies", replies(&inputs));
    }

    #[test]
    fn scalars_are_plain_only_when_they_read_back_the_same() {
        let rows = [
            ("python3 -m venv /env", "python3 -m venv /env"),
            ("/env/bin/pip install -e '.[test]' pytest", "/env/bin/pip install -e '.[test]' pytest"),
            ("requirements*.txt", "requirements*.txt"),
            ("*.txt", "\"*.txt\""),
            ("echo a: b", "\"echo a: b\""),
            ("make # all", "\"make # all\""),
            ("yes", "\"yes\""),
            ("1.5", "\"1.5\""),
            ("a\nb", "\"a\\nb\""),
            ("", "\"\""),
            ("[x]", "\"[x]\""),
            ("echo \"hi\"", "\"echo \\\"hi\\\"\""),
        ];
        for (text, yaml) in rows {
            assert_eq!(yaml_scalar(text), yaml, "{text}");
            let doc = crate::spec::Document::parse(
                format!("- {}\n", yaml_scalar(text)).as_bytes(),
                crate::spec::Format::Yaml,
                &Default::default(),
            );
            assert_eq!(doc.unwrap().value, serde_json::json!([text]), "{text}");
        }
    }
}
