package chaos

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hookedPkg = "github.com/orderflow/orderflow/activities/fulfillment"

// goFiles lists the Go files of hookedPkg as the product binary builds it
// (cmd/orderflow's dependencies), with extra build flags.
func goFiles(t *testing.T, flags ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", `{{if eq .ImportPath "` + hookedPkg + `"}}{{join .GoFiles " "}}{{end}}`}, flags...)
	out, err := exec.Command("go", append(args, "github.com/orderflow/orderflow/cmd/orderflow")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

func TestProductBuildCarriesNoChaosHookAndTheChaosBuildDoes(t *testing.T) {
	product := goFiles(t)
	require.NotEmpty(t, product, "cmd/orderflow builds %s", hookedPkg)
	assert.NotContains(t, product, "chaoshook.go", "the product binary must not carry the chaos hook")
	assert.Contains(t, product, "chaoshook_off.go")

	chaos := goFiles(t, "-tags", HookTag)
	assert.Contains(t, chaos, "chaoshook.go", "the chaos stack's binary carries the hook")
	assert.NotContains(t, chaos, "chaoshook_off.go")
}

// The suite's product binary (make test builds it once, ORDERFLOW_TEST_BIN)
// says in its build info that it was built without the hooks.
func TestSuiteProductBinaryHasNoChaosHooks(t *testing.T) {
	bin := os.Getenv("ORDERFLOW_TEST_BIN")
	if bin == "" {
		t.Skip("ORDERFLOW_TEST_BIN is not set (make test sets it)")
	}
	hooked, err := BinaryHasHooks(bin)
	require.NoError(t, err)
	assert.False(t, hooked, "%s carries -tags %s", bin, HookTag)
}

func TestBinaryHasHooksReadsTheBuildTags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	src := dir + "/main.go"
	require.NoError(t, os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644))
	require.NoError(t, os.WriteFile(dir+"/go.mod", []byte("module hooked\n\ngo 1.22\n"), 0o644))
	for tags, want := range map[string]bool{"": false, HookTag: true, "other," + HookTag: true, "other": false} {
		out := dir + "/bin-" + strings.ReplaceAll(tags, ",", "_")
		cmd := exec.Command("go", "build", "-tags", tags, "-o", out, ".")
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", b)
		got, err := BinaryHasHooks(out)
		require.NoError(t, err)
		assert.Equal(t, want, got, "tags %q", tags)
	}
}

func TestParseSampleReadsLabelsAndValues(t *testing.T) {
	name, labels, v, ok := parseSample(`orderflow_breaker_transitions_total{dependency="temporal",otel_scope_name="x,y",state="open"} 3`)
	require.True(t, ok)
	assert.Equal(t, "orderflow_breaker_transitions_total", name)
	assert.Equal(t, map[string]string{"dependency": "temporal", "otel_scope_name": "x,y", "state": "open"}, labels)
	assert.Equal(t, 3.0, v)
	_, _, _, ok = parseSample("# HELP x y")
	assert.False(t, ok)
}

func TestScraperCountsOpeningsAcrossARestart(t *testing.T) {
	s := newScraper(nil)
	s.read("w", []byte(`orderflow_payment_breaker_transitions_total{provider="paysim-a",state="open"} 2`+"\n"))
	s.read("w", []byte(`orderflow_payment_breaker_transitions_total{provider="paysim-a",state="open"} 3`+"\n"))
	// The worker restarted: its counter starts again.
	s.read("w", []byte(`orderflow_payment_breaker_transitions_total{provider="paysim-a",state="open"} 1`+"\n"+
		`orderflow_breaker_state{dependency="nats"} 0`+"\n"))
	opened, seen := s.openings()
	assert.Equal(t, 4, opened["payment:paysim-a"])
	assert.True(t, seen["nats"])
	assert.Zero(t, opened["nats"])
}

func TestScraperSumsTheGatewaysDeferredStarts(t *testing.T) {
	s := newScraper(nil)
	s.read("g1", []byte(`orderflow_orders_start_deferred_total{otel_scope_name="x"} 2`+"\n"))
	s.read("g2", []byte(`orderflow_orders_start_deferred_total{otel_scope_name="x"} 3`+"\n"))
	s.read("g1", []byte(`orderflow_orders_start_deferred_total{otel_scope_name="x"} 4`+"\n"))
	assert.Equal(t, 7, s.deferredStarts())
}
