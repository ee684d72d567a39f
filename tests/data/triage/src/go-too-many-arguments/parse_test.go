package duration

import "testing"

func TestParseWithDefaultUnit(t *testing.T) {
	got, err := Parse("90", 's')
	if err != nil || got != 90 {
		t.Fatalf("Parse(90, s) = %d, %v", got, err)
	}
}
