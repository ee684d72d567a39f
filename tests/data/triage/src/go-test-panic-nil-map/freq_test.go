package wordfreq

import "testing"

func TestCount(t *testing.T) {
	var c Counter
	c.Add("The cat. The dog!")
	if got := c.Count("the"); got != 2 {
		t.Fatalf("Count(the) = %d, want 2", got)
	}
}
