// Package backup backs up the PostgreSQL that holds orderflow's data and
// Temporal's persistence with pgBackRest: it writes the server's
// pgbackrest.conf (deploy/postgres/pgbackrest.conf and the server's own
// lines), turns WAL archiving on, takes full and incremental backups,
// restores to a point in time into a fresh data directory, and records the
// time of the last successful backup for Prometheus. The restore drill
// (Drill) proves the lot on a real stack.
//
// Every operation is a pgBackRest command run as the account PostgreSQL runs
// as: this package decides what to ask, pgBackRest does the work.
package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stanza is the name pgBackRest gives orderflow's PostgreSQL in its
// repository: one stanza per cluster (a Patroni cluster's members share it).
const Stanza = "orderflow"

// DefaultRetentionDays is how many days of backups a repository keeps.
const DefaultRetentionDays = 30

// DefaultArchiveTimeout bounds how long a quiet server keeps a WAL segment
// before it is archived: the RPO of a restore from the repository alone.
const DefaultArchiveTimeout = 60 * time.Second

// Repo is where backups and archived WAL go: a local directory (the
// default), or an S3-compatible bucket.
type Repo struct {
	// Path is the local repository's directory, or the prefix inside the
	// bucket for S3.
	Path string
	// S3: bucket, endpoint (host, or host:port), region; URIStyle "path"
	// for MinIO and most non-AWS stores. The key and secret are not here:
	// pgBackRest reads PGBACKREST_REPO1_S3_KEY and _KEY_SECRET.
	S3Bucket, S3Endpoint, S3Region, S3URIStyle string
}

// S3 reports whether the repository is a bucket.
func (r Repo) S3() bool { return r.S3Bucket != "" }

// Server is one PostgreSQL server and its pgBackRest setup.
type Server struct {
	Root string // the checkout: deploy/postgres/pgbackrest.conf
	// Dir holds the server's pgbackrest.conf, its logs and locks.
	Dir    string
	Repo   Repo
	PGData string // the data directory (pg1-path)
	PGPort int
	// PGSocket is the directory of the server's Unix socket.
	PGSocket string
	// RetentionDays (default DefaultRetentionDays).
	RetentionDays int
	// Credential runs pgBackRest as the account PostgreSQL runs as (the
	// repository and the data directory are that account's); nil runs it
	// as the caller.
	Credential *syscall.Credential
}

// ConfigFile is the server's pgbackrest.conf.
func (s Server) ConfigFile() string { return filepath.Join(s.Dir, "pgbackrest.conf") }

func (s Server) retention() int {
	if s.RetentionDays > 0 {
		return s.RetentionDays
	}
	return DefaultRetentionDays
}

// Render returns the server's pgbackrest.conf: the shared settings of
// deploy/postgres/pgbackrest.conf with the server's own global options
// under [global], then its stanza.
func (s Server) Render() (string, error) {
	shared, err := os.ReadFile(filepath.Join(s.Root, "deploy", "postgres", "pgbackrest.conf"))
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	own := []string{
		"log-path=" + filepath.Join(s.Dir, "log"),
		"lock-path=" + filepath.Join(s.Dir, "lock"),
		"repo1-retention-full=" + strconv.Itoa(s.retention()),
	}
	if s.Repo.S3() {
		style := s.Repo.S3URIStyle
		if style == "" {
			style = "host"
		}
		own = append(own, "repo1-type=s3", "repo1-path="+s.Repo.Path, "repo1-s3-bucket="+s.Repo.S3Bucket,
			"repo1-s3-endpoint="+s.Repo.S3Endpoint, "repo1-s3-region="+s.Repo.S3Region, "repo1-s3-uri-style="+style)
	} else {
		own = append(own, "repo1-path="+s.Repo.Path)
	}
	text := string(shared)
	i := strings.Index(text, "[global]\n")
	if i < 0 {
		return "", errors.New("backup: deploy/postgres/pgbackrest.conf has no [global] section")
	}
	i += len("[global]\n")
	text = text[:i] + "# this server's own (devtools/backup)\n" + strings.Join(own, "\n") + "\n" + text[i:]
	text += fmt.Sprintf("\n[%s]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\npg1-user=postgres\n", Stanza, s.PGData, s.PGPort, s.PGSocket)
	return text, nil
}

// Write writes the server's pgbackrest.conf and makes its directories
// (the local repository's too), owned by the account pgBackRest runs as.
func (s Server) Write() error {
	text, err := s.Render()
	if err != nil {
		return err
	}
	dirs := []string{s.Dir, filepath.Join(s.Dir, "log"), filepath.Join(s.Dir, "lock")}
	if !s.Repo.S3() {
		// The repository's parents, made here, stay traversable by the
		// account (it may live apart from Dir: a Patroni cluster's members
		// share one).
		if err := os.MkdirAll(filepath.Dir(s.Repo.Path), 0o755); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		dirs = append(dirs, s.Repo.Path)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := s.chown(d); err != nil {
			return err
		}
	}
	if err := os.WriteFile(s.ConfigFile(), []byte(text), 0o640); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return s.chown(s.ConfigFile())
}

func (s Server) chown(path string) error {
	if s.Credential == nil {
		return nil
	}
	if err := os.Chown(path, int(s.Credential.Uid), int(s.Credential.Gid)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// ArchiveCommand is PostgreSQL's archive_command: each finished WAL segment
// pushed to the repository.
func (s Server) ArchiveCommand() string {
	return fmt.Sprintf("pgbackrest --config=%s --stanza=%s archive-push %%p", s.ConfigFile(), Stanza)
}

// RestoreCommand is a standby's (or a restored server's) restore_command.
func (s Server) RestoreCommand() string {
	return fmt.Sprintf("pgbackrest --config=%s --stanza=%s archive-get %%f \"%%p\"", s.ConfigFile(), Stanza)
}

// Settings are the PostgreSQL parameters that archive every WAL segment
// to the repository within DefaultArchiveTimeout.
func (s Server) Settings() map[string]string {
	return map[string]string{
		"wal_level":       "replica",
		"archive_mode":    "on",
		"archive_command": s.ArchiveCommand(),
		"archive_timeout": strconv.Itoa(int(DefaultArchiveTimeout.Seconds())) + "s",
	}
}

// SettingsMarker opens the block ConfigureDataDir appends to
// postgresql.conf.
const SettingsMarker = "# WAL archiving to pgBackRest (devtools/backup)"

// ConfigureDataDir appends Settings to an initialised data directory's
// postgresql.conf, unless they are there: a server started on it archives
// from its first WAL segment. (A running server takes them with ALTER
// SYSTEM and a restart; docs/operations.md.)
func (s Server) ConfigureDataDir() error {
	conf := filepath.Join(s.PGData, "postgresql.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if bytes.Contains(b, []byte(SettingsMarker)) {
		return nil
	}
	var add strings.Builder
	add.WriteString("\n" + SettingsMarker + "\n")
	set := s.Settings()
	for _, k := range []string{"wal_level", "archive_mode", "archive_command", "archive_timeout"} {
		fmt.Fprintf(&add, "%s = '%s'\n", k, strings.ReplaceAll(set[k], "'", "''"))
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(add.String()); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// pgbackrest runs one pgBackRest command against the stanza and returns
// its standard output; a failure carries what it printed.
func (s Server) pgbackrest(ctx context.Context, args ...string) (string, error) {
	argv := append([]string{"--config=" + s.ConfigFile(), "--stanza=" + Stanza}, args...)
	cmd := exec.CommandContext(ctx, "pgbackrest", argv...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.Credential}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("pgbackrest %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(errb.String()+"\n"+out.String()))
	}
	return out.String(), nil
}

// CreateStanza creates the stanza in the repository (idempotent) and
// checks that a WAL segment reaches it through archive_command.
func (s Server) CreateStanza(ctx context.Context) error {
	if _, err := s.pgbackrest(ctx, "stanza-create"); err != nil {
		return err
	}
	return s.Check(ctx)
}

// Check switches the server to a new WAL segment and waits until the one
// it finished is in the repository: everything committed so far can then
// be restored.
func (s Server) Check(ctx context.Context) error {
	_, err := s.pgbackrest(ctx, "check")
	return err
}

// Backup types.
const (
	Full = "full"
	Incr = "incr"
	Diff = "diff"
	// Auto is a full backup when the last one is FullEvery old (or there is
	// none), else an incremental one: one schedule, every 6 hours.
	Auto = "auto"
)

// FullEvery is how old the last full backup may be before Auto takes a new
// full one.
const FullEvery = 7 * 24 * time.Hour

// Backup takes a backup of the given type (Full, Incr, Diff or Auto) and
// returns it as the repository records it.
func (s Server) Backup(ctx context.Context, typ string) (Info, error) {
	if typ == Auto {
		typ = Incr
		infos, err := s.Info(ctx)
		if err != nil {
			return Info{}, err
		}
		if last, ok := lastOf(infos, Full); !ok || time.Since(last.Stop) >= FullEvery {
			typ = Full
		}
	}
	switch typ {
	case Full, Incr, Diff:
	default:
		return Info{}, fmt.Errorf("backup: type %q: want full, incr, diff or auto", typ)
	}
	if _, err := s.pgbackrest(ctx, "backup", "--type="+typ); err != nil {
		return Info{}, err
	}
	infos, err := s.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	if len(infos) == 0 {
		return Info{}, errors.New("backup: the repository lists no backup after one was taken")
	}
	return infos[len(infos)-1], nil
}

// Info is one backup in the repository.
type Info struct {
	Label string    `json:"label"`
	Type  string    `json:"type"`
	Start time.Time `json:"start"`
	Stop  time.Time `json:"stop"`
	// Size is the database's size; RepoSize what the backup takes in the
	// repository (compressed, and only the changed files for incr/diff).
	Size     int64 `json:"size"`
	RepoSize int64 `json:"repo_size"`
}

// Info lists the stanza's backups, oldest first.
func (s Server) Info(ctx context.Context) ([]Info, error) {
	out, err := s.pgbackrest(ctx, "info", "--output=json")
	if err != nil {
		return nil, err
	}
	return parseInfo([]byte(out))
}

func parseInfo(b []byte) ([]Info, error) {
	var stanzas []struct {
		Name   string `json:"name"`
		Backup []struct {
			Label     string `json:"label"`
			Type      string `json:"type"`
			Timestamp struct {
				Start int64 `json:"start"`
				Stop  int64 `json:"stop"`
			} `json:"timestamp"`
			Info struct {
				Size       int64 `json:"size"`
				Repository struct {
					Delta int64 `json:"delta"`
				} `json:"repository"`
			} `json:"info"`
		} `json:"backup"`
	}
	if err := json.Unmarshal(b, &stanzas); err != nil {
		return nil, fmt.Errorf("backup: pgbackrest info: %w", err)
	}
	var out []Info
	for _, st := range stanzas {
		if st.Name != Stanza {
			continue
		}
		for _, b := range st.Backup {
			out = append(out, Info{Label: b.Label, Type: b.Type, Start: time.Unix(b.Timestamp.Start, 0).UTC(),
				Stop: time.Unix(b.Timestamp.Stop, 0).UTC(), Size: b.Info.Size, RepoSize: b.Info.Repository.Delta})
		}
	}
	return out, nil
}

// lastOf is the newest backup of type typ ("" for any).
func lastOf(infos []Info, typ string) (Info, bool) {
	for i := len(infos) - 1; i >= 0; i-- {
		if typ == "" || infos[i].Type == typ {
			return infos[i], true
		}
	}
	return Info{}, false
}

// Target says how far a restore replays the archived WAL: to Time, or to
// the end of the archive when Time is zero ("latest").
type Target struct {
	Time time.Time
}

// Timestamp is the target time as pgBackRest's --target and PostgreSQL's
// recovery_target_time take it.
func (t Target) Timestamp() string { return t.Time.UTC().Format("2006-01-02 15:04:05.000000-07") }

func (t Target) String() string {
	if t.Time.IsZero() {
		return "latest"
	}
	return t.Time.UTC().Format(time.RFC3339Nano)
}

// Restore restores the newest backup taken before the target into pgdata
// (which must be missing or empty: a restore never overwrites a server),
// set to replay the archive up to the target and then promote. Starting
// PostgreSQL on pgdata finishes the restore.
func (s Server) Restore(ctx context.Context, pgdata string, target Target) error {
	if entries, err := os.ReadDir(pgdata); err == nil && len(entries) > 0 {
		return fmt.Errorf("backup: restore into %s: the directory is not empty", pgdata)
	}
	// The parents stay traversable by the account PostgreSQL runs as.
	if err := os.MkdirAll(filepath.Dir(pgdata), 0o755); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Mkdir(pgdata, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("backup: %w", err)
	}
	if err := s.chown(pgdata); err != nil {
		return err
	}
	// To the end of the archive (pgBackRest's type default), PostgreSQL
	// promotes once it has replayed everything.
	args := []string{"restore", "--pg1-path=" + pgdata}
	if !target.Time.IsZero() {
		// pgBackRest picks the newest backup that ended before the target.
		args = append(args, "--type=time", "--target="+target.Timestamp(), "--target-action=promote")
	}
	_, err := s.pgbackrest(ctx, args...)
	return err
}

// MetricName is the gauge the backup job writes: the Unix time of the end
// of the newest successful backup (deploy/observability/alerts.yml).
const MetricName = "orderflow_backup_last_success_timestamp_seconds"

// WriteMetric writes the time of the newest backup of each type in the
// Prometheus text format to path (a node_exporter textfile collector's
// directory), atomically.
func WriteMetric(path string, infos []Info) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP %s Unix time at which the newest successful pgBackRest backup of this type ended.\n", MetricName)
	fmt.Fprintf(&b, "# TYPE %s gauge\n", MetricName)
	for _, typ := range []string{Full, Diff, Incr} {
		if last, ok := lastOf(infos, typ); ok {
			fmt.Fprintf(&b, "%s{stanza=%q,type=%q} %d\n", MetricName, Stanza, typ, last.Stop.Unix())
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("backup: metric: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("backup: metric: %w", err)
	}
	return os.Rename(tmp, path)
}

// enableArchiving turns archiving to the repository on in a running
// server's configuration (ALTER SYSTEM) unless it is on, and reloads it.
// psql quotes the command (:'cmd'): the statements stay constant text.
const enableArchiving = `ALTER SYSTEM SET archive_command = :'cmd';
ALTER SYSTEM SET archive_timeout = :'timeout';
ALTER SYSTEM SET archive_mode = 'on';
SELECT pg_reload_conf();
`

// EnableArchiving makes a running server archive to the repository: when
// its archive_command is not the server's, it sets archive_mode,
// archive_command and archive_timeout with ALTER SYSTEM and reloads. It
// reports whether PostgreSQL must be restarted for archive_mode to take
// effect (it was off). private says the server is a lab's private cluster
// (trust over TCP as postgres); otherwise psql runs on the local socket as
// the postgres account.
func EnableArchiving(ctx context.Context, s Server, private bool) (restart bool, err error) {
	psql := func(stdin string, vars ...string) (string, error) {
		argv := []string{"psql", "-p", strconv.Itoa(s.PGPort), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"}
		for _, v := range vars {
			argv = append(argv, "-v", v)
		}
		switch {
		case private:
			argv = append(argv, "-h", "127.0.0.1", "-U", "postgres")
		case os.Geteuid() == 0:
			argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = "/"
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("backup: psql as the superuser: %w: %s", err, bytes.TrimSpace(out))
		}
		return strings.TrimSpace(string(out)), nil
	}
	cur, err := psql("SELECT current_setting('archive_mode') || '|' || current_setting('archive_command');\n")
	if err != nil {
		return false, err
	}
	mode, command, _ := strings.Cut(cur, "|")
	if command == s.ArchiveCommand() && mode == "on" {
		return false, nil
	}
	timeout := strconv.Itoa(int(DefaultArchiveTimeout.Seconds())) + "s"
	if _, err := psql(enableArchiving, "cmd="+s.ArchiveCommand(), "timeout="+timeout); err != nil {
		return false, err
	}
	return mode != "on", nil
}
