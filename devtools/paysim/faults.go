package paysim

import (
	"encoding/json"
	"fmt"
	"time"
)

// Faults are the failures the server injects, set at start and changed at run
// time through PUT /admin/faults. The zero value injects nothing. They apply
// in this order to every request but /admin/*:
//
//   - Outage: every request, /health included, is answered 503.
//   - Latency: the answer is delayed by this much.
//   - TimeoutRate: this fraction of /v1 requests is held, unanswered, until
//     the client gives up (or the server shuts down).
//   - ErrorRate: this fraction of /v1 requests is answered 500 before the
//     ledger is touched: nothing is charged.
//   - LostAnswerRate: this fraction of successful charges (POST /v1/charges)
//     is made and recorded, then answered 500, as when the answer is lost on
//     the way back. FindCharge finds them.
type Faults struct {
	Latency        Duration `json:"latency"`
	ErrorRate      float64  `json:"error_rate"`
	Outage         bool     `json:"outage"`
	TimeoutRate    float64  `json:"timeout_rate"`
	LostAnswerRate float64  `json:"lost_answer_rate"`
}

// Validate reports a negative latency or a rate outside [0, 1].
func (f Faults) Validate() error {
	if f.Latency < 0 {
		return fmt.Errorf("latency %s is negative", time.Duration(f.Latency))
	}
	for name, r := range map[string]float64{"error_rate": f.ErrorRate, "timeout_rate": f.TimeoutRate, "lost_answer_rate": f.LostAnswerRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s %g is not between 0 and 1", name, r)
		}
	}
	return nil
}

// Duration is a time.Duration written in JSON as a Go duration string ("250ms").
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "250ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "250ms" (or a number of
// nanoseconds); anything else is an error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want a string such as \"250ms\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
