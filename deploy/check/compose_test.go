package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadCompose loads deploy/compose.yaml as docker compose config does: the
// Compose specification's schema, interpolation, and the consistency checks
// (every depends_on names a service, every volume is declared).
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"},
		cli.WithWorkingDirectory(".."), cli.WithEnv(env), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	require.NoError(t, err)
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	require.NoError(t, err)
	return p
}

var composeSecrets = []string{"PII_KEYS=dev-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AUTH_HS256_SECRET=compose-check-secret-of-32-bytes-at-least"}

func TestComposeRunsTheTemporalServerOnPostgreSQL(t *testing.T) {
	p := loadCompose(t, composeSecrets...)
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		require.NoError(t, err)
		return s
	}

	temporal := svc("temporal")
	assert.True(t, strings.HasPrefix(temporal.Image, "temporalio/server:"), temporal.Image)
	cmd := strings.Join(temporal.Command, " ")
	assert.NotContains(t, cmd, "start-dev", "not the dev server")
	assert.Contains(t, cmd, "--env cluster", "temporal-config/cluster/cluster.yaml")
	require.Len(t, temporal.Volumes, 1)
	assert.Equal(t, "/etc/temporal/orderflow", temporal.Volumes[0].Target)
	src, err := filepath.Rel(p.WorkingDir, temporal.Volumes[0].Source)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("..", "temporal-config", "cluster"), src)
	_, err = os.Stat(filepath.Join(temporal.Volumes[0].Source, "cluster.yaml"))
	require.NoError(t, err, "the mounted configuration exists")
	assert.Equal(t, "/etc/temporal/orderflow/dynamic-config.yaml", *temporal.Environment["TEMPORAL_DYNAMIC_CONFIG"])
	assert.Equal(t, "postgres:5432", *temporal.Environment["TEMPORAL_DB_ADDR"])
	assert.Equal(t, types.ServiceConditionCompletedSuccessfully, temporal.DependsOn["temporal-schema"].Condition)
	assert.NotNil(t, temporal.HealthCheck)

	schema := svc("temporal-schema")
	script := strings.Join(schema.Command, " ")
	for _, step := range []string{"temporal-sql-tool", "create-database", "setup-schema", "update-schema", "postgresql/v12/$dir/versioned"} {
		assert.Contains(t, script, step)
	}
	assert.Equal(t, types.ServiceConditionHealthy, schema.DependsOn["postgres"].Condition)

	// Every search attribute of temporal-config/search-attributes.txt.
	setup := svc("temporal-setup")
	attrs, err := os.ReadFile("../../temporal-config/search-attributes.txt")
	require.NoError(t, err)
	for _, l := range strings.Split(string(attrs), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			assert.Contains(t, strings.Join(setup.Command, " "), l, "search attribute %s", l)
		}
	}

	// The product waits for the server and its attributes.
	for _, name := range []string{"api", "worker"} {
		s := svc(name)
		assert.Equal(t, types.ServiceConditionHealthy, s.DependsOn["temporal"].Condition, name)
		assert.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["temporal-setup"].Condition, name)
		assert.Equal(t, "temporal:7233", *s.Environment["TEMPORAL_ADDRESS"], name)
	}

	// Published ports stay on loopback.
	for _, s := range p.Services {
		for _, port := range s.Ports {
			assert.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s beyond loopback", s.Name, port.Published)
		}
	}
}

func TestComposeRefusesToStartWithoutTheSecrets(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"}, cli.WithWorkingDirectory(".."), cli.WithEnv(nil))
	require.NoError(t, err)
	_, err = cli.ProjectFromOptions(context.Background(), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PII_KEYS")
}
