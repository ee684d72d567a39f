package spread

import "testing"

func TestSpread(t *testing.T) {
	q := Quote{"ABC", 9.5, 10}
	if Spread(q) != 0.5 {
		t.Errorf("spread of %v = %v", q, Spread(q))
	}
}
