//! Symbol filters.
extern crate regex;

use regex::Regex;

pub fn is_option_symbol(s: &str) -> bool {
    Regex::new(r"^[A-Z]{1,5}\d{6}[CP]\d{8}$").unwrap().is_match(s)
}
