package health

import "testing"

func TestHealthy(t *testing.T) {
	if !Healthy(nil) {
		t.FailNow()
	}
}
