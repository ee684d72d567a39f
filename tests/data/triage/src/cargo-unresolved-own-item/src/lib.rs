//! Technical indicators.
pub mod indicators;
