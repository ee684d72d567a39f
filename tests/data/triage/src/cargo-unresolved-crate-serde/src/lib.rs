//! Settings read from JSON.
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
pub struct Settings {
    pub interval_secs: u64,
    pub symbols: Vec<String>,
}

pub fn parse(text: &str) -> Result<Settings, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let s = super::parse(r#"{"interval_secs": 5, "symbols": ["A"]}"#).unwrap();
        assert_eq!(s.interval_secs, 5);
    }
}
