package duration

import (
	"strconv"
	"strings"
)

// Parse reads "90s", "5m" or "2h" as seconds.
func Parse(s string) (int, error) {
	unit := map[byte]int{'s': 1, 'm': 60, 'h': 3600}[s[len(s)-1]]
	n, err := strconv.Atoi(strings.TrimRight(s, "smh"))
	return n * unit, err
}
