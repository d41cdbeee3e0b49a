package orders

// The history's statements, for the test that reads their plans.
const (
	QHistory       = qHistory
	QHistoryStatus = qHistoryStatus
)
