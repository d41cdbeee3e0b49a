package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// A procGroup is one component of the stack: the processes of its lab
// nodes and their descendants (a PostgreSQL server's backends).
type procGroup struct {
	name  string
	roots func() []int
}

// Groups names the processes of the lab stack s, from its state: each
// node's process as the lab started it, or, for a server the lab reused (a
// shared PostgreSQL), the process listening on its port; and this process
// as "bench".
func Groups(s *lab.Stack) []procGroup {
	node := func(names ...string) func() []int {
		var cached map[string]int
		return func() []int {
			if cached == nil {
				cached = map[string]int{}
			}
			var out []int
			for _, name := range names {
				pid := cached[name]
				if !lab.Alive(pid) {
					pid = rootOf(s, name)
					cached[name] = pid
				}
				if pid > 0 {
					out = append(out, pid)
				}
			}
			return out
		}
	}
	self := os.Getpid()
	return []procGroup{
		{"gateway", node("api")},
		{"worker", node("worker")},
		{"paysim", node("paysim-a", "paysim-b")},
		// The dev server, or the two servers of TEMPORAL_BACKEND=cluster
		// (its HAProxy apart).
		{"temporal", node("temporal", "temporal-1", "temporal-2")},
		{"temporal-lb", node("temporal-lb")},
		{"postgres", node("postgres")},
		{"redis", node("redis")},
		{"bench", func() []int { return []int{self} }},
	}
}

// rootOf is the pid of a node: the one the lab started, else the one
// listening on the node's first port; 0 when there is none.
func rootOf(s *lab.Stack, name string) int {
	if st := s.State(name); st.Started && lab.Alive(st.Pid) {
		return st.Pid
	}
	n, err := s.Node(name)
	if err != nil {
		return 0
	}
	for _, port := range n.Ports {
		if pid := listener(port); pid > 0 {
			return pid
		}
	}
	return 0
}

// listener is the pid of the process holding a listening TCP socket on
// port, from /proc/net/tcp{,6} and the processes' file descriptors.
func listener(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				return pid
			}
		}
	}
	return 0
}

const clockTicks = 100 // USER_HZ on Linux

// procStat is a process's CPU time and resident memory.
type procStat struct {
	cpu time.Duration
	rss int64 // bytes
}

func readProc(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return procStat{}, false
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{
		cpu: time.Duration(utime+stime) * time.Second / clockTicks,
		rss: rssPages * int64(os.Getpagesize()),
	}, true
}

// snapshot maps each group to the CPU time of its processes by pid, and
// their summed RSS.
type snapshot struct {
	cpu map[string]map[int]time.Duration
	rss map[string]int64
}

func takeSnapshot(groups []procGroup) snapshot {
	s := snapshot{cpu: map[string]map[int]time.Duration{}, rss: map[string]int64{}}
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(pid); pp > 0 {
			children[pp] = append(children[pp], pid)
		}
	}
	for _, g := range groups {
		seen := map[int]bool{}
		todo := g.roots()
		for len(todo) > 0 {
			pid := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			todo = append(todo, children[pid]...)
			st, ok := readProc(pid)
			if !ok {
				continue
			}
			if s.cpu[g.name] == nil {
				s.cpu[g.name] = map[int]time.Duration{}
			}
			s.cpu[g.name][pid] = st.cpu
			s.rss[g.name] += st.rss
		}
	}
	return s
}

// ppid is the parent of pid, from /proc/<pid>/stat; 0 when unknown.
func ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// cpuSince is the CPU each group used between two snapshots; a process that
// appeared in between counts from zero.
func cpuSince(before, after snapshot) map[string]time.Duration {
	out := map[string]time.Duration{}
	for g, pids := range after.cpu {
		for pid, t := range pids {
			out[g] += t - before.cpu[g][pid]
		}
	}
	return out
}

// rssSampler records each group's peak RSS while it runs.
type rssSampler struct {
	mu   sync.Mutex
	peak map[string]int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(groups []procGroup, every time.Duration) *rssSampler {
	r := &rssSampler{peak: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s := takeSnapshot(groups)
			r.mu.Lock()
			for g, v := range s.rss {
				r.peak[g] = max(r.peak[g], v)
			}
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) finish() map[string]int64 {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}
