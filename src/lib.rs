//! plancd: a declarative GitOps controller for AI agent work.
//!
//! A plan file (a TodoList of tasks with dependencies, agent roles and acceptance tests) is
//! committed to a repository; plancd reconciles it into result branches, tags and pull
//! requests, keeping all its state in git refs.
//!
//! How data flows through the modules:
//!
//! - [`config`] reads `plancd.yaml` (defaults < file < `PLANCD_*` environment < flags).
//! - [`spec`] loads plan and contract files from a [`spec::FileSource`] (a directory, or a
//!   commit's tree), checks them against the JSON Schemas in `schemas/` and then semantically,
//!   reporting every problem as a [`spec::Diagnostic`] with file, line, column and field; it
//!   also computes each task's [`spec::SpecHash`].
//! - [`graph`] orders a plan's tasks, finds cycles and ready tasks, and the critical path.
//! - [`reconcile`] decides what the plans need against the state in the refs ([`state`]) and
//!   runs each attempt: a workspace in a sandbox, an [`agent`], checks, acceptance tests;
//!   [`publish`] writes results as branches and tags; [`reconcile::upstream`] sends them on to
//!   the [`remote`] (the `git` command, compare-and-swap pushes) and the [`forge`] (pull
//!   requests, comments, commit statuses, escalation issues). [`reconcile::operations`]
//!   decides whether a person's approve, retry, suspend or resume means something, and the one
//!   record it writes.
//! - [`agent`] plays a role: a command in the sandbox, or a model agent — a tool-calling loop
//!   in the controller over a chat model ([`agent::model`]: providers, retries, budgets, the
//!   response cache in `refs/ai/cache/`, transcripts) whose tools run in the sandbox.
//! - [`gateway`] gives a command agent that also has a model the model's API inside its
//!   sandbox: a per-attempt socket and token, passed through to the provider with the real key,
//!   with the same budgets, cache and transcript as a model agent. [`reconcile::door`] is the
//!   sandbox's other door: the egress proxy for environment setup and for a role's
//!   `network.allow`, whose refusals are counted in the attempt's status.
//! - [`init`] reads an existing repository for `plancd init`: its project and test command,
//!   and the environment its dev container or Copilot setup steps declare.
//! - [`live`] is what a running attempt prints, as it prints it, in files beside the git
//!   folder that `plancd logs -f` and `plancd serve` follow.
//! - [`quality`] is how an attempt measures its result's coverage and security findings in the
//!   verifying session (recorded in the result's status), and the `checks:` presets.
//! - [`ops`] holds one module per command-line verb; the `plancd` binary parses arguments,
//!   calls them and prints.
//! - [`render`] draws what people read of a workflow's graph, from one model and with one
//!   node-id scheme: Mermaid for `plancd graph`, `plancd status -o mermaid`, pull request bodies
//!   and job summaries, Graphviz dot, and the dashboard's SVG. Everything above calls down into
//!   it, the engine included; it reads nothing itself.
//! - [`ui`] is the dashboard `plancd serve` serves (pages, a JSON API, live updates, the
//!   operations when enabled) and `plancd status -o html` writes, from the data
//!   [`ops::status`] and [`ops::describe`] read.

pub mod agent;
pub mod config;
pub mod forge;
pub mod gateway;
pub mod graph;
pub mod init;
pub mod live;
pub mod ops;
mod par;
pub mod publish;
pub mod quality;
pub mod reconcile;
pub mod remote;
pub mod render;
pub mod spec;
pub mod state;
pub mod telemetry;
pub mod triage;
pub mod ui;
pub mod watch;
