//! Orders and their notional value.

#[derive(Debug, Clone)]
pub struct Order {
    pub symbol: String,
    pub qty: u32,
    pub price: f64,
}

pub fn notional(o: &Order) -> f64 {
    o.qty as f64 * o.price
}
