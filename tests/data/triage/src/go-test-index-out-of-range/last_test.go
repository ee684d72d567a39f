package last

import "testing"

func TestLast(t *testing.T) {
	if got := Last([]int{1, 2, 3}); got != 3 {
		t.Fatalf("Last = %d, want 3", got)
	}
}
