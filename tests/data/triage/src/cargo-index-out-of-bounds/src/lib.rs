//! OHLC candles from ticks.

#[derive(Debug, PartialEq)]
pub struct Candle {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// Groups ticks into candles of `per` ticks; a short last group makes a candle too.
pub fn candles(ticks: &[f64], per: usize) -> Vec<Candle> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < ticks.len() {
        let group = &ticks[start..start + per];
        out.push(Candle {
            open: group[0],
            high: group.iter().cloned().fold(f64::MIN, f64::max),
            low: group.iter().cloned().fold(f64::MAX, f64::min),
            close: group[group.len() - 1],
        });
        start += per;
    }
    out
}
