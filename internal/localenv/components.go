package localenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startTimeout bounds the wait for a started component's health endpoint.
const startTimeout = 60 * time.Second

// Installation is the result of InstallOperator.
type Installation struct {
	Manifests *OperatorManifests
	// Output is the standard output of the kubectl apply commands.
	Output string
	// Kubeconfig impersonates the operator's ServiceAccount.
	Kubeconfig string
}

// InstallOperator applies the CRDs of config/default, waits until they are
// Established, and applies the Namespace, ServiceAccount and RBAC objects.
// It leaves out the Deployment and every other object that needs a node,
// and writes a kubeconfig that impersonates the operator's ServiceAccount,
// so that the operator process has exactly the permissions of config/rbac.
func (e *Env) InstallOperator(ctx context.Context) (*Installation, error) {
	manifests, err := e.RenderOperatorManifests(ctx)
	if err != nil {
		return nil, err
	}

	var output strings.Builder
	applied, err := e.Apply(ctx, manifests.CRDs)
	if err != nil {
		return nil, err
	}
	output.WriteString(applied)

	waitArgs := []string{"wait", "--for=condition=Established", "--timeout=60s"}
	for _, name := range manifests.CRDNames() {
		waitArgs = append(waitArgs, "crd/"+name)
	}
	if _, err := e.Kubectl(ctx, nil, waitArgs...); err != nil {
		return nil, err
	}

	applied, err = e.Apply(ctx, manifests.Access)
	if err != nil {
		return nil, err
	}
	output.WriteString(applied)

	sa := manifests.ServiceAccount
	kubeconfig, err := e.WriteImpersonatingKubeconfig("operator", ServiceAccountUsername(sa.Namespace, sa.Name))
	if err != nil {
		return nil, err
	}
	return &Installation{Manifests: manifests, Output: output.String(), Kubeconfig: kubeconfig}, nil
}

// StartEmulator starts the Storage API emulator on address, such as
// "127.0.0.1:8765", with one project that accepts token and with extraArgs
// added, such as "--webhook-api=notification", and waits until it is
// healthy. The token reaches the emulator through a file, never on the
// command line. The process logs to LogPath("emulator").
func (e *Env) StartEmulator(ctx context.Context, bins *Binaries, address string, projectID int64, token string, extraArgs ...string) (*EmulatorClient, error) {
	tokenFile := filepath.Join(e.Dir, "emulator-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write the emulator's token file: %w", err)
	}
	process, err := e.Start(ProcessSpec{
		Name: "emulator",
		Path: bins.Emulator,
		Args: append([]string{
			"--listen=" + address,
			"--project-id=" + strconv.FormatInt(projectID, 10),
			"--token-file=" + tokenFile,
		}, extraArgs...),
	})
	if err != nil {
		return nil, err
	}

	baseURL := "http://" + address
	if err := WaitHTTP(ctx, baseURL+"/_emulator/healthz", startTimeout, process); err != nil {
		return nil, err
	}
	return NewEmulatorClient(baseURL)
}

// StartReceiver starts the webhook receiver on address with the delivery
// path path, reading the signing secret from secretFile, and waits until it
// is healthy. secretFile need not exist yet: until it does, the receiver
// responds to deliveries with 503. The process logs to LogPath("receiver").
func (e *Env) StartReceiver(ctx context.Context, bins *Binaries, address, path, secretFile string) error {
	if err := os.MkdirAll(filepath.Dir(secretFile), 0o700); err != nil {
		return fmt.Errorf("failed to create the directory of the receiver's secret file: %w", err)
	}
	process, err := e.Start(ProcessSpec{
		Name: "receiver",
		Path: bins.Receiver,
		Args: []string{"--listen=" + address, "--path=" + path, "--secret-file=" + secretFile},
	})
	if err != nil {
		return err
	}
	return WaitHTTP(ctx, "http://"+address+"/healthz", startTimeout, process)
}

// StartOperator starts the operator binary with kubeconfig, without leader
// election and metrics, with extraArgs added, and waits until its health
// endpoint on a free loopback port responds. It returns the process, which
// logs to LogPath("operator"), and the health endpoint's URL.
func (e *Env) StartOperator(ctx context.Context, bins *Binaries, kubeconfig string, extraArgs ...string) (*Process, string, error) {
	probeAddress, err := FreeAddress()
	if err != nil {
		return nil, "", err
	}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddress,
	}, extraArgs...)
	process, err := e.Start(ProcessSpec{Name: "operator", Path: bins.Operator, Args: args})
	if err != nil {
		return nil, "", err
	}

	healthURL := "http://" + probeAddress + "/healthz"
	if err := WaitHTTP(ctx, healthURL, startTimeout, process); err != nil {
		return nil, "", err
	}
	return process, healthURL, nil
}

// WriteSecretFile writes secret to path the way the kubelet updates a
// mounted Secret: into a new file that replaces the old one by a rename, so
// a reader never sees a partly written secret.
func WriteSecretFile(path string, secret []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, secret, 0o600); err != nil {
		return fmt.Errorf("failed to write the secret file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to replace the secret file %s: %w", path, err)
	}
	return nil
}
