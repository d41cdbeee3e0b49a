package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A procGroup is one component of the stack, found by its command line.
type procGroup struct {
	name    string
	pattern *regexp.Regexp
}

// DefaultGroups names the stack's processes as scripts/stack.sh starts them.
func DefaultGroups() []procGroup {
	return []procGroup{
		{"gateway", regexp.MustCompile(`orderflow api\b`)},
		{"worker", regexp.MustCompile(`orderflow worker\b`)},
		{"paysim", regexp.MustCompile(`orderflow-dev paysim\b`)},
		{"temporal", regexp.MustCompile(`temporal\S* server start-dev`)},
		{"postgres", regexp.MustCompile(`^postgres(:|\s|$)|/postgres\s`)},
		{"redis", regexp.MustCompile(`redis-server`)},
		{"bench", regexp.MustCompile(`orderflow-dev bench\b`)},
	}
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

func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// snapshot maps each group to the CPU time of its processes by pid, and
// their summed RSS.
type snapshot struct {
	cpu map[string]map[int]time.Duration
	rss map[string]int64
}

func takeSnapshot(groups []procGroup) snapshot {
	s := snapshot{cpu: map[string]map[int]time.Duration{}, rss: map[string]int64{}}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl := cmdline(pid)
		if cl == "" {
			continue
		}
		for _, g := range groups {
			if !g.pattern.MatchString(cl) {
				continue
			}
			st, ok := readProc(pid)
			if !ok {
				break
			}
			if s.cpu[g.name] == nil {
				s.cpu[g.name] = map[int]time.Duration{}
			}
			s.cpu[g.name][pid] = st.cpu
			s.rss[g.name] += st.rss
			break
		}
	}
	return s
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
