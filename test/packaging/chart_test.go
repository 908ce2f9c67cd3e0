package packaging

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	// releaseName makes the chart's resource names equal to those of
	// config/default, whose namePrefix is "keboola-operator-".
	releaseName = "keboola-operator"
	// releaseNamespace is the namespace config/default installs into.
	releaseNamespace = "keboola-operator-system"
)

// allOptionalParts are chart values that turn on every optional part that
// config/ has an overlay for.
var allOptionalParts = map[string]any{
	"metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
	},
	"networkPolicy": map[string]any{"enabled": true},
}

func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	chrt, err := loader.Load(repoPath("charts", "keboola-operator"))
	if err != nil {
		t.Fatalf("failed to load the chart: %v", err)
	}
	return chrt
}

// renderChart renders the chart's templates as "helm template" would for a
// first install of the release keboola-operator, with values merged over
// values.yaml.
func renderChart(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	chrt := loadChart(t)
	renderValues, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{
		Name:      releaseName,
		Namespace: releaseNamespace,
		Revision:  1,
		IsInstall: true,
	}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("failed to compute the render values: %v", err)
	}
	files, err := engine.Render(chrt, renderValues)
	if err != nil {
		t.Fatalf("failed to render the chart: %v", err)
	}

	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	var objects []*unstructured.Unstructured
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt and helpers
		}
		objects = append(objects, decodeManifests(t, name, []byte(files[name]))...)
	}
	return objects
}

// renderConfig renders config/default with kustomize, with the optional
// overlays that its kustomization.yaml lists as comments turned on. It works
// on an in-memory copy of config/, so the files on disk stay as they are.
func renderConfig(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir(repoPath("config"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fs.WriteFile("/"+filepath.ToSlash(rel), data)
	})
	if err != nil {
		t.Fatalf("failed to copy config/: %v", err)
	}

	kustomization, err := fs.ReadFile("/config/default/kustomization.yaml")
	if err != nil {
		t.Fatalf("failed to read config/default/kustomization.yaml: %v", err)
	}
	for _, overlay := range []string{"../prometheus", "../network-policy"} {
		commented := []byte("\n#- " + overlay + "\n")
		if !bytes.Contains(kustomization, commented) {
			t.Fatalf("config/default/kustomization.yaml does not list %q as an optional, commented-out resource", overlay)
		}
		kustomization = bytes.Replace(kustomization, commented, []byte("\n- "+overlay+"\n"), 1)
	}
	if err := fs.WriteFile("/config/default/kustomization.yaml", kustomization); err != nil {
		t.Fatalf("failed to write the kustomization: %v", err)
	}

	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/config/default")
	if err != nil {
		t.Fatalf("failed to render config/default with its optional overlays (run \"make manifests\" if config/rbac/role.yaml is missing): %v", err)
	}
	data, err := resources.AsYaml()
	if err != nil {
		t.Fatalf("failed to serialize the rendered config: %v", err)
	}
	return decodeManifests(t, "config/default", data)
}

func TestChartCRDsEqualConfig(t *testing.T) {
	chartCRDs := map[string][]byte{}
	for _, crd := range loadChart(t).CRDObjects() {
		chartCRDs[path.Base(crd.Name)] = crd.File.Data
	}

	configFiles, err := filepath.Glob(repoPath("config", "crd", "bases", "*.yaml"))
	if err != nil || len(configFiles) == 0 {
		t.Fatalf("no CRDs found in config/crd/bases: %v", err)
	}
	for _, file := range configFiles {
		name := filepath.Base(file)
		want := readRepoFile(t, "config", "crd", "bases", name)
		got, ok := chartCRDs[name]
		if !ok {
			t.Errorf("chart crds/ lacks %s; run \"make helm-sync\"", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("chart crds/%s differs from config/crd/bases/%s; run \"make helm-sync\"", name, name)
		}
		delete(chartCRDs, name)
	}
	for name := range chartCRDs {
		t.Errorf("chart crds/%s has no counterpart in config/crd/bases; run \"make helm-sync\"", name)
	}
}

func TestChartManagerRulesEqualConfig(t *testing.T) {
	roles := decodeManifests(t, "config/rbac/role.yaml", readRepoFile(t, "config", "rbac", "role.yaml"))
	if len(roles) != 1 || roles[0].GetKind() != "ClusterRole" {
		t.Fatalf("config/rbac/role.yaml contains %d objects, want one ClusterRole", len(roles))
	}
	want := nested(roles[0], "rules")
	if want == nil {
		t.Fatal("config/rbac/role.yaml has no rules")
	}

	rendered := indexObjects(t, "chart", renderChart(t, nil))
	role, ok := rendered[objectKey{kind: "ClusterRole", name: releaseName + "-manager-role"}]
	if !ok {
		t.Fatal("chart renders no ClusterRole keboola-operator-manager-role")
	}
	if diff := cmp.Diff(want, nested(role, "rules")); diff != "" {
		t.Errorf("chart manager ClusterRole rules differ from config/rbac/role.yaml; run \"make helm-sync\" (-config +chart):\n%s", diff)
	}
}

// TestChartObjectsMatchConfig compares every object of config/default, with
// its optional overlays, with the object of the same kind and name that the
// chart renders with all optional parts on.
func TestChartObjectsMatchConfig(t *testing.T) {
	config := indexObjects(t, "config/default", renderConfig(t))
	chart := indexObjects(t, "chart", renderChart(t, allOptionalParts))

	for key, want := range config {
		switch key.kind {
		case "Namespace":
			continue // Helm installs into an existing namespace.
		case "CustomResourceDefinition":
			continue // TestChartCRDsEqualConfig compares the files.
		}
		got, ok := chart[key]
		if !ok {
			t.Errorf("chart renders no %s %q, which config/default has", key.kind, key.name)
			continue
		}
		if want.GetNamespace() != "" && got.GetNamespace() != releaseNamespace {
			t.Errorf("%s %q: chart namespace %q, want the release namespace %q", key.kind, key.name, got.GetNamespace(), releaseNamespace)
		}
		for _, field := range comparedFields[key.kind] {
			if diff := cmp.Diff(nested(want, field...), nested(got, field...)); diff != "" {
				t.Errorf("%s %q: %s differs (-config +chart):\n%s", key.kind, key.name, strings.Join(field, "."), diff)
			}
		}
		if key.kind == "Deployment" {
			compareManagerContainers(t, want, got)
		}
	}

	for key := range chart {
		if _, ok := config[key]; !ok {
			t.Errorf("chart renders %s %q, which config/default with its overlays lacks", key.kind, key.name)
		}
	}
}

// comparedFields are the fields that must be equal between config/ and the
// chart, by kind. Labels and selectors differ on purpose: the chart adds the
// Helm release labels.
var comparedFields = map[string][][]string{
	"ServiceAccount":     nil,
	"ClusterRole":        {{"rules"}},
	"Role":               {{"rules"}},
	"ClusterRoleBinding": {{"roleRef"}, {"subjects"}},
	"RoleBinding":        {{"roleRef"}, {"subjects"}},
	"Secret": {
		{"type"},
		{"metadata", "annotations", "kubernetes.io/service-account.name"},
	},
	"Service": {{"spec", "ports"}},
	"Deployment": {
		{"spec", "replicas"},
		{"spec", "template", "metadata", "annotations"},
		{"spec", "template", "spec", "serviceAccountName"},
		{"spec", "template", "spec", "terminationGracePeriodSeconds"},
		{"spec", "template", "spec", "securityContext"},
	},
	"ServiceMonitor": {{"spec", "endpoints"}},
	"NetworkPolicy":  {{"spec", "policyTypes"}, {"spec", "ingress"}},
}

// compareManagerContainers compares the manager container of two
// Deployments field by field. The image differs, because kustomize and the
// chart tag it differently, so only its repository is compared.
func compareManagerContainers(t *testing.T, config, chart *unstructured.Unstructured) {
	t.Helper()
	want := onlyContainer(t, "config/default", config)
	got := onlyContainer(t, "chart", chart)

	for _, field := range []string{"name", "args", "ports", "securityContext", "livenessProbe", "readinessProbe", "resources"} {
		if diff := cmp.Diff(want[field], got[field]); diff != "" {
			t.Errorf("manager container %s differs (-config +chart):\n%s", field, diff)
		}
	}

	wantImage, _ := want["image"].(string)
	gotImage, _ := got["image"].(string)
	if imageRepository(wantImage) != imageRepository(gotImage) {
		t.Errorf("manager image repository: chart %q, config %q", gotImage, wantImage)
	}
}

func onlyContainer(t *testing.T, source string, deployment *unstructured.Unstructured) map[string]any {
	t.Helper()
	containers, _ := nested(deployment, "spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("%s Deployment has %d containers, want 1", source, len(containers))
	}
	container, ok := containers[0].(map[string]any)
	if !ok {
		t.Fatalf("%s Deployment container is not an object", source)
	}
	return container
}

// imageRepository returns image without its tag or digest.
func imageRepository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// allOperatorSettings are chart values that set every operator flag the
// chart supports.
var allOperatorSettings = map[string]any{
	"image": map[string]any{"repository": "registry.example.com/keboola-operator", "tag": "v1.2.3"},
	"controller": map[string]any{
		"resyncPeriod":            "5m",
		"tokenExpiryWarning":      "72h",
		"maxConcurrentReconciles": 8,
	},
	"storageAPI": map[string]any{
		"timeout":    "10s",
		"qps":        5,
		"burst":      10,
		"maxRetries": 2,
	},
	"logging":        map[string]any{"level": "debug", "encoder": "console"},
	"leaderElection": map[string]any{"enabled": false},
	"extraArgs":      []any{"--enable-http2=false"},
}

func TestChartRendersOperatorSettings(t *testing.T) {
	objects := indexObjects(t, "chart", renderChart(t, allOperatorSettings))
	deployment, ok := objects[objectKey{kind: "Deployment", name: releaseName + "-controller-manager"}]
	if !ok {
		t.Fatal("chart renders no manager Deployment")
	}
	container := onlyContainer(t, "chart", deployment)

	if got, want := container["image"], "registry.example.com/keboola-operator:v1.2.3"; got != want {
		t.Errorf("image = %v, want %s", got, want)
	}
	wantArgs := []any{
		"--leader-elect=false",
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8443",
		"--resync-period=5m",
		"--token-expiry-warning=72h",
		"--max-concurrent-reconciles=8",
		"--api-timeout=10s",
		"--api-qps=5",
		"--api-burst=10",
		"--api-max-retries=2",
		"--zap-log-level=debug",
		"--zap-encoder=console",
		"--enable-http2=false",
	}
	if diff := cmp.Diff(wantArgs, container["args"]); diff != "" {
		t.Errorf("args differ (-want +got):\n%s", diff)
	}
	if _, ok := objects[objectKey{kind: "Role", name: releaseName + "-leader-election-role"}]; ok {
		t.Error("chart renders the leader election Role although leaderElection.enabled is false")
	}
}

func TestChartRendersLeaderElectionSettings(t *testing.T) {
	objects := indexObjects(t, "chart", renderChart(t, map[string]any{
		"leaderElection": map[string]any{
			"leaseDuration": "30s",
			"renewDeadline": "20s",
			"retryPeriod":   "4s",
		},
	}))
	deployment, ok := objects[objectKey{kind: "Deployment", name: releaseName + "-controller-manager"}]
	if !ok {
		t.Fatal("chart renders no manager Deployment")
	}
	args, _ := onlyContainer(t, "chart", deployment)["args"].([]any)
	for _, want := range []string{
		"--leader-elect",
		"--leader-election-lease-duration=30s",
		"--leader-election-renew-deadline=20s",
		"--leader-election-retry-period=4s",
	} {
		if !slices.Contains(args, any(want)) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}

func TestChartMetricsDisabled(t *testing.T) {
	objects := indexObjects(t, "chart", renderChart(t, map[string]any{
		"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}},
	}))
	deployment := objects[objectKey{kind: "Deployment", name: releaseName + "-controller-manager"}]
	if deployment == nil {
		t.Fatal("chart renders no manager Deployment")
	}
	args, _ := onlyContainer(t, "chart", deployment)["args"].([]any)
	if !slices.Contains(args, any("--metrics-bind-address=0")) {
		t.Errorf("args %v lack --metrics-bind-address=0", args)
	}
	for key := range objects {
		if key.kind == "Service" || key.kind == "ServiceMonitor" {
			t.Errorf("chart renders %s %q although metrics.enabled is false", key.kind, key.name)
		}
	}
}

func TestChartLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults":       nil,
		"optional parts": allOptionalParts,
	} {
		t.Run(name, func(t *testing.T) {
			result := lint.RunAll(repoPath("charts", "keboola-operator"), values, releaseNamespace)
			for _, message := range result.Messages {
				if message.Severity >= support.WarningSev {
					t.Errorf("helm lint: %v", message)
				}
			}
		})
	}
}

// TestChartFlagsExistInOperator checks that every flag the chart can render
// is one that main.go defines, so that a renamed or removed flag cannot
// leave the chart starting an operator that exits on an unknown flag.
func TestChartFlagsExistInOperator(t *testing.T) {
	mainSource := string(readRepoFile(t, "main.go"))
	// controller-runtime's zap.Options.BindFlags defines the zap-* flags.
	zapFlags := []string{"zap-devel", "zap-encoder", "zap-log-level", "zap-stacktrace-level", "zap-time-encoding"}

	renders := []map[string]any{
		allOperatorSettings,
		{"leaderElection": map[string]any{"leaseDuration": "30s", "renewDeadline": "20s", "retryPeriod": "4s"}},
		{"metrics": map[string]any{"secure": false}},
		{"metrics": map[string]any{"enabled": false}},
	}
	for _, values := range renders {
		objects := indexObjects(t, "chart", renderChart(t, values))
		deployment, ok := objects[objectKey{kind: "Deployment", name: releaseName + "-controller-manager"}]
		if !ok {
			t.Fatal("chart renders no manager Deployment")
		}
		args, _ := onlyContainer(t, "chart", deployment)["args"].([]any)
		for _, arg := range args {
			text, _ := arg.(string)
			name, _, _ := strings.Cut(strings.TrimPrefix(text, "--"), "=")
			if strings.HasPrefix(name, "zap-") {
				if !slices.Contains(zapFlags, name) || !strings.Contains(mainSource, "zapOptions.BindFlags(") {
					t.Errorf("chart renders %s, but main.go does not define --%s", text, name)
				}
				continue
			}
			if !strings.Contains(mainSource, `"`+name+`"`) {
				t.Errorf("chart renders %s, but main.go does not define --%s", text, name)
			}
		}
	}
}
