//! Starting plancd in an existing repository: what project it holds and how its tests run
//! ([`mod@detect`]), the environments its other tools already declare ([`conventions`]), and the
//! files `plancd init` writes from both ([`files`]).

pub mod conventions;
pub mod detect;
pub mod files;

pub use conventions::{DetectedEnvironment, from_conventions};
pub use detect::{Language, Project, Root, detect};
