// Package bulkhead holds how orderflow splits capacity between its classes
// of work: critical (the saga and its steps, order writes), non-critical
// (notifications, reads) and admin (operator and maintenance work). A
// worker splits its activity slots by these shares, the gateway its
// requests in flight, so that a flood in one class cannot take the
// capacity another needs.
package bulkhead

// Shares are the percentages of a capacity each class gets
// (internal/config declares the settings that fill them).
type Shares struct {
	CriticalPct    int
	NonCriticalPct int
	AdminPct       int
}

// Share returns pct percent of n, at least 1; 0 when n is 0 (unset: the
// SDK's default applies).
func (Shares) Share(n, pct int) int {
	if n <= 0 {
		return 0
	}
	if v := n * pct / 100; v > 0 {
		return v
	}
	return 1
}
