package cache

import "testing"

func TestGetOrSet(t *testing.T) {
	c := New()
	if got := c.GetOrSet("a", func() string { return "1" }); got != "1" {
		t.Fatalf("got %q", got)
	}
}
