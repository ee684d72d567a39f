//! Sandboxes for plancd: where untrusted agent code and acceptance tests run.
//!
//! The `process` backend (bubblewrap namespaces, a cgroup, rlimits and a seccomp filter) is
//! the default; the `docker` backend runs the same sessions in containers of a local engine.
