package regions

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc/metadata"

	"github.com/orderflow/orderflow/devtools/lab"
	regionsx "github.com/orderflow/orderflow/internal/regions"
)

// regionsEnv skips the test unless ORDERFLOW_TEST_REGIONS=1 and it runs as
// root (the hosts are network namespaces). The topology's hosts live on
// ORDERFLOW_TEST_REGIONS_NETWORK (default ofs:10.205.0.0/16, apart from the
// profile's own), its balancer and services on ORDERFLOW_TEST_REGIONS_PORTS
// (default free).
func regionsEnv(t *testing.T) (root string, nw lab.Network, ports string) {
	t.Helper()
	if os.Getenv("ORDERFLOW_TEST_REGIONS") != "1" {
		t.Skip("ORDERFLOW_TEST_REGIONS=1 runs the regions test (it brings two regions up: minutes)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the regions' hosts are network namespaces: root only")
	}
	spec := os.Getenv("ORDERFLOW_TEST_REGIONS_NETWORK")
	if spec == "" {
		spec = "ofs:10.205.0.0/16"
	}
	nw, err := lab.ParseNetwork(spec)
	if err != nil {
		t.Fatal(err)
	}
	ports = os.Getenv("ORDERFLOW_TEST_REGIONS_PORTS")
	if ports == "" {
		ports = "free"
	}
	root, err = filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root, nw, ports
}

// waitSignal stands in for a saga: it waits for a signal, so it is in
// flight when its region is lost.
func waitSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return "done:" + v, nil
}

const testQueue = "regions-test"

// noForwarding makes a frontend answer a call itself instead of
// forwarding it to the namespace's active cluster.
func noForwarding(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "xdc-redirection", "false")
}

// TestEastLostOrdersEastFailsOverToWestWithItsDatabaseAndInFlightWorkflow
// brings both regions up, starts a workflow in orders-east on east and
// sees west hold its replicated copy, then cuts east off the network
// (every host) and runs the failover's infrastructure steps on west:
// promote the standby holding east's database, drop east's standby from
// west's synchronous_standby_names (a commit waiting for it goes on), make
// west orders-east's active cluster. West then accepts a new workflow in
// orders-east, and a worker in west completes it and the one started in
// east. It logs how long each part took.
func TestEastLostOrdersEastFailsOverToWestWithItsDatabaseAndInFlightWorkflow(t *testing.T) {
	root, nw, ports := regionsEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	data := filepath.Join(root, ".data", "regions-test")
	if err := lab.Wipe(data); err != nil {
		t.Fatal(err)
	}
	d, err := lab.NewDev(lab.Options{Profile: "regions", Root: root, Data: data, Ports: ports, Network: &nw})
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
	began := time.Now()
	if err := d.UpFresh(ctx); err != nil {
		t.Fatal(err)
	}
	upTook := time.Since(began)
	p, err := LoadProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, home := range Names {
		if got, err := p.ServedBy(ctx, home); err != nil || got != Backends(home)[0] {
			t.Fatalf("a customer of %s is served by %q (%v), want %s", home, got, err, Backends(home)[0])
		}
	}
	// Without the header, the bearer token's region claim routes (the
	// balancer reads it unverified: the gateway checks the token).
	claim := "Bearer e30." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"c-1","region":"west"}`)) + ".c2ln"
	if got, err := p.ServedWith(ctx, "Authorization", claim); err != nil || got != Backends("west")[0] {
		t.Fatalf("a token whose region is west is served by %q (%v), want %s", got, err, Backends("west")[0])
	}
	if got, err := p.ServedWith(ctx, "X-Nothing", "1"); err != nil || got != Backends("east")[0] {
		t.Fatalf("a request that names no region is served by %q (%v), want %s", got, err, Backends("east")[0])
	}
	if state, err := regionsx.SyncState(ctx, p.PrimaryAdminURL("west", "postgres"), "east"); err != nil || state != "sync" {
		t.Fatalf("west's standby in east: sync_state %q (%v), want sync", state, err)
	}

	// A row and a workflow of east's, both replicated to west.
	eastDB, err := pgx.Connect(ctx, p.DatabaseURL("east"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eastDB.Exec(ctx, "CREATE TABLE regions_probe (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := eastDB.Exec(ctx, "INSERT INTO regions_probe VALUES ('accepted-in-east')"); err != nil {
		t.Fatal(err)
	}
	_ = eastDB.Close(ctx)
	east, err := client.Dial(client.Options{HostPort: p.TemporalAddress("east"), Namespace: Namespace("east")})
	if err != nil {
		t.Fatal(err)
	}
	const before, after = "started-in-east", "started-in-west"
	if _, err := east.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: before, TaskQueue: testQueue}, "waitSignal"); err != nil {
		t.Fatal(err)
	}
	east.Close()
	west, err := client.Dial(client.Options{HostPort: p.TemporalAddress("west"), Namespace: Namespace("east")})
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	replicated := checkFunc{before + " in west's own copy", func(ctx context.Context) error {
		_, err := west.DescribeWorkflow(noForwarding(ctx), before, "")
		return err
	}}
	if err := lab.Wait(ctx, replicated, time.Minute, nil); err != nil {
		t.Fatal(err)
	}

	// East lost: every host of the region off the network.
	cut := time.Now()
	if err := p.Cut(ctx, "east"); err != nil {
		t.Fatal(err)
	}
	// An acceptance-like commit in west (remote_apply) waits for its
	// synchronous standby, in east.
	westDB, err := pgx.Connect(ctx, p.DatabaseURL("west"))
	if err != nil {
		t.Fatal(err)
	}
	defer westDB.Close(context.Background())
	committed := make(chan error, 1)
	go func() {
		committed <- pgx.BeginFunc(ctx, westDB, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('synchronous_commit', 'remote_apply', true)"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "CREATE TABLE regions_probe_west (id text PRIMARY KEY)")
			return err
		})
	}()
	detected := checkFunc{"the balancer takes east-gw out", func(ctx context.Context) error {
		up, err := p.GatewaysUp(ctx)
		if err == nil && up[Backends("east")[0]] {
			err = errors.New("east-gw is still up")
		}
		return err
	}}
	if err := lab.Wait(ctx, detected, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	detectTook := time.Since(cut)

	step := time.Now()
	promoted, err := regionsx.Promote(ctx, p.StandbyURL("west", "postgres"))
	if err != nil || !promoted {
		t.Fatalf("promote west's copy of east: promoted %t, %v", promoted, err)
	}
	promoteTook := time.Since(step)
	if again, err := regionsx.Promote(ctx, p.StandbyURL("west", "postgres")); err != nil || again {
		t.Fatalf("promote west's copy of east again: promoted %t, %v; want nothing to do", again, err)
	}
	select {
	case err := <-committed:
		t.Fatalf("a commit in west returned (%v) while its synchronous standby was cut off", err)
	default:
	}
	step = time.Now()
	left, err := regionsx.DropSyncStandby(ctx, p.PrimaryAdminURL("west", "postgres"), "east")
	if err != nil || left != "" {
		t.Fatalf("drop east from west's synchronous standbys: left %q, %v", left, err)
	}
	dropTook := time.Since(step)
	if left, err := regionsx.DropSyncStandby(ctx, p.PrimaryAdminURL("west", "postgres"), "east"); err != nil || left != "" {
		t.Fatalf("drop east again: left %q, %v", left, err)
	}
	if err := <-committed; err != nil {
		t.Fatalf("the commit that waited for east's standby: %v", err)
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: p.TemporalAddress("west")})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	step = time.Now()
	changed, err := regionsx.SwitchActive(ctx, nc, Namespace("east"), "west")
	if err != nil || !changed {
		t.Fatalf("switch orders-east to west: changed %t, %v", changed, err)
	}
	switchTook := time.Since(step)
	if changed, err := regionsx.SwitchActive(ctx, nc, Namespace("east"), "west"); err != nil || changed {
		t.Fatalf("switch orders-east to west again: changed %t, %v; want nothing to do", changed, err)
	}

	// West serves orders-east: a new workflow, and the one east started;
	// east's customers reach west's gateway for east.
	accepted := checkFunc{"west accepts a workflow in orders-east", func(ctx context.Context) error {
		_, err := west.ExecuteWorkflow(noForwarding(ctx), client.StartWorkflowOptions{ID: after, TaskQueue: testQueue}, "waitSignal")
		return err
	}}
	if err := lab.Wait(ctx, accepted, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	acceptedAfter := time.Since(cut)
	rerouted := checkFunc{"east's customers served from west", func(ctx context.Context) error {
		got, err := p.ServedBy(ctx, "east")
		if err == nil && got != Backends("east")[1] {
			err = errors.New("served by " + got)
		}
		return err
	}}
	if err := lab.Wait(ctx, rerouted, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	reroutedAfter := time.Since(cut)
	w := worker.New(west, testQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(waitSignal, workflow.RegisterOptions{Name: "waitSignal"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, id := range []string{before, after} {
		if err := west.SignalWorkflow(ctx, id, "", "go", id); err != nil {
			t.Fatalf("signal %s in west: %v", id, err)
		}
		var got string
		if err := west.GetWorkflow(ctx, id, "").Get(ctx, &got); err != nil || got != "done:"+id {
			t.Fatalf("%s in west ended %q, %v", id, got, err)
		}
	}

	// West's copy of east's database takes writes and holds east's row.
	promotedDB, err := pgx.Connect(ctx, p.StandbyURL("west", "orderflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer promotedDB.Close(context.Background())
	var id string
	if err := promotedDB.QueryRow(ctx, "SELECT id FROM regions_probe").Scan(&id); err != nil || id != "accepted-in-east" {
		t.Fatalf("east's row in west's promoted copy: %q, %v", id, err)
	}
	if _, err := promotedDB.Exec(ctx, "INSERT INTO regions_probe VALUES ('accepted-in-west')"); err != nil {
		t.Fatalf("a write to west's promoted copy of east: %v", err)
	}
	// East returns (its primary stays out of the way: nothing here writes
	// to it) and hears of the failover; orders-east is handed back to it
	// gracefully, with what west ran while it was away.
	if err := p.Heal(ctx, "east"); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	ncEast, err := client.NewNamespaceClient(client.Options{HostPort: p.TemporalAddress("east")})
	if err != nil {
		t.Fatal(err)
	}
	defer ncEast.Close()
	activeIn := func(nc client.NamespaceClient, want string) checkFunc {
		return checkFunc{"orders-east active in " + want, func(ctx context.Context) error {
			got, err := regionsx.ActiveCluster(ctx, nc, Namespace("east"))
			if err == nil && got != want {
				err = errors.New("active in " + got)
			}
			return err
		}}
	}
	if err := lab.Wait(ctx, activeIn(ncEast, "west"), 2*time.Minute, nil); err != nil {
		t.Fatalf("east's copy after the heal: %v", err)
	}
	heardAfter := time.Since(healed)
	sys, err := client.Dial(client.Options{HostPort: p.TemporalAddress("west"), Namespace: regionsx.SystemNamespace})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	step = time.Now()
	if changed, err := regionsx.HandOver(ctx, sys, nc, Namespace("east"), "east", time.Minute); err != nil || !changed {
		t.Fatalf("hand orders-east back to east: changed %t, %v", changed, err)
	}
	handTook := time.Since(step)
	if err := lab.Wait(ctx, activeIn(ncEast, "east"), time.Minute, nil); err != nil {
		t.Fatalf("east's copy after the handover: %v", err)
	}
	eastAgain, err := client.Dial(client.Options{HostPort: p.TemporalAddress("east"), Namespace: Namespace("east")})
	if err != nil {
		t.Fatal(err)
	}
	defer eastAgain.Close()
	for _, id := range []string{before, after} {
		d, err := eastAgain.DescribeWorkflow(noForwarding(ctx), id, "")
		if err != nil {
			t.Fatalf("%s in east after the handover: %v", id, err)
		}
		if status := d.RawResponse.GetWorkflowExecutionInfo().GetStatus(); status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Fatalf("%s in east after the handover: %v", id, status)
		}
	}
	// East's database follows its promoted copy in west again: east-pg
	// rebuilt as its standby, synchronous once more.
	step = time.Now()
	if err := p.RebuildAsStandby(ctx, "east"); err != nil {
		t.Fatal(err)
	}
	if _, err := regionsx.RequireSyncStandby(ctx, p.StandbyURL("west", "postgres"), "east"); err != nil {
		t.Fatal(err)
	}
	synced := checkFunc{"east-pg is the synchronous standby of west's copy of east", func(ctx context.Context) error {
		state, err := regionsx.SyncState(ctx, p.StandbyURL("west", "postgres"), "east")
		if err == nil && state != "sync" {
			err = errors.New("sync_state " + state)
		}
		return err
	}}
	if err := lab.Wait(ctx, synced, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	rebuildTook := time.Since(step)
	rebuilt, err := pgx.Connect(ctx, p.DatabaseURL("east"))
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close(context.Background())
	var rows int
	if err := rebuilt.QueryRow(ctx, "SELECT count(*) FROM regions_probe").Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("east-pg rebuilt has %d rows of regions_probe (%v), want east's and the one written in west", rows, err)
	}
	t.Logf("east healed: it heard of the failover after %s; the graceful handover back took %s; east-pg rebuilt as a synchronous standby in %s",
		heardAfter.Round(100*time.Millisecond), handTook.Round(100*time.Millisecond), rebuildTook.Round(100*time.Millisecond))

	t.Logf("bring-up %s; east cut: the balancer took east-gw out after %s; promote %s, drop the sync standby %s, switch orders-east %s; "+
		"west accepted a workflow in orders-east %s after the cut, east's customers reached west-sgw %s after it",
		upTook.Round(time.Second), detectTook.Round(100*time.Millisecond), promoteTook.Round(time.Millisecond),
		dropTook.Round(time.Millisecond), switchTook.Round(time.Millisecond), acceptedAfter.Round(100*time.Millisecond),
		reroutedAfter.Round(100*time.Millisecond))
}
