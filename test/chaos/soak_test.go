package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/internal/localenv"
)

// Shares of the KeboolaWebhooks of each stack whose spec the soak changes
// while faults are injected. At least one of each kind is changed. URLs and
// filters are changed only on the Notification stack, where each such
// change replaces every subscription of the KeboolaWebhook.
const (
	eventChangeShare  = 0.5
	rotationShare     = 0.25
	urlChangeShare    = 0.25
	filterChangeShare = 0.25
)

// webhookAPIChangesPerProject is how many times the soak switches
// spec.webhookAPI of each KeboolaProject on the Notification stack while
// faults are injected (see mutateWebhookAPI).
const webhookAPIChangesPerProject = 3

// leaderKillShare is the chance that a kill hits the leader rather than
// the standby replica. Killing the leader interrupts reconciles; killing
// the standby checks that a restarted replica waits for the Lease.
const leaderKillShare = 0.75

// soak is the state of one TestChaosSoak run.
type soak struct {
	t      *testing.T
	env    *sharedEnv
	admin  client.Client
	random *lockedRand
	// emu is the webhooks stack. It serves the webhooks endpoint of the
	// Storage API and the Notification service, so the operator detects
	// and uses the webhooks endpoint for its projects.
	emu *emulator.Server
	// notificationEmu is the Notification stack. It lacks the webhooks
	// endpoint, as public Keboola stacks may, so the operator detects and
	// uses the Notification service for its projects.
	notificationEmu *emulator.Server
	receiver        *receiver
	projects        []*project
	replicas        []*replica

	credentials *credentials
	corpus      *corpus
	violations  *violations
	apiWatch    *webhookAPIWatch
	report      soakReport

	// webhooks are the KeboolaWebhooks created so far.
	mu       sync.Mutex
	webhooks []webhookRef
}

// soakReport holds the figures of a run. docs/reliability.md quotes them.
type soakReport struct {
	// Webhooks and Projects count those on the webhooks stack, and the
	// Notification fields those on the Notification stack.
	Webhooks             int    `json:"webhooks"`
	Projects             int    `json:"projects"`
	NotificationWebhooks int    `json:"notificationWebhooks"`
	NotificationProjects int    `json:"notificationProjects"`
	Seed                 uint64 `json:"seed"`
	Machine              string `json:"machine"`
	GoVersion            string `json:"goVersion"`

	// Faults and APICalls are those of the webhooks stack, and the
	// Notification fields those of the Notification stack.
	Faults             faultCounts    `json:"faults"`
	NotificationFaults faultCounts    `json:"notificationFaults"`
	Kills              []killRecord   `json:"kills"`
	APICalls           map[string]int `json:"apiCalls"`
	// APICallTotal counts every request to the webhooks stack, from the
	// first verification to the last deletion.
	APICallTotal             int            `json:"apiCallTotal"`
	NotificationAPICalls     map[string]int `json:"notificationAPICalls"`
	NotificationAPICallTotal int            `json:"notificationAPICallTotal"`
	// Mutations counts every spec change during the faults, and
	// MutationsByKind counts them by mutation.
	Mutations       int            `json:"mutations"`
	MutationsByKind map[string]int `json:"mutationsByKind"`
	UnexpectedExits []string       `json:"unexpectedExits,omitempty"`
	// Deliveries counts the delivery attempts of the checks of the webhooks
	// stack, and NotificationDeliveries those of the Notification stack.
	Deliveries             int `json:"deliveries"`
	NotificationDeliveries int `json:"notificationDeliveries"`

	Tokens         int          `json:"tokens"`
	SigningSecrets int          `json:"signingSecrets"`
	MintedSecrets  int          `json:"mintedSecrets"`
	Events         int          `json:"events"`
	Scans          []leakReport `json:"scans"`

	// Durations in seconds.
	FaultPhaseSeconds  float64 `json:"faultPhaseSeconds"`
	ConvergenceSeconds float64 `json:"convergenceSeconds"`
	DeletionSeconds    float64 `json:"deletionSeconds"`
	TotalSeconds       float64 `json:"totalSeconds"`

	Violations []string `json:"violations"`
}

// killRecord is one SIGKILL of a replica.
type killRecord struct {
	// AtSeconds is the time of the kill since the faults started.
	AtSeconds float64 `json:"atSeconds"`
	Replica   string  `json:"replica"`
	Leader    bool    `json:"leader"`
	// HandoverSeconds is the time from the kill of a leader until a
	// replica held the Lease again.
	HandoverSeconds float64 `json:"handoverSeconds,omitempty"`
}

// TestChaosSoak creates KeboolaWebhooks in several projects while the
// emulator injects faults and replicas of the operator are killed, then
// checks that everything converged, that deletion leaves nothing behind,
// and that no credential leaked. See the package documentation.
func TestChaosSoak(t *testing.T) {
	s := environment(t)
	if *webhookCount < 1 || *projectCount < 1 || *killCount < 0 || *notificationProjectCount < 0 || *notificationWebhookCount < 0 {
		t.Fatalf("invalid size: -chaos.webhooks=%d -chaos.projects=%d -chaos.kills=%d -chaos.notification-projects=%d -chaos.notification-webhooks=%d",
			*webhookCount, *projectCount, *killCount, *notificationProjectCount, *notificationWebhookCount)
	}
	seedValue := *seed
	if seedValue == 0 {
		seedValue = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d; repeat the random choices with -chaos.seed=%d", seedValue, seedValue)

	ctx, cancel := context.WithTimeout(context.Background(), *soakTimeout)
	defer cancel()
	started := time.Now()

	r := &soak{
		t:          t,
		env:        s,
		admin:      s.admin,
		random:     newLockedRand(seedValue),
		corpus:     newCorpus(),
		violations: &violations{t: t},
		apiWatch:   newWebhookAPIWatch(),
		report: soakReport{
			Webhooks:             *webhookCount,
			Projects:             *projectCount,
			NotificationWebhooks: notificationWebhooks(),
			NotificationProjects: *notificationProjectCount,
			Seed:                 seedValue,
			Machine:              describeMachine(),
			GoVersion:            runtime.Version(),
			MutationsByKind:      map[string]int{},
		},
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, rep := range r.replicas {
			t.Logf("last 30 lines of %s:\n%s", rep.logPath(), localenv.Tail(rep.logPath(), 30))
		}
		// The work directory goes away with the environment, so the logs
		// of a failed run are copied out of it.
		if dir, err := copyLogs(s.env.LogDir); err != nil {
			t.Logf("failed to keep the logs: %v", err)
		} else {
			t.Logf("the logs of this run are in %s", dir)
		}
	})

	step(t, "start the emulators and the receiver", func() { r.startEmulators() })
	step(t, "create the projects", func() { r.createProjects(ctx) })
	step(t, "start two operator replicas", func() { r.startReplicas(ctx) })

	background, stopBackground := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	r.startWatchers(background, &watchers)
	// Also after a t.Fatal, no watcher may outlive the test.
	t.Cleanup(func() {
		stopBackground()
		watchers.Wait()
	})

	step(t, "inject faults, create webhooks, change specs and kill replicas", func() { r.chaosPhase(ctx) })
	step(t, "wait until every object is Ready", func() { r.waitConverged(ctx) })
	step(t, "check the webhooks, subscriptions and Secrets against the emulators", func() { r.checkInvariants(ctx) })
	step(t, "delete everything", func() { r.deleteEverything(ctx) })

	stopBackground()
	watchers.Wait()
	step(t, "scan logs, Events, status and metrics for credentials", func() { r.scanForLeaks(ctx) })
	step(t, "check the replicas", func() { r.checkReplicas() })

	r.report.TotalSeconds = time.Since(started).Seconds()
	r.report.Violations = append([]string{}, r.violations.list...)
	r.logReport()
	if *reportPath != "" {
		data, err := json.MarshalIndent(r.report, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*reportPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// step runs fn and logs its duration. fn stops the test with t.Fatal on a
// failure.
func step(t *testing.T, name string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	t.Logf("%s: %.1fs", name, time.Since(start).Seconds())
}

func (r *soak) startEmulators() {
	r.emu = emulator.New(emulator.Options{
		AllowHTTPLoopback: true,
		// A real API may return events sorted and URLs with a trailing
		// slash. The operator must not update a webhook in a loop for it.
		NormalizeWebhooks: true,
		DeliveryTimeout:   5 * time.Second,
		DeliveryRetries:   -1,
	})
	r.notificationEmu = emulator.New(emulator.Options{
		Backends:          emulator.BackendsNotification,
		AllowHTTPLoopback: true,
		DeliveryTimeout:   5 * time.Second,
		DeliveryRetries:   -1,
	})
	for _, emu := range r.stacks() {
		if err := emu.Start(); err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(emu.Close)
	}
	r.receiver = newReceiver(r.admin)
	r.t.Cleanup(r.receiver.close)
}

// stacks returns both emulators.
func (r *soak) stacks() []*emulator.Server {
	return []*emulator.Server{r.emu, r.notificationEmu}
}

// notificationWebhooks returns the number of KeboolaWebhooks to create in
// the projects on the Notification stack.
func notificationWebhooks() int {
	switch {
	case *notificationProjectCount == 0:
		return 0
	case *notificationWebhookCount > 0:
		return *notificationWebhookCount
	default:
		return *webhookCount
	}
}

func (r *soak) createProjects(ctx context.Context) {
	for i := range *projectCount {
		p, err := setupProject(ctx, r.admin, r.emu, i, false)
		if err != nil {
			r.t.Fatal(err)
		}
		r.projects = append(r.projects, p)
	}
	for i := range *notificationProjectCount {
		p, err := setupProject(ctx, r.admin, r.notificationEmu, i, true)
		if err != nil {
			r.t.Fatal(err)
		}
		r.projects = append(r.projects, p)
	}
	r.credentials = newCredentials(r.projects)
}

// projectsOf returns the projects on the Notification stack when
// notification is true, and those on the webhooks stack otherwise.
func (r *soak) projectsOf(notification bool) []*project {
	var selected []*project
	for _, p := range r.projects {
		if p.notification == notification {
			selected = append(selected, p)
		}
	}
	return selected
}

func (r *soak) startReplicas(ctx context.Context) {
	namespace := r.env.install.Manifests.ServiceAccount.Namespace
	for _, name := range []string{"operator-a", "operator-b"} {
		rep := newReplica(r.env, name, namespace)
		if err := rep.start(ctx); err != nil {
			r.t.Fatal(err)
		}
		r.replicas = append(r.replicas, rep)
		r.t.Cleanup(func() { _ = rep.stop() })
	}
	if _, ok := r.waitLeader(ctx, 2*leaseDuration); !ok {
		r.t.Fatalf("no replica became the leader within %s", 2*leaseDuration)
	}
}

// waitLeader waits until a replica reports that it holds the Lease, and
// returns it. A zero timeout checks once.
func (r *soak) waitLeader(ctx context.Context, timeout time.Duration) (*replica, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, rep := range r.replicas {
			if rep.isLeader(ctx) {
				return rep, true
			}
		}
		if !time.Now().Before(deadline) || sleep(ctx, 250*time.Millisecond) != nil {
			return nil, false
		}
	}
}

// startWatchers starts the goroutines that run until ctx ends: they collect
// signing secrets and minted secrets, check the webhook API of each
// project, sample statuses, scrape metrics, and restart replicas that exit
// on their own.
func (r *soak) startWatchers(ctx context.Context, wg *sync.WaitGroup) {
	every := func(period time.Duration, fn func()) {
		wg.Go(func() {
			ticker := time.NewTicker(period)
			defer ticker.Stop()
			for {
				fn()
				select {
				case <-ctx.Done():
					return
				case <-ticker.C:
				}
			}
		})
	}
	every(50*time.Millisecond, func() { r.credentials.collect(r.projects) })
	every(500*time.Millisecond, func() {
		// A failed read only delays the collection to the next tick. The
		// collection before the deletion fails the test on an error.
		_ = r.credentials.collectSecrets(ctx, r.admin, r.projects)
	})
	every(time.Second, func() { r.apiWatch.check(ctx, r.admin, r.projects, r.violations) })
	every(2*time.Second, func() {
		// A failed sample only makes the corpus smaller; the final scan
		// reports how much it saw.
		_ = sampleStatus(ctx, r.admin, r.projects, r.corpus)
	})
	every(2*time.Second, func() {
		for _, rep := range r.replicas {
			if page, err := rep.scrape(ctx); err == nil {
				r.corpus.add("metrics", page)
			}
		}
	})
	every(500*time.Millisecond, func() {
		for _, rep := range r.replicas {
			if err := rep.restartIfExited(ctx); err != nil && ctx.Err() == nil {
				r.t.Errorf("failed to restart replica %s: %v", rep.name, err)
			}
		}
	})
}

// chaosPhase injects the faults, and meanwhile creates the KeboolaWebhooks,
// changes the specs of some and kills replicas. It lasts at least
// -chaos.fault-duration and until all three are done.
func (r *soak) chaosPhase(ctx context.Context) {
	for _, f := range faultPlan() {
		r.emu.InjectFault(f)
	}
	for _, f := range notificationFaultPlan() {
		r.notificationEmu.InjectFault(f)
	}
	started := time.Now()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		if err := r.createWebhooks(ctx, *minFaultDuration/3); err != nil {
			errs <- err
			return
		}
		if err := r.mutateWebhooks(ctx, *minFaultDuration/2); err != nil {
			errs <- err
		}
	})
	wg.Go(func() {
		if err := r.killReplicas(ctx, started); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		r.t.Fatal(err)
	}

	if rest := *minFaultDuration - time.Since(started); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
			r.t.Fatal(ctx.Err())
		}
	}
	for _, emu := range r.stacks() {
		emu.ClearFaults()
	}
	r.report.FaultPhaseSeconds = time.Since(started).Seconds()
	r.report.Faults = countFaults(r.emu)
	r.report.NotificationFaults = countFaults(r.notificationEmu)
}

// createWebhooks creates the KeboolaWebhooks, spread evenly over window,
// round-robin over the projects of each stack, and alternating between the
// two stacks while both have some left.
func (r *soak) createWebhooks(ctx context.Context, window time.Duration) error {
	type pendingWebhook struct {
		object  *keboolav1.KeboolaWebhook
		project *project
	}
	var pending []pendingWebhook
	storage, notification := r.projectsOf(false), r.projectsOf(true)
	for i := range max(*webhookCount, notificationWebhooks()) {
		if i < *webhookCount {
			p := storage[i%len(storage)]
			pending = append(pending, pendingWebhook{webhookObject(p, i, r.receiver.server.URL, r.random), p})
		}
		if i < notificationWebhooks() {
			p := notification[i%len(notification)]
			pending = append(pending, pendingWebhook{webhookObject(p, i, r.receiver.server.URL, r.random), p})
		}
	}

	spacing := window / time.Duration(len(pending))
	for _, w := range pending {
		if err := r.admin.Create(ctx, w.object); err != nil {
			return fmt.Errorf("failed to create KeboolaWebhook %s/%s: %w", w.object.Namespace, w.object.Name, err)
		}
		r.mu.Lock()
		r.webhooks = append(r.webhooks, webhookRef{key: client.ObjectKeyFromObject(w.object), project: w.project})
		r.mu.Unlock()
		if err := sleep(ctx, spacing); err != nil {
			return err
		}
	}
	return nil
}

// plannedChange is one change of mutateWebhooks: of the KeboolaWebhook of
// webhook, or for mutateWebhookAPI of the KeboolaProject of project.
type plannedChange struct {
	kind    mutation
	webhook webhookRef
	project *project
}

// mutateWebhooks changes the specs of KeboolaWebhooks picked at random, and
// of the KeboolaProjects on the Notification stack, in random order,
// spread evenly over window. The shares above set how many changes of each
// kind it makes.
func (r *soak) mutateWebhooks(ctx context.Context, window time.Duration) error {
	r.mu.Lock()
	refs := append([]webhookRef{}, r.webhooks...)
	r.mu.Unlock()

	var plan []plannedChange
	addChanges := func(notification bool, kind mutation, share float64) {
		candidates := slices.DeleteFunc(slices.Clone(refs), func(ref webhookRef) bool { return ref.project.notification != notification })
		if len(candidates) == 0 {
			return
		}
		for range max(1, int(float64(len(candidates))*share)) {
			plan = append(plan, plannedChange{kind: kind, webhook: candidates[r.random.IntN(len(candidates))]})
		}
	}
	addChanges(false, mutateEvents, eventChangeShare)
	addChanges(false, mutateRotation, rotationShare)
	addChanges(true, mutateEvents, eventChangeShare)
	addChanges(true, mutateRotation, rotationShare)
	addChanges(true, mutateURL, urlChangeShare)
	addChanges(true, mutateFilters, filterChangeShare)
	for _, p := range r.projectsOf(true) {
		for range webhookAPIChangesPerProject {
			plan = append(plan, plannedChange{kind: mutateWebhookAPI, project: p})
		}
	}
	r.random.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	spacing := window / time.Duration(len(plan))
	for _, change := range plan {
		if change.kind == mutateWebhookAPI {
			if err := switchWebhookAPI(ctx, r.admin, change.project); err != nil {
				return fmt.Errorf("failed to change spec.webhookAPI of KeboolaProject %s/%s: %w", change.project.namespace, projectName, err)
			}
		} else if err := mutate(ctx, r.admin, change.webhook, change.kind, r.receiver.server.URL, r.random); err != nil {
			return fmt.Errorf("failed to change the %s of KeboolaWebhook %s: %w", change.kind, change.webhook.key, err)
		}
		r.report.Mutations++
		r.report.MutationsByKind[string(change.kind)]++
		if err := sleep(ctx, spacing); err != nil {
			return err
		}
	}
	return nil
}

// killReplicas kills -chaos.kills replicas with SIGKILL at random times
// spread over the fault phase, mostly the leader, and starts each again
// after a short pause, as a Deployment restarts a crashed container.
func (r *soak) killReplicas(ctx context.Context, started time.Time) error {
	meanInterval := *minFaultDuration / time.Duration(*killCount+1)
	for range *killCount {
		interval := time.Duration(float64(meanInterval) * (0.5 + r.random.Float64()))
		if err := sleep(ctx, max(interval, 2*time.Second)); err != nil {
			return err
		}

		leader, hasLeader := r.waitLeader(ctx, 0)
		victim := r.replicas[r.random.IntN(len(r.replicas))]
		if hasLeader && r.random.Float64() < leaderKillShare {
			victim = leader
		} else if hasLeader && victim == leader {
			victim = r.otherReplica(leader)
		}
		record := killRecord{
			AtSeconds: time.Since(started).Seconds(),
			Replica:   victim.name,
			Leader:    hasLeader && victim == leader,
		}
		killedAt := time.Now()
		pause := time.Duration(r.random.Float64() * float64(1500*time.Millisecond))
		if err := victim.killAndRestart(ctx, pause); err != nil {
			return err
		}
		if record.Leader {
			// The standby takes over once the Lease expires, unless the
			// restarted replica gets it first.
			if _, ok := r.waitLeader(ctx, 3*leaseDuration); !ok {
				return fmt.Errorf("no replica took over the Lease within %s of the kill of the leader %s", 3*leaseDuration, victim.name)
			}
			record.HandoverSeconds = time.Since(killedAt).Seconds()
		}
		r.report.Kills = append(r.report.Kills, record)
	}
	return nil
}

func (r *soak) otherReplica(rep *replica) *replica {
	for _, other := range r.replicas {
		if other != rep {
			return other
		}
	}
	return rep
}

func (r *soak) waitConverged(ctx context.Context) {
	started := time.Now()
	// The checks after convergence need some of the soak's time.
	timeout := time.Until(deadlineOf(ctx)) - time.Minute
	lines, err := waitReady(ctx, r.admin, r.projects, *webhookCount+notificationWebhooks(), max(timeout, 30*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	r.report.ConvergenceSeconds = time.Since(started).Seconds()
	if len(lines) > 0 {
		r.violations.add("%d objects are not Ready %.0fs after the faults stopped:\n%s",
			len(lines), r.report.ConvergenceSeconds, strings.Join(lines, "\n"))
		r.t.FailNow()
	}
}

// idleWindow is how long the soak watches a converged operator for
// writes to either stack. It is shorter than the resync period, which
// reads but never writes in a converged state either.
const idleWindow = 5 * time.Second

func (r *soak) checkInvariants(ctx context.Context) {
	r.credentials.collect(r.projects)
	if err := checkConverged(ctx, r.admin, r.projects, r.violations); err != nil {
		r.t.Fatal(err)
	}
	if err := checkSubscriptions(ctx, r.admin, r.projects, r.violations); err != nil {
		r.t.Fatal(err)
	}
	r.apiWatch.check(ctx, r.admin, r.projects, r.violations)

	before := writeCount(r.stacks())
	if err := sleep(ctx, idleWindow); err != nil {
		r.t.Fatal(err)
	}
	if writes := writeCount(r.stacks()) - before; writes > 0 {
		r.violations.add("the operator sent %d writes to the stacks in %s after every object was Ready", writes, idleWindow)
	}

	deliveries, err := checkDeliveries(ctx, r.admin, r.projects, r.violations)
	if err != nil {
		r.t.Fatal(err)
	}
	r.report.Deliveries = deliveries
	if r.report.NotificationDeliveries, err = checkNotificationDeliveries(ctx, r.admin, r.projects, r.violations); err != nil {
		r.t.Fatal(err)
	}
}

func (r *soak) deleteEverything(ctx context.Context) {
	started := time.Now()
	// Secrets minted since the last collection would be gone after the
	// deletion, so they are collected now.
	if err := r.credentials.collectSecrets(ctx, r.admin, r.projects); err != nil {
		r.t.Fatal(err)
	}
	if err := deleteEverything(ctx, r.admin, r.projects, time.Minute, r.violations); err != nil {
		r.t.Fatal(err)
	}
	r.report.DeletionSeconds = time.Since(started).Seconds()
	r.report.APICalls, r.report.APICallTotal = apiCallCounts(r.emu)
	r.report.NotificationAPICalls, r.report.NotificationAPICallTotal = apiCallCounts(r.notificationEmu)
}

func (r *soak) scanForLeaks(ctx context.Context) {
	r.credentials.collect(r.projects)
	events, err := collectEvents(ctx, r.admin, r.corpus)
	if err != nil {
		r.t.Fatal(err)
	}
	r.report.Events = events
	r.report.Tokens = len(r.projects)
	r.report.SigningSecrets = r.credentials.signingCount()
	r.report.MintedSecrets = r.credentials.mintedCount()

	logFiles := map[string]string{}
	for _, rep := range r.replicas {
		logFiles[rep.name] = rep.logPath()
	}
	scans, err := scanSources(newLeakScanner(r.credentials), logFiles, r.corpus, []string{"events", "status", "metrics"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.report.Scans = scans
	for _, scan := range scans {
		if scan.Bytes == 0 {
			r.violations.add("the %s is empty, so the scan for credentials proves nothing there", scan.Source)
		}
		for _, leak := range scan.Leaks {
			r.violations.add("the %s contains %s", scan.Source, leak)
		}
	}
	if r.report.SigningSecrets < *webhookCount {
		r.violations.add("the soak saw %d signing secrets for %d KeboolaWebhooks, so it scanned for too few", r.report.SigningSecrets, *webhookCount)
	}
	if r.report.MintedSecrets < notificationWebhooks() {
		r.violations.add("the soak saw %d minted secrets for %d KeboolaWebhooks on the Notification stack, so it scanned for too few",
			r.report.MintedSecrets, notificationWebhooks())
	}
}

// checkReplicas fails on a replica that panicked or was denied a request by
// RBAC. An exit after a lost Lease is how controller-runtime gives up
// leadership, so it is reported but not a violation.
func (r *soak) checkReplicas() {
	for _, rep := range r.replicas {
		data, err := os.ReadFile(rep.logPath())
		if err != nil {
			r.t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			// A Go runtime panic starts a line with "panic: ", and
			// controller-runtime logs a recovered panic of a reconciler
			// with "Observed a panic".
			if strings.HasPrefix(line, "panic: ") || strings.Contains(line, "Observed a panic") {
				r.violations.add("replica %s panicked: %s", rep.name, strings.TrimSpace(line))
			}
			// The replicas run with exactly the RBAC of config/rbac, so a
			// denied request means a rule is missing.
			if strings.Contains(line, "is forbidden") {
				r.violations.add("replica %s was denied a request: %.300s", rep.name, strings.TrimSpace(line))
			}
		}
		r.report.UnexpectedExits = append(r.report.UnexpectedExits, rep.unexpectedExits...)
	}
}

func (r *soak) logReport() {
	rep := r.report
	var b strings.Builder
	fmt.Fprintf(&b, "chaos soak: %d KeboolaWebhooks in %d projects on the webhooks stack, %d in %d on the Notification stack, seed %d, on %s\n",
		rep.Webhooks, rep.Projects, rep.NotificationWebhooks, rep.NotificationProjects, rep.Seed, rep.Machine)
	for _, stack := range []struct {
		name   string
		faults faultCounts
	}{{"webhooks stack", rep.Faults}, {"Notification stack", rep.NotificationFaults}} {
		fmt.Fprintf(&b, "  faults injected by the %s: %d (%s)", stack.name, stack.faults.Total, formatCounts(stack.faults.ByKind))
		if !stack.faults.Complete {
			b.WriteString(", lower bounds because the request log dropped entries")
		}
		fmt.Fprintf(&b, "; lost create responses: %d\n    by request: %s\n", stack.faults.LostCreateResponses, formatCounts(stack.faults.ByRequest))
	}
	leaderKills, maxHandover := 0, 0.0
	for _, k := range rep.Kills {
		if k.Leader {
			leaderKills++
			maxHandover = max(maxHandover, k.HandoverSeconds)
		}
	}
	fmt.Fprintf(&b, "  kills: %d (%d of the leader, longest handover %.1fs); unexpected exits: %d\n",
		len(rep.Kills), leaderKills, maxHandover, len(rep.UnexpectedExits))
	fmt.Fprintf(&b, "  spec changes during faults: %d (%s)\n", rep.Mutations, formatCounts(rep.MutationsByKind))
	fmt.Fprintf(&b, "  deliveries verified: %d signed, %d with the URL secret\n", rep.Deliveries, rep.NotificationDeliveries)
	fmt.Fprintf(&b, "  requests to the webhooks stack: %d (%s)\n", rep.APICallTotal, formatCounts(rep.APICalls))
	fmt.Fprintf(&b, "  requests to the Notification stack: %d (%s)\n", rep.NotificationAPICallTotal, formatCounts(rep.NotificationAPICalls))
	fmt.Fprintf(&b, "  credentials scanned for: %d tokens, %d signing secrets, %d minted secrets, %d Events\n",
		rep.Tokens, rep.SigningSecrets, rep.MintedSecrets, rep.Events)
	for _, scan := range rep.Scans {
		fmt.Fprintf(&b, "    %s: %d bytes, %d leaks\n", scan.Source, scan.Bytes, len(scan.Leaks))
	}
	fmt.Fprintf(&b, "  durations: faults %.0fs, convergence %.1fs, deletion %.1fs, soak %.0fs\n",
		rep.FaultPhaseSeconds, rep.ConvergenceSeconds, rep.DeletionSeconds, rep.TotalSeconds)
	fmt.Fprintf(&b, "  invariant violations: %d", len(rep.Violations))
	r.t.Log(b.String())
}

// formatCounts returns counts as "key n, key n" in key order.
func formatCounts(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, key := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", key, counts[key]))
	}
	return strings.Join(parts, ", ")
}

// describeMachine returns the CPU model, the number of CPUs and the memory
// of this machine, as far as Linux reports them.
func describeMachine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	memory := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if value, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kib int64
				if _, err := fmt.Sscanf(strings.TrimSpace(value), "%d kB", &kib); err == nil {
					memory = fmt.Sprintf(", %.0f GiB", float64(kib)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s)%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, memory)
}

// copyLogs copies the log files of dir into a new temporary directory and
// returns its path.
func copyLogs(dir string) (string, error) {
	target, err := os.MkdirTemp("", "keboola-chaos-logs-")
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, entry := range entries {
		data, err := os.ReadFile(filepath.Join(dir, entry.Name()))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(target, entry.Name()), data, 0o600); err != nil {
			return "", err
		}
	}
	return target, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deadlineOf returns the deadline of ctx, which the soak always sets.
func deadlineOf(ctx context.Context) time.Time {
	deadline, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return deadline
}
