use orders::{notional, Order};

#[test]
fn limit_order_notional() {
    let o = Order { symbol: "AAPL".into(), qty: 10, price: 2.5, side: 'B' };
    assert_eq!(notional(&o), 25.0);
    assert_eq!(o.limit, None);
}
