package bench

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// The bench finds a stack's processes from the lab's state: a node the lab
// started by its pid with its children, a server it reused by the process
// listening on the node's port; nothing by command line.
func TestGroupsFindTheStacksProcessesFromTheLabState(t *testing.T) {
	dir := t.TempDir()
	// A worker whose process has a child, as the gateway's shell would.
	worker := &lab.Node{Name: "worker", Proc: lab.Process{Command: []string{"sh", "-c", "sleep 300 & wait"}, Log: filepath.Join(dir, "w.log")}}
	// A "postgres" the lab did not start: this test process listens on its port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pg := &lab.Node{Name: "postgres", Ports: lab.Ports{"sql": ln.Addr().(*net.TCPAddr).Port}}
	s := lab.NewStack(lab.Config{Profile: "t", Root: dir, Data: dir}, []*lab.Node{worker})
	s.Out = discard{}
	if err := s.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Down() })
	s.Nodes = append(s.Nodes, pg)

	// Up returns once the shell runs; its child comes a moment later (much
	// later on a loaded machine), so wait for it before looking.
	snap := takeSnapshot(Groups(s))
	for deadline := time.Now().Add(10 * time.Second); len(snap.cpu["worker"]) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		snap = takeSnapshot(Groups(s))
	}
	if len(snap.cpu["worker"]) < 2 {
		t.Fatalf("worker group %v: want the shell and its child", snap.cpu["worker"])
	}
	if _, ok := snap.cpu["worker"][s.State("worker").Pid]; !ok {
		t.Fatalf("worker group %v lacks the lab's pid %d", snap.cpu["worker"], s.State("worker").Pid)
	}
	if _, ok := snap.cpu["postgres"][os.Getpid()]; !ok {
		t.Fatalf("postgres group %v: want the listener, pid %d", snap.cpu["postgres"], os.Getpid())
	}
	if snap.rss["worker"] <= 0 || len(snap.cpu["redis"]) != 0 {
		t.Fatalf("rss %v, redis %v", snap.rss, snap.cpu["redis"])
	}
}
