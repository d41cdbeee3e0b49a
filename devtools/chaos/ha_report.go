package chaos

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// HAReport is what an HA run prints and writes: Report's orders, windows and
// invariants, and each host fault with its recovery.
type HAReport struct {
	Report
	Rounds     int       `json:"rounds"`
	HostFaults []HAFault `json:"host_faults"`
	Kinds      []HAKind  `json:"fault_kinds"`
}

// HAFault is one host lost, measured from the placements sent around it.
// Times are seconds from the fault. RTOFirst is the first placement
// answered again (sent after the first failure), RTOLast the answer that
// came last to a placement that had failed while the host was lost (each is
// retried with its key, 200 ms doubling to 3 s apart); both 0 when no
// placement failed.
type HAFault struct {
	Kind      string    `json:"kind"`
	Mode      string    `json:"mode"`
	Node      string    `json:"node"`
	Injected  time.Time `json:"injected"`
	Lost      float64   `json:"lost_s"`             // until the heal
	Whole     float64   `json:"whole_after_heal_s"` // the heal until the tier was whole
	Recovered bool      `json:"service_back_while_lost"`
	Calm      bool      `json:"steady_after_heal"`
	Window    float64   `json:"window_s"`              // the fault until the service was steady again
	Promoted  *float64  `json:"promoted_s,omitempty"`  // when the engine named a new primary/master
	Failed    int       `json:"placements_failed"`     // attempts with a 5xx or no answer while lost
	Orders    int       `json:"orders_failed"`         // orders (keys) among them
	Unanswer  int       `json:"orders_never_answered"` // of those, never answered afterwards
	RTOFirst  *float64  `json:"rto_first_s"`
	RTOLast   *float64  `json:"rto_last_s"`
	LastFail  float64   `json:"last_failure_s"`
	Objective float64   `json:"objective_s"`
	E5xx      int       `json:"errors_5xx"` // every call of the load in the window, the heal and 10 s after it included
	Timeouts  int       `json:"timeouts"`
	Err       string    `json:"error,omitempty"`
}

// HAKind sums up the faults of one tier.
type HAKind struct {
	Kind        string  `json:"kind"`
	Times       int     `json:"times"`
	Kills       int     `json:"kills"`
	Cuts        int     `json:"cuts"`
	RTOFirstMax float64 `json:"rto_first_max_s"`
	RTOLastMed  float64 `json:"rto_last_median_s"`
	RTOLastMax  float64 `json:"rto_last_max_s"`
	Objective   float64 `json:"objective_s"`
	Met         bool    `json:"objective_met"`
	E5xx        int     `json:"errors_5xx"`
	Timeouts    int     `json:"timeouts"`
}

// measure reads each fault's recovery from the placements recorded.
func measure(faults []*hostFault, attempts []attempt) []HAFault {
	out := make([]HAFault, 0, len(faults))
	for _, f := range faults {
		m := HAFault{Kind: f.Kind, Mode: f.Mode, Node: f.Node, Injected: f.Injected, Recovered: f.Recovered, Calm: f.Calm,
			Window:    f.w.End.Sub(f.Injected).Seconds(),
			Objective: f.Objective.Seconds(), E5xx: f.w.Errors["5xx"], Timeouts: f.w.Errors["timeout"], Err: f.Err}
		healed := f.Healed
		if healed.IsZero() {
			healed = f.w.End
		}
		m.Lost = healed.Sub(f.Injected).Seconds()
		if !f.Promoted.IsZero() {
			p := f.Promoted.Sub(f.Injected).Seconds()
			m.Promoted = &p
		}
		if !f.Whole.IsZero() {
			m.Whole = f.Whole.Sub(f.Healed).Seconds()
		}
		first, last, lastFail, failed, keys, never := recovery(attempts, f.Injected, healed)
		m.Failed, m.Orders, m.Unanswer = failed, keys, never
		m.LastFail = lastFail
		if first >= 0 {
			m.RTOFirst = &first
		}
		if last >= 0 {
			m.RTOLast = &last
		}
		out = append(out, m)
	}
	return out
}

// recovery measures, from the placements, a host lost from t0 to healed:
// first is when a placement sent after the first failure was first
// answered, last when the last order that failed meanwhile was answered
// (both -1 when never, 0 when nothing failed); lastFail when the last
// failure came; failed the failed attempts, keys their orders, never those
// orders that got no answer afterwards. Seconds from t0.
func recovery(attempts []attempt, t0, healed time.Time) (first, last, lastFail float64, failed, keys, never int) {
	var firstFail time.Time
	lastFailOf := map[string]time.Time{}
	for _, a := range attempts {
		if a.start.Before(t0) || !a.start.Before(healed) || !a.failed() {
			continue
		}
		failed++
		if firstFail.IsZero() || a.start.Before(firstFail) {
			firstFail = a.start
		}
		if a.end.After(lastFailOf[a.key]) {
			lastFailOf[a.key] = a.end
		}
		lastFail = max(lastFail, a.end.Sub(t0).Seconds())
	}
	if failed == 0 {
		return 0, 0, 0, 0, 0, 0
	}
	first, last = -1, 0
	answeredAt := map[string]time.Time{}
	for _, a := range attempts {
		if !a.answered() {
			continue
		}
		if !a.start.Before(firstFail) && (first < 0 || a.end.Sub(t0).Seconds() < first) {
			first = a.end.Sub(t0).Seconds()
		}
		if lf, ok := lastFailOf[a.key]; ok && !a.start.Before(lf) {
			if at, seen := answeredAt[a.key]; !seen || a.end.Before(at) {
				answeredAt[a.key] = a.end
			}
		}
	}
	keys = len(lastFailOf)
	for k := range lastFailOf {
		at, ok := answeredAt[k]
		if !ok {
			never++
			continue
		}
		last = max(last, at.Sub(t0).Seconds())
	}
	if never == keys {
		last = -1
	}
	return first, last, lastFail, failed, keys, never
}

// summarize sums the faults up per tier, in the tiers' order.
func summarize(tiers []Tier, faults []HAFault) []HAKind {
	var out []HAKind
	for _, t := range tiers {
		k := HAKind{Kind: t.Kind, Objective: t.Objective.Seconds()}
		var lasts []float64
		for _, f := range faults {
			if f.Kind != t.Kind {
				continue
			}
			k.Times++
			if f.Mode == ModeCut {
				k.Cuts++
			} else {
				k.Kills++
			}
			k.E5xx += f.E5xx
			k.Timeouts += f.Timeouts
			if f.RTOFirst != nil {
				k.RTOFirstMax = max(k.RTOFirstMax, *f.RTOFirst)
			}
			if f.RTOLast != nil {
				lasts = append(lasts, *f.RTOLast)
				k.RTOLastMax = max(k.RTOLastMax, *f.RTOLast)
			}
		}
		if len(lasts) > 0 {
			sort.Float64s(lasts)
			k.RTOLastMed = lasts[len(lasts)/2]
		}
		k.Met = k.Times > 0 && len(lasts) == k.Times && k.RTOLastMax <= k.Objective
		out = append(out, k)
	}
	return out
}

// haInvariants are the HA run's own: every host's loss recovered, every
// tier lost often enough, no 5xx outside the fault windows.
func (h *HARunner) haInvariants(rep HAReport) []Invariant {
	rec := Invariant{Name: "every lost host: orders flowed again while it was lost, each failed order answered later, its tier whole and the service steady after the heal",
		Checked: len(rep.HostFaults)}
	for _, f := range rep.HostFaults {
		switch {
		case f.Err != "":
			rec.Counterexamples = append(rec.Counterexamples, fmt.Sprintf("%s %s %s: %s", f.Kind, f.Mode, f.Node, f.Err))
		case !f.Recovered:
			rec.Counterexamples = append(rec.Counterexamples, fmt.Sprintf("%s %s %s: placements still failing, or no failover, after %.0f s", f.Kind, f.Mode, f.Node, f.Lost))
		case !f.Calm:
			rec.Counterexamples = append(rec.Counterexamples, fmt.Sprintf("%s %s %s: placements still failing %.0f s after the heal", f.Kind, f.Mode, f.Node, f.Window-f.Lost))
		case f.Unanswer > 0:
			rec.Counterexamples = append(rec.Counterexamples, fmt.Sprintf("%s %s %s: %d of %d failed orders never answered", f.Kind, f.Mode, f.Node, f.Unanswer, f.Orders))
		}
	}
	times := Invariant{Name: fmt.Sprintf("every kind of host lost at least %d times", rep.Rounds), Checked: len(rep.Kinds)}
	for _, k := range rep.Kinds {
		if k.Times < rep.Rounds {
			times.Counterexamples = append(times.Counterexamples, fmt.Sprintf("%s: %d times", k.Kind, k.Times))
		}
	}
	out := Invariant{Name: "no 5xx outside the fault windows", Checked: len(h.rec.snapshot())}
	if n := rep.Errors["5xx"]; n > 0 {
		out.Counterexamples = append(out.Counterexamples, fmt.Sprintf("%d 5xx answers outside any window", n))
	}
	return []Invariant{done(rec), done(times), done(out)}
}

// Print writes the report: orders, invariants, then every host fault and
// the recovery per kind.
func (rep HAReport) Print(w io.Writer) {
	rep.Report.Print(w)
	fmt.Fprintf(w, "\n%-15s %-4s %-10s %8s %7s %7s %8s %6s %8s %8s %8s %5s %8s\n",
		"host lost", "how", "node", "promoted", "lost s", "whole s", "window s", "failed", "RTO 1st", "RTO last", "last err", "5xx", "timeouts")
	for _, f := range rep.HostFaults {
		promoted := "-"
		if f.Promoted != nil {
			promoted = fmt.Sprintf("%.1f", *f.Promoted)
		}
		fmt.Fprintf(w, "%-15s %-4s %-10s %8s %7.1f %7.1f %8.1f %6d %8s %8s %8.1f %5d %8d", f.Kind, f.Mode, f.Node, promoted, f.Lost, f.Whole,
			f.Window, f.Failed, seconds(f.RTOFirst), seconds(f.RTOLast), f.LastFail, f.E5xx, f.Timeouts)
		if f.Err != "" {
			fmt.Fprintf(w, "  %s", f.Err)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\n%-15s %5s %9s %13s %13s %13s %10s %6s %5s %8s\n",
		"kind", "times", "kill/cut", "RTO 1st max", "RTO last med", "RTO last max", "objective", "met", "5xx", "timeouts")
	for _, k := range rep.Kinds {
		fmt.Fprintf(w, "%-15s %5d %9s %12.1fs %12.1fs %12.1fs %9.0fs %6t %5d %8d\n", k.Kind, k.Times, fmt.Sprintf("%d/%d", k.Kills, k.Cuts),
			k.RTOFirstMax, k.RTOLastMed, k.RTOLastMax, k.Objective, k.Met, k.E5xx, k.Timeouts)
	}
	fmt.Fprintf(w, "%-15s %5s %9s %13s %13s %13s %10s %6s %5d %8d\n", "(no fault)", "", "", "", "", "", "", "",
		rep.Errors["5xx"], rep.Errors["timeout"])
}

func seconds(s *float64) string {
	if s == nil {
		return "never"
	}
	return fmt.Sprintf("%.1f", *s)
}

// Write stores the report as JSON under dir (ha-<time>.json) and returns
// the file's path.
func (rep HAReport) Write(dir string) (string, error) {
	return writeJSON(dir, "ha-"+rep.Started.Format("20060102T150405Z")+".json", rep)
}
