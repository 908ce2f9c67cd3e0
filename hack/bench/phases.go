package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
)

// roundTripsPerCreate is the number of Storage API requests that creating
// one webhook needs: the create under a marker name, and the rename to its
// real name once the signing secret is stored.
const roundTripsPerCreate = 2

// settleTime is the wait between the end of one figure and the start of
// the next, so that passes that the last change triggered have finished.
const settleTime = 5 * time.Second

// newWebhook returns a KeboolaWebhook named name in benchNamespace that
// refers to the KeboolaProject with index project.
func newWebhook(name string, project int) *keboolav1.KeboolaWebhook {
	return &keboolav1.KeboolaWebhook{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: projectName(project)},
			// Nothing listens there: the bench fires no event.
			URL:    "http://127.0.0.1:9/bench/" + name,
			Events: []string{"storage.jobFailed", "storage.jobSucceeded"},
		},
	}
}

// measureConvergence creates the KeboolaWebhooks and waits until all are
// Ready.
func (b *bench) measureConvergence(ctx context.Context) error {
	cfg := b.cfg
	if err := b.emulator.ResetRequests(ctx); err != nil {
		return err
	}
	writesBefore, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}
	metricsBefore, err := b.operatorMetrics(ctx)
	if err != nil {
		return err
	}

	start := time.Now()
	creating := &creation{done: make(chan struct{})}
	go func() {
		defer close(creating.done)
		creating.err = b.createAll(ctx, cfg.webhooks, func(ctx context.Context, i int) error {
			return b.kube.Create(ctx, newWebhook(webhookName(i), i%cfg.projects))
		})
		creating.elapsed = time.Since(start)
	}()

	readyAt, err := b.waitWebhooksReady(ctx, start, cfg.webhooks, creating)
	if err != nil {
		return err
	}
	converged := time.Since(start)
	// Every object exists once all are Ready, so the creation has ended
	// or is about to.
	<-creating.done
	created := creating.elapsed

	stats, err := b.emulator.Stats(ctx)
	if err != nil {
		return err
	}
	writesAfter, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}
	metricsAfter, err := b.operatorMetrics(ctx)
	if err != nil {
		return err
	}

	floor := time.Duration(float64(cfg.webhooks) * roundTripsPerCreate * float64(cfg.latency) /
		float64(cfg.projects*cfg.maxConcurrent))
	b.report.add(result{
		Figure:   "Convergence: time until all KeboolaWebhooks are Ready",
		Value:    converged.Seconds(),
		Unit:     "s",
		Baseline: floor.Seconds(),
		Ratio:    converged.Seconds() / floor.Seconds(),
		Target:   fmt.Sprintf("<= %g x floor", convergenceTarget),
		Pass:     converged.Seconds()/floor.Seconds() <= convergenceTarget,
		Note: fmt.Sprintf("floor = %d webhooks x %d requests x %s / (%d projects x %d at once)",
			cfg.webhooks, roundTripsPerCreate, cfg.latency, cfg.projects, cfg.maxConcurrent),
	})

	calls := stats.Count("", emulator.EndpointWebhooks) + stats.Count("", emulator.EndpointWebhook)
	callsPerWebhook := float64(calls) / float64(cfg.webhooks)
	b.report.add(result{
		Figure:   "Convergence: Storage API webhook requests per KeboolaWebhook",
		Value:    callsPerWebhook,
		Baseline: roundTripsPerCreate,
		Ratio:    callsPerWebhook / roundTripsPerCreate,
		Target:   "info",
		Pass:     true,
		Note:     "create and rename are needed, and lists and reads come on top",
	})

	writes := operatorWrites(writesAfter.minus(writesBefore), cfg.webhooks)
	b.convergence, b.convergenceWrites = converged, writes.total()
	b.report.add(result{
		Figure: "Convergence: kube-apiserver writes per KeboolaWebhook",
		Value:  writes.total() / float64(cfg.webhooks),
		Target: "info",
		Pass:   true,
		Note:   "the operator's creates, updates and patches of KeboolaWebhooks, KeboolaProjects, Secrets and Events",
	})

	limiterWait := metricsAfter["keboola_api_rate_limiter_wait_seconds_sum"] - metricsBefore["keboola_api_rate_limiter_wait_seconds_sum"]
	limited := metricsAfter["keboola_api_rate_limiter_wait_seconds_count"] - metricsBefore["keboola_api_rate_limiter_wait_seconds_count"]
	if limited > 0 {
		b.report.add(result{
			Figure: "Convergence: mean wait for the operator's Storage API rate limiter",
			Value:  limiterWait / limited,
			Unit:   "s",
			Target: "info",
			Pass:   true,
			Note:   fmt.Sprintf("%g requests waited %.0f s in total", limited, limiterWait),
		})
	}

	cpu := metricsAfter["process_cpu_seconds_total"] - metricsBefore["process_cpu_seconds_total"]
	b.report.add(result{
		Figure: "Convergence: operator CPU time per KeboolaWebhook",
		Value:  cpu * 1000 / float64(cfg.webhooks),
		Unit:   "ms",
		Target: "info",
		Pass:   true,
		Note:   fmt.Sprintf("%.1f CPU seconds in total", cpu),
	})

	b.report.Details["convergence"] = map[string]any{
		"operatorMetrics":        diffMetrics(metricsAfter, metricsBefore),
		"seconds":                converged.Seconds(),
		"floorSeconds":           floor.Seconds(),
		"createSeconds":          created.Seconds(),
		"readySecondsP50":        percentile(readyAt, 0.50).Seconds(),
		"readySecondsP90":        percentile(readyAt, 0.90).Seconds(),
		"readySecondsMax":        percentile(readyAt, 1).Seconds(),
		"storageRequests":        stats.Requests,
		"storageConcurrency":     stats.Projects,
		"kubeWrites":             writesAfter.minus(writesBefore),
		"operatorKubeWrites":     writes,
		"storageRequestsPerHook": callsPerWebhook,
	}
	fmt.Fprintf(b.out, "    %d KeboolaWebhooks Ready after %s (created in %s; floor %s)\n",
		cfg.webhooks, seconds(converged), seconds(created), floor)
	fmt.Fprintf(b.out, "    operator's kube-apiserver writes per KeboolaWebhook:\n")
	for _, key := range slices.Sorted(maps.Keys(writes)) {
		fmt.Fprintf(b.out, "      %-32s %5.2f\n", key, writes[key]/float64(cfg.webhooks))
	}
	return nil
}

// operatorWrites returns the write counters diff without the bench's own
// creates of webhooks KeboolaWebhooks, which leaves the operator's writes.
func operatorWrites(diff writeCounts, webhooks int) writeCounts {
	writes := maps.Clone(diff)
	const benchCreates = "keboolawebhooks POST"
	writes[benchCreates] -= float64(webhooks)
	if writes[benchCreates] == 0 {
		delete(writes, benchCreates)
	}
	return writes
}

// diffMetrics returns after minus before for every metric of after.
func diffMetrics(after, before map[string]float64) map[string]float64 {
	diff := make(map[string]float64, len(after))
	for name, value := range after {
		diff[name] = value - before[name]
	}
	return diff
}

// creation is the result of creating objects in the background. err and
// elapsed are set before done is closed.
type creation struct {
	done    chan struct{}
	err     error
	elapsed time.Duration
}

// waitWebhooksReady reads the webhook cache every 100 ms until want
// KeboolaWebhooks are Ready, and returns for each the time from start until
// it was first seen Ready. It fails early when creating the objects fails.
func (b *bench) waitWebhooksReady(ctx context.Context, start time.Time, want int, creating *creation) ([]time.Duration, error) {
	deadline := start.Add(b.cfg.convergeTimeout)
	readyAt := map[string]time.Duration{}
	for {
		var list keboolav1.KeboolaWebhookList
		if err := b.webhooks.List(ctx, &list, client.InNamespace(benchNamespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("failed to list KeboolaWebhooks from the cache: %w", err)
		}
		now := time.Since(start)
		for i := range list.Items {
			wh := &list.Items[i]
			if _, seen := readyAt[wh.Name]; !seen && isReady(wh.Status.Conditions, wh.Generation) {
				readyAt[wh.Name] = now
			}
		}
		if len(readyAt) >= want {
			return slices.Collect(maps.Values(readyAt)), nil
		}

		select {
		case <-creating.done:
			if creating.err != nil {
				return nil, fmt.Errorf("failed to create KeboolaWebhooks: %w", creating.err)
			}
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d KeboolaWebhooks became Ready within %s", len(readyAt), want, b.cfg.convergeTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// measureSteadyState counts Storage API requests and Kubernetes writes
// while nothing changes, over cfg.steadyPeriods resync periods.
func (b *bench) measureSteadyState(ctx context.Context) error {
	cfg := b.cfg
	if err := sleep(ctx, settleTime); err != nil {
		return err
	}
	if err := b.emulator.ResetRequests(ctx); err != nil {
		return err
	}
	writesBefore, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}
	window := time.Duration(cfg.steadyPeriods) * cfg.resyncPeriod
	fmt.Fprintf(b.out, "    watching for %s (%d resync periods)\n", window, cfg.steadyPeriods)
	if err := sleep(ctx, window); err != nil {
		return err
	}
	stats, err := b.emulator.Stats(ctx)
	if err != nil {
		return err
	}
	writesAfter, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}

	projectPeriods := float64(cfg.projects * cfg.steadyPeriods)
	webhookCalls := float64(stats.Count("", emulator.EndpointWebhooks) + stats.Count("", emulator.EndpointWebhook))
	b.report.add(result{
		Figure:   "Steady state: webhook requests per project and resync period",
		Value:    webhookCalls / projectPeriods,
		Baseline: 1,
		Ratio:    webhookCalls / projectPeriods,
		Target:   fmt.Sprintf("<= %g (one list)", steadyCallsTarget),
		Pass:     webhookCalls/projectPeriods <= steadyCallsTarget,
		Note:     fmt.Sprintf("%g requests in %s", webhookCalls, window),
	})
	verifications := float64(stats.Count(http.MethodGet, emulator.EndpointVerify))
	b.report.add(result{
		Figure:   "Steady state: token verifications per project and resync period",
		Value:    verifications / projectPeriods,
		Baseline: 1,
		Ratio:    verifications / projectPeriods,
		Target:   fmt.Sprintf("<= %g", steadyCallsTarget),
		Pass:     verifications/projectPeriods <= steadyCallsTarget,
		Note:     fmt.Sprintf("%g verifications in %s", verifications, window),
	})

	idleWrites := writesAfter.minus(writesBefore)
	total := idleWrites.total()
	b.report.add(result{
		Figure: "Steady state: kube-apiserver writes while idle",
		Value:  total,
		Target: "0",
		Pass:   total == 0,
		Note:   fmt.Sprintf("writes counted over %s", window),
	})
	b.report.Details["steadyState"] = map[string]any{
		"windowSeconds":      window.Seconds(),
		"storageRequests":    stats.Requests,
		"kubeWrites":         idleWrites,
		"storageConcurrency": stats.Projects,
	}
	return nil
}

// measureLatency applies single KeboolaWebhooks one after another and
// measures how long each takes until its Secret contains the signing
// secret.
func (b *bench) measureLatency(ctx context.Context) error {
	cfg := b.cfg
	samples := make([]time.Duration, 0, cfg.latencySamples)
	for i := range cfg.latencySamples {
		name := fmt.Sprintf("latency-%02d", i)
		wh := newWebhook(name, i%cfg.projects)
		start := time.Now()
		if err := b.kube.Create(ctx, wh); err != nil {
			return fmt.Errorf("failed to create KeboolaWebhook %q: %w", name, err)
		}
		if err := b.waitSigningSecret(ctx, name+"-webhook-secret", 30*time.Second); err != nil {
			return err
		}
		samples = append(samples, time.Since(start))

		// Let the webhook finish (rename, status) before the next sample.
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}

	median := percentile(samples, 0.5)
	target := 3*cfg.latency + time.Second
	b.report.add(result{
		Figure:   "Latency: one new KeboolaWebhook until its Secret is written (median)",
		Value:    median.Seconds(),
		Unit:     "s",
		Baseline: (3 * cfg.latency).Seconds(),
		Ratio:    median.Seconds() / (3 * cfg.latency).Seconds(),
		Target:   fmt.Sprintf("<= %s (3 x latency + 1s)", target),
		Pass:     median <= target,
		Note:     fmt.Sprintf("%d samples, max %s", len(samples), percentile(samples, 1).Round(time.Millisecond)),
	})
	sampleSeconds := make([]float64, 0, len(samples))
	for _, s := range samples {
		sampleSeconds = append(sampleSeconds, s.Seconds())
	}
	b.report.Details["latency"] = map[string]any{"samplesSeconds": sampleSeconds}
	return nil
}

// addKubeFloor compares the convergence time with the time that the
// operator's writes take at the bench's own write rate: cfg.secrets
// Secrets in createTime. cfg.createWorkers parallel writers of the group
// system:masters, which API Priority and Fairness exempts, reach that rate,
// so the operator's reconcilers cannot write faster.
func (b *bench) addKubeFloor(createTime time.Duration) {
	if b.cfg.secrets < 1000 || b.convergence == 0 {
		return
	}
	rate := float64(b.cfg.secrets) / createTime.Seconds()
	floor := b.convergenceWrites / rate
	b.report.add(result{
		Figure:   "Convergence: time against the kube-apiserver's write floor",
		Value:    b.convergence.Seconds(),
		Unit:     "s",
		Baseline: floor,
		Ratio:    b.convergence.Seconds() / floor,
		Target:   "info",
		Pass:     true,
		Note: fmt.Sprintf("floor = %.0f operator writes / %.0f writes per second, the rate of the bench's %d parallel Secret creates",
			b.convergenceWrites, rate, b.cfg.createWorkers),
	})
}

// waitSigningSecret polls the Secret name every 10 ms until it contains a
// signing secret.
func (b *bench) waitSigningSecret(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		secret := &corev1.Secret{}
		err := b.kube.Get(ctx, types.NamespacedName{Namespace: benchNamespace, Name: name}, secret)
		switch {
		case err == nil && len(secret.Data[keboolav1.SecretKeySigningSecret]) > 0:
			return nil
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("failed to read Secret %q: %w", name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("secret %q has no signing secret after %s", name, timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// measureMemory reads the operator's RSS, creates the unrelated Secrets,
// and reads it again.
func (b *bench) measureMemory(ctx context.Context) error {
	cfg := b.cfg
	before, err := readMemory(b.operator.PID())
	if err != nil {
		return err
	}
	metricsBefore, err := b.operatorMetrics(ctx)
	if err != nil {
		return err
	}

	data := []byte(randomHex((cfg.secretSize + 1) / 2))[:cfg.secretSize]
	start := time.Now()
	err = b.createAll(ctx, cfg.secrets, func(ctx context.Context, i int) error {
		return b.kube.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      fmt.Sprintf("unrelated-%05d", i),
				Namespace: noiseNamespace,
				Labels:    map[string]string{"app.kubernetes.io/name": "unrelated"},
			},
			Data: map[string][]byte{"data": data},
		})
	})
	if err != nil {
		return fmt.Errorf("failed to create unrelated Secrets: %w", err)
	}
	createTime := time.Since(start)
	fmt.Fprintf(b.out, "    created %d Secrets in %s\n", cfg.secrets, seconds(createTime))
	b.addKubeFloor(createTime)

	// The operator receives a watch event per Secret. The wait gives it
	// time to handle them and to run one resync period with them in the
	// cluster.
	if err := sleep(ctx, max(settleTime, cfg.resyncPeriod)); err != nil {
		return err
	}
	after, err := readMemory(b.operator.PID())
	if err != nil {
		return err
	}
	metricsAfter, err := b.operatorMetrics(ctx)
	if err != nil {
		return err
	}

	b.report.add(result{
		Figure:   fmt.Sprintf("Memory: operator peak RSS (VmHWM) after %d unrelated Secrets", cfg.secrets),
		Value:    after.peakMiB(),
		Unit:     "MiB",
		Baseline: before.peakMiB(),
		Ratio:    after.peakMiB() / before.peakMiB(),
		Target:   fmt.Sprintf("<= %g x baseline", memoryTarget),
		Pass:     after.peakMiB()/before.peakMiB() <= memoryTarget,
		Note:     fmt.Sprintf("baseline: peak RSS with %d KeboolaWebhooks", cfg.webhooks+cfg.latencySamples),
	})
	b.report.add(result{
		Figure:   fmt.Sprintf("Memory: operator RSS (VmRSS) after %d unrelated Secrets", cfg.secrets),
		Value:    after.rssMiB(),
		Unit:     "MiB",
		Baseline: before.rssMiB(),
		Ratio:    after.rssMiB() / before.rssMiB(),
		Target:   "info",
		Pass:     true,
	})
	b.report.Details["memory"] = map[string]any{
		"before":                before,
		"after":                 after,
		"operatorMetricsBefore": metricsBefore,
		"operatorMetricsAfter":  metricsAfter,
	}
	return nil
}
