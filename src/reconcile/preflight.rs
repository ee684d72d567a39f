//! What must hold in this process before an agent is claimed for: a role whose model needs a
//! key that plancd's environment lacks would only claim its task, fail at the first model call
//! and spend an attempt number, pass after pass. Found here, the task waits instead, with what
//! to set, and nothing is written.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::{Config, Env};
use crate::spec::Role;

/// Why a role's agent cannot start in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentUnavailable {
    /// The model's key variable is unset or empty in plancd's environment.
    KeyNotSet {
        /// The model's name in `models:`.
        model: String,
        /// The variable `api_key_env` names.
        var: String,
    },
    /// The model's key file cannot be read.
    KeyFileUnreadable {
        /// The model's name in `models:`.
        model: String,
        /// The file `api_key_file` names.
        file: String,
        /// What reading it said.
        error: String,
    },
}

impl AgentUnavailable {
    /// The CamelCase reason for status, logs and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            AgentUnavailable::KeyNotSet { .. } => "ModelKeyNotSet",
            AgentUnavailable::KeyFileUnreadable { .. } => "ModelKeyUnreadable",
        }
    }
}

impl fmt::Display for AgentUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentUnavailable::KeyNotSet { model, var } => write!(
                f,
                "model `{model}` needs its key: {var} is not set in plancd's environment (plancd.yaml models.{model}.api_key_env); set it and reconcile again"
            ),
            AgentUnavailable::KeyFileUnreadable { model, file, error } => {
                write!(f, "model `{model}` needs its key: cannot read {file} ({error}; plancd.yaml models.{model}.api_key_file)")
            }
        }
    }
}

/// The roles whose agent cannot start with `env`: a model agent, or a command agent reaching
/// its model through the gateway, whose model's key is missing. A model `models:` lacks is left
/// to validation, which names it.
pub fn unavailable_agents(config: &Config, env: &Env) -> BTreeMap<Role, AgentUnavailable> {
    let mut out = BTreeMap::new();
    for (role, rc) in &config.roles {
        let Some(name) = rc.model.as_deref() else { continue };
        let Some(mc) = config.models.get(name) else { continue };
        let problem = if let Some(var) = &mc.api_key_env {
            env.get(var).is_none_or(str::is_empty).then(|| AgentUnavailable::KeyNotSet { model: name.to_owned(), var: var.clone() })
        } else if let Some(file) = &mc.api_key_file {
            std::fs::File::open(file).err().map(|e| AgentUnavailable::KeyFileUnreadable {
                model: name.to_owned(),
                file: file.clone(),
                error: e.kind().to_string(),
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            out.insert(*role, problem);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(models: &str) -> Config {
        let yaml = format!(
            "roles:\n  coder: {{ model: cloud }}\n  tester: {{ command: [\"true\"], model: local }}\n  debugger: {{ command: [\"true\"] }}\nmodels:\n{models}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plancd.yaml"), yaml).unwrap();
        Config::load(&crate::spec::DirSource::new(dir.path())).unwrap().0
    }

    #[test]
    fn a_role_whose_models_key_is_missing_cannot_start_and_others_can() {
        let c = config(
            "  cloud: { provider: openai, model: m, api_key_env: CLOUD_KEY }\n  local: { provider: openai, base_url: 'http://127.0.0.1:1/v1', model: m }\n",
        );
        let missing = unavailable_agents(&c, &Env::default());
        assert_eq!(
            missing.into_iter().collect::<Vec<_>>(),
            [(Role::Coder, AgentUnavailable::KeyNotSet { model: "cloud".into(), var: "CLOUD_KEY".into() })],
            "a model without a key (a local server) and a command without a model need nothing"
        );
        assert_eq!(unavailable_agents(&c, &Env::from_pairs([("CLOUD_KEY", "")])).len(), 1, "an empty key is no key");
        assert!(unavailable_agents(&c, &Env::from_pairs([("CLOUD_KEY", "sk-1")])).is_empty());
    }

    #[test]
    fn a_command_agent_through_the_gateway_needs_its_models_key_too() {
        let c = config(
            "  cloud: { provider: openai, model: m, api_key_env: CLOUD_KEY }\n  local: { provider: anthropic, model: m, api_key_file: /nonexistent/plancd-key }\n",
        );
        let missing = unavailable_agents(&c, &Env::from_pairs([("CLOUD_KEY", "sk-1")]));
        let Some(AgentUnavailable::KeyFileUnreadable { model, file, .. }) = missing.get(&Role::Tester) else {
            panic!("the tester's key file is missing: {missing:?}")
        };
        assert_eq!((model.as_str(), file.as_str()), ("local", "/nonexistent/plancd-key"));
        let said = missing[&Role::Tester].to_string();
        assert!(said.contains("models.local.api_key_file"), "{said}");
    }

    #[test]
    fn what_is_said_names_the_variable_and_the_field_never_a_value() {
        let said = AgentUnavailable::KeyNotSet { model: "default".into(), var: "OPENAI_API_KEY".into() }.to_string();
        assert!(said.contains("OPENAI_API_KEY is not set") && said.contains("models.default.api_key_env"), "{said}");
    }
}
