package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/keboola/keboola-operator/internal/localenv"
)

// repoRoot is the repository root, relative to this package.
var repoRoot = filepath.Join("..", "..")

// managerRoleAllowList is everything the manager's ClusterRole may grant,
// by API group and resource. docs/reliability.md explains each verb. A new
// request of the controllers needs a new +kubebuilder:rbac marker, and
// then an entry here.
var managerRoleAllowList = map[string]map[string][]string{
	"": {
		// Token Secrets are read (get), and labeled and protected with a
		// finalizer (patch). The operator's own Secrets are created and
		// written (create, update). The managed-by cache and the
		// label-selected metadata-only informer of token Secrets need
		// list and watch in every namespace.
		"secrets": {"get", "list", "watch", "create", "update", "patch"},
		// The labels of namespaces decide which ones a KeboolaProject's
		// spec.allowedNamespaces selector allows, and a change of them
		// takes effect without a restart.
		"namespaces": {"get", "list", "watch"},
	},
	"apps": {
		// After a rotation, the pod templates of the Deployments and
		// StatefulSets in spec.rolloutTargets get an annotation with the
		// new secret's fingerprint, which restarts their pods.
		// NOTE: only patch is called (keboolawebhook_rollout.go); get and
		// list come with the RBAC marker and can go once nothing reads
		// these workloads.
		"deployments":  {"get", "list", "patch"},
		"statefulsets": {"get", "list", "patch"},
	},
	"events.k8s.io": {
		"events": {"create", "patch"},
	},
	"keboola.dev": {
		// Finalizers of KeboolaProjects are added and removed with a
		// patch, and their status is written with a patch.
		"keboolaprojects":        {"get", "list", "watch", "patch"},
		"keboolaprojects/status": {"patch"},
		// Finalizers of KeboolaWebhooks are added and removed with an
		// update, and their status is written with an update that carries
		// the resourceVersion.
		"keboolawebhooks":        {"get", "list", "watch", "update"},
		"keboolawebhooks/status": {"update"},
		// The owner reference of a webhook's Secret sets
		// blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
		// admission plugin allows only with update on the owner's
		// finalizers.
		"keboolawebhooks/finalizers": {"update"},
	},
}

// leaderElectionAllowList is everything the leader election Role may grant:
// client-go's Lease lock reads, creates and renews one Lease, and
// controller-runtime records the leader's transitions as core/v1 Events.
var leaderElectionAllowList = map[string]map[string][]string{
	"coordination.k8s.io": {"leases": {"get", "create", "update"}},
	"":                    {"events": {"create", "patch"}},
}

func TestManagerRoleAllowList(t *testing.T) {
	var role rbacv1.ClusterRole
	decodeSingle(t, filepath.Join("config", "rbac", "role.yaml"), &role)
	if role.Kind != "ClusterRole" {
		t.Fatalf("config/rbac/role.yaml contains a %s, want a ClusterRole", role.Kind)
	}
	if role.AggregationRule != nil {
		t.Error("the manager's ClusterRole has an aggregation rule, which would let other ClusterRoles add permissions to it")
	}
	checkRulesAllowed(t, "config/rbac/role.yaml", role.Rules, managerRoleAllowList)
}

func TestLeaderElectionRoleAllowList(t *testing.T) {
	var role rbacv1.Role
	decodeSingle(t, filepath.Join("config", "rbac", "leader_election_role.yaml"), &role)
	if role.Kind != "Role" {
		t.Fatalf("config/rbac/leader_election_role.yaml contains a %s, want a namespaced Role", role.Kind)
	}
	checkRulesAllowed(t, "config/rbac/leader_election_role.yaml", role.Rules, leaderElectionAllowList)
}

// checkRulesAllowed reports every wildcard, resource name restriction,
// non-resource URL and verb of rules that allowList does not contain.
func checkRulesAllowed(t *testing.T, source string, rules []rbacv1.PolicyRule, allowList map[string]map[string][]string) {
	t.Helper()
	if len(rules) == 0 {
		t.Fatalf("%s has no rules, so the allow-list check would prove nothing", source)
	}
	for i, rule := range rules {
		if len(rule.NonResourceURLs) > 0 {
			t.Errorf("%s rule %d grants non-resource URLs %v", source, i, rule.NonResourceURLs)
		}
		if len(rule.ResourceNames) > 0 {
			// Not a risk, but the allow-list does not model it.
			t.Errorf("%s rule %d is limited to resource names %v, which the allow-list does not describe", source, i, rule.ResourceNames)
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				for _, verb := range rule.Verbs {
					if group == "*" || resource == "*" || verb == "*" {
						t.Errorf("%s rule %d grants the wildcard %q on %q in API group %q", source, i, verb, resource, group)
						continue
					}
					if !slices.Contains(allowList[group][resource], verb) {
						t.Errorf("%s rule %d grants %q on %q in API group %q, which is not in the allow-list", source, i, verb, resource, group)
					}
				}
			}
		}
	}
}

func TestManagerDeploymentHardened(t *testing.T) {
	deployment := managerDeployment(t)
	pod := deployment.Spec.Template.Spec

	if pod.SecurityContext == nil {
		t.Fatal("the manager Pod has no securityContext")
	}
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the manager Pod does not set securityContext.runAsNonRoot: true")
	}
	if user := pod.SecurityContext.RunAsUser; user != nil && *user == 0 {
		t.Error("the manager Pod sets securityContext.runAsUser: 0")
	}
	if sp := pod.SecurityContext.SeccompProfile; sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the manager Pod does not set the RuntimeDefault seccomp profile")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the manager Pod shares a host namespace")
	}
	if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
		t.Error("the manager Pod does not mount its ServiceAccount token, which it needs to reach the API server")
	}

	manager := managerContainer(t, pod)
	sc := manager.SecurityContext
	if sc == nil {
		t.Fatal("the manager container has no securityContext")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the manager container does not set readOnlyRootFilesystem: true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the manager container does not set allowPrivilegeEscalation: false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the manager container is privileged")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Error("the manager container sets runAsUser: 0")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) {
		t.Error("the manager container does not drop all capabilities")
	}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		t.Errorf("the manager container adds capabilities %v", sc.Capabilities.Add)
	}
	for _, arg := range manager.Args {
		if arg == "--metrics-secure=false" || arg == "--metrics-secure=0" {
			t.Errorf("the manager container turns the authentication of the metrics endpoint off with %q", arg)
		}
	}
	if manager.Resources.Limits.Memory().IsZero() {
		t.Error("the manager container has no memory limit")
	}
}

// managerDeployment returns the only Deployment of config/manager/manager.yaml.
func managerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	path := filepath.Join(repoRoot, "config", "manager", "manager.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []*appsv1.Deployment
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
	for {
		var deployment appsv1.Deployment
		err := decoder.Decode(&deployment)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("failed to decode %s: %v", path, err)
		}
		if deployment.Kind == "Deployment" {
			found = append(found, &deployment)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s contains %d Deployments, want 1", path, len(found))
	}
	return found[0]
}

func managerContainer(t *testing.T, pod corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range pod.Containers {
		if pod.Containers[i].Name == "manager" {
			return &pod.Containers[i]
		}
	}
	t.Fatal("the manager Pod has no container named manager")
	return nil
}

// decodeSingle decodes the file at path, relative to the repository root,
// which must hold one object, into object.
func decodeSingle(t *testing.T, path string, object any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
	if err := decoder.Decode(object); err != nil {
		t.Fatalf("failed to decode %s: %v", path, err)
	}
}

// TestMetricsEndpointRequiresAuthentication starts the operator binary with
// the default metrics settings, HTTPS with authentication and authorization
// through the API server, on a loopback port. It checks that a scrape
// without a token gets 401, one with the token of a ServiceAccount without
// the metrics-reader ClusterRole gets 403, and one with the token of a
// ServiceAccount bound to it gets the metrics.
func TestMetricsEndpointRequiresAuthentication(t *testing.T) {
	s := environment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	metricsAddress := freeAddress(t)
	probeAddress := freeAddress(t)
	process, err := s.env.Start(localenv.ProcessSpec{
		Name: "operator-metrics",
		Path: s.bins.Operator,
		Args: []string{
			"--kubeconfig=" + s.install.Kubeconfig,
			// The default ":8443" listens on every interface; the test
			// listens on loopback only.
			"--metrics-bind-address=" + metricsAddress,
			"--health-probe-bind-address=" + probeAddress,
			"--leader-elect=false",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = process.Stop() })
	if err := localenv.WaitHTTP(ctx, "http://"+probeAddress+"/healthz", time.Minute, process); err != nil {
		t.Fatal(err)
	}

	namespace := s.install.Manifests.ServiceAccount.Namespace
	readerToken := serviceAccountToken(ctx, t, s, namespace, "metrics-scraper", metricsReaderRole(t, s))
	strangerToken := serviceAccountToken(ctx, t, s, namespace, "metrics-stranger", "")

	url := "https://" + metricsAddress + "/metrics"
	cases := []struct {
		name  string
		token string
		// wantStatus lists the statuses that pass.
		wantStatus []int
	}{
		{name: "no token", wantStatus: []int{http.StatusUnauthorized}},
		// controller-runtime's filter (v0.25.3) responds with 500
		// "Authentication failed" when the TokenReview reports an error,
		// which the API server does for a token that is no JWT.
		{name: "invalid token", token: "not-a-token", wantStatus: []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{name: "ServiceAccount without metrics-reader", token: strangerToken, wantStatus: []int{http.StatusForbidden}},
		{name: "ServiceAccount bound to metrics-reader", token: readerToken, wantStatus: []int{http.StatusOK}},
	}
	for _, tc := range cases {
		status, body := scrapeWithToken(ctx, t, url, tc.token)
		if !slices.Contains(tc.wantStatus, status) {
			t.Errorf("GET /metrics with %s: status %d, want one of %v (body %.200q)", tc.name, status, tc.wantStatus, body)
		}
		servedMetrics := strings.Contains(body, "# TYPE ")
		if status == http.StatusOK && !servedMetrics {
			t.Errorf("GET /metrics with %s returned no metrics: %.200q", tc.name, body)
		}
		if status != http.StatusOK && servedMetrics {
			t.Errorf("GET /metrics with %s returned status %d, but with metrics in the body", tc.name, status)
		}
	}
}

// metricsReaderRole returns the name of the ClusterRole that grants GET on
// /metrics, as config/default renders it.
func metricsReaderRole(t *testing.T, s *sharedEnv) string {
	t.Helper()
	for _, o := range s.install.Manifests.Access {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "metrics-reader") {
			return o.GetName()
		}
	}
	t.Fatal("config/default renders no ClusterRole named *metrics-reader")
	return ""
}

// serviceAccountToken creates a ServiceAccount, binds it to clusterRole
// unless that is empty, and returns a short-lived token of it.
func serviceAccountToken(ctx context.Context, t *testing.T, s *sharedEnv, namespace, name, clusterRole string) string {
	t.Helper()
	if _, err := s.env.Kubectl(ctx, nil, "create", "serviceaccount", name, "-n", namespace); err != nil {
		t.Fatal(err)
	}
	if clusterRole != "" {
		if _, err := s.env.Kubectl(ctx, nil, "create", "clusterrolebinding", name,
			"--clusterrole="+clusterRole, "--serviceaccount="+namespace+":"+name); err != nil {
			t.Fatal(err)
		}
	}
	token, err := s.env.Kubectl(ctx, nil, "create", "token", name, "-n", namespace, "--duration=10m")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(token)
}

// scrapeWithToken sends GET to url with token as a bearer token, unless it is
// empty, and returns the status and the start of the body. The operator's
// certificate is self-signed, so the client does not verify it.
func scrapeWithToken(ctx context.Context, t *testing.T, url, token string) (int, string) {
	t.Helper()
	httpClient := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			// The operator generates a self-signed certificate when no
			// certificate is configured. The connection stays on loopback.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // G402: self-signed certificate of a loopback test server
		},
	}
	// The metrics server starts with the manager, shortly after the probes
	// respond, so the first attempts may find the port closed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			return resp.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s failed: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
