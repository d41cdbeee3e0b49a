package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// CarrierProc is an `orderflow-dev carrier` process owned by one test.
type CarrierProc struct {
	URL string
	cmd *exec.Cmd
}

// StartCarrier starts the simulated carrier on a free loopback port,
// posting events signed with secret to gatewayURL, with the given
// CARRIER_* settings ("CARRIER_PICKUP_AFTER=1s"), and kills it when the
// test ends.
func StartCarrier(t testing.TB, gatewayURL, secret string, settings ...string) *CarrierProc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(DevBinary(t), "carrier", "--addr", addr, "--gateway", gatewayURL)
	cmd.Env = append(append(os.Environ(), "CARRIER_WEBHOOK_SECRET="+secret, "LOG_LEVEL=warn"), settings...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start carrier: %v", err)
	}
	p := &CarrierProc{URL: "http://" + addr, cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	WaitHealthy(t, p.URL+"/health", 15*time.Second, "carrier")
	return p
}

// SetSchedule changes the delays ("1h") of shipments taken from now on.
func (p *CarrierProc) SetSchedule(t testing.TB, pickup, transit, deliver string, lostRate float64) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"pickup_after": pickup, "transit_after": transit, "deliver_after": deliver, "lost_rate": lostRate})
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/admin/schedule", bytes.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("set carrier schedule: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("set carrier schedule: status %d", res.StatusCode)
	}
}
