// Command keboola-operator runs the controllers of KeboolaProject and
// KeboolaWebhook objects.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/controller"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "keboola-operator: %v\n", err)
		os.Exit(1)
	}
}

// flags are the command-line settings of the operator.
type flags struct {
	metricsAddr       string
	metricsSecure     bool
	probeAddr         string
	leaderElect       bool
	leaderElectionNS  string
	leaseDuration     time.Duration
	renewDeadline     time.Duration
	retryPeriod       time.Duration
	enableHTTP2       bool
	showVersion       bool
	controllerOptions controller.Options
	apiTimeout        time.Duration
	apiQPS            float64
	apiBurst          int
	apiMaxRetries     int
	zapOptions        zap.Options
}

func parseFlags() *flags {
	f := &flags{controllerOptions: controller.DefaultOptions()}
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to, for example :8443. Use 0 to disable the endpoint.")
	flag.BoolVar(&f.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS and require authentication and authorization through the Kubernetes API.")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081",
		"Address the health and readiness probe endpoints bind to.")
	flag.BoolVar(&f.leaderElect, "leader-elect", true,
		"Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&f.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader election Lease. Required when the operator runs outside a cluster with leader election on.")
	flag.DurationVar(&f.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a standby replica waits after the leader's last renewal before it takes over the Lease. "+
			"A leader killed without releasing the Lease is replaced within this duration plus one retry period.")
	flag.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew the Lease before it gives up leadership and exits. Must be shorter than the lease duration.")
	flag.DurationVar(&f.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often replicas try to acquire or renew the Lease.")
	flag.BoolVar(&f.enableHTTP2, "enable-http2", false,
		"Allow HTTP/2 on the metrics server. Off by default because of the HTTP/2 rapid reset vulnerabilities (CVE-2023-44487, CVE-2023-39325).")
	flag.BoolVar(&f.showVersion, "version", false, "Print the version and exit.")

	flag.DurationVar(&f.controllerOptions.ResyncPeriod, "resync-period", f.controllerOptions.ResyncPeriod,
		"How often Ready objects are checked against Keboola again, jittered by up to 10%.")
	flag.DurationVar(&f.controllerOptions.TokenExpiryWarning, "token-expiry-warning", f.controllerOptions.TokenExpiryWarning,
		"How long before a token's expiry a KeboolaProject reports TokenExpiringSoon.")
	flag.IntVar(&f.controllerOptions.MaxConcurrentReconciles, "max-concurrent-reconciles", f.controllerOptions.MaxConcurrentReconciles,
		"Number of objects of each kind reconciled in parallel.")
	flag.DurationVar(&f.controllerOptions.RotationGracePeriod, "rotation-grace-period", f.controllerOptions.RotationGracePeriod,
		"How long the previous webhook of a signing secret rotation keeps delivering, and its secret stays in the Secret "+
			"under previousSigningSecret, after the new secret is published. 0 deletes it at once.")

	flag.DurationVar(&f.apiTimeout, "api-timeout", 30*time.Second,
		"Timeout of one Storage API request attempt.")
	flag.Float64Var(&f.apiQPS, "api-qps", 10,
		"Storage API requests per second allowed per stack host, shared by all projects on that stack.")
	flag.IntVar(&f.apiBurst, "api-burst", 20,
		"Storage API requests allowed in a burst per stack host.")
	flag.IntVar(&f.apiMaxRetries, "api-max-retries", 4,
		"Retries of a failed Storage API read, update or delete; 0 disables retries. Creates are never retried automatically.")

	f.zapOptions.BindFlags(flag.CommandLine)
	flag.Parse()
	return f
}

func run() error {
	f := parseFlags()
	if f.showVersion {
		fmt.Println(version)
		return nil
	}
	if f.controllerOptions.RotationGracePeriod < 0 {
		return fmt.Errorf("invalid --rotation-grace-period %s: it must not be negative", f.controllerOptions.RotationGracePeriod)
	}

	verbosityLowered := capVerbosity(&f.zapOptions)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zapOptions)))
	setupLog := ctrl.Log.WithName("setup")
	setupLog.Info("Starting keboola-operator", "version", version)
	if verbosityLowered {
		setupLog.Info("Lowered the log verbosity to the maximum, because client-go logs the bodies of Kubernetes requests above it, and Secret bodies contain credentials",
			"maxVerbosity", maxLogVerbosity)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(keboolav1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !f.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOptions := metricsserver.Options{
		BindAddress:   f.metricsAddr,
		SecureServing: f.metricsSecure,
		TLSOpts:       tlsOpts,
	}
	if f.metricsSecure {
		metricsOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions,
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "keboola-operator.keboola.dev",
		LeaderElectionNamespace: f.leaderElectionNS,
		LeaseDuration:           &f.leaseDuration,
		RenewDeadline:           &f.renewDeadline,
		RetryPeriod:             &f.retryPeriod,
		// The process exits right after the manager stops, so the Lease can
		// be released at once and a new leader need not wait for it to
		// expire.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				// Cache only the Secrets the operator writes. Token
				// Secrets are read directly when needed, and the
				// KeboolaProject controller watches them through a
				// cache of its own that holds only labeled Secrets.
				&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{
					keboolav1.LabelManagedBy: keboolav1.ManagedByValue,
				})},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("failed to create manager: %w", err)
	}

	// keboola.Options treats 0 as "use the default" and a negative value
	// as "no retries".
	maxRetries := f.apiMaxRetries
	if maxRetries == 0 {
		maxRetries = -1
	}
	clients := keboola.NewFactory(keboola.Options{
		Timeout:    f.apiTimeout,
		QPS:        f.apiQPS,
		Burst:      f.apiBurst,
		MaxRetries: maxRetries,
		UserAgent:  "keboola-operator/" + version,
		Metrics:    keboola.NewMetrics(metrics.Registry),
	})
	if err := controller.SetupWithManager(mgr, controller.NewClientFactory(clients), f.controllerOptions); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add readiness check: %w", err)
	}

	setupLog.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("manager stopped with an error: %w", err)
	}
	return nil
}
