package chaos

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// HookTag is the build tag of the worker's chaos hooks
// (activities/fulfillment/chaoshook.go): `make chaos` builds its stack's
// binary with it; the product binary never carries it.
const HookTag = "chaoshooks"

// Hook steps: an order whose customer id starts with hookPrefix+step+"-"
// has that step after its charge fail for good in a binary built with
// HookTag (the prefix is chaoshook.go's).
const hookPrefix = "chaoshook-"

var hookSteps = []string{"confirm", "notify"}

// BinaryHasHooks reports whether the Go binary at path was built with
// HookTag.
func BinaryHasHooks(path string) (bool, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("build info of %s: %w", path, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), HookTag) {
			return true, nil
		}
	}
	return false, nil
}

// checkHooks refuses a run whose orders would have steps fail through
// hooks the worker does not carry: the compensating refunds they stand
// for would never run, and the run would say so only at the end.
func (r *Runner) checkHooks() error {
	if r.cfg.HookShare <= 0 || r.cfg.WorkerBin == "" {
		return nil
	}
	ok, err := BinaryHasHooks(r.cfg.WorkerBin)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s was built without -tags %s: no step after the charge can fail on purpose (build it as `make chaos` does, or pass --hook-share 0)", r.cfg.WorkerBin, HookTag)
	}
	return nil
}

// setLostRate tells the simulated carrier to lose LostRate of the parcels
// it takes from now on, keeping its delays.
func (r *Runner) setLostRate(ctx context.Context) error {
	if r.cfg.CarrierURL == "" || r.cfg.LostRate <= 0 {
		return nil
	}
	url := strings.TrimSuffix(r.cfg.CarrierURL, "/") + "/admin/schedule"
	sched := map[string]any{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("carrier schedule: %w", err)
	}
	err = json.NewDecoder(res.Body).Decode(&sched)
	_ = res.Body.Close()
	if err != nil {
		return fmt.Errorf("carrier schedule: %w", err)
	}
	sched["lost_rate"] = r.cfg.LostRate
	b, _ := json.Marshal(sched)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	res, err = httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("carrier schedule: %w", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("carrier schedule: status %d", res.StatusCode)
	}
	return nil
}
