package spread

import "fmt"

type Quote struct {
	Symbol   string
	Bid, Ask float64
}

func (q Quote) String() string {
	return fmt.Sprintf("%s %d/%d", q.Symbol, q.Bid, q.Ask)
}

func Spread(q Quote) float64 { return q.Ask - q.Bid }
