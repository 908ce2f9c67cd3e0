// Package chaos is the reliability and security suite of the operator.
//
// TestChaosSoak runs two replicas of the operator binary against a local
// control plane and two in-process emulators that inject faults. The
// webhooks stack has the webhooks endpoint of the Storage API, and the
// Notification stack offers only the Notification service. Meanwhile it
// kills replicas with SIGKILL. Then it checks that every KeboolaWebhook
// converged: on the webhooks stack to exactly one webhook whose signing
// secret its Secret holds, on the Notification stack to one subscription
// per event whose URL carries the secret that its Secret holds. It also checks that no token, signing
// secret or minted secret leaked into logs, Events, status or metrics. The
// other tests check the RBAC rules, the hardening of the manager
// Deployment and the authentication of the metrics endpoint.
//
// "go test ./..." runs a small soak that takes about a minute. "make
// test-chaos" runs a larger one with flags such as -chaos.webhooks=200;
// docs/reliability.md lists the flags and the figures of the latest run.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/localenv"
)

// Size and timing of the soak. The defaults are the bounded run of "go
// test ./..."; "make test-chaos" passes larger values.
var (
	webhookCount = flag.Int("chaos.webhooks", 12,
		"Number of KeboolaWebhooks the soak creates in the projects on the stack with the webhooks endpoint of the Storage API.")
	projectCount = flag.Int("chaos.projects", 3,
		"Number of KeboolaProjects on the stack with the webhooks endpoint of the Storage API, each in a namespace and an emulator project of its own.")
	notificationProjectCount = flag.Int("chaos.notification-projects", 2,
		"Number of further KeboolaProjects on a second stack that offers only the Notification service, each in a namespace and an emulator project of its own. 0 leaves that stack out.")
	notificationWebhookCount = flag.Int("chaos.notification-webhooks", 0,
		"Number of KeboolaWebhooks the soak creates in the projects on the Notification service. 0 creates as many as -chaos.webhooks.")
	killCount = flag.Int("chaos.kills", 2,
		"Number of operator replicas the soak kills with SIGKILL while faults are injected.")
	minFaultDuration = flag.Duration("chaos.fault-duration", 30*time.Second,
		"Minimum time during which the emulator injects faults. The phase lasts longer when the kills or the creates need more time.")
	soakTimeout = flag.Duration("chaos.timeout", 3*time.Minute,
		"Limit of the soak from the start of the emulator to the end of the checks, after the control plane is up and the binaries are built.")
	seed = flag.Uint64("chaos.seed", 0,
		"Seed of the random choices of the soak; 0 takes one from the clock. The soak logs the seed it used.")
	reportPath = flag.String("chaos.report", "",
		"File to write the figures of the soak to, as JSON. Empty writes none.")
	keepLogs = flag.Bool("chaos.keep-logs", false,
		"Keep the log directory of the control plane and the operator replicas after the run, and log its path.")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if err := closeSharedEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: cleanup failed: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// sharedEnv is the local environment that the tests of this package share:
// one control plane with the CRDs and the operator's RBAC installed, and the
// built binaries. Starting it takes most of the time of a short run, so it is
// started once, by the first test that needs it.
type sharedEnv struct {
	env  *localenv.Env
	bins *localenv.Binaries
	// install is the result of InstallOperator. Its Kubeconfig impersonates
	// the operator's ServiceAccount.
	install *localenv.Installation
	// admin is a client with the permissions of system:masters.
	admin client.Client
}

var (
	sharedOnce sync.Once
	shared     *sharedEnv
	sharedErr  error
)

// setupTimeout bounds the start of the control plane, the build of the
// binaries and the installation of the CRDs and RBAC. A cold build cache
// makes the build take minutes.
const setupTimeout = 10 * time.Minute

// environment returns the shared environment, starting it on first use. It
// skips the test in -short mode when KUBEBUILDER_ASSETS is not set, and
// fails it otherwise.
func environment(t *testing.T) *sharedEnv {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if testing.Short() {
			t.Skip("KUBEBUILDER_ASSETS is not set; this test needs a control plane")
		}
		t.Fatal(`KUBEBUILDER_ASSETS is not set: run "make test-chaos", which builds kube-apiserver, etcd and kubectl and sets it`)
	}
	sharedOnce.Do(func() { shared, sharedErr = startSharedEnv(assets) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// startSharedEnv starts the shared environment. After an error it still
// returns what it started, so that closeSharedEnv can stop it.
func startSharedEnv(assets string) (*sharedEnv, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	env, err := localenv.New(localenv.Options{AssetsDir: assets, Name: "chaos", Version: "chaos", KeepLogs: *keepLogs})
	if err != nil {
		return nil, err
	}
	s := &sharedEnv{env: env}
	if err := env.StartControlPlane(ctx); err != nil {
		return s, err
	}
	if s.bins, err = env.Build(ctx); err != nil {
		return s, err
	}
	if s.install, err = env.InstallOperator(ctx); err != nil {
		return s, err
	}
	if s.admin, err = newAdminClient(env.AdminKubeconfig); err != nil {
		return s, err
	}
	return s, nil
}

func closeSharedEnv() error {
	if shared == nil || shared.env == nil {
		return nil
	}
	if *keepLogs {
		fmt.Fprintf(os.Stderr, "chaos: logs are in %s\n", shared.env.LogDir)
	}
	return shared.env.Close()
}

// newAdminClient returns a controller-runtime client for the kubeconfig at
// path, with the operator's types in its scheme.
func newAdminClient(path string) (client.Client, error) {
	config, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("failed to load the admin kubeconfig: %w", err)
	}
	// The soak creates and reads hundreds of objects; the client-go
	// defaults of 5 requests per second would dominate its run time.
	config.QPS = 200
	config.Burst = 400
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(keboolav1.AddToScheme(scheme))
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the admin client: %w", err)
	}
	return c, nil
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
