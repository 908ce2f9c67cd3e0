// Command bench measures how the keboola-operator scales, the way
// "make bench" runs it:
//
//	go run ./hack/bench --assets bin/k8s/1.37.2
//	go run ./hack/bench --assets bin/k8s/1.37.2 -webhooks 100 -projects 4 -secrets 2000
//
// It starts a local control plane of etcd and kube-apiserver, built from
// source. It starts the Storage API emulator, which adds a latency to each
// request and handles a limited number of requests of one project at once.
// It runs the operator binary as its own process with the permissions of
// its ServiceAccount. In one run it measures:
//
//  1. convergence: how long N KeboolaWebhooks across P projects take to
//     become Ready, against the floor that the emulator's limits set;
//  2. steady state: Storage API calls per project and resync period, and
//     Kubernetes writes while nothing changes;
//  3. memory: the operator's peak RSS, before and after creating unrelated
//     Secrets in the cluster;
//  4. latency: the time from applying one more KeboolaWebhook to its
//     signing Secret being written while the others sit idle.
//
// It prints one table and writes the same figures as JSON. docs/performance.md
// defines each figure. Every server listens on loopback only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line flags.
type config struct {
	assets string
	output string

	webhooks int
	projects int
	secrets  int
	// secretSize is the number of data bytes of each unrelated Secret.
	secretSize int

	latency       time.Duration
	maxConcurrent int

	resyncPeriod   time.Duration
	steadyPeriods  int
	latencySamples int
	// createWorkers is the number of goroutines that create objects.
	createWorkers int

	convergeTimeout time.Duration
	operatorArgs    string
	keepLogs        bool
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{cfg: cfg, out: os.Stdout, started: time.Now()}
	runErr := b.run(ctx)
	closeErr := b.close()

	if runErr != nil {
		fmt.Fprintf(os.Stderr, "\nbench failed: %v\n", runErr)
		b.printLogTails()
		return 1
	}
	if closeErr != nil {
		fmt.Fprintf(os.Stderr, "\ncleanup failed: %v\n", closeErr)
		return 1
	}
	return 0
}

func parseFlags(args []string) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.StringVar(&cfg.assets, "assets", "", "`directory` with the kube-apiserver, etcd and kubectl binaries, such as bin/k8s/1.37.2")
	flags.StringVar(&cfg.output, "output", "bench-results/latest.json", "`path` of the JSON results; its directory is created")
	flags.IntVar(&cfg.webhooks, "webhooks", 1000, "`number` of KeboolaWebhooks, spread evenly over the projects")
	flags.IntVar(&cfg.projects, "projects", 10, "`number` of KeboolaProjects, each with its own emulated Keboola project and token")
	flags.IntVar(&cfg.secrets, "secrets", 20000, "`number` of unrelated Secrets created for the memory figure")
	flags.IntVar(&cfg.secretSize, "secret-size", 1024, "data `bytes` of each unrelated Secret")
	flags.DurationVar(&cfg.latency, "latency", 20*time.Millisecond, "`delay` the emulator adds to every Storage API request")
	flags.IntVar(&cfg.maxConcurrent, "max-concurrent-per-project", 2, "`number` of Storage API requests of one project that the emulator handles at once; more wait in line")
	flags.DurationVar(&cfg.resyncPeriod, "resync-period", 20*time.Second, "the operator's --resync-period")
	flags.IntVar(&cfg.steadyPeriods, "steady-periods", 3, "length of the steady-state window, in resync periods")
	flags.IntVar(&cfg.latencySamples, "latency-samples", 5, "`number` of single KeboolaWebhooks applied one after another for the latency figure")
	flags.IntVar(&cfg.createWorkers, "create-workers", 32, "`number` of goroutines that create objects through the Kubernetes API")
	flags.DurationVar(&cfg.convergeTimeout, "converge-timeout", 20*time.Minute, "how long to wait for all KeboolaWebhooks to become Ready")
	flags.StringVar(&cfg.operatorArgs, "operator-args", "", "extra `flags` for the operator, separated by spaces, such as \"--max-concurrent-reconciles=16 --api-qps=200\"")
	flags.BoolVar(&cfg.keepLogs, "keep-logs", false, "keep the component logs when the bench exits")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	if flags.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: all settings are flags", flags.Args())
	}

	switch {
	case cfg.assets == "":
		return cfg, errors.New("--assets is required: run \"make bench\", or pass the directory that \"make controlplane\" builds, such as bin/k8s/1.37.2")
	case cfg.webhooks < 1:
		return cfg, fmt.Errorf("invalid -webhooks %d: it must be 1 or more", cfg.webhooks)
	case cfg.projects < 1 || cfg.projects > cfg.webhooks:
		return cfg, fmt.Errorf("invalid -projects %d: it must be between 1 and the number of webhooks, %d", cfg.projects, cfg.webhooks)
	case cfg.secrets < 0 || cfg.secretSize < 0:
		return cfg, errors.New("invalid -secrets or -secret-size: both must be 0 or more")
	case cfg.latency <= 0:
		return cfg, fmt.Errorf("invalid -latency %s: it must be more than 0, because the convergence floor is a multiple of it", cfg.latency)
	case cfg.maxConcurrent < 1:
		return cfg, fmt.Errorf("invalid -max-concurrent-per-project %d: it must be 1 or more, because the convergence floor divides by it", cfg.maxConcurrent)
	case cfg.resyncPeriod < 5*time.Second:
		return cfg, fmt.Errorf("invalid -resync-period %s: it must be at least 5s", cfg.resyncPeriod)
	case cfg.steadyPeriods < 1 || cfg.latencySamples < 1 || cfg.createWorkers < 1:
		return cfg, errors.New("invalid -steady-periods, -latency-samples or -create-workers: each must be 1 or more")
	}
	return cfg, nil
}

// operatorFlags returns the flags the bench passes to the operator: the
// resync period and -operator-args.
func (c config) operatorFlags() []string {
	flags := []string{"--resync-period=" + c.resyncPeriod.String()}
	return append(flags, strings.Fields(c.operatorArgs)...)
}
