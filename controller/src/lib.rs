//! The in-cluster Kubernetes controller for plancd: reconciles fleets of plan repositories
//! with the core library's engine.
