package cart

import "testing"

func TestTotal(t *testing.T) {
	c := &Cart{}
	c.Add(2.5)
	c.Add(1.5)
	if got := c.Total(); got != 4.0 {
		t.Fatalf("Total = %v, want 4", got)
	}
}
