package activities

// Page cuts rows read with a limit of limit+1 (one past the page, to learn
// whether another follows) to the page, and returns the page's last row
// when another page follows, nil when this one is the last.
func Page[T any](rows []T, limit int) ([]T, *T) {
	if len(rows) <= limit {
		return rows, nil
	}
	return rows[:limit], &rows[limit-1]
}
