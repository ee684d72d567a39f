package cart

type Cart struct{ items []float64 }

func (c *Cart) Add(price float64) { c.items = append(c.items, price) }

func (c *Cart) Sum() float64 {
	total := 0.0
	for _, p := range c.items {
		total += p
	}
	return total
}
