package lab

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testNetwork is apart from the ha profile's hosts (10.201.1.x) and
// bridge, so the test runs beside a stack that is up.
var testNetwork = Network{Bridge: "ofn-brt", Subnet: "10.201.250.0/24", Gateway: "10.201.250.1", Prefix: "ofn-t"}

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (devtools/install.sh iproute2)")
	}
}

// reach is nil when GET url answers 200 within two seconds.
func reach(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

const serveHTTP = `import http.server, socketserver, sys
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer((sys.argv[1], 8000), http.server.SimpleHTTPRequestHandler).serve_forever()`

func TestNetnsHostsReachEachOtherAndTheRootAndAreCutKilledAndHealed(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	dir := t.TempDir()
	server := func(name, addr string) *Node {
		return &Node{Name: name, Host: addr, Netns: "ofn-t" + name, Ports: Ports{"http": 8000},
			// http.server's own main looks its address up in the DNS, which
			// a host without a route to a resolver waits out.
			// A process in a session of its own stays behind a kill of the
			// group (as Patroni's PostgreSQL does): the host's loss ends it.
			Proc: Process{Command: []string{"sh", "-c", `setsid sleep 300 & exec python3 -c "$0" "$1"`, serveHTTP, addr}, Dir: dir,
				Log: filepath.Join(dir, name+".log"), Grace: 2 * time.Second},
			Ready: HTTPGet{URL: "http://" + addr + ":8000/"}}
	}
	a, b := server("a", "10.201.250.10"), server("b", "10.201.250.11")
	var whoami bytes.Buffer
	id := &Node{Name: "id", Host: "10.201.250.10", Netns: "ofn-ta", Job: true,
		Proc: Process{Command: []string{"id", "-u"}, Output: &whoami, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}}
	nw := testNetwork
	s := NewStack(Config{Profile: "netns-test", Data: dir, Network: &nw}, []*Node{a, b, id})
	s.Out = testWriter{t}
	t.Cleanup(func() {
		if err := s.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := s.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(whoami.String()); got != "65534" {
		t.Errorf("a job run as uid 65534 in a namespace says it is %q", got)
	}
	for _, n := range []*Node{a, b} {
		if err := reach("http://" + n.Addr("http") + "/"); err != nil {
			t.Fatalf("the root namespace does not reach %s: %v", n.Name, err)
		}
	}
	// A server in the root namespace on the bridge's address, fetched from
	// inside host a; and host b fetched from host a.
	ln, err := net.Listen("tcp", testNetwork.Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ln.Close()
	fetch := func(netns, url string) error {
		out, err := exec.Command("nsenter", "--net="+NetnsPath(netns), "--", "python3", "-c",
			"import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)", url).CombinedOutput()
		if err != nil {
			return &exec.Error{Name: string(out), Err: err}
		}
		return nil
	}
	if err := fetch("ofn-ta", "http://"+ln.Addr().String()+"/"); err != nil {
		t.Fatalf("host a does not reach the root namespace at %s: %v", ln.Addr(), err)
	}
	if err := fetch("ofn-ta", "http://"+b.Addr("http")+"/"); err != nil {
		t.Fatalf("host a does not reach host b: %v", err)
	}

	if err := s.Cut(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if up, _ := LinkUp("ofn-ta"); up {
		t.Error("a's link is up after Cut")
	}
	if err := reach("http://" + a.Addr("http") + "/"); err == nil {
		t.Error("a answers while cut off")
	}
	if err := fetch("ofn-ta", "http://"+ln.Addr().String()+"/"); err == nil {
		t.Error("a reaches the root namespace while cut off")
	}
	if !Alive(s.State("a").Pid) {
		t.Error("a's process died when its host was cut off")
	}
	if err := reach("http://" + b.Addr("http") + "/"); err != nil {
		t.Errorf("b is unreachable while only a is cut: %v", err)
	}
	if err := s.Heal(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := Wait(ctx, HTTPGet{URL: "http://" + a.Addr("http") + "/"}, 20*time.Second, nil); err != nil {
		t.Fatalf("a does not answer after Heal: %v", err)
	}
	// A group (a region) is cut and healed as one: every host of its
	// nodes, each once (the job shares a's host).
	s.Groups = map[string][]string{"both": {"a", "b", "id"}}
	if err := s.Cut(ctx, "both"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"ofn-ta", "ofn-tb"} {
		if up, err := LinkUp(ns); err != nil || up {
			t.Errorf("%s's link up %t (%v) after the group's Cut", ns, up, err)
		}
	}
	if err := s.Heal(ctx, "both"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if err := Wait(ctx, HTTPGet{URL: "http://" + n.Addr("http") + "/"}, 20*time.Second, nil); err != nil {
			t.Fatalf("%s does not answer after the group's Heal: %v", n.Name, err)
		}
	}

	pid := s.State("a").Pid
	if err := s.Kill("a"); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Fatal("a's process outlived Kill")
	}
	if out, err := exec.Command("ip", "netns", "pids", "ofn-ta").Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("processes left on a's host after Kill: %q (%v)", out, err)
	}
	if err := reach("http://" + a.Addr("http") + "/"); err == nil {
		t.Error("a answers after Kill")
	}
	if err := s.Start(ctx, "a"); err != nil {
		t.Fatalf("start a again: %v", err)
	}
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"ofn-ta", "ofn-tb"} {
		if _, err := os.Stat(NetnsPath(ns)); err == nil {
			t.Errorf("namespace %s is still there after Down", ns)
		}
	}
	if _, err := net.InterfaceByName(testNetwork.Bridge); err == nil {
		t.Error("the bridge is still there after Down")
	}
}

func TestLinkNamesFitLinux(t *testing.T) {
	for netns, want := range map[string]string{"ofn-pg1": "ofv-pg1", "ofn-temporal-2": "ofv-temporal-2", "ofn2-sentinel-1": "ofv2-sentinel-1",
		"ofc-sentinel-1": "ofc-vsentinel-1", "x": "v-x"} {
		if got := Link(netns); got != want {
			t.Errorf("Link(%q) = %q, want %q", netns, got, want)
		}
	}
	err := testNetwork.AddHost(context.Background(), "ofn-a-name-far-too-long", "10.201.250.9")
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a host whose link name would not fit: %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestLabNetworkNamesTheBridgeTheGatewayAndTheHostsPrefix(t *testing.T) {
	nw, err := ParseNetwork("ofc:10.202.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Network{Bridge: "ofc-br0", Subnet: "10.202.0.0/16", Gateway: "10.202.0.1", Prefix: "ofc-"}); nw != want {
		t.Errorf("ParseNetwork = %+v, want %+v", nw, want)
	}
	for _, bad := range []string{"10.202.0.0/16", "ofc:", "ofc:10.202.0.0", ":10.202.0.0/16", "ofc:fd00::/64"} {
		if _, err := ParseNetwork(bad); err == nil {
			t.Errorf("ParseNetwork(%q) took it", bad)
		}
	}
}
