package lab

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestProcessStartsWaitsReadyAndStopsWithItsGroup(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ready := filepath.Join(dir, "ready")
	// A child that ignores nothing and a grandchild in the same group.
	p := Process{Command: []string{"sh", "-c", "sleep 300 & touch " + ready + "; exec python3 -m http.server " +
		itoa(port) + " --bind 127.0.0.1"}, Log: filepath.Join(dir, "log"), Grace: 2 * time.Second}
	r, err := p.Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := Wait(context.Background(), HTTPGet{URL: "http://127.0.0.1:" + itoa(port) + "/"}, 20*time.Second, r); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if !Alive(r.Pid) {
		t.Fatal("the process is not alive after its health wait passed")
	}
	if err := StopGroup(r.Pid, 0, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(r.Pid) {
		t.Fatal("the process outlived StopGroup")
	}
	if _, err := http.Get("http://127.0.0.1:" + itoa(port) + "/"); err == nil {
		t.Fatal("the server still answers after StopGroup")
	}
}

func TestWaitFailsFastWhenTheProcessExits(t *testing.T) {
	r, err := Process{Command: []string{"sh", "-c", "exit 3"}}.Start()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Wait(context.Background(), TCP{Addr: "127.0.0.1:1"}, 20*time.Second, r)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Wait = %v after %s, want ErrExited at once", err, time.Since(start))
	}
}

func TestWaitIsBounded(t *testing.T) {
	err := Wait(context.Background(), TCP{Addr: "127.0.0.1:1"}, 300*time.Millisecond, nil)
	if err == nil {
		t.Fatal("Wait on a closed port passed")
	}
}

func TestAllocatePorts(t *testing.T) {
	names := []string{"api", "redis", "temporal"}
	defs := Ports{"api": 8080, "redis": 6379, "temporal": 7233}
	got, err := Allocate(names, defs, PortMode{Kind: "default"}, Ports{"redis": 6380})
	if err != nil || got["api"] != 8080 || got["redis"] != 6380 || got["temporal"] != 7233 {
		t.Fatalf("default = %v, %v", got, err)
	}
	got, err = Allocate(names, defs, PortMode{Kind: "base", Base: 20000}, nil)
	if err != nil || got["api"] != 20000 || got["redis"] != 20001 || got["temporal"] != 20002 {
		t.Fatalf("base = %v, %v", got, err)
	}
	got, err = Allocate(names, defs, PortMode{Kind: "free"}, nil)
	if err != nil || len(got) != 3 || got["api"] == got["redis"] || got["redis"] == got["temporal"] {
		t.Fatalf("free = %v, %v", got, err)
	}
	if _, err := Allocate(names, defs, PortMode{Kind: "default"}, Ports{"api": 7233}); err == nil {
		t.Fatal("two names on one port were allowed")
	}
	if _, err := ParsePortMode("base:12"); err == nil {
		t.Fatal("base:12 accepted")
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := &State{Config: Config{Profile: "dev", Root: "/r", Data: dir, Ports: Ports{"api": 1}},
		Nodes: map[string]*NodeState{"worker": {Started: true, Pid: 42, Log: "w.log"}}}
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Ports["api"] != 1 || got.Nodes["worker"].Pid != 42 || !got.Nodes["worker"].Started {
		t.Fatalf("round trip = %+v", got)
	}
	if fi, _ := os.Stat(StatePath(dir)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestStackKillAndStartANode(t *testing.T) {
	dir := t.TempDir()
	n := &Node{Name: "sleeper", Proc: Process{Command: []string{"sleep", "300"}, Log: filepath.Join(dir, "s.log")}}
	s := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{n})
	s.Out = new(discard)
	if err := s.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := s.State("sleeper").Pid
	if err := (KillNode{Stack: s, Name: "sleeper"}).Inject(context.Background()); err != nil || Alive(pid) {
		t.Fatalf("kill: %v, alive %v", err, Alive(pid))
	}
	if err := (KillNode{Stack: s, Name: "sleeper"}).Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Another process finds it by name from the state file.
	other := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{n})
	other.Out = new(discard)
	pid2 := other.State("sleeper").Pid
	if pid2 == 0 || pid2 == pid || !Alive(pid2) {
		t.Fatalf("restarted pid %d (was %d)", pid2, pid)
	}
	if err := other.Down(); err != nil || Alive(pid2) {
		t.Fatalf("down: %v, alive %v", err, Alive(pid2))
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

func itoa(i int) string { return strconv.Itoa(i) }
