package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/lab"
)

// profileTestNetwork is apart from the ha profile's own (ofn-, 10.201.0.0/16
// with hosts at 10.201.1.x), so the test runs beside a stack that is up.
var profileTestNetwork = lab.Network{Bridge: "ofn2-br0", Subnet: "10.201.128.0/17", Gateway: "10.201.128.1", Prefix: "ofn2-"}

// tokenOf reads one export line of the stack's tokens file.
func tokenOf(t *testing.T, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "export "+name+"="); ok {
			return v
		}
	}
	t.Fatalf("%s has no %s", file, name)
	return ""
}

// TestHAProfileTakesAnOrderThroughTheBalancerToConfirmedOnTheClusterOnPostgres
// brings the whole ha profile up (every node a host of its own), places an
// order through the gateways' balancer and waits until it is CONFIRMED (or
// further on), then asks the Temporal cluster, through its balancer, what
// it persists to.
func TestHAProfileTakesAnOrderThroughTheBalancerToConfirmedOnTheClusterOnPostgres(t *testing.T) {
	root, base := haEnv(t)
	if os.Geteuid() != 0 {
		t.Skip("the ha profile's hosts are network namespaces: root only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	data := filepath.Join(root, ".data", "ha-profile-test")
	if err := lab.Wipe(data); err != nil {
		t.Fatal(err)
	}
	nw := profileTestNetwork
	d, err := lab.NewDev(lab.Options{Profile: "ha", Root: root, Data: data, Ports: fmt.Sprintf("base:%d", base+700), Network: &nw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := d.Build(); err != nil {
		t.Fatal(err)
	}
	if err := d.UpFresh(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ProfileHosts {
		n, err := p.Node(name)
		if err != nil {
			t.Fatal(err)
		}
		if n.Netns != nw.Prefix+name || !nw.Contains(n.Host) {
			t.Errorf("%s runs at %s in %q, want a host of its own on %s", name, n.Host, n.Netns, nw.Subnet)
		}
	}

	c := client.New(d.APIURL(), client.WithToken(tokenOf(t, d.TokensFile(), "CUSTOMER_TOKEN")))
	acc, status, err := c.PlaceOrder(ctx, client.OrderRequest{Items: []client.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa",
		Email: "a@b.c", ShippingAddress: &client.Address{Name: "Ada", Line1: "1 Main St", City: "London", PostalCode: "N1 9GU", Country: "GB"}},
		"ha-profile-1")
	if err != nil || status != 202 {
		t.Fatalf("place an order through %s: %d %v", d.APIURL(), status, err)
	}
	o, err := c.AwaitStatus(ctx, acc.OrderID, 250*time.Millisecond, func(s string) bool {
		return s == orderflow.StatusConfirmed || orderflow.Terminal(s)
	})
	if err != nil {
		t.Fatalf("order %s: %v", acc.OrderID, err)
	}
	if o.Status != orderflow.StatusConfirmed && o.Status != orderflow.StatusDelivered {
		t.Fatalf("order %s ended %s, want CONFIRMED", acc.OrderID, o.Status)
	}

	out, err := exec.CommandContext(ctx, p.Temporal.Bin.CLI, "operator", "cluster", "describe", "--address", d.Config.Env["TEMPORAL_ADDRESS"],
		"-o", "json").Output()
	if err != nil {
		t.Fatalf("temporal operator cluster describe: %v", err)
	}
	var desc struct {
		PersistenceStore string `json:"persistenceStore"`
		VisibilityStore  string `json:"visibilityStore"`
	}
	if err := json.Unmarshal(out, &desc); err != nil {
		t.Fatalf("cluster describe: %v: %s", err, out)
	}
	if desc.PersistenceStore != "postgres12" || desc.VisibilityStore != "postgres12" {
		t.Errorf("cluster describe: persistence %q, visibility %q; want postgres12 for both", desc.PersistenceStore, desc.VisibilityStore)
	}
}
