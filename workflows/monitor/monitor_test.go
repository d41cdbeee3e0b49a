package monitor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	checks "github.com/orderflow/orderflow/activities/monitor"
)

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *checks.Activities) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	a := &checks.Activities{}
	env.RegisterActivity(a)
	env.RegisterWorkflow(Run)
	return env, a
}

func found(kind string) checks.CheckResult {
	return checks.CheckResult{Checked: 1, Found: map[string]int{kind: 1}, Opened: 1}
}

// A recent run checks the window's orders and money, the SKUs moved in it
// and the sagas running an hour, adds up what they found, and resolves
// nothing.
func TestARecentRunChecksTheWindowAndResolvesNothing(t *testing.T) {
	env, a := newEnv(t)
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var scopes []checks.Scope
	record := func(res checks.CheckResult) func(context.Context, checks.CheckInput) (checks.CheckResult, error) {
		return func(_ context.Context, in checks.CheckInput) (checks.CheckResult, error) {
			scopes = append(scopes, in.Scope)
			assert.True(t, in.Seen.Equal(start))
			return res, nil
		}
	}
	env.OnActivity(a.MonitorOrders, mock.Anything, mock.Anything).Return(record(found(checks.KindLostOrder))).Once()
	env.OnActivity(a.MonitorMoney, mock.Anything, mock.Anything).Return(record(found(checks.KindChargeMismatch))).Once()
	env.OnActivity(a.MonitorStock, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in checks.CheckInput) (checks.CheckResult, error) {
			assert.False(t, in.All, "the SKUs moved in the window only")
			return found(checks.KindStockDrift), nil
		}).Once()
	env.OnActivity(a.MonitorSagas, mock.Anything, mock.Anything).Return(record(checks.CheckResult{Checked: 1})).Once()
	env.ExecuteWorkflow(Run, Input{Region: "eu"})
	require.NoError(t, env.GetWorkflowError())
	var res Result
	require.NoError(t, env.GetWorkflowResult(&res))
	env.AssertExpectations(t)
	assert.Equal(t, map[string]int{checks.KindLostOrder: 1, checks.KindChargeMismatch: 1, checks.KindStockDrift: 1}, res.Found)
	assert.Equal(t, 3, res.Opened)
	assert.Zero(t, res.Resolved)

	require.Len(t, scopes, 3)
	want := checks.Scope{Since: start.Add(-RecentWindow), Until: start.Add(-Grace), StuckBefore: start.Add(-StuckAfter), Region: "eu"}
	assert.Equal(t, want, scopes[0], "orders of the window")
	assert.Equal(t, want, scopes[1], "their money")
	assert.Equal(t, checks.Scope{Region: "eu", StuckBefore: start.Add(-StuckAfter)}, scopes[2], "sagas running an hour")
}

// The nightly run checks every order a day at a time from the first, the
// money of those within the ledger lookback only, every SKU, and then
// resolves what no check saw again.
func TestTheNightlyRunWalksEveryDayAndResolves(t *testing.T) {
	env, a := newEnv(t)
	start := time.Date(2026, 12, 7, 3, 30, 0, 0, time.UTC)
	env.SetStartTime(start)
	first := start.Add(-40 * 24 * time.Hour)
	env.OnActivity(a.MonitorFirstOrder, mock.Anything, checks.FirstOrderInput{Region: "eu"}).Return(first, nil).Once()
	var days, money []checks.Scope
	env.OnActivity(a.MonitorOrders, mock.Anything, mock.Anything).Return(func(_ context.Context, in checks.CheckInput) (checks.CheckResult, error) {
		days = append(days, in.Scope)
		return checks.CheckResult{Checked: 1}, nil
	})
	env.OnActivity(a.MonitorMoney, mock.Anything, mock.Anything).Return(func(_ context.Context, in checks.CheckInput) (checks.CheckResult, error) {
		money = append(money, in.Scope)
		assert.False(t, in.ListUntil.After(start))
		assert.False(t, in.ListUntil.After(in.Scope.Until.Add(Chunk)), "a day more of the ledger than of the orders")
		return checks.CheckResult{Checked: 1}, nil
	})
	env.OnActivity(a.MonitorStock, mock.Anything, mock.Anything).Return(func(_ context.Context, in checks.CheckInput) (checks.CheckResult, error) {
		assert.True(t, in.All, "every SKU")
		return checks.CheckResult{Checked: 1}, nil
	}).Once()
	env.OnActivity(a.MonitorSagas, mock.Anything, mock.Anything).Return(checks.CheckResult{Checked: 1}, nil).Once()
	env.OnActivity(a.MonitorResolve, mock.Anything, checks.ResolveInput{Region: "eu", Kinds: checks.Kinds(), Seen: start}).Return(int64(2), nil).Once()
	env.ExecuteWorkflow(Run, Input{Region: "eu", Nightly: true})
	require.NoError(t, env.GetWorkflowError())
	var res Result
	require.NoError(t, env.GetWorkflowResult(&res))
	env.AssertExpectations(t)
	assert.Equal(t, int64(2), res.Resolved)

	require.Len(t, days, 41, "40 days back, from the first order's day to now")
	assert.Equal(t, first.Truncate(Chunk), days[0].Since)
	for i := 1; i < len(days); i++ {
		assert.Equal(t, days[i-1].Until, days[i].Since, "no gap, no overlap")
	}
	assert.Equal(t, start.Add(-Grace), days[len(days)-1].Until)
	assert.Less(t, len(money), len(days), "money within the lookback only")
	assert.False(t, money[0].Until.Before(start.Add(-LedgerLookback)))
}

// A check that fails does not stop the others; the run fails, naming it,
// and resolves nothing.
func TestAFailedCheckFailsTheRunAndResolvesNothing(t *testing.T) {
	env, a := newEnv(t)
	env.OnActivity(a.MonitorFirstOrder, mock.Anything, mock.Anything).Return(time.Now().Add(-time.Hour), nil)
	env.OnActivity(a.MonitorOrders, mock.Anything, mock.Anything).Return(checks.CheckResult{}, nil)
	env.OnActivity(a.MonitorMoney, mock.Anything, mock.Anything).Return(checks.CheckResult{}, errors.New("list paysim-a's ledger: 503"))
	env.OnActivity(a.MonitorStock, mock.Anything, mock.Anything).Return(checks.CheckResult{}, nil).Once()
	env.OnActivity(a.MonitorSagas, mock.Anything, mock.Anything).Return(checks.CheckResult{}, nil).Once()
	env.ExecuteWorkflow(Run, Input{Region: "eu", Nightly: true})
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "paysim-a")
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "MonitorResolve", mock.Anything, mock.Anything)
}
