package ha

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/internal/db"
)

// patroniConfig is the part of a member's patroni.yml pgBackRest concerns.
type patroniConfig struct {
	Bootstrap struct {
		Method     string `yaml:"method"`
		PGBackRest struct {
			Command      string            `yaml:"command"`
			NoParams     bool              `yaml:"no_params"`
			RecoveryConf map[string]string `yaml:"recovery_conf"`
		} `yaml:"pgbackrest"`
	} `yaml:"bootstrap"`
	PostgreSQL struct {
		Parameters           map[string]string `yaml:"parameters"`
		RecoveryConf         map[string]string `yaml:"recovery_conf"`
		CreateReplicaMethods []string          `yaml:"create_replica_methods"`
		PGBackRest           struct {
			Command  string `yaml:"command"`
			KeepData bool   `yaml:"keep_data"`
			NoParams bool   `yaml:"no_params"`
		} `yaml:"pgbackrest"`
	} `yaml:"postgresql"`
}

func memberConfig(t *testing.T, p *PostgresHA, i int) (patroniConfig, string) {
	t.Helper()
	require.NoError(t, p.writeConfig(i))
	b, err := os.ReadFile(p.config(i))
	require.NoError(t, err)
	var c patroniConfig
	require.NoError(t, yaml.Unmarshal(b, &c), string(b))
	return c, string(b)
}

func TestEachMemberArchivesToTheSharedRepositoryThroughItsOwnConfigurationAndReplicasComeFromIt(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	p := &PostgresHA{Root: root, Data: t.TempDir(), PortBase: 5400, Network: "10.9.0.0/16"}
	for i := range pgMembers {
		srv, err := p.BackupServer(i)
		require.NoError(t, err)
		c, text := memberConfig(t, p, i)
		assert.NotContains(t, text, deployBackupConf, "every pgBackRest command names the member's own configuration")
		assert.Equal(t, "on", c.PostgreSQL.Parameters["archive_mode"])
		assert.Equal(t, srv.ArchiveCommand(), c.PostgreSQL.Parameters["archive_command"])
		assert.Equal(t, srv.RestoreCommand(), c.PostgreSQL.RecoveryConf["restore_command"])
		assert.Equal(t, []string{"pgbackrest", "basebackup"}, c.PostgreSQL.CreateReplicaMethods)
		assert.Contains(t, c.PostgreSQL.PGBackRest.Command, "--config="+srv.ConfigFile())
		assert.Contains(t, c.PostgreSQL.PGBackRest.Command, "restore --type=standby")
		assert.True(t, c.PostgreSQL.PGBackRest.KeepData && c.PostgreSQL.PGBackRest.NoParams)
		assert.Empty(t, c.Bootstrap.Method, "a member bootstraps with initdb unless a restore runs")
		conf, err := os.ReadFile(srv.ConfigFile())
		require.NoError(t, err)
		assert.Contains(t, string(conf), "\npg1-path="+filepath.Join(p.Data, MemberName(i), "data")+"\n")
		assert.Contains(t, string(conf), "\npg1-socket-path="+filepath.Join(p.Data, MemberName(i))+"\n")
		assert.Contains(t, string(conf), "\nrepo1-path="+filepath.Join(p.Data, "backup", "repo")+"\n", "one repository for every member")
	}
}

func TestARestoreBootstrapsTheFirstMemberFromTheRepositoryToTheTarget(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	at := time.Date(2026, 12, 7, 3, 50, 19, 0, time.UTC)
	for name, tc := range map[string]struct {
		target   backup.Target
		command  []string
		recovery map[string]string
	}{
		"to a time": {target: backup.Target{Time: at}, command: []string{"--delta restore", "--type=time", "'--target=2026-12-07 03:50:19.000000+00'", "--target-action=promote"},
			recovery: map[string]string{"recovery_target_time": "2026-12-07 03:50:19.000000+00", "recovery_target_action": "promote"}},
		"to the end of the archive": {target: backup.Target{}, command: []string{"--delta restore"}, recovery: map[string]string{}},
	} {
		t.Run(name, func(t *testing.T) {
			p := &PostgresHA{Root: root, Data: t.TempDir(), PortBase: 5400}
			p.restoreTo = &tc.target
			srv, err := p.BackupServer(0)
			require.NoError(t, err)
			c, _ := memberConfig(t, p, 0)
			assert.Equal(t, "pgbackrest", c.Bootstrap.Method)
			assert.True(t, c.Bootstrap.PGBackRest.NoParams)
			assert.True(t, strings.HasPrefix(c.Bootstrap.PGBackRest.Command, "pgbackrest --config="+srv.ConfigFile()+" --stanza=orderflow"), c.Bootstrap.PGBackRest.Command)
			for _, part := range tc.command {
				assert.Contains(t, c.Bootstrap.PGBackRest.Command, part)
			}
			want := map[string]string{"restore_command": srv.RestoreCommand()}
			for k, v := range tc.recovery {
				want[k] = v
			}
			assert.Equal(t, want, c.Bootstrap.PGBackRest.RecoveryConf)
			if tc.target.Time.IsZero() {
				assert.NotContains(t, c.Bootstrap.PGBackRest.Command, "--target")
			}
			other, _ := memberConfig(t, p, 1)
			assert.Empty(t, other.Bootstrap.Method, "only the first member restores; the others become its replicas")
			p.restoreTo = nil
			again, _ := memberConfig(t, p, 0)
			assert.Empty(t, again.Bootstrap.Method, "once the restore is done, a start bootstraps as usual")
		})
	}
}

func TestRestoreTakesTheClusterBackToTheTargetAndRebuildsTheReplicaFromTheRepository(t *testing.T) {
	root, base := haEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := &PostgresHA{Root: root, Data: patroniData(t), PortBase: base + 400}
	bringUp(ctx, t, p)
	require.NoError(t, p.CreateDatabase(ctx, "orderflow", "orderflow", "orderflow"))
	dsn := p.DSN("orderflow", "orderflow", "orderflow")
	pool, err := db.Open(ctx, dsn)
	require.NoError(t, err)
	insert := func(from, to int) {
		t.Helper()
		for n := from; n < to; n++ {
			_, err := pool.Exec(ctx, "INSERT INTO kept VALUES ($1)", n)
			require.NoError(t, err)
		}
	}
	_, err = pool.Exec(ctx, "CREATE TABLE kept (n int PRIMARY KEY)")
	require.NoError(t, err)
	insert(0, 100)
	info, err := p.Backup(ctx, backup.Full)
	require.NoError(t, err)
	t.Logf("full backup %s from the primary", info.Label)
	// pgBackRest records a backup's end to the second and restores to T
	// only from a backup that ended before it: T is past that second.
	time.Sleep(time.Until(info.Stop.Add(time.Second)))
	insert(100, 200)
	target := backup.Target{Time: time.Now().UTC()}
	insert(200, 300)
	require.NoError(t, p.Archived(ctx))
	pool.Close()

	r, err := p.Restore(ctx, p.Stack(), target, testWriter{t})
	require.NoError(t, err)
	t.Logf("restored: %+v", r)
	assert.Equal(t, "pgbackrest", r.ReplicaMethod, "the replica is restored from the repository, not copied from the leader")
	assert.Greater(t, r.Timeline, 1, "the restore promotes on a timeline of its own")
	primary, standby, err := p.Roles(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 1}, [2]int{primary, standby})
	pool, err = db.Open(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	var kept, max int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), max(n) FROM kept").Scan(&kept, &max))
	assert.Equal(t, [2]int{200, 199}, [2]int{kept, max}, "every row committed before the target, none after it")
	// The restored leader takes writes, and its synchronous standby has them.
	_, err = pool.Exec(ctx, "INSERT INTO kept VALUES (1000)")
	require.NoError(t, err)

	// A member rebuilt on purpose (patronictl reinit) is restored from the
	// repository too, and streams again.
	reinit := time.Now()
	cmd := exec.CommandContext(ctx, "patronictl", "-c", p.config(1), "reinit", patroniScope, MemberName(1), "--force", "--wait")
	cmd.Env = append(os.Environ(), "PATRONI_ETCD3_HOSTS="+p.etcdHosts())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, waitFor(ctx, checkFunc{"pg2 the synchronous standby again", func(ctx context.Context) error {
		_, _, err := p.Roles(ctx)
		return err
	}}, 2*time.Minute))
	assert.Equal(t, "pgbackrest", p.replicaMethod(1, reinit), "patronictl reinit restores the member from the repository")
}

// testWriter sends a restore's progress lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
