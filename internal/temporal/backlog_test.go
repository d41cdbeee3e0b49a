package temporal

import (
	"testing"
	"time"
)

func TestBacklogClearsWithinOnlyWhenTasksLeaveFastEnoughToEmptyIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Backlog
		want bool
	}{
		{"no rates reported: nothing says it clears", Backlog{Count: 50, Age: time.Minute}, false},
		{"no worker: tasks come, none leave", Backlog{Count: 50, AddRate: 3}, false},
		{"workers keep pace but do not gain", Backlog{Count: 50, AddRate: 5, DispatchRate: 5}, false},
		{"an outage's backlog worked off within 10 s", Backlog{Count: 50, AddRate: 3, DispatchRate: 10}, true},
		{"worked off, but not within 10 s", Backlog{Count: 100, AddRate: 3, DispatchRate: 10}, false},
		{"the count falls between samples though the averages lag", Backlog{Count: 40, AddRate: 3, DispatchRate: 2, Drain: 8}, true},
		{"the count grows", Backlog{Count: 40, Drain: -2}, false},
		{"empty and idle", Backlog{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.ClearsWithin(10 * time.Second); got != tc.want {
				t.Errorf("%+v.ClearsWithin(10s) = %t, want %t", tc.b, got, tc.want)
			}
		})
	}
}
