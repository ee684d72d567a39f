package ind

import "testing"

func TestSMA(t *testing.T) {
	if got := SMA([]float64{1, 2, 3}, 2); len(got) != 2 || got[1] != 2.5 {
		t.Fatalf("SMA = %v", got)
	}
}

func TestEMASeed(t *testing.T) {
	if got := EMA([]float64{10, 11}, 3); got[0] != 10 {
		t.Fatalf("EMA seed = %v, want 10", got[0])
	}
}

func TestWMA(t *testing.T) {
	if got := WMA([]float64{1, 2, 3}, 3); got[0] != 14.0/6 {
		t.Fatalf("WMA = %v", got)
	}
}
