package wordfreq

import "strings"

type Counter struct {
	counts map[string]int
}

func (c *Counter) Add(text string) {
	for _, w := range strings.Fields(strings.ToLower(text)) {
		c.counts[strings.Trim(w, ".,!?")]++
	}
}

func (c *Counter) Count(word string) int {
	return c.counts[word]
}
