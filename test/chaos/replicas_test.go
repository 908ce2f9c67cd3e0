package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keboola/keboola-operator/internal/localenv"
)

// Lease timing of the soak's replicas. A leader killed with SIGKILL does
// not release its Lease, so the other replica takes over after at most
// leaseDuration plus retryPeriod. The production defaults of 15s, 10s and
// 2s would make each handover slower without testing anything more.
const (
	leaseDuration = 6 * time.Second
	renewDeadline = 4 * time.Second
	retryPeriod   = time.Second
)

// rotationGracePeriod is how long the previous webhook of a rotation keeps
// delivering in the soak, instead of the default of five minutes.
const rotationGracePeriod = 5 * time.Second

// leaderMetric is the metrics line of the replica that holds the Lease.
// controller-runtime exports the leader election gauge of client-go, and
// the Lease is named after main.go's LeaderElectionID.
const leaderMetric = `leader_election_master_status{name="keboola-operator.keboola.dev"} 1`

// replica is one operator process. After a kill the soak starts it again
// under the same name, as a Deployment restarts a crashed container, and
// its log file continues.
type replica struct {
	name string
	env  *localenv.Env
	bin  string
	args []string

	// mu serializes starts and kills, so that the watchdog never restarts
	// a replica that the kill loop is restarting.
	mu         sync.Mutex
	process    *localenv.Process
	metricsURL string
	starts     int
	// unexpectedExits describes each exit that the soak did not cause.
	unexpectedExits []string
}

// newReplica returns a replica of the operator binary that runs with the
// kubeconfig of the operator's ServiceAccount, leader election in
// namespace, and the soak's settings.
func newReplica(s *sharedEnv, name, namespace string) *replica {
	return &replica{
		name: name,
		env:  s.env,
		bin:  s.bins.Operator,
		args: []string{
			"--kubeconfig=" + s.install.Kubeconfig,
			"--leader-elect=true",
			"--leader-election-namespace=" + namespace,
			"--leader-election-lease-duration=" + leaseDuration.String(),
			"--leader-election-renew-deadline=" + renewDeadline.String(),
			"--leader-election-retry-period=" + retryPeriod.String(),
			// Plain HTTP on loopback, so that the soak can scrape the
			// metrics without a token and scan them for secrets.
			"--metrics-secure=false",
			// Every V level the operator and controller-runtime log, so
			// that the scan for secrets covers the detailed lines too.
			"--zap-log-level=10",
			"--resync-period=20s",
			// Rotations end within the soak, so that the checks see one
			// webhook per KeboolaWebhook.
			"--rotation-grace-period=" + rotationGracePeriod.String(),
			"--api-timeout=" + apiTimeout.String(),
			// The default of 10 requests per second and stack would make
			// a soak of hundreds of webhooks wait for the rate limiter
			// most of the time.
			"--api-qps=50",
			"--api-burst=50",
		},
	}
}

// start starts the replica's process on fresh loopback ports and waits
// until its health endpoint responds.
func (r *replica) start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startLocked(ctx)
}

func (r *replica) startLocked(ctx context.Context) error {
	metricsAddress, err := localenv.FreeAddress()
	if err != nil {
		return err
	}
	probeAddress, err := localenv.FreeAddress()
	if err != nil {
		return err
	}
	args := append([]string{
		"--metrics-bind-address=" + metricsAddress,
		"--health-probe-bind-address=" + probeAddress,
	}, r.args...)
	process, err := r.env.Start(localenv.ProcessSpec{Name: r.name, Path: r.bin, Args: args})
	if err != nil {
		return err
	}
	r.process = process
	r.metricsURL = "http://" + metricsAddress + "/metrics"
	r.starts++
	if err := localenv.WaitHTTP(ctx, "http://"+probeAddress+"/healthz", time.Minute, process); err != nil {
		return fmt.Errorf("replica %s did not start: %w", r.name, err)
	}
	return nil
}

// killAndRestart kills the replica with SIGKILL, waits for pause, and starts
// it again.
func (r *replica) killAndRestart(ctx context.Context, pause time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.process != nil {
		r.process.Kill()
	}
	select {
	case <-time.After(pause):
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.startLocked(ctx)
}

// restartIfExited starts the replica again when its process exited without
// a kill by the soak, and records why it exited.
func (r *replica) restartIfExited(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.process == nil {
		return nil
	}
	exitErr := r.process.ExitError()
	if exitErr == nil {
		return nil
	}
	r.unexpectedExits = append(r.unexpectedExits, fmt.Sprintf("%s: %v; last lines:\n%s",
		time.Now().Format(time.TimeOnly), exitErr, localenv.Tail(r.process.LogPath, 5)))
	return r.startLocked(ctx)
}

// stop stops the replica with SIGTERM.
func (r *replica) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.process == nil {
		return nil
	}
	return r.process.Stop()
}

// scrape returns the replica's metrics page.
func (r *replica) scrape(ctx context.Context) (string, error) {
	r.mu.Lock()
	url := r.metricsURL
	r.mu.Unlock()
	if url == "" {
		return "", fmt.Errorf("replica %s has not started", r.name)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s returned status %d", url, resp.StatusCode)
	}
	return string(body), nil
}

// isLeader reports whether the replica reports that it holds the Lease. A
// replica that cannot be scraped is not the leader as far as the soak can
// tell.
func (r *replica) isLeader(ctx context.Context) bool {
	page, err := r.scrape(ctx)
	return err == nil && strings.Contains(page, leaderMetric)
}

// logPath returns the path of the replica's log file, which every start
// appends to.
func (r *replica) logPath() string {
	return r.env.LogPath(r.name)
}
