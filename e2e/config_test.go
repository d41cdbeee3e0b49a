package e2e

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
)

// The binary refuses a bad setting before it starts anything: it exits 1
// naming the variable and its value, and never runs with the default.
func TestBinaryRefusesABadSettingNamingIt(t *testing.T) {
	for _, cmd := range []string{"worker", "api"} {
		c := exec.Command(testkit.Binary(t), cmd)
		c.Env = append(os.Environ(), "WORKER_MAX_ACTIVITIES=2OO", "STRIPE_API_KEY=sk_live_s3cret", "PAYMENT_PROVIDER_TIMEOUT=fast")
		out, err := c.CombinedOutput()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%s ran: %s", cmd, out)
		assert.Equal(t, 1, exit.ExitCode())
		assert.Contains(t, string(out), `WORKER_MAX_ACTIVITIES="2OO": not an integer`)
		assert.Contains(t, string(out), `PAYMENT_PROVIDER_TIMEOUT="fast": not a duration`)
		assert.NotContains(t, string(out), "s3cret")
	}
}

// orderflow config shows what a process would run with, secrets masked.
func TestBinaryConfigShowsTheEffectiveSettingsMasked(t *testing.T) {
	c := exec.Command(testkit.Binary(t), "config", "worker")
	c.Env = append(os.Environ(), "STRIPE_API_KEY=sk_live_s3cret", "REDIS_URL=redis://:redis-s3cret@127.0.0.1:6379/0",
		"WORKER_MAX_ACTIVITIES=20")
	out, err := c.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `WORKER_MAX_ACTIVITIES +20 +env`, string(out))
	assert.Regexp(t, `STRIPE_API_KEY +\(set\) +env`, string(out))
	assert.Contains(t, string(out), "redis://:xxxxx@127.0.0.1:6379/0")
	assert.NotContains(t, string(out), "s3cret")
}
