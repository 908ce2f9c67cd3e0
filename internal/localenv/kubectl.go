package localenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Kubectl runs kubectl as the admin user in ModuleRoot, with stdin as
// standard input when it is not nil, and returns its standard output. The
// error contains kubectl's standard error.
func (e *Env) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	if e.AdminKubeconfig == "" {
		return "", errors.New("the control plane is not started")
	}
	return e.KubectlWith(ctx, e.AdminKubeconfig, stdin, args...)
}

// KubectlWith runs kubectl like Kubectl, but with the given kubeconfig.
// An empty kubeconfig is for commands that need no cluster, such as
// "kubectl kustomize".
func (e *Env) KubectlWith(ctx context.Context, kubeconfig string, stdin []byte, args ...string) (string, error) {
	// The user's own kubeconfig must never be used, and the discovery
	// cache, which kubectl otherwise keeps in ~/.kube/cache, goes away
	// with the work directory.
	fullArgs := append([]string{"--cache-dir=" + filepath.Join(e.Dir, "kubectl-cache")}, args...)
	env := append(os.Environ(), "KUBECONFIG="+os.DevNull)
	if kubeconfig != "" {
		fullArgs = append([]string{"--kubeconfig=" + kubeconfig}, fullArgs...)
		env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	}
	cmd := exec.CommandContext(ctx, e.KubectlPath, fullArgs...)
	cmd.Dir = e.ModuleRoot
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s failed: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Render returns the objects that "kubectl kustomize dir" renders, with dir
// relative to ModuleRoot.
func (e *Env) Render(ctx context.Context, dir string) ([]*unstructured.Unstructured, error) {
	output, err := e.KubectlWith(ctx, "", nil, "kustomize", dir)
	if err != nil {
		return nil, err
	}
	return decodeObjects(output)
}

// decodeObjects decodes a stream of YAML documents.
func decodeObjects(stream string) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var objects []*unstructured.Unstructured
	for {
		// Decoding through JSON keeps integers as int64, which the
		// unstructured helpers expect, where a map would get float64.
		var raw runtime.RawExtension
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to decode the manifests: %w", err)
		}
		if len(raw.Raw) == 0 || string(raw.Raw) == "null" {
			continue
		}
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(raw.Raw); err != nil {
			return nil, fmt.Errorf("failed to decode a manifest: %w", err)
		}
		objects = append(objects, object)
	}
}

// Apply applies objects with "kubectl apply -f -" as the admin user and
// returns kubectl's output. extraArgs are added to the command, such as
// "-n", "default".
func (e *Env) Apply(ctx context.Context, objects []*unstructured.Unstructured, extraArgs ...string) (string, error) {
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": objectMaps(objects)}
	data, err := json.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("failed to encode the manifests: %w", err)
	}
	return e.Kubectl(ctx, data, append([]string{"apply", "-f", "-"}, extraArgs...)...)
}

func objectMaps(objects []*unstructured.Unstructured) []any {
	maps := make([]any, 0, len(objects))
	for _, o := range objects {
		maps = append(maps, o.Object)
	}
	return maps
}

// OperatorManifests are the objects of config/default, sorted for a run of
// the operator as a local process instead of a Deployment.
type OperatorManifests struct {
	// CRDs are the CustomResourceDefinitions.
	CRDs []*unstructured.Unstructured
	// Access are the Namespaces, ServiceAccounts and RBAC objects, which
	// give the operator's ServiceAccount its permissions.
	Access []*unstructured.Unstructured
	// ServiceAccount is the ServiceAccount of the operator's Deployment,
	// which the operator process impersonates.
	ServiceAccount types.NamespacedName
	// Skipped names every other object, such as the Deployment and its
	// Services: the control plane has no nodes to run Pods.
	Skipped []string
}

// operatorDefaultDir is the kustomization that deploys the operator. It
// sets the namespace and the name prefix of every object, so rendering it,
// and not config/rbac alone, gives the RBAC objects the names a real
// installation has.
const operatorDefaultDir = "config/default"

// accessKinds are the kinds of config/default that RenderOperatorManifests
// puts into OperatorManifests.Access.
var accessKinds = map[string]bool{
	"Namespace":          true,
	"ServiceAccount":     true,
	"Role":               true,
	"ClusterRole":        true,
	"RoleBinding":        true,
	"ClusterRoleBinding": true,
}

// RenderOperatorManifests renders config/default and sorts its objects. The
// operator's ServiceAccount is the one its only Deployment runs as.
func (e *Env) RenderOperatorManifests(ctx context.Context) (*OperatorManifests, error) {
	role := filepath.Join(e.ModuleRoot, "config", "rbac", "role.yaml")
	if _, err := os.Stat(role); err != nil {
		return nil, fmt.Errorf("%s is missing: run \"make manifests\" to generate it from the RBAC markers of the controllers", role)
	}
	objects, err := e.Render(ctx, operatorDefaultDir)
	if err != nil {
		return nil, err
	}

	m := &OperatorManifests{}
	var deployments []*unstructured.Unstructured
	for _, o := range objects {
		kind := o.GetKind()
		switch {
		case kind == "CustomResourceDefinition":
			m.CRDs = append(m.CRDs, o)
		case accessKinds[kind]:
			m.Access = append(m.Access, o)
		default:
			if kind == "Deployment" {
				deployments = append(deployments, o)
			}
			m.Skipped = append(m.Skipped, fmt.Sprintf("%s %s/%s", kind, o.GetNamespace(), o.GetName()))
		}
	}
	if len(m.CRDs) == 0 {
		return nil, fmt.Errorf("%s renders no CustomResourceDefinition", operatorDefaultDir)
	}
	if len(deployments) != 1 {
		return nil, fmt.Errorf("%s renders %d Deployments, want exactly 1, the operator's", operatorDefaultDir, len(deployments))
	}

	deployment := deployments[0]
	account, _, _ := unstructured.NestedString(deployment.Object, "spec", "template", "spec", "serviceAccountName")
	if account == "" {
		account = "default"
	}
	m.ServiceAccount = types.NamespacedName{Namespace: deployment.GetNamespace(), Name: account}
	if Find(m.Access, "ServiceAccount", account) == nil {
		return nil, fmt.Errorf("%s renders no ServiceAccount %s, which the Deployment %q runs as", operatorDefaultDir, m.ServiceAccount, deployment.GetName())
	}
	return m, nil
}

// CRDNames returns the names of the CustomResourceDefinitions, such as
// "keboolaprojects.keboola.dev".
func (m *OperatorManifests) CRDNames() []string {
	names := make([]string, 0, len(m.CRDs))
	for _, crd := range m.CRDs {
		names = append(names, crd.GetName())
	}
	return names
}

// SetEndpoints points sample objects at other local addresses: it sets
// spec.stackURL of each KeboolaProject to stackURL, and replaces the host
// and port of spec.url of each KeboolaWebhook with receiverAddress, such as
// "127.0.0.1:40123", keeping the scheme and the path.
func SetEndpoints(objects []*unstructured.Unstructured, stackURL, receiverAddress string) error {
	for _, o := range objects {
		switch o.GetKind() {
		case "KeboolaProject":
			if err := unstructured.SetNestedField(o.Object, stackURL, "spec", "stackURL"); err != nil {
				return fmt.Errorf("failed to set spec.stackURL of KeboolaProject %q: %w", o.GetName(), err)
			}
		case "KeboolaWebhook":
			raw, _, err := unstructured.NestedString(o.Object, "spec", "url")
			if err != nil {
				return fmt.Errorf("failed to read spec.url of KeboolaWebhook %q: %w", o.GetName(), err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				return fmt.Errorf("invalid spec.url %q of KeboolaWebhook %q: %w", raw, o.GetName(), err)
			}
			u.Host = receiverAddress
			if err := unstructured.SetNestedField(o.Object, u.String(), "spec", "url"); err != nil {
				return fmt.Errorf("failed to set spec.url of KeboolaWebhook %q: %w", o.GetName(), err)
			}
		}
	}
	return nil
}

// Find returns the first object of the given kind and name, or nil.
func Find(objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
