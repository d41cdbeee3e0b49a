package backup

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testServer(t *testing.T) Server {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	return Server{Root: root, Dir: filepath.Join(dir, "pgbackrest"), Repo: Repo{Path: filepath.Join(dir, "repo")},
		PGData: filepath.Join(dir, "data"), PGPort: 54329, PGSocket: filepath.Join(dir, "sock")}
}

// options reads an ini text into section -> key -> how many times it is set.
func options(text string) map[string]map[string]int {
	out := map[string]map[string]int{}
	section := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			if out[section] == nil {
				out[section] = map[string]int{}
			}
		default:
			k, _, _ := strings.Cut(l, "=")
			out[section][k]++
		}
	}
	return out
}

func TestRenderSetsEachOptionOnceWithTheServersOwnAndTheStanza(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Server)
		want []string
		not  []string
	}{
		"local repository, default retention": {
			edit: func(*Server) {},
			want: []string{"repo1-retention-full=30", "repo1-retention-full-type=time", "compress-type=lz4", "start-fast=y"},
			not:  []string{"repo1-type=s3"},
		},
		"retention configured": {
			edit: func(s *Server) { s.RetentionDays = 7 },
			want: []string{"repo1-retention-full=7"},
		},
		"S3 repository": {
			edit: func(s *Server) {
				s.Repo = Repo{Path: "/orderflow", S3Bucket: "backups", S3Endpoint: "minio.internal:9000", S3Region: "eu-west-1", S3URIStyle: "path"}
			},
			want: []string{"repo1-type=s3", "repo1-path=/orderflow", "repo1-s3-bucket=backups", "repo1-s3-endpoint=minio.internal:9000",
				"repo1-s3-region=eu-west-1", "repo1-s3-uri-style=path"},
			not: []string{"repo1-s3-key"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := testServer(t)
			tc.edit(&s)
			text, err := s.Render()
			require.NoError(t, err)
			for _, w := range tc.want {
				assert.Contains(t, text, "\n"+w+"\n")
			}
			for _, n := range tc.not {
				assert.NotContains(t, text, n)
			}
			opts := options(text)
			require.Equal(t, []string{"global", Stanza}, slices.Sorted(maps.Keys(opts)), "two sections")
			for section, keys := range opts {
				for k, n := range keys {
					assert.Equal(t, 1, n, "[%s] %s set %d times: pgBackRest refuses that", section, k, n)
				}
			}
			assert.Contains(t, text, "\n[orderflow]\npg1-path="+s.PGData+"\npg1-port=54329\npg1-socket-path="+s.PGSocket+"\n")
		})
	}
}

// pgBackRest itself reads the rendered file: an option it does not know, or
// one set twice, fails the command before it looks for the repository.
func TestPgBackRestAcceptsTheRenderedConfiguration(t *testing.T) {
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		t.Skip("pgbackrest is not installed (devtools/install.sh pgbackrest)")
	}
	s := testServer(t)
	require.NoError(t, s.Write())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Empty(t, infos, "an empty repository lists no backup")

	bad := s
	bad.Root = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(bad.Root, "deploy", "postgres"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad.Root, "deploy", "postgres", "pgbackrest.conf"), []byte("[global]\nrepo1-path=/tmp/twice\n"), 0o644))
	require.NoError(t, bad.Write())
	_, err = bad.Info(ctx)
	require.Error(t, err, "repo1-path set twice")
}

func TestArchiveAndRestoreCommandsNameTheServersConfiguration(t *testing.T) {
	s := testServer(t)
	assert.Equal(t, "pgbackrest --config="+s.ConfigFile()+" --stanza=orderflow archive-push %p", s.ArchiveCommand())
	assert.Equal(t, "pgbackrest --config="+s.ConfigFile()+" --stanza=orderflow archive-get %f \"%p\"", s.RestoreCommand())
	set := s.Settings()
	assert.Equal(t, "on", set["archive_mode"])
	assert.Equal(t, "60s", set["archive_timeout"])
}

func TestConfigureDataDirAppendsTheSettingsOnce(t *testing.T) {
	s := testServer(t)
	require.NoError(t, os.MkdirAll(s.PGData, 0o700))
	conf := filepath.Join(s.PGData, "postgresql.conf")
	require.NoError(t, os.WriteFile(conf, []byte("max_connections = 100\n"), 0o600))
	require.NoError(t, s.ConfigureDataDir())
	require.NoError(t, s.ConfigureDataDir())
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	text := string(b)
	assert.True(t, strings.HasPrefix(text, "max_connections = 100\n"))
	assert.Equal(t, 1, strings.Count(text, SettingsMarker))
	assert.Contains(t, text, "archive_mode = 'on'\n")
	assert.Contains(t, text, "archive_command = '"+s.ArchiveCommand()+"'\n")
}

const infoJSON = `[{"name":"orderflow","backup":[
 {"label":"20261207-035219F","type":"full","timestamp":{"start":1796615539,"stop":1796615547},
  "info":{"size":50543854,"repository":{"delta":9549102,"size":9549102}}},
 {"label":"20261207-035219F_20261207-035229I","type":"incr","timestamp":{"start":1796615549,"stop":1796615553},
  "info":{"size":50666735,"repository":{"delta":281456,"size":9637651}}}]},
 {"name":"other","backup":[{"label":"x","type":"full","timestamp":{"start":1,"stop":2}}]}]`

func TestInfoListsTheStanzasBackupsOldestFirst(t *testing.T) {
	infos, err := parseInfo([]byte(infoJSON))
	require.NoError(t, err)
	require.Len(t, infos, 2)
	assert.Equal(t, Info{Label: "20261207-035219F", Type: Full, Start: time.Unix(1796615539, 0).UTC(), Stop: time.Unix(1796615547, 0).UTC(),
		Size: 50543854, RepoSize: 9549102}, infos[0])
	assert.Equal(t, Incr, infos[1].Type)
	assert.Equal(t, int64(281456), infos[1].RepoSize)
	_, err = parseInfo([]byte("not json"))
	assert.Error(t, err)
}

func TestWriteMetricWritesTheNewestBackupOfEachTypeTheAlertReads(t *testing.T) {
	infos, err := parseInfo([]byte(infoJSON))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "metrics", "orderflow_backup.prom")
	require.NoError(t, WriteMetric(path, infos))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "# TYPE orderflow_backup_last_success_timestamp_seconds gauge\n")
	assert.Contains(t, string(b), `orderflow_backup_last_success_timestamp_seconds{stanza="orderflow",type="full"} 1796615547`+"\n")
	assert.Contains(t, string(b), `orderflow_backup_last_success_timestamp_seconds{stanza="orderflow",type="incr"} 1796615553`+"\n")
	assert.NotContains(t, string(b), `type="diff"`, "no diff backup, no series")

	rules, err := os.ReadFile("../../deploy/observability/alerts.yml")
	require.NoError(t, err)
	assert.Contains(t, string(rules), MetricName, "the alert rules read the job's metric")
}

func TestRestoreRefusesADirectoryThatHoldsData(t *testing.T) {
	s := testServer(t)
	require.NoError(t, os.MkdirAll(s.PGData, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(s.PGData, "PG_VERSION"), []byte("15\n"), 0o600))
	err := s.Restore(context.Background(), s.PGData, Target{})
	require.ErrorContains(t, err, "not empty")
}

func TestTargetNamesLatestOrItsTime(t *testing.T) {
	assert.Equal(t, "latest", Target{}.String())
	at := time.Date(2026, 12, 7, 3, 50, 19, 643000000, time.FixedZone("x", 3600))
	assert.Equal(t, "2026-12-07T02:50:19.643Z", Target{Time: at}.String())
}
