package ha

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/lab"
)

// Patroni's names for the cluster in etcd (deploy/postgres/patroni.yml):
// its keys live under namespace + scope.
const (
	patroniScope     = "orderflow"
	patroniNamespace = "/service/"
)

// BackupServer is member i's pgBackRest setup: its own pgbackrest.conf in
// <member>/pgbackrest (pg1-path its data directory, its port and socket),
// the repository every member shares.
func (p *PostgresHA) BackupServer(i int) (backup.Server, error) {
	p.defaults()
	cred, err := lab.PostgresUser()
	if err != nil {
		return backup.Server{}, err
	}
	repo := p.Repo
	if repo == (backup.Repo{}) {
		repo.Path = filepath.Join(p.Data, "backup", "repo")
	}
	dir := filepath.Join(p.Data, MemberName(i))
	return backup.Server{Root: p.Root, Dir: filepath.Join(dir, "pgbackrest"), Repo: repo, PGData: filepath.Join(dir, "data"),
		PGPort: p.PortBase + 20 + i, PGSocket: p.socketDir(i), Credential: cred}, nil
}

// primaryServer is the pgBackRest setup of the member Patroni says is the
// primary: backups, stanza changes and archive checks go through it.
func (p *PostgresHA) primaryServer(ctx context.Context) (backup.Server, error) {
	i, err := p.Primary(ctx)
	if err != nil {
		return backup.Server{}, err
	}
	return p.BackupServer(i)
}

// CreateStanza creates the stanza through the primary (idempotent) and
// checks that a WAL segment reaches the repository.
func (p *PostgresHA) CreateStanza(ctx context.Context) error {
	srv, err := p.primaryServer(ctx)
	if err != nil {
		return fmt.Errorf("pgbackrest stanza: %w", err)
	}
	return srv.CreateStanza(ctx)
}

// Backup takes a backup of the given type (backup.Full, Incr, Diff or
// Auto) from the primary, whichever member it is now.
func (p *PostgresHA) Backup(ctx context.Context, typ string) (backup.Info, error) {
	srv, err := p.primaryServer(ctx)
	if err != nil {
		return backup.Info{}, fmt.Errorf("backup: %w", err)
	}
	return srv.Backup(ctx, typ)
}

// Archived switches the primary to a new WAL segment and waits until the
// one it finished is in the repository: everything committed so far can be
// restored.
func (p *PostgresHA) Archived(ctx context.Context) error {
	srv, err := p.primaryServer(ctx)
	if err != nil {
		return fmt.Errorf("archive check: %w", err)
	}
	return srv.Check(ctx)
}

// bootstrapFromRepo are the lines a member's patroni.yml takes under
// bootstrap: to be created from the repository, restored to t (the end of
// the archive when t is zero) and promoted, instead of by initdb: Patroni's
// custom bootstrap. Patroni writes recovery_conf as the recovery settings
// (dropping those pgBackRest writes to postgresql.auto.conf) and waits for
// the promotion before it takes the leader key.
func bootstrapFromRepo(srv backup.Server, t backup.Target) []string {
	restore := []string{"pgbackrest", "--config=" + srv.ConfigFile(), "--stanza=" + backup.Stanza, "--delta", "restore"}
	recovery := [][2]string{{"restore_command", srv.RestoreCommand()}}
	if !t.Time.IsZero() {
		// pgBackRest picks the newest backup that ended before the target.
		restore = append(restore, "--type=time", "'--target="+t.Timestamp()+"'", "--target-action=promote")
		recovery = append(recovery, [2]string{"recovery_target_time", t.Timestamp()}, [2]string{"recovery_target_action", "promote"})
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	out := []string{
		"  # A restore from the pgBackRest repository to " + t.String() + " (devtools/ha, Restore)",
		"  method: pgbackrest",
		"  pgbackrest:",
		"    command: " + q(strings.Join(restore, " ")),
		"    no_params: true",
		"    recovery_conf:",
	}
	for _, kv := range recovery {
		out = append(out, "      "+kv[0]+": "+q(kv[1]))
	}
	return out
}

// Members are the nodes Restore stops and starts: the stack that runs the
// members (a lab.Stack).
type Members interface {
	Stop(name string) error
	Start(ctx context.Context, name string) error
}

// PatroniRestore is what a restore of the cluster did and took.
type PatroniRestore struct {
	Target backup.Target `json:"-"`
	// Leader is the member bootstrapped from the repository; Timeline the
	// timeline it promoted to.
	Leader   string `json:"leader"`
	Timeline int    `json:"timeline"`
	// ReplicaMethod is how the other member was created: "pgbackrest"
	// (restored from the repository, then streaming) or "basebackup" (a
	// copy of the leader, Patroni's fallback).
	ReplicaMethod string `json:"replica_method"`
	// LeaderSeconds: from the start of the bootstrap until the leader takes
	// writes; ReplicaSeconds: then until the other member is its
	// synchronous standby; StackSeconds (Profile.Restore): then until the
	// rest of the stack serves.
	LeaderSeconds  float64 `json:"leader_seconds"`
	ReplicaSeconds float64 `json:"replica_seconds"`
	StackSeconds   float64 `json:"stack_seconds,omitempty"`
	// Aside are the data directories the restore moved away.
	Aside []string `json:"data_kept_aside"`
}

// Restore takes the whole cluster back to target the way Patroni does it:
// Patroni stopped on every member (m), the cluster's state removed from
// etcd (patronictl remove), every data directory moved aside, the first
// member started with a bootstrap from the repository (pgBackRest restores
// the newest backup before the target, PostgreSQL replays the archive to
// it and promotes on a new timeline, Patroni takes the leader key), then
// the others, which Patroni creates as replicas from the repository
// (create_replica_methods) and which catch up from the archive and the
// leader. Nothing may write meanwhile: stop the clients first.
func (p *PostgresHA) Restore(ctx context.Context, m Members, target backup.Target, out io.Writer) (PatroniRestore, error) {
	r := PatroniRestore{Target: target, Leader: MemberName(0)}
	logf := func(format string, args ...any) { fmt.Fprintf(out, "restore: "+format+"\n", args...) }
	logf("stopping Patroni on every member")
	for i := range pgMembers {
		if err := m.Stop(MemberName(i)); err != nil {
			return r, err
		}
		p.killPostmaster(i)
	}
	// A member that was killed leaves its leader key until it expires (the
	// ttl); patronictl remove wants none.
	if err := waitFor(ctx, checkFunc{"no leader key in etcd", p.noLeader}, time.Minute); err != nil {
		return r, err
	}
	logf("removing the cluster's state from etcd (patronictl remove %s)", patroniScope)
	if err := p.removeCluster(ctx); err != nil {
		return r, err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	cred, err := lab.PostgresUser()
	if err != nil {
		return r, err
	}
	for i := range pgMembers {
		data := filepath.Join(p.Data, MemberName(i), "data")
		aside := data + ".before-restore-" + stamp
		switch err := os.Rename(data, aside); {
		case err == nil:
			r.Aside = append(r.Aside, aside)
		case !os.IsNotExist(err):
			return r, err
		}
		// Patroni bootstraps or clones into an empty directory it owns.
		if err := os.Mkdir(data, 0o700); err != nil {
			return r, err
		}
		if cred != nil {
			if err := os.Chown(data, int(cred.Uid), int(cred.Gid)); err != nil {
				return r, err
			}
		}
	}
	logf("bootstrapping %s from the repository, to %s", r.Leader, target)
	start := time.Now()
	p.restoreTo = &target
	err = m.Start(ctx, r.Leader)
	p.restoreTo = nil
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, p.bootstrapTrail(0))
	}
	// Its configuration as usual again: a later start never restores.
	if werr := p.writeConfig(0); err == nil {
		err = werr
	}
	if err != nil {
		return r, err
	}
	if err := waitFor(ctx, lab.HTTPGet{URL: p.RESTURL(0) + "/primary"}, 5*time.Minute); err != nil {
		return r, fmt.Errorf("%s did not become the leader after its restore: %w", r.Leader, err)
	}
	r.LeaderSeconds = time.Since(start).Seconds()
	r.Timeline, _ = p.timeline(ctx, 0)
	logf("%s is the leader on timeline %d after %.1fs", r.Leader, r.Timeline, r.LeaderSeconds)
	// The new timeline's history file reaches the repository, where the
	// replica restored from it finds the way to the leader's timeline.
	srv, err := p.BackupServer(0)
	if err != nil {
		return r, err
	}
	if err := srv.Check(ctx); err != nil {
		return r, err
	}
	start = time.Now()
	for i := 1; i < pgMembers; i++ {
		if err := m.Start(ctx, MemberName(i)); err != nil {
			return r, err
		}
	}
	if err := waitFor(ctx, checkFunc{"a primary and a synchronous standby", func(ctx context.Context) error {
		_, _, err := p.Roles(ctx)
		return err
	}}, 5*time.Minute); err != nil {
		return r, err
	}
	r.ReplicaSeconds = time.Since(start).Seconds()
	r.ReplicaMethod = p.replicaMethod(1, start)
	logf("%s streams from %s as its synchronous standby after %.1fs, created by %s", MemberName(1), r.Leader, r.ReplicaSeconds, r.ReplicaMethod)
	return r, nil
}

// noLeader passes when etcd holds no leader key for the cluster.
func (p *PostgresHA) noLeader(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(patroniNamespace + patroniScope + "/leader"))})
	var last error
	for i := range 3 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.at(etcdName(i), p.PortBase+i)+"/v3/kv/range", bytes.NewReader(body))
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		var got struct {
			KVs []json.RawMessage `json:"kvs"`
		}
		err = json.NewDecoder(res.Body).Decode(&got)
		_ = res.Body.Close()
		switch {
		case err != nil:
			last = err
		case len(got.KVs) > 0:
			return errors.New("the leader key is still there")
		default:
			return nil
		}
	}
	return fmt.Errorf("no etcd member answered: %w", last)
}

// removeCluster is patronictl remove, answering its questions: the
// cluster's name, then that we know what it does.
func (p *PostgresHA) removeCluster(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "patronictl", "-c", p.config(0), "remove", patroniScope)
	cmd.Env = append(os.Environ(), "PATRONI_ETCD3_HOSTS="+p.etcdHosts())
	cmd.Stdin = strings.NewReader(patroniScope + "\nYes I am aware\n")
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("patronictl remove %s: %w: %s", patroniScope, err, lastLines(string(out), 10))
	}
	return nil
}

// replicaMethod says how member i was created since: pgBackRest's restore
// log, which the pgbackrest replica method writes, records a restore that
// completed; else Patroni fell back to basebackup.
func (p *PostgresHA) replicaMethod(i int, since time.Time) string {
	srv, err := p.BackupServer(i)
	if err != nil {
		return "unknown"
	}
	log := filepath.Join(srv.Dir, "log", backup.Stanza+"-restore.log")
	fi, err := os.Stat(log)
	if err != nil || fi.ModTime().Before(since) {
		return "basebackup"
	}
	b, err := os.ReadFile(log)
	if err != nil {
		return "unknown"
	}
	text := string(b)
	if i := strings.LastIndex(text, "restore command begin"); i >= 0 && strings.Contains(text[i:], "restore command end: completed successfully") {
		return "pgbackrest"
	}
	return "basebackup"
}

// bootstrapTrail is what says why member i's bootstrap from the repository
// failed: the errors in its log (Patroni's and PostgreSQL's) and
// pgBackRest's restore log.
func (p *PostgresHA) bootstrapTrail(i int) string {
	var out []string
	srv, _ := p.BackupServer(i)
	for _, f := range []string{filepath.Join(p.Data, MemberName(i)+".log"), filepath.Join(srv.Dir, "log", backup.Stanza+"-restore.log")} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			for _, w := range []string{"ERROR", "FATAL", "CRITICAL", "WARN"} {
				if strings.Contains(l, w) && !strings.Contains(l, "the database system is") {
					out = append(out, l)
					break
				}
			}
		}
	}
	if len(out) > 30 {
		out = out[len(out)-30:]
	}
	return strings.Join(out, "\n")
}

// timeline is member i's timeline, as its Patroni reports it.
func (p *PostgresHA) timeline(ctx context.Context, i int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.RESTURL(i)+"/patroni", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var got struct {
		Timeline int `json:"timeline"`
	}
	return got.Timeline, json.NewDecoder(res.Body).Decode(&got)
}

// writers are the profile's nodes that write to PostgreSQL: they stop
// while it goes back in time.
func writers() []string {
	return []string{GatewayName(0), GatewayName(1), "worker-1", "worker-2", ServerName(0), ServerName(1)}
}

// Restore takes the profile back to target: the archive brought up to date
// (best effort: the primary may be what is lost), the nodes that write
// stopped, PostgreSQL restored through Patroni (PostgresHA.Restore),
// Redis's caches emptied (they may hold what came after the target), then
// every node that is not running started again.
func (p *Profile) Restore(ctx context.Context, target backup.Target) (PatroniRestore, error) {
	out := p.Out
	if out == nil {
		out = os.Stderr
	}
	if err := p.Postgres.Archived(ctx); err != nil {
		fmt.Fprintf(out, "restore: the primary's last WAL not archived (%v); restoring from what the repository holds\n", err)
	}
	fmt.Fprintln(out, "restore: stopping what writes: the gateways, the workers, the Temporal servers")
	for _, name := range writers() {
		if err := p.Stop(name); err != nil {
			return PatroniRestore{Target: target}, err
		}
	}
	r, err := p.Postgres.Restore(ctx, p.Stack, target, out)
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := p.flushRedis(ctx); err != nil {
		return r, err
	}
	if err := p.Up(ctx); err != nil {
		return r, err
	}
	r.StackSeconds = time.Since(start).Seconds()
	fmt.Fprintf(out, "restore: the stack serves on the restored cluster %.1fs later\n", r.StackSeconds)
	return r, nil
}

// flushRedis empties the Redis master the Sentinels name: a cached order or
// stock count from after the target must not outlive the restore.
func (p *Profile) flushRedis(ctx context.Context) error {
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: p.Redis.MasterName, SentinelAddrs: p.Redis.Sentinels()})
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("restore: empty Redis's caches: %w", err)
	}
	return nil
}
