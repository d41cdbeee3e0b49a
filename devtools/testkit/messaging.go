package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// The event stream's NATS server and the mail catcher are real processes
// each test starts for itself on free ports, so that it can stop and start
// them at will; their binaries are the lab's pinned builds (lab.GoTools).

// ToolBinary returns the path of a pinned Go tool of the lab (lab.GoTools:
// "mailpit", "nats-server"), installed into the cache the first time.
// EnvVar, when set, names the binary instead.
func ToolBinary(t testing.TB, name, envVar string) string {
	t.Helper()
	path, err := cached(envVar, "tool:"+name, func(root string) (string, error) { return lab.GoTool(root, name) })
	if err != nil {
		need(t, "%s: %v", name, err)
	}
	return path
}

// moduleRoot returns the directory of this checkout's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// proc is a server process a test owns: started, stopped and started again
// with the same arguments (and so the same ports and data).
type proc struct {
	t      testing.TB
	name   string
	bin    string
	args   []string
	health string
	mu     sync.Mutex
	cmd    *exec.Cmd
}

// Start starts the process and waits until its health URL answers 200.
func (p *proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	WaitHealthy(p.t, p.health, 30*time.Second, p.name)
}

// Stop ends the process with SIGTERM, as an operator's restart does, and
// waits until it has exited.
func (p *proc) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// NATSServer is a nats-server with JetStream owned by one test.
type NATSServer struct {
	// URL is the client URL, nats://127.0.0.1:<port>.
	URL string
	*proc
}

// EnvNATSServer names a nats-server binary to use instead of the pinned build.
const EnvNATSServer = "ORDERFLOW_TEST_NATS_SERVER"

// NATS starts a nats-server with JetStream on a free loopback port, its
// store in a temporary directory that outlives a Stop (so a restart finds
// its streams), every write synced before it is acknowledged; it stops
// when the test ends. Config lines ("max_payload: 2048") are added to its
// configuration file.
func NATS(t testing.TB, config ...string) *NATSServer {
	t.Helper()
	bin := ToolBinary(t, "nats-server", EnvNATSServer)
	dir := t.TempDir()
	port, mon := FreePort(t), FreePort(t)
	conf, monitor := filepath.Join(dir, "nats.conf"), fmt.Sprintf("127.0.0.1:%d", mon)
	if err := lab.WriteNATSConfig(conf, fmt.Sprintf("127.0.0.1:%d", port), monitor, filepath.Join(dir, "js"), config...); err != nil {
		t.Fatal(err)
	}
	s := &NATSServer{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), proc: &proc{t: t, name: "nats-server", bin: bin,
		args: []string{"-c", conf}, health: lab.NATSHealthURL(monitor)}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Mailpit is a mailpit (an SMTP server that keeps what it receives and
// serves it over an HTTP API) owned by one test.
type Mailpit struct {
	// SMTPHost and SMTPPort are where it takes mail (plain SMTP, any or no
	// credentials); API is its HTTP base URL.
	SMTPHost string
	SMTPPort int
	API      string
	*proc
}

// EnvMailpit names a mailpit binary to use instead of the pinned build.
const EnvMailpit = "ORDERFLOW_TEST_MAILPIT"

// StartMailpit starts mailpit on two free loopback ports with its database
// in a temporary file that outlives a Stop, so that what arrived before a
// restart is still counted after it; it stops when the test ends. Args are
// added to its command line ("--smtp-allowed-recipients", "@shop\\.test$").
func StartMailpit(t testing.TB, args ...string) *Mailpit {
	t.Helper()
	bin := ToolBinary(t, "mailpit", EnvMailpit)
	dir := t.TempDir()
	smtp, web := FreePort(t), FreePort(t)
	m := &Mailpit{SMTPHost: "127.0.0.1", SMTPPort: smtp, API: fmt.Sprintf("http://127.0.0.1:%d", web),
		proc: &proc{t: t, name: "mailpit", bin: bin, health: fmt.Sprintf("http://127.0.0.1:%d/readyz", web),
			args: append(lab.MailpitArgs(fmt.Sprintf("127.0.0.1:%d", smtp), fmt.Sprintf("127.0.0.1:%d", web), filepath.Join(dir, "mailpit.db")),
				"--max", "0", "--quiet")}}
	m.args = append(m.args, args...)
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// MailSummary is a message as mailpit's list shows it.
type MailSummary struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
	To        []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// MailMessage is one message in full: its plain text and HTML bodies.
type MailMessage struct {
	MailSummary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// Messages lists every message mailpit holds, newest first.
func (m *Mailpit) Messages(t testing.TB) []MailSummary {
	t.Helper()
	var page struct {
		Total    int           `json:"total"`
		Messages []MailSummary `json:"messages"`
	}
	const limit = 1000
	m.get(t, fmt.Sprintf("/api/v1/messages?limit=%d", limit), &page)
	// A message stored while the list is read may count in the total and
	// not be in the page: only a full page means there are more.
	if len(page.Messages) >= limit {
		t.Fatalf("mailpit holds %d messages, more than one page", page.Total)
	}
	return page.Messages
}

// Message returns the message with mailpit's id.
func (m *Mailpit) Message(t testing.TB, id string) MailMessage {
	t.Helper()
	var msg MailMessage
	m.get(t, "/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

func (m *Mailpit) get(t testing.TB, path string, into any) {
	t.Helper()
	res, err := http.Get(m.API + path)
	if err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("mailpit GET %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
}
