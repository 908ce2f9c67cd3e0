// Command demo runs the keboola-operator end to end on this machine, the
// way "make demo" does:
//
//	go run ./hack/demo --assets bin/k8s/1.37.2
//
// It starts a local control plane (etcd and kube-apiserver, no nodes),
// installs the CRDs and the operator's RBAC with kubectl, and runs the
// Storage API emulator, the reference webhook receiver and the operator as
// separate processes. The operator impersonates its ServiceAccount, so it
// has exactly the permissions of config/rbac. The demo then applies
// config/samples, waits until the KeboolaProject and the KeboolaWebhook are
// Ready, hands the webhook's signing secret to the receiver as a mounted
// Secret would, fires an event, sends a forged delivery, and deletes the
// samples again.
//
// --webhook-api selects the Keboola webhook API that the run shows.
// "webhooks", the default, is the webhooks endpoint of the Storage API,
// whose deliveries carry an X-Kbc-Signature header. With "notification" the
// emulator serves only the Notification service: the operator detects it,
// the sample KeboolaWebhook subscribes to the Notification events
// job-failed and job-succeeded, and the receiver checks the secret in the
// query parameter kbc_secret of each delivery.
//
// The emulator and the receiver listen on the ports of config/samples,
// 127.0.0.1:8765 and 127.0.0.1:8766. Each component logs to a file in a
// temporary directory. On exit, also after a failure or Ctrl-C, the demo
// stops every process it started and removes the directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keboola/keboola-operator/internal/localenv"
)

// tailLines is how many lines of a log file a failure prints.
const tailLines = 30

// namespace is where the samples are applied.
const namespace = "default"

type config struct {
	assets       string
	emulatorPort int
	receiverPort int
	readyTimeout time.Duration
	keepLogs     bool
	webhookAPI   webhookAPI
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
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C ends the demo at once. On Linux the kernel then
		// sends SIGTERM to the emulator, the receiver and the operator, but
		// etcd and kube-apiserver keep running.
		stop()
	}()

	d := &demo{cfg: cfg, out: os.Stdout}
	runErr := d.run(ctx)

	cleanupErr := d.cleanup()
	if runErr == nil && cleanupErr == nil {
		fmt.Fprintln(d.out, "Demo finished.")
		return 0
	}

	if runErr != nil {
		d.report(runErr)
	}
	if cleanupErr != nil {
		fmt.Fprintf(os.Stderr, "\nCleanup failed: %v\n", cleanupErr)
	}
	if ctx.Err() != nil {
		return 130
	}
	return 1
}

func parseFlags(args []string) (config, error) {
	cfg := config{webhookAPI: webhooksAPI}
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.StringVar(&cfg.assets, "assets", "", "`directory` with the kube-apiserver, etcd and kubectl binaries, such as bin/k8s/1.37.2")
	flags.IntVar(&cfg.emulatorPort, "emulator-port", 8765, "loopback `port` of the Storage API emulator; another port than the one in config/samples is written into the applied KeboolaProject")
	flags.IntVar(&cfg.receiverPort, "receiver-port", 8766, "loopback `port` of the webhook receiver; another port than the one in config/samples is written into the applied KeboolaWebhook")
	flags.DurationVar(&cfg.readyTimeout, "ready-timeout", 120*time.Second, "how long to wait for the samples to become Ready")
	flags.BoolVar(&cfg.keepLogs, "keep-logs", false, "keep the log files when the demo exits")
	flags.Var(&cfg.webhookAPI, "webhook-api", "Keboola webhook `API` to show: webhooks (the Storage API webhooks endpoint, deliveries signed with X-Kbc-Signature) "+
		"or notification (an emulator with only the Notification service, one subscription per event, the secret in the query parameter kbc_secret)")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	if flags.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: all settings are flags", flags.Args())
	}
	if cfg.assets == "" {
		return cfg, errors.New("--assets is required: run \"make demo\", or pass the directory that \"make controlplane\" builds, such as bin/k8s/1.37.2")
	}
	return cfg, nil
}

// demo is one run of the demo.
type demo struct {
	cfg config
	out io.Writer

	env      *localenv.Env
	bins     *localenv.Binaries
	samples  *localenv.Samples
	emulator *localenv.EmulatorClient

	emulatorAddress string
	receiverAddress string
	receiverURL     string
	// secretFile is the receiver's file with the signing secret, which
	// the demo writes as the kubelet writes a mounted Secret.
	secretFile string
	// operatorKubeconfig impersonates the operator's ServiceAccount.
	operatorKubeconfig string

	// failure holds the log tails of the failed step, read before cleanup
	// stops the processes.
	failure *stepFailure
}

// errInterrupted is the error of a step that a signal ended.
var errInterrupted = errors.New("interrupted")

// stepFailure describes a failed step.
type stepFailure struct {
	title string
	tails map[string]string
}

func (d *demo) run(ctx context.Context) error {
	d.emulatorAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.emulatorPort))
	d.receiverAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.receiverPort))

	for _, s := range d.steps() {
		if err := d.step(ctx, s.title, s.logs, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// demoStep is one step of the demo.
type demoStep struct {
	title string
	// logs are the components whose log tails a failure prints.
	logs []string
	fn   func(context.Context) (string, error)
}

// steps returns the steps of a run with the configured webhook API.
func (d *demo) steps() []demoStep {
	api := d.cfg.webhookAPI
	emulatorTitle := "Starting the Storage API emulator on " + d.emulatorAddress
	applyTitle := "Applying " + localenv.SamplesDir
	if api == notificationAPI {
		emulatorTitle = "Starting the Storage API emulator with only the Notification service on " + d.emulatorAddress
		applyTitle = fmt.Sprintf("Applying %s with the KeboolaWebhook's events set to %s", localenv.SamplesDir, strings.Join(notificationEvents, ", "))
	}

	steps := []demoStep{
		{"Checking that ports " + d.emulatorAddress + " and " + d.receiverAddress + " are free", nil, d.checkPorts},
		{"Creating the work directory", nil, d.createEnv},
		{"Reading " + localenv.SamplesDir, nil, d.readSamples},
		{"Building the operator, the emulator and the receiver", nil, d.build},
		{"Starting the control plane (etcd, kube-apiserver)", []string{"kube-apiserver", "etcd"}, d.startControlPlane},
		{"Applying the CRDs and the operator's RBAC from config/default", []string{"kube-apiserver"}, d.installOperatorManifests},
		{emulatorTitle, []string{"emulator"}, d.startEmulator},
		{"Starting the webhook receiver on " + d.receiverAddress, []string{"receiver"}, d.startReceiver},
		{"Starting the operator", []string{"operator"}, d.startOperator},
		{applyTitle, []string{"operator"}, d.applySamples},
		{"Waiting for the samples to become Ready", []string{"operator", "emulator"}, d.waitReady},
		{"Showing the webhook API that the operator chose", []string{"operator", "emulator"}, d.showWebhookAPI},
		{"Showing the signing Secret (keys and sizes, no values)", []string{"operator"}, d.showSecret},
		{"Writing the signing secret to the receiver's secret file", nil, d.mountSecret},
	}
	if api == notificationAPI {
		steps = append(steps,
			demoStep{"Firing " + notificationFireEvent + " through the emulator's Notification service", []string{"emulator", "receiver"}, d.fireNotification},
			demoStep{"Sending unsigned deliveries without and with a wrong kbc_secret to the receiver", []string{"receiver"}, d.sendForgedURLSecrets},
		)
	} else {
		steps = append(steps,
			demoStep{"Firing " + fireEvent + " through the emulator", []string{"emulator", "receiver"}, d.fire},
			demoStep{"Sending a delivery signed with a wrong secret to the receiver", []string{"receiver"}, d.sendForged},
		)
	}
	return append(steps, demoStep{"Deleting the samples", []string{"operator", "emulator"}, d.deleteSamples})
}

// step runs fn with a progress line, and prints the details that fn
// returns below it.
func (d *demo) step(ctx context.Context, title string, logs []string, fn func(context.Context) (string, error)) error {
	fmt.Fprintf(d.out, "==> %s ...", title)
	start := time.Now()
	details, err := fn(ctx)
	elapsed := seconds(time.Since(start))
	if err != nil {
		fmt.Fprintf(d.out, " failed (%s)\n", elapsed)
		if ctx.Err() != nil {
			// The step's own error, such as "signal: killed" of a
			// command, adds nothing.
			err = errInterrupted
		}
		d.failure = &stepFailure{title: title, tails: d.readTails(logs)}
		return err
	}
	fmt.Fprintf(d.out, " done (%s)\n", elapsed)
	if details != "" {
		fmt.Fprintln(d.out, indent(strings.TrimRight(details, "\n")))
	}
	return nil
}

func (d *demo) readTails(components []string) map[string]string {
	tails := map[string]string{}
	if d.env == nil {
		return tails
	}
	for _, c := range components {
		tails[d.env.LogPath(c)] = localenv.Tail(d.env.LogPath(c), tailLines)
	}
	return tails
}

// cleanup stops every process and removes the work directory. It is safe
// to call more than once.
func (d *demo) cleanup() error {
	if d.env == nil {
		return nil
	}
	fmt.Fprintf(d.out, "==> Stopping every process and removing %s ...", d.env.Dir)
	start := time.Now()
	err := d.env.Close()
	elapsed := seconds(time.Since(start))
	if err != nil {
		fmt.Fprintf(d.out, " failed (%s)\n", elapsed)
		return err
	}
	fmt.Fprintf(d.out, " done (%s)\n", elapsed)
	if d.cfg.keepLogs {
		fmt.Fprintf(d.out, "    Logs kept in %s\n", d.env.LogDir)
	}
	return nil
}

// report prints why the run failed, with the log tails of the failed step.
func (d *demo) report(err error) {
	fmt.Fprintln(os.Stderr)
	if d.failure == nil {
		fmt.Fprintf(os.Stderr, "Demo failed: %v\n", err)
		return
	}
	if errors.Is(err, errInterrupted) {
		fmt.Fprintf(os.Stderr, "Demo interrupted at %q.\n", d.failure.title)
		return
	}
	fmt.Fprintf(os.Stderr, "Demo failed at %q: %v\n", d.failure.title, err)
	paths := make([]string, 0, len(d.failure.tails))
	for path := range d.failure.tails {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		fmt.Fprintf(os.Stderr, "\n--- last %d lines of %s ---\n%s\n", tailLines, path, d.failure.tails[path])
	}
}

// indent indents every non-empty line of text by four spaces.
func indent(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if line != "" {
			lines[i] = "    " + line
		}
	}
	return strings.Join(lines, "\n")
}

// seconds formats d as seconds with one decimal, such as "3.2s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
