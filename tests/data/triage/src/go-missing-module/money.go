package money

import "github.com/shopspring/decimal"

// Total adds prices without float rounding.
func Total(prices []string) (string, error) {
	sum := decimal.Zero
	for _, p := range prices {
		d, err := decimal.NewFromString(p)
		if err != nil {
			return "", err
		}
		sum = sum.Add(d)
	}
	return sum.StringFixed(2), nil
}
