package health

type Check struct {
	Name string
	OK   bool
}

func Healthy(checks []Check) bool {
	for _, c := range checks {
		if !c.OK && c.Name != "optional" {
			return false
		}
	}
	return len(checks) > 0
}
