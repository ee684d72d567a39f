//! Trading-day helpers.
use chrono::{Datelike, NaiveDate, Weekday};

pub fn is_trading_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}
