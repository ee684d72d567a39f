//! A shared hit counter with a total.
use std::sync::Mutex;

#[derive(Default)]
pub struct Hits {
    by_path: Mutex<Vec<(String, u64)>>,
}

impl Hits {
    pub fn record(&self, path: &str) {
        let mut hits = self.by_path.lock().unwrap();
        match hits.iter_mut().find(|(p, _)| p == path) {
            Some((_, n)) => *n += 1,
            None => hits.push((path.to_string(), 1)),
        }
        if self.total() % 100 == 0 {
            hits.sort_by(|a, b| b.1.cmp(&a.1));
        }
    }

    pub fn total(&self) -> u64 {
        self.by_path.lock().unwrap().iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let h = Hits::default();
        h.record("/a");
        h.record("/a");
        assert_eq!(h.total(), 2);
    }
}
