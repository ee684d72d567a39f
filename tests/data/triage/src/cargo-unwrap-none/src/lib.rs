//! A price-level order book.
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Book {
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
}

impl Book {
    pub fn add(&mut self, buy: bool, price: u64, qty: u64) {
        let side = if buy { &mut self.bids } else { &mut self.asks };
        *side.entry(price).or_default() += qty;
    }

    /// Best ask minus best bid; None when a side is empty.
    pub fn spread(&self) -> Option<u64> {
        let bid = self.bids.keys().next_back().unwrap();
        let ask = self.asks.keys().next().unwrap();
        Some(ask - bid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_two_sided_book() {
        let mut b = Book::default();
        b.add(true, 99, 1);
        b.add(false, 101, 1);
        assert_eq!(b.spread(), Some(2));
    }

    #[test]
    fn empty_book_has_no_spread() {
        assert_eq!(Book::default().spread(), None);
    }
}
