package last

func Last(s []int) int {
	return s[len(s)]
}
