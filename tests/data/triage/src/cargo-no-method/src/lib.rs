//! A rolling buffer of the latest ticks.
use std::collections::VecDeque;

pub struct Ticks {
    cap: usize,
    buf: VecDeque<f64>,
}

impl Ticks {
    pub fn new(cap: usize) -> Self {
        Ticks { cap, buf: VecDeque::with_capacity(cap) }
    }

    pub fn push(&mut self, price: f64) {
        if self.buf.len() == self.cap {
            self.buf.pop_front();
        }
        self.buf.push_back(price);
    }

    pub fn latest(&self) -> Option<f64> {
        self.buf.back().copied()
    }
}
