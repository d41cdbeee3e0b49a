package catalog_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
)

func TestPriceFromPricesKnownItemsAndNamesUnknownSKUsAndTheFirstMixedCurrency(t *testing.T) {
	known := map[string]catalog.Product{
		"A": {SKU: "A", PriceCents: 250, Currency: "USD"},
		"B": {SKU: "B", PriceCents: 1000, Currency: "USD"},
		"E": {SKU: "E", PriceCents: 700, Currency: "EUR"},
	}
	cases := []struct {
		name  string
		items []orderflow.Item
		want  catalog.Priced
	}{
		{"every sku known", []orderflow.Item{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 1}}, catalog.Priced{
			Lines:      []orderflow.Line{{SKU: "A", Quantity: 2, UnitPriceCents: 250}, {SKU: "B", Quantity: 1, UnitPriceCents: 1000}},
			TotalCents: 1500, Currency: "USD", MixedAt: -1}},
		{"unknown skus are listed by index and left out of the total", []orderflow.Item{{SKU: "X", Quantity: 1}, {SKU: "A", Quantity: 1}, {SKU: "Y", Quantity: 3}},
			catalog.Priced{Lines: []orderflow.Line{{SKU: "A", Quantity: 1, UnitPriceCents: 250}}, TotalCents: 250, Currency: "USD",
				Unknown: []int{0, 2}, MixedAt: -1}},
		{"the currency is the first known line's and the first other one is marked", []orderflow.Item{{SKU: "E", Quantity: 1}, {SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 1}},
			catalog.Priced{Lines: []orderflow.Line{{SKU: "E", Quantity: 1, UnitPriceCents: 700}, {SKU: "A", Quantity: 1, UnitPriceCents: 250},
				{SKU: "B", Quantity: 1, UnitPriceCents: 1000}}, TotalCents: 1950, Currency: "EUR", MixedAt: 1}},
		{"no items", nil, catalog.Priced{MixedAt: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, catalog.PriceFrom(known, c.items))
		})
	}
}
