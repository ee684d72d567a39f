from dataclasses import dataclass, field


@dataclass
class Cart:
    items: dict = field(default_factory=dict)

    def add(self, sku, qty=1):
        self.items[sku] = self.items.get(sku, 0) + qty

    def total(self, prices):
        totl = 0
        for sku, qty in self.items.items():
            totl += prices[sku] * qty
        return total
