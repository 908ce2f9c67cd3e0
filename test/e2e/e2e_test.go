// Package e2e runs the keboola-operator binary end to end with a local
// control plane, kubectl, the Storage API emulator and the reference webhook
// receiver, each a separate process. The operator impersonates its
// ServiceAccount, so it has only the permissions of config/rbac.
//
// Run it with "make test-e2e", which builds the control plane binaries and
// sets KUBEBUILDER_ASSETS to their directory.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

const (
	// namespace is where the samples are applied.
	namespace = "default"
	// readyTimeout bounds the wait for the samples to become Ready.
	readyTimeout = 120 * time.Second
	// fireEvent is an event the sample webhook subscribes to.
	fireEvent = "storage.jobSucceeded"
	// signingSecretKey and webhookIDKey are the keys of the Secret the
	// operator writes.
	signingSecretKey = "signingSecret"
	webhookIDKey     = "webhookID"
	// fingerprintAnnotation identifies the signing secret without
	// revealing it.
	fingerprintAnnotation = "keboola.dev/secret-fingerprint"
)

// run is the state shared by the steps of TestOperatorEndToEnd.
type run struct {
	env      *localenv.Env
	bins     *localenv.Binaries
	samples  *localenv.Samples
	emulator *localenv.EmulatorClient
	operator *localenv.Process

	operatorKubeconfig string
	emulatorURL        string
	receiverURL        string
	secretFile         string
}

// TestOperatorEndToEnd applies the CRDs, the RBAC and the samples with
// kubectl and checks what a user of the operator gets. That is Ready
// objects, a Secret with the webhook's signing secret, verified deliveries,
// and a webhook that is deleted together with its KeboolaWebhook.
//
// The emulator and the receiver listen on free ports, not on the fixed
// ports 8765 and 8766 of config/samples, so that the test can run while a
// "make demo" runs. The test points the samples at its ports by editing the
// rendered objects in memory and applying them through standard input.
func TestOperatorEndToEnd(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if testing.Short() {
			t.Skip("KUBEBUILDER_ASSETS is not set; the end-to-end test needs a control plane")
		}
		t.Fatal(`KUBEBUILDER_ASSETS is not set: run "make test-e2e", which builds kube-apiserver, etcd and kubectl and sets it`)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	env, err := localenv.New(localenv.Options{AssetsDir: assets, Name: "e2e", Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("cleanup failed: %v", err)
		}
	})
	// Cleanups run last-in first-out, so the logs are read before Close
	// stops the processes and removes them.
	t.Cleanup(func() {
		if t.Failed() {
			for _, component := range []string{"operator", "emulator", "receiver", "kube-apiserver"} {
				t.Logf("last 40 lines of %s:\n%s", env.LogPath(component), localenv.Tail(env.LogPath(component), 40))
			}
		}
	})

	r := &run{env: env}
	step(t, "start the control plane", func() { r.startControlPlane(ctx, t) })
	step(t, "build the binaries", func() { r.build(ctx, t) })
	step(t, "apply the CRDs and the RBAC", func() { r.installOperatorManifests(ctx, t) })
	step(t, "start the emulator", func() { r.startEmulator(ctx, t) })
	step(t, "start the receiver", func() { r.startReceiver(ctx, t) })
	step(t, "start the operator", func() { r.startOperator(ctx, t) })
	step(t, "apply the samples", func() { r.applySamples(ctx, t) })
	step(t, "wait for Ready", func() { r.waitReady(ctx, t) })
	step(t, "check the signing Secret", func() { r.checkSecret(ctx, t) })
	step(t, "deliver a signed event", func() { r.deliverSignedEvent(ctx, t) })
	step(t, "reject a wrong signature", func() { r.rejectWrongSignature(ctx, t) })
	step(t, "delete the samples", func() { r.deleteSamples(ctx, t) })
	step(t, "check the logs for secrets", func() { r.checkLogsForSecrets(t) })
}

// step runs fn and logs its duration. fn stops the test with t.Fatal on a
// failure.
func step(t *testing.T, name string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	t.Logf("%s: %.1fs", name, time.Since(start).Seconds())
}

func (r *run) startControlPlane(ctx context.Context, t *testing.T) {
	if err := r.env.StartControlPlane(ctx); err != nil {
		t.Fatal(err)
	}
	samples, err := r.env.RenderSamples(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.samples = samples
}

func (r *run) build(ctx context.Context, t *testing.T) {
	bins, err := r.env.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.bins = bins
}

func (r *run) installOperatorManifests(ctx context.Context, t *testing.T) {
	installation, err := r.env.InstallOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.operatorKubeconfig = installation.Kubeconfig
	for _, want := range []string{"customresourcedefinition.apiextensions.k8s.io/keboolawebhooks.keboola.dev created", "clusterrolebinding.rbac.authorization.k8s.io/"} {
		if !strings.Contains(installation.Output, want) {
			t.Errorf("kubectl apply output does not contain %q:\n%s", want, installation.Output)
		}
	}

	// The operator's kubeconfig acts as the ServiceAccount, with its RBAC
	// and nothing more.
	sa := installation.Manifests.ServiceAccount
	username := localenv.ServiceAccountUsername(sa.Namespace, sa.Name)
	whoami, err := r.env.KubectlWith(ctx, r.operatorKubeconfig, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil {
		t.Fatal(err)
	}
	if whoami != username {
		t.Fatalf("the operator kubeconfig authenticates as %q, want %q", whoami, username)
	}
	if _, err := r.env.KubectlWith(ctx, r.operatorKubeconfig, nil, "auth", "can-i", "watch", "keboolawebhooks.keboola.dev", "--all-namespaces"); err != nil {
		t.Errorf("the operator's ServiceAccount cannot watch KeboolaWebhooks: %v", err)
	}
	output, err := r.env.KubectlWith(ctx, r.operatorKubeconfig, nil, "auth", "can-i", "create", "clusterroles")
	if err == nil || strings.TrimSpace(output) != "no" {
		t.Errorf("the operator's ServiceAccount can create ClusterRoles (output %q, error %v): the kubeconfig does not restrict it to its RBAC", output, err)
	}
}

func (r *run) startEmulator(ctx context.Context, t *testing.T) {
	address := freeAddress(t)
	emulator, err := r.env.StartEmulator(ctx, r.bins, address, r.samples.ProjectID, r.samples.Token)
	if err != nil {
		t.Fatal(err)
	}
	r.emulator = emulator
	r.emulatorURL = "http://" + address
}

func (r *run) startReceiver(ctx context.Context, t *testing.T) {
	address := freeAddress(t)
	sampleURL, err := url.Parse(r.samples.WebhookURL)
	if err != nil {
		t.Fatal(err)
	}
	r.receiverURL = "http://" + address + sampleURL.Path
	r.secretFile = filepath.Join(r.env.Dir, "receiver", signingSecretKey)
	if err := r.env.StartReceiver(ctx, r.bins, address, sampleURL.Path, r.secretFile); err != nil {
		t.Fatal(err)
	}
}

func (r *run) startOperator(ctx context.Context, t *testing.T) {
	// Level 2 logs the detailed lines too, so that the scan for secrets
	// covers them.
	process, _, err := r.env.StartOperator(ctx, r.bins, r.operatorKubeconfig, "--resync-period=30s", "--zap-log-level=2")
	if err != nil {
		t.Fatal(err)
	}
	r.operator = process
}

func (r *run) applySamples(ctx context.Context, t *testing.T) {
	receiver, err := url.Parse(r.receiverURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := localenv.SetEndpoints(r.samples.Objects, r.emulatorURL, receiver.Host); err != nil {
		t.Fatal(err)
	}

	output, err := r.env.Apply(ctx, r.samples.Objects, "-n", namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"keboolaproject.keboola.dev/" + r.samples.ProjectName + " created",
		"keboolawebhook.keboola.dev/" + r.samples.WebhookName + " created",
	} {
		if !strings.Contains(output, want) {
			t.Errorf("kubectl apply output %q does not contain %q", output, want)
		}
	}
}

func (r *run) waitReady(ctx context.Context, t *testing.T) {
	start := time.Now()
	_, err := r.env.Kubectl(ctx, nil, "wait", "--for=condition=Ready",
		"keboolaproject/"+r.samples.ProjectName, "keboolawebhook/"+r.samples.WebhookName,
		"-n", namespace, "--timeout="+readyTimeout.String())
	if err != nil {
		status, _ := r.env.Kubectl(ctx, nil, "get", "kbp,kbwh", "-n", namespace, "-o", "yaml")
		t.Fatalf("the samples did not become Ready within %s: %v\n%s", readyTimeout, err, status)
	}
	t.Logf("the samples became Ready after %.1fs", time.Since(start).Seconds())

	// The printer columns show the same.
	output, err := r.env.Kubectl(ctx, nil, "get", "kbp,kbwh", "-n", namespace, "--no-headers",
		"-o", "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type==\"Ready\")].status")
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]string{}
	for line := range strings.Lines(output) {
		if fields := strings.Fields(line); len(fields) == 2 {
			ready[fields[0]] = fields[1]
		}
	}
	for _, name := range []string{r.samples.ProjectName, r.samples.WebhookName} {
		if ready[name] != "True" {
			t.Errorf("kubectl get kbp,kbwh shows Ready %q for %s, want True:\n%s", ready[name], name, output)
		}
	}
}

// secretObject contains the fields of a Secret that the test reads.
type secretObject struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

func (r *run) checkSecret(ctx context.Context, t *testing.T) {
	output, err := r.env.Kubectl(ctx, nil, "get", "secret", r.samples.SecretName, "-n", namespace, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var secret secretObject
	if err := json.Unmarshal([]byte(output), &secret); err != nil {
		t.Fatalf("invalid Secret JSON: %v", err)
	}
	signingSecret := decodeKey(t, secret, signingSecretKey)
	webhookID := decodeKey(t, secret, webhookIDKey)

	sum := sha256.Sum256(signingSecret)
	wantFingerprint := "sha256:" + hex.EncodeToString(sum[:8])
	if got := secret.Metadata.Annotations[fingerprintAnnotation]; got != wantFingerprint {
		t.Errorf("annotation %s = %q, want %q", fingerprintAnnotation, got, wantFingerprint)
	}

	webhooks, err := r.emulator.Webhooks(ctx, r.samples.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if len(webhooks) != 1 {
		t.Fatalf("the emulator has %d webhooks for project %d, want 1", len(webhooks), r.samples.ProjectID)
	}
	if webhooks[0].ID != string(webhookID) {
		t.Errorf("Secret key %s = %q, want the emulator's webhook id %q", webhookIDKey, webhookID, webhooks[0].ID)
	}
	if webhooks[0].Secret != string(signingSecret) {
		// Print fingerprints only: test logs are not a place for secrets.
		t.Errorf("Secret key %s has fingerprint %s, but the emulator's secret of webhook %s differs", signingSecretKey, wantFingerprint, webhooks[0].ID)
	}
	if webhooks[0].URL != r.receiverURL {
		t.Errorf("the emulator's webhook URL = %q, want %q", webhooks[0].URL, r.receiverURL)
	}

	// The receiver reads the secret from a file, as from a mounted Secret.
	if err := localenv.WriteSecretFile(r.secretFile, signingSecret); err != nil {
		t.Fatal(err)
	}
}

func decodeKey(t *testing.T, secret secretObject, key string) []byte {
	t.Helper()
	encoded, ok := secret.Data[key]
	if !ok {
		t.Fatalf("the Secret has no key %q", key)
	}
	value, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatalf("invalid base64 under key %q: %v", key, err)
	}
	if len(value) == 0 {
		t.Fatalf("the Secret has an empty value under key %q", key)
	}
	return value
}

func (r *run) deliverSignedEvent(ctx context.Context, t *testing.T) {
	deliveries, err := r.emulator.Fire(ctx, r.samples.ProjectID, fireEvent, map[string]any{"id": "e2e-signed-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 1 {
		t.Fatalf("the emulator made %d delivery attempts, want 1: %+v", len(deliveries), deliveries)
	}
	if deliveries[0].Status != http.StatusOK {
		t.Errorf("the receiver responded to the delivery with status %d (error %q), want 200", deliveries[0].Status, deliveries[0].Error)
	}
	if deliveries[0].URL != r.receiverURL {
		t.Errorf("the delivery went to %q, want %q", deliveries[0].URL, r.receiverURL)
	}
	if _, ok := localenv.FindLine(r.env.LogPath("receiver"), `msg="Delivery verified"`, "event="+fireEvent, "dataId=e2e-signed-1"); !ok {
		t.Errorf("the receiver log has no verified delivery with data.id e2e-signed-1:\n%s", localenv.Tail(r.env.LogPath("receiver"), 10))
	}
}

func (r *run) rejectWrongSignature(ctx context.Context, t *testing.T) {
	body := fmt.Appendf(nil, `{"event":%q,"data":{"id":"e2e-forged-1"},"createdTime":"2024-01-15T10:35:01+0000"}`, fireEvent)
	status, err := localenv.PostDelivery(ctx, r.receiverURL, body, webhook.Sign([]byte("not-the-signing-secret"), body))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("the receiver responded to a wrongly signed delivery with status %d, want 401", status)
	}
	if _, ok := localenv.FindLine(r.env.LogPath("receiver"), `msg="Delivery rejected"`, "unverifiedDataId=e2e-forged-1"); !ok {
		t.Errorf("the receiver log has no rejected delivery with data.id e2e-forged-1:\n%s", localenv.Tail(r.env.LogPath("receiver"), 10))
	}
	if _, ok := localenv.FindLine(r.env.LogPath("receiver"), "Delivery verified", "e2e-forged-1"); ok {
		t.Error("the receiver logged the wrongly signed delivery as verified")
	}
}

func (r *run) deleteSamples(ctx context.Context, t *testing.T) {
	if _, err := r.env.Kubectl(ctx, nil, "delete", "-k", localenv.SamplesDir, "-n", namespace, "--timeout=90s"); err != nil {
		t.Fatal(err)
	}

	// kubectl delete waits until the finalizers are done, so the webhook
	// is already gone at the emulator.
	webhooks, err := r.emulator.Webhooks(ctx, r.samples.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if len(webhooks) != 0 {
		t.Errorf("the emulator still has %d webhooks for project %d after the deletion, want 0", len(webhooks), r.samples.ProjectID)
	}
	output, err := r.env.Kubectl(ctx, nil, "get", "keboolawebhooks", "-n", namespace, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(output) != "" {
		t.Errorf("KeboolaWebhooks remain after the deletion: %s", output)
	}
	if err := r.operator.ExitError(); err != nil {
		t.Errorf("the operator stopped during the test: %v", err)
	}
}

func (r *run) checkLogsForSecrets(t *testing.T) {
	operatorLog, err := os.ReadFile(r.env.LogPath("operator"))
	if err != nil {
		t.Fatal(err)
	}
	if len(operatorLog) == 0 {
		t.Fatal("the operator log is empty, so the scan for secrets would prove nothing")
	}
	if strings.Contains(string(operatorLog), r.samples.Token) {
		t.Error("the operator log contains the Storage API token")
	}

	secret, err := os.ReadFile(r.secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(operatorLog), strings.TrimSpace(string(secret))) {
		t.Error("the operator log contains the webhook's signing secret")
	}

	receiverLog, err := os.ReadFile(r.env.LogPath("receiver"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(receiverLog), strings.TrimSpace(string(secret))) {
		t.Error("the receiver log contains the webhook's signing secret")
	}
}

// freeAddress returns a loopback address with a free port.
func freeAddress(t *testing.T) string {
	t.Helper()
	address, err := localenv.FreeAddress()
	if err != nil {
		t.Fatal(err)
	}
	return address
}
