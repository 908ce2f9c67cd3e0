package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// The suite runs a real kube-apiserver and etcd (envtest), a Storage API
// emulator on loopback, and one manager with both controllers. Each test
// works in a namespace and an emulator project of its own, so tests do not
// see each other's objects.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	emu       *emulator.Server
	// notificationEmu is a stack with the Notification service and without
	// the webhooks endpoint.
	notificationEmu *emulator.Server
	testCtx         context.Context
	cancelMgr       context.CancelFunc
	// logSink receives every line the manager logs, so that tests can
	// assert that no token or signing secret was logged.
	logSink = &lockedBuffer{}
	// testOptions are the controller options of the suite's manager.
	testOptions = Options{
		ResyncPeriod:            3 * time.Second,
		TokenExpiryWarning:      24 * time.Hour,
		MaxConcurrentReconciles: 4,
		// Long enough for the rotation stories to watch the overlap and
		// deliver events during it, short enough for every story that
		// rotates to see the previous webhook deleted well within
		// webhookWait.
		RotationGracePeriod: 4 * time.Second,
	}
	projectIDs atomic.Int64
	// projectReconciler is the KeboolaProject reconciler of the suite's
	// manager, whose token Secret cache tests inspect.
	projectReconciler *KeboolaProjectReconciler
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	// Level -2 makes the manager log V(1) and V(2) lines too, so that the
	// scan for secrets covers the detailed lines as well.
	logf.SetLogger(zap.New(zap.WriteTo(logSink), zap.UseDevMode(true), zap.Level(zapcore.Level(-2))))

	testCtx, cancelMgr = context.WithCancel(context.Background())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: controlPlaneAssets(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(keboolav1.AddToScheme(scheme))

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	emu = emulator.New(emulator.Options{
		AllowHTTPLoopback: true,
		NormalizeWebhooks: true,
		DeliveryBackoff:   10 * time.Millisecond,
		DeliveryTimeout:   5 * time.Second,
	})
	Expect(emu.Start()).To(Succeed())

	// A stack that has only the Notification service.
	notificationEmu = emulator.New(emulator.Options{
		AllowHTTPLoopback: true,
		DeliveryBackoff:   10 * time.Millisecond,
		DeliveryTimeout:   5 * time.Second,
		Backends:          emulator.BackendsNotification,
	})
	Expect(notificationEmu.Start()).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{
				keboolav1.LabelManagedBy: keboolav1.ManagedByValue,
			})},
		}},
	})
	Expect(err).NotTo(HaveOccurred())

	clients := keboola.NewFactory(keboola.Options{
		Timeout:    5 * time.Second,
		QPS:        1000,
		Burst:      1000,
		MaxRetries: 2,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		UserAgent:  "keboola-operator/test",
	})
	projectReconciler, err = setupControllers(mgr, NewClientFactory(clients), testOptions)
	Expect(err).NotTo(HaveOccurred())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(testCtx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
	}
	if emu != nil {
		emu.Close()
	}
	if notificationEmu != nil {
		notificationEmu.Close()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// controlPlaneAssets returns the folder with kube-apiserver, etcd and kubectl:
// KUBEBUILDER_ASSETS when set, else the folder "make controlplane" builds.
func controlPlaneAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..", "bin", "k8s", "1.37.2")
}

// newNamespace creates a namespace with a generated name for one test.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	Expect(k8sClient.Create(testCtx, ns)).To(Succeed())
	return ns.Name
}

// newEmulatorProject adds a project with a fresh id and a token for it to the
// emulator, and returns both.
func newEmulatorProject() (projectID int64, token string) {
	projectID = 1000 + projectIDs.Add(1)
	token = fmt.Sprintf("%d-test-token-%d", projectID, time.Now().UnixNano())
	emu.AddProject(emulator.Project{ID: projectID, Name: fmt.Sprintf("Project %d", projectID), Region: "eu-central-1"})
	emu.AddToken(token, emulator.Token{
		ID:                fmt.Sprintf("%d", projectID*10),
		Description:       "operator test token",
		ProjectID:         projectID,
		CanManageWebhooks: true,
	})
	return projectID, token
}
