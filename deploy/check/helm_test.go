package check

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir   = "../helm/orderflow"
	prodValues = "../helm/values-production.yaml"
)

// kubeVersion is the oldest Kubernetes the chart supports (Chart.yaml):
// matchLabelKeys in topology spread and unhealthyPodEvictionPolicy are GA
// from 1.27.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.27.0", Major: "1", Minor: "27"}

// valueSets are the values the chart is rendered with: its defaults and the
// production file.
var valueSets = map[string]string{"default": "", "production": prodValues}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(file)
	require.NoError(t, err)
	return v.AsMap()
}

func TestHelmLintFindsNothing(t *testing.T) {
	for name, file := range valueSets {
		t.Run(name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, readValues(t, file), "orderflow", kubeVersion)
			for _, m := range res.Messages {
				// INFO (an icon is recommended) is advice; a warning or an
				// error fails, as helm lint --strict does.
				assert.Less(t, m.Severity, support.WarningSev, "%s", m)
			}
		})
	}
}

// object is one rendered manifest, decoded.
type object struct {
	source string
	kind   string
	name   string
	obj    any
}

// render renders the chart as helm template does and decodes every
// manifest strictly into its typed API struct: a field the type does not
// have (a typo, a field at the wrong level) is an error, as is a kind the
// test does not know.
func render(t *testing.T, file string) []object {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	require.NoError(t, err)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	vals, err := chartutil.ToRenderValues(chrt, readValues(t, file),
		chartutil.ReleaseOptions{Name: "orderflow", Namespace: "orderflow", IsInstall: true, Revision: 1}, caps)
	require.NoError(t, err)
	files, err := engine.Render(chrt, vals)
	require.NoError(t, err)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []object
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(files[n], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(doc), &meta), "%s #%d", n, i)
			obj := newObject(meta.APIVersion, meta.Kind)
			require.NotNil(t, obj, "%s #%d: unknown kind %s %s", n, i, meta.APIVersion, meta.Kind)
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj), "%s #%d (%s %s)", n, i, meta.Kind, meta.Metadata.Name)
			out = append(out, object{source: n, kind: meta.Kind, name: meta.Metadata.Name, obj: obj})
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}
	}
	return nil
}

func all[T any](objs []object) map[string]*T {
	m := map[string]*T{}
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok {
			m[o.name] = v
		}
	}
	return m
}

// secretSettings are the settings docs/configuration.md (generated from
// internal/config) marks secret or password-bearing, and every setting's
// name.
func settings(t *testing.T) (secret, known map[string]bool) {
	t.Helper()
	f, err := os.Open("../../docs/configuration.md")
	require.NoError(t, err)
	defer f.Close()
	secret, known = map[string]bool{}, map[string]bool{}
	row := regexp.MustCompile("^\\| `([A-Z0-9_]+)` \\|[^|]*\\|([^|]*)\\|")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		known[m[1]] = true
		if strings.Contains(m[2], "secret") || strings.Contains(m[2], "password") {
			secret[m[1]] = true
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, secret["PII_KEYS"] && secret["DATABASE_URL"], "docs/configuration.md's table changed shape")
	return secret, known
}

// design is the deployment design, which the chart must state.
var design = struct {
	zoneKey                    string
	perZone                    int32
	cpu, memory                int32
	upWindow, downWindow       int32
	upPercent, downPercent     int32
	backlog                    string
	graceSeconds               int64
	livePath, readyPath        string
	gatewayShutdownTimeoutSecs int64
	alertsFile                 string
}{
	zoneKey: "topology.kubernetes.io/zone", perZone: 3, cpu: 70, memory: 80,
	upWindow: 180, downWindow: 600, upPercent: 50, downPercent: 25,
	backlog: "100", graceSeconds: 120,
	livePath: "/health/live", readyPath: "/health/ready", gatewayShutdownTimeoutSecs: 10,
	alertsFile: "../observability/alerts.yml",
}

func TestRenderedManifestsFollowTheDesign(t *testing.T) {
	secret, known := settings(t)
	for name, file := range valueSets {
		t.Run(name, func(t *testing.T) {
			vals := readValues(t, file)
			objs := render(t, file)
			deps := all[appsv1.Deployment](objs)
			hpas := all[autoscalingv2.HorizontalPodAutoscaler](objs)
			pdbs := all[policyv1.PodDisruptionBudget](objs)
			cms := all[corev1.ConfigMap](objs)
			jobs := all[batchv1.Job](objs)

			zones := 3
			if z, ok := vals["zones"].([]any); ok {
				zones = len(z)
			}
			regions := 1
			if w, ok := vals["worker"].(map[string]any); ok {
				if r, ok := w["regions"].([]any); ok {
					regions = len(r)
				}
			}
			require.Len(t, deps, 1+regions, "a gateway and a worker Deployment per region")
			require.Len(t, hpas, len(deps), "an HPA per Deployment")
			require.Len(t, pdbs, len(deps), "a PDB per Deployment")

			for dn, d := range deps {
				pod := d.Spec.Template.Spec
				sel := d.Spec.Selector.MatchLabels
				assert.Subset(t, d.Spec.Template.Labels, sel, "%s: the pods carry the selector's labels", dn)

				// Spread: hard across zones, by this Deployment's own pods.
				var zone *corev1.TopologySpreadConstraint
				for i, c := range pod.TopologySpreadConstraints {
					if c.TopologyKey == design.zoneKey {
						zone = &pod.TopologySpreadConstraints[i]
					}
				}
				if assert.NotNil(t, zone, "%s: spread across zones", dn) {
					assert.Equal(t, int32(1), zone.MaxSkew, dn)
					assert.Equal(t, corev1.DoNotSchedule, zone.WhenUnsatisfiable, dn)
					assert.Equal(t, sel, zone.LabelSelector.MatchLabels, "%s: spreads its own pods", dn)
				}

				require.Len(t, pod.Containers, 1, dn)
				c := pod.Containers[0]
				ports := map[string]bool{}
				for _, p := range c.Ports {
					ports[p.Name] = true
				}
				for _, p := range []struct {
					probe *corev1.Probe
					path  string
				}{{c.LivenessProbe, design.livePath}, {c.ReadinessProbe, design.readyPath}, {c.StartupProbe, design.livePath}} {
					if assert.NotNil(t, p.probe, "%s: probe on %s", dn, p.path) && assert.NotNil(t, p.probe.HTTPGet, dn) {
						assert.Equal(t, p.path, p.probe.HTTPGet.Path, dn)
						assert.True(t, ports[p.probe.HTTPGet.Port.StrVal], "%s: probe port %s is a port of the container", dn, p.probe.HTTPGet.Port.String())
					}
				}

				// Graceful termination: the design's 2-minute drain, and for
				// the gateway at least its drain delay plus in-flight time.
				require.NotNil(t, pod.TerminationGracePeriodSeconds, dn)
				assert.Equal(t, design.graceSeconds, *pod.TerminationGracePeriodSeconds, "%s: 2-minute drain", dn)
				env := map[string]corev1.EnvVar{}
				for _, e := range c.Env {
					_, dup := env[e.Name]
					assert.False(t, dup, "%s: %s set twice", dn, e.Name)
					env[e.Name] = e
					assert.True(t, known[e.Name], "%s: %s is no orderflow setting (docs/configuration.md)", dn, e.Name)
					if secret[e.Name] {
						assert.Empty(t, e.Value, "%s: secret %s in plain text", dn, e.Name)
						assert.NotNil(t, e.ValueFrom, "%s: %s from a Secret", dn, e.Name)
						if e.ValueFrom != nil {
							assert.NotNil(t, e.ValueFrom.SecretKeyRef, "%s: %s from a Secret", dn, e.Name)
						}
					}
				}
				for _, name := range []string{"DATABASE_URL", "PII_KEYS", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
					assert.Contains(t, env, name, dn)
				}
				if c.Name == "gateway" {
					drain, err := parseSeconds(env["API_DRAIN_DELAY"].Value)
					require.NoError(t, err, dn)
					assert.Positive(t, drain, "%s: the gateway drains", dn)
					assert.GreaterOrEqual(t, *pod.TerminationGracePeriodSeconds, drain+design.gatewayShutdownTimeoutSecs,
						"%s: the grace period covers the drain and the requests in flight", dn)
					assert.Equal(t, []string{"api"}, c.Args, dn)
					region := env["ORDERFLOW_REGION"].Value
					assert.Contains(t, deps, fmt.Sprintf("orderflow-worker-%s", region), "%s: its region %q has workers", dn, region)
				} else {
					assert.Equal(t, "worker", c.Args[0], dn)
					assert.Equal(t, env["ORDERFLOW_REGION"].Value, c.Args[2], "%s: --region and ORDERFLOW_REGION agree", dn)
				}
				assert.NotNil(t, c.Resources.Requests.Cpu(), dn)
				assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s: a CPU request (the HPA's utilization is of it)", dn)
				assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: a memory request", dn)

				// The HPA for this Deployment.
				h, ok := hpas[dn]
				if !assert.True(t, ok, "%s: its HPA", dn) {
					continue
				}
				assert.Equal(t, "Deployment", h.Spec.ScaleTargetRef.Kind, dn)
				assert.Equal(t, dn, h.Spec.ScaleTargetRef.Name, dn)
				require.NotNil(t, h.Spec.MinReplicas, dn)
				assert.Equal(t, design.perZone*int32(zones), *h.Spec.MinReplicas, "%s: 3 per zone", dn)
				require.NotNil(t, d.Spec.Replicas, dn)
				assert.Equal(t, *h.Spec.MinReplicas, *d.Spec.Replicas, dn)
				util := map[corev1.ResourceName]int32{}
				var external []autoscalingv2.ExternalMetricSource
				for _, m := range h.Spec.Metrics {
					switch m.Type {
					case autoscalingv2.ResourceMetricSourceType:
						require.Equal(t, autoscalingv2.UtilizationMetricType, m.Resource.Target.Type, dn)
						util[m.Resource.Name] = *m.Resource.Target.AverageUtilization
					case autoscalingv2.ExternalMetricSourceType:
						external = append(external, *m.External)
					}
				}
				assert.Equal(t, map[corev1.ResourceName]int32{corev1.ResourceCPU: design.cpu, corev1.ResourceMemory: design.memory}, util, dn)
				if c.Name == "worker" {
					if assert.Len(t, external, 1, "%s: the backlog metric", dn) {
						e := external[0]
						assert.Equal(t, "orders-"+env["ORDERFLOW_REGION"].Value, e.Metric.Selector.MatchLabels["task_queue"], "%s: its region's queue", dn)
						assert.Equal(t, design.backlog, e.Target.Value.String(), dn)
					}
				} else if assert.Len(t, external, 1, "%s: the p95 latency metric", dn) {
					assert.Equal(t, "1", external[0].Target.Value.String(), dn)
				}
				b := h.Spec.Behavior
				if assert.NotNil(t, b, dn) && assert.NotNil(t, b.ScaleUp, dn) && assert.NotNil(t, b.ScaleDown, dn) {
					assert.Equal(t, design.upWindow, *b.ScaleUp.StabilizationWindowSeconds, "%s: sustained 3 minutes", dn)
					assert.Equal(t, design.downWindow, *b.ScaleDown.StabilizationWindowSeconds, "%s: 10 minutes", dn)
					assert.Equal(t, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: design.upPercent, PeriodSeconds: 60}}, b.ScaleUp.Policies, dn)
					assert.Equal(t, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: design.downPercent, PeriodSeconds: 60}}, b.ScaleDown.Policies, dn)
				}

				// The PDB: one pod at a time, of this Deployment only.
				p, ok := pdbs[dn]
				if assert.True(t, ok, "%s: its PDB", dn) {
					assert.Equal(t, sel, p.Spec.Selector.MatchLabels, dn)
					require.NotNil(t, p.Spec.MaxUnavailable, dn)
					assert.Equal(t, 1, p.Spec.MaxUnavailable.IntValue(), dn)
					assert.Nil(t, p.Spec.MinAvailable, dn)
				}
			}

			// Plain settings only in the ConfigMap.
			for _, cm := range cms {
				for k := range cm.Data {
					assert.True(t, known[k], "ConfigMap: %s is no orderflow setting", k)
					assert.False(t, secret[k], "ConfigMap: secret %s in plain text", k)
				}
			}

			// The migration runs as a hook before the release's pods.
			require.Len(t, jobs, 1)
			for jn, j := range jobs {
				assert.Equal(t, "pre-install,pre-upgrade", j.Annotations["helm.sh/hook"], jn)
				assert.Equal(t, []string{"migrate"}, j.Spec.Template.Spec.Containers[0].Args, jn)
				assert.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy, jn)
			}

			// Monitoring: the rule groups are deploy/observability's.
			rules := all[monitoringv1.PrometheusRule](objs)
			require.Len(t, rules, 1)
			require.Len(t, all[monitoringv1.ServiceMonitor](objs), 1)
			src, err := os.ReadFile(design.alertsFile)
			require.NoError(t, err)
			var want monitoringv1.PrometheusRuleSpec
			require.NoError(t, yaml.UnmarshalStrict(src, &want))
			for _, r := range rules {
				assert.Equal(t, want, r.Spec, "the PrometheusRule holds deploy/observability/alerts.yml")
				assert.NotEmpty(t, want.Groups)
			}
		})
	}
}

func parseSeconds(s string) (int64, error) {
	var n int64
	if _, err := fmt.Sscanf(s, "%ds", &n); err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return n, nil
}

// TestSecretInValuesIsRefused: a secret setting put under env (plain text in
// a ConfigMap) fails the render.
func TestSecretInValuesIsRefused(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	require.NoError(t, err)
	vals, err := chartutil.ToRenderValues(chrt, map[string]any{"env": map[string]any{"PII_KEYS": "k1:AAAA"}},
		chartutil.ReleaseOptions{Name: "orderflow", Namespace: "orderflow"}, chartutil.DefaultCapabilities)
	require.NoError(t, err)
	_, err = engine.Render(chrt, vals)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env.PII_KEYS")
}

// The chart's alert file is a link to deploy/observability's, not a copy
// that could drift.
func TestChartAlertsAreObservabilityAlerts(t *testing.T) {
	target, err := os.Readlink(filepath.Join(chartDir, "files", "alerts.yml"))
	require.NoError(t, err)
	a, err := os.ReadFile(filepath.Join(chartDir, "files", target))
	require.NoError(t, err)
	b, err := os.ReadFile(design.alertsFile)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b))
	assert.True(t, slices.Contains([]string{"../../../observability/alerts.yml"}, target), target)
}
