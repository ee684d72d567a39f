package money

import "testing"

func TestTotal(t *testing.T) {
	if got, _ := Total([]string{"0.10", "0.20"}); got != "0.30" {
		t.Fatalf("Total = %s", got)
	}
}
