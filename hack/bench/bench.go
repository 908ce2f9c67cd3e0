package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/localenv"
)

// Namespaces of the bench's objects.
const (
	// benchNamespace contains the KeboolaProjects, their token Secrets and
	// the KeboolaWebhooks.
	benchNamespace = "bench"
	// noiseNamespace contains the unrelated Secrets of the memory figure.
	noiseNamespace = "bench-noise"
)

// firstProjectID is the Keboola project id of the first KeboolaProject.
// The others follow it.
const firstProjectID = 1001

// tailLines is how many lines of each log a failure prints.
const tailLines = 20

// bench is one run of the benchmark.
type bench struct {
	cfg     config
	out     io.Writer
	started time.Time

	env         *localenv.Env
	bins        *localenv.Binaries
	emulator    *localenv.EmulatorClient
	emulatorURL string
	operator    *localenv.Process
	// operatorMetricsURL is the operator's metrics endpoint, served over
	// plain HTTP on loopback.
	operatorMetricsURL string

	// restConfig and kube are the admin user's, without client-side rate
	// limiting, so that the bench creates objects as fast as the
	// kube-apiserver accepts them.
	restConfig *rest.Config
	kube       client.Client
	// webhooks caches the KeboolaWebhooks of benchNamespace.
	webhooks    cache.Cache
	stopWebhook context.CancelFunc

	report report
	// convergence is the convergence time, and convergenceWrites the
	// operator's Kubernetes writes in that time, for the comparison with
	// the kube-apiserver's write rate that the memory figure measures.
	convergence       time.Duration
	convergenceWrites float64
}

func (b *bench) run(ctx context.Context) error {
	b.report = newReport(b.cfg, b.started)
	fmt.Fprintf(b.out, "Benchmark: %d KeboolaWebhooks in %d projects, %d unrelated Secrets, latency %s, %d requests at once per project, resync period %s\n",
		b.cfg.webhooks, b.cfg.projects, b.cfg.secrets, b.cfg.latency, b.cfg.maxConcurrent, b.cfg.resyncPeriod)

	steps := []struct {
		title string
		fn    func(context.Context) error
	}{
		{"Building the binaries and starting the control plane", b.setup},
		{"Starting the emulator, the projects and the operator", b.startComponents},
		{"Measuring convergence", b.measureConvergence},
		{"Measuring the steady state", b.measureSteadyState},
		{"Measuring the latency of one new webhook", b.measureLatency},
		{"Measuring memory with unrelated Secrets", b.measureMemory},
	}
	for _, s := range steps {
		fmt.Fprintf(b.out, "==> %s ...\n", s.title)
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %q", s.title)
			}
			return fmt.Errorf("%s: %w", s.title, err)
		}
		fmt.Fprintf(b.out, "    done in %s\n", seconds(time.Since(start)))
	}

	b.report.finish()
	b.report.printTable(b.out)
	if err := b.report.writeJSON(b.cfg.output); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "Results written to %s\n", b.cfg.output)
	return nil
}

// close stops every process and removes the work directory.
func (b *bench) close() error {
	if b.stopWebhook != nil {
		b.stopWebhook()
	}
	if b.env == nil {
		return nil
	}
	err := b.env.Close()
	if b.cfg.keepLogs {
		fmt.Fprintf(b.out, "Logs kept in %s\n", b.env.LogDir)
	}
	return err
}

// printLogTails prints the end of each component's log after a failure.
func (b *bench) printLogTails() {
	if b.env == nil {
		return
	}
	for _, component := range []string{"operator", "emulator", "kube-apiserver"} {
		path := b.env.LogPath(component)
		fmt.Fprintf(os.Stderr, "\n--- last %d lines of %s ---\n%s\n", tailLines, path, localenv.Tail(path, tailLines))
	}
}

// setup builds the binaries and starts the control plane.
func (b *bench) setup(ctx context.Context) error {
	env, err := localenv.New(localenv.Options{AssetsDir: b.cfg.assets, Name: "bench", Version: "bench", KeepLogs: b.cfg.keepLogs})
	if err != nil {
		return err
	}
	b.env = env
	if b.bins, err = env.Build(ctx); err != nil {
		return err
	}
	if err := env.StartControlPlane(ctx); err != nil {
		return err
	}

	b.restConfig, err = clientcmd.BuildConfigFromFlags("", env.AdminKubeconfig)
	if err != nil {
		return fmt.Errorf("failed to read the admin kubeconfig: %w", err)
	}
	// A negative QPS turns client-side rate limiting off.
	b.restConfig.QPS = -1
	b.restConfig.UserAgent = "keboola-bench"
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(keboolav1.AddToScheme(scheme))
	b.kube, err = client.New(b.restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("failed to create the Kubernetes client: %w", err)
	}
	return nil
}

// startComponents installs the CRDs and RBAC, starts the emulator, creates
// the projects, starts the operator and waits until every project is Ready.
func (b *bench) startComponents(ctx context.Context) error {
	installation, err := b.env.InstallOperator(ctx)
	if err != nil {
		return err
	}

	address, err := localenv.FreeAddress()
	if err != nil {
		return err
	}
	_, b.emulator, err = b.env.StartEmulatorWithArgs(ctx, b.bins, address,
		"--latency="+b.cfg.latency.String(),
		"--max-concurrent-per-project="+strconv.Itoa(b.cfg.maxConcurrent))
	if err != nil {
		return err
	}
	b.emulatorURL = "http://" + address

	for _, ns := range []string{benchNamespace, noiseNamespace} {
		if err := b.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("failed to create namespace %q: %w", ns, err)
		}
	}
	for i := range b.cfg.projects {
		if err := b.createProject(ctx, i); err != nil {
			return err
		}
	}

	metricsAddress, err := localenv.FreeAddress()
	if err != nil {
		return err
	}
	b.operatorMetricsURL = "http://" + metricsAddress + "/metrics"
	// StartOperator turns metrics off, and these flags turn them on again
	// because a later flag overrides an earlier one.
	operatorFlags := append([]string{"--metrics-bind-address=" + metricsAddress, "--metrics-secure=false"}, b.cfg.operatorFlags()...)
	b.operator, _, err = b.env.StartOperator(ctx, b.bins, installation.Kubeconfig, operatorFlags...)
	if err != nil {
		return err
	}
	if err := b.waitProjectsReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	return b.startWebhookCache(ctx)
}

// createProject adds project i to the emulator with a new token and
// creates its token Secret and KeboolaProject.
func (b *bench) createProject(ctx context.Context, i int) error {
	id := int64(firstProjectID + i)
	token := "bench-" + randomHex(16)
	if err := b.emulator.AddProject(ctx, id, projectName(i)); err != nil {
		return err
	}
	if err := b.emulator.AddToken(ctx, id, strconv.FormatInt(id, 10), token); err != nil {
		return err
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: projectName(i) + "-token", Namespace: benchNamespace},
		StringData: map[string]string{"token": token},
	}
	if err := b.kube.Create(ctx, secret); err != nil {
		return fmt.Errorf("failed to create token Secret %q: %w", secret.Name, err)
	}
	project := &keboolav1.KeboolaProject{
		ObjectMeta: metav1.ObjectMeta{Name: projectName(i), Namespace: benchNamespace},
		Spec: keboolav1.KeboolaProjectSpec{
			StackURL:          b.emulatorURL,
			TokenSecretRef:    keboolav1.SecretKeyReference{Name: secret.Name},
			ExpectedProjectID: &id,
		},
	}
	if err := b.kube.Create(ctx, project); err != nil {
		return fmt.Errorf("failed to create KeboolaProject %q: %w", project.Name, err)
	}
	return nil
}

// waitProjectsReady polls until every KeboolaProject is Ready.
func (b *bench) waitProjectsReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var list keboolav1.KeboolaProjectList
		if err := b.kube.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
			return fmt.Errorf("failed to list KeboolaProjects: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if isReady(list.Items[i].Status.Conditions, list.Items[i].Generation) {
				ready++
			}
		}
		if ready == b.cfg.projects {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d KeboolaProjects became Ready within %s", ready, b.cfg.projects, timeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// startWebhookCache starts an informer of the KeboolaWebhooks in
// benchNamespace, which the convergence figure reads every 100 ms.
func (b *bench) startWebhookCache(ctx context.Context) error {
	c, err := cache.New(b.restConfig, cache.Options{
		Scheme:            b.kube.Scheme(),
		DefaultNamespaces: map[string]cache.Config{benchNamespace: {}},
	})
	if err != nil {
		return fmt.Errorf("failed to create the KeboolaWebhook cache: %w", err)
	}
	if _, err := c.GetInformer(ctx, &keboolav1.KeboolaWebhook{}); err != nil {
		return fmt.Errorf("failed to start the KeboolaWebhook informer: %w", err)
	}
	cacheCtx, cancel := context.WithCancel(context.Background())
	b.stopWebhook = cancel
	go func() { _ = c.Start(cacheCtx) }()
	if !c.WaitForCacheSync(ctx) {
		return errors.New("the KeboolaWebhook cache did not sync")
	}
	b.webhooks = c
	return nil
}

// createAll calls create for 0 to count-1 from cfg.createWorkers
// goroutines, and returns the first error.
func (b *bench) createAll(ctx context.Context, count int, create func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range b.cfg.createWorkers {
		wg.Go(func() {
			for i := range next {
				if err := create(ctx, i); err != nil && !apierrors.IsAlreadyExists(err) {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// isReady reports whether conditions contain Ready=True for generation.
func isReady(conditions []metav1.Condition, generation int64) bool {
	for _, c := range conditions {
		if c.Type == keboolav1.ConditionReady {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
		}
	}
	return false
}

func projectName(i int) string {
	return fmt.Sprintf("project-%02d", i)
}

func webhookName(i int) string {
	return fmt.Sprintf("webhook-%04d", i)
}

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	buf := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seconds formats d in seconds with one decimal, such as "12.3s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
