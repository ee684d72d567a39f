package indicators

import (
	"math"
	"testing"
)

func TestRSI(t *testing.T) {
	cases := []struct {
		name   string
		closes []float64
		period int
		want   float64
	}{
		{"rising", []float64{1, 2, 3, 4, 5}, 4, 100},
		{"balanced", []float64{10, 11, 10, 11, 10}, 4, 50},
		{"mostly up", []float64{10, 12, 11, 13, 14}, 4, 80},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RSI(c.closes, c.period); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("RSI(%v, %d) = %v, want %v", c.closes, c.period, got, c.want)
			}
		})
	}
}
