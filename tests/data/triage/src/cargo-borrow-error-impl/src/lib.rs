//! Stock levels with a reorder list.
use std::collections::HashMap;

#[derive(Default)]
pub struct Inventory {
    stock: HashMap<String, u32>,
    reorder: Vec<String>,
}

impl Inventory {
    pub fn receive(&mut self, sku: &str, qty: u32) {
        *self.stock.entry(sku.to_string()).or_insert(0) += qty;
    }

    /// Takes `qty` out; queues the SKU for reorder when it runs low.
    pub fn take(&mut self, sku: &str, qty: u32) -> bool {
        let level = match self.stock.get_mut(sku) {
            Some(level) if *level >= qty => level,
            _ => return false,
        };
        *level -= qty;
        if *level < 5 {
            self.queue_reorder(sku);
        }
        *level += 0;
        true
    }

    fn queue_reorder(&mut self, sku: &str) {
        self.reorder.push(sku.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_stock_is_reordered() {
        let mut inv = Inventory::default();
        inv.receive("bolt", 6);
        assert!(inv.take("bolt", 2));
        assert_eq!(inv.reorder, vec!["bolt".to_string()]);
    }
}
