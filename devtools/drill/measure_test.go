package drill

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/devtools/chaos"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestFirstAcceptedIsTheEarliestAnswerToAPlacementSentAfterTheCut(t *testing.T) {
	attempts := []attempt{
		{Start: at(-1), End: at(0.5), Status: 202},  // sent before the cut: says nothing of after
		{Start: at(1), End: at(11), Status: 0},      // no answer
		{Start: at(2), End: at(2.1), Status: 503},   // refused
		{Start: at(20), End: at(24), Status: 202},   // accepted, but answered after the next one
		{Start: at(21), End: at(22.5), Status: 202}, // the first answer
		{Start: at(25), End: at(25.1), Status: 400}, // a final refusal is no recovery
	}
	got, ok := firstAccepted(attempts, at(0))
	if !ok || !got.Equal(at(22.5)) {
		t.Fatalf("first accepted %v (%t), want %v", got.Sub(t0), ok, 22.5)
	}
	if _, ok := firstAccepted(attempts[:3], at(0)); ok {
		t.Fatal("only a placement sent before the cut was accepted, yet one counts as accepted after it")
	}
}

func TestRefusalsCountOnlyThePlacementsSentInTheWindow(t *testing.T) {
	attempts := []attempt{
		{Start: at(-1), Status: 202}, {Start: at(0), Status: 202}, {Start: at(1), Status: 503},
		{Start: at(2), Status: 0}, {Start: at(3), Status: 500}, {Start: at(4), Status: 429}, {Start: at(10), Status: 503},
	}
	got := refusals(attempts, at(0), at(10))
	want := Refusals{Sent: 5, Accepted: 1, Status503: 1, Failed: 2}
	if got != want {
		t.Fatalf("refusals %+v, want %+v", got, want)
	}
}

func TestCustomersNameTheirRegionAndRecordOnlyPlacements(t *testing.T) {
	var regions []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		regions = append(regions, r.Header.Get(RegionHeader))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c := &customers{region: "west", next: http.DefaultTransport}
	hc := &http.Client{Transport: c}
	for _, req := range []struct{ method, path string }{{http.MethodPost, "/v1/orders"}, {http.MethodGet, "/v1/orders/x"}, {http.MethodPost, "/v1/orders"}} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		res, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
	}
	if !slices.Equal(regions, []string{"west", "west", "west"}) {
		t.Fatalf("the server saw regions %q", regions)
	}
	got := c.snapshot()
	if len(got) != 2 || got[0].Status != http.StatusAccepted || got[0].End.Before(got[0].Start) {
		t.Fatalf("recorded %+v, want the two placements, accepted", got)
	}
}

func TestHistogramMeanAddsUpEveryLabelSetInSeconds(t *testing.T) {
	text := `# HELP replication_latency replication_latency histogram
# TYPE replication_latency histogram
replication_latency_bucket{operation="ReplicationTaskFetcher",le="0.005"} 1
replication_latency_sum{operation="ReplicationTaskFetcher",service_name="history"} 0.3
replication_latency_count{operation="ReplicationTaskFetcher",service_name="history"} 3
replication_latency_sum{operation="Other",weird="a}b"} 0.1
replication_latency_count{operation="Other",weird="a}b"} 1
replication_latency_other_sum 99
replication_latency_other_count 1
`
	got, ok := histogramMean(text, "replication_latency")
	if !ok || got.Count != 4 || got.MeanMS < 99.99 || got.MeanMS > 100.01 {
		t.Fatalf("mean %+v (%t), want 4 observations of 100 ms on average", got, ok)
	}
	if _, ok := histogramMean("replication_latency_count 0\n", "replication_latency"); ok {
		t.Fatal("a histogram never observed has a mean")
	}
}

func TestDoubleChargedAreOrdersPayingMoreThanOneCharge(t *testing.T) {
	ledger := map[string]*monitor.Money{
		"once":         {Charges: 1, Charged: 1000},
		"twice":        {Charges: 2, Charged: 2000},
		"compensated":  {Charges: 2, Charged: 2000, Refunded: 1000}, // a second charge refunded
		"all-refunded": {Charges: 2, Charged: 2000, Refunded: 2000},
		"other-run":    {Charges: 3, Charged: 3000},
	}
	got := doubleCharged(ledger, []string{"once", "twice", "compensated", "all-refunded", "absent"})
	if !slices.Equal(got, []string{"twice"}) {
		t.Fatalf("double charged %v, want [twice]", got)
	}
}

func TestDuplicatedNotificationsAreTheSameSubjectTwiceForAnOrder(t *testing.T) {
	mails := []mail{
		{order: orderOfMessageID("<notification-7.o-1@orderflow.example>"), subject: "Your order is confirmed"},
		{order: orderOfMessageID("notification-9.o-1@orderflow.example"), subject: "Your order has shipped"},
		// The same notification re-created under another id after a failover.
		{order: orderOfMessageID("notification-3.o-2@orderflow.example"), subject: "Your order is confirmed"},
		{order: orderOfMessageID("notification-12.o-2@orderflow.example"), subject: "Your order is confirmed"},
		{order: orderOfMessageID("notification-5.o-3@orderflow.example"), subject: "Your order is confirmed"},
		{order: orderOfMessageID("notification-6.o-3@orderflow.example"), subject: "Your order is confirmed"},
		{order: orderOfMessageID("someone-else@example.com"), subject: "x"},
	}
	got := duplicated(mails, []string{"o-1", "o-2"})
	if !slices.Equal(got, []string{"o-2 Your order is confirmed"}) {
		t.Fatalf("duplicated %q, want o-2's confirmation only (o-3 is not the run's)", got)
	}
}

func TestObjectivesFailOnAnyLossDoubleChargeOrSlowRecovery(t *testing.T) {
	fast, slow := 25.0, 75.0
	rep := &Report{Lost: "east", FailoverSec: &fast, RTOAcceptSec: &fast, RTOSagasSec: &fast,
		Failback: &Failback{OldPrimaryInRecovery: true, ServedAgainSec: &fast}}
	met := func(r *Report) bool {
		for _, o := range (&Drill{}).objectives(r) {
			if !o.Met {
				return false
			}
		}
		return true
	}
	rep.Regions = []RegionResult{{Region: "east"}, {Region: "west"}}
	rep.Regions[0].Invariants = append(rep.Regions[0].Invariants, invariantHeld())
	rep.Regions[1].Invariants = append(rep.Regions[1].Invariants, invariantHeld())
	if !met(rep) {
		t.Fatalf("a clean drill misses an objective: %+v", (&Drill{}).objectives(rep))
	}
	for name, spoil := range map[string]func(r *Report){
		"slow RTO":            func(r *Report) { r.RTOAcceptSec = &slow },
		"failover unfinished": func(r *Report) { r.FailoverSec = nil },
		"sagas never end":     func(r *Report) { r.RTOSagasSec = nil },
		"an order lost":       func(r *Report) { r.Regions[0].Lost = 1 },
		"a double charge":     func(r *Report) { r.Regions[1].DoubleCharged = []string{"o"} },
		"a mail twice":        func(r *Report) { r.Regions[0].DuplicateMails = []string{"o x"} },
		"not fenced":          func(r *Report) { r.Failback = &Failback{ServedAgainSec: &fast} },
		"no failback":         func(r *Report) { r.Failback = nil },
		"invariant broken":    func(r *Report) { r.Regions[1].Invariants[0].Passed = false },
		"nothing checked":     func(r *Report) { r.Regions[0].Invariants = nil },
	} {
		r := *rep
		r.Regions = []RegionResult{rep.Regions[0], rep.Regions[1]}
		for i := range r.Regions {
			r.Regions[i].Invariants = slices.Clone(rep.Regions[i].Invariants)
		}
		spoil(&r)
		if met(&r) {
			t.Errorf("%s: every objective met", name)
		}
	}
}

func invariantHeld() chaos.Invariant { return chaos.Invariant{Name: "held", Passed: true, Checked: 1} }

// The loss shows from the first failed placement after the cut; one the
// region still answered just after the cut is not its recovery.
func TestFirstFailedIsTheEarliestFailureAfterTheCut(t *testing.T) {
	attempts := []attempt{
		{Start: at(-1), End: at(-0.5), Status: 503}, // before the cut
		{Start: at(0.1), End: at(0.2), Status: 202}, // taken in the instant after it
		{Start: at(3), End: at(8), Status: 0},       // no answer
		{Start: at(2), End: at(4), Status: 503},
		{Start: at(1), End: at(1.5), Status: 429}, // the limiter's, not the loss's
	}
	got, ok := firstFailed(attempts, at(0))
	if !ok || !got.Equal(at(2)) {
		t.Fatalf("first failure %v %v, want %v", got, ok, at(2))
	}
	if _, ok := firstFailed(attempts[:2], at(0)); ok {
		t.Fatal("a failure found where none came after the cut")
	}
}
