package ind

// SMA returns the simple moving average of each full window.
func SMA(xs []float64, n int) []float64 {
	out := make([]float64, 0, len(xs))
	for i := n; i <= len(xs); i++ {
		s := 0.0
		for _, x := range xs[i-n : i] {
			s += x
		}
		out = append(out, s/float64(n))
	}
	return out
}
