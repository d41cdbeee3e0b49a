package catalog

// The search statements of the tiers the GIN indexes answer, for the test
// that reads their plans.
var (
	QSearchSKU  = qSearchSKU
	QSearchName = qSearchName
)
