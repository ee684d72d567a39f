// Package indicators computes technical indicators over closing prices.
package indicators

// RSI is Cutler's relative strength index over the last period changes.
func RSI(closes []float64, period int) float64 {
	var gain, loss float64
	start := len(closes) - period
	for i := start; i < len(closes); i++ {
		d := closes[i] - closes[i-1]
		if d > 0 {
			gain += d
		} else {
			loss += d
		}
	}
	if loss == 0 {
		return 100
	}
	rs := gain / loss
	return 100 - 100/(1+rs)
}
