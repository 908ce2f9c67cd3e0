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
// The emulator and the receiver listen on the ports of config/samples,
// 127.0.0.1:8765 and 127.0.0.1:8766. Each component logs to a file in a
// temporary directory. On exit, also after a failure or Ctrl-C, the demo
// stops every process it started and removes the directory.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// tailLines is how many lines of a log file a failure prints.
const tailLines = 30

// namespace is where the samples are applied.
const namespace = "default"

// fireEvent is the event the demo fires; the sample webhook subscribes to
// it.
const fireEvent = "storage.jobSucceeded"

type config struct {
	assets       string
	emulatorPort int
	receiverPort int
	readyTimeout time.Duration
	keepLogs     bool
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
	var cfg config
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.StringVar(&cfg.assets, "assets", "", "`directory` with the kube-apiserver, etcd and kubectl binaries, such as bin/k8s/1.37.2")
	flags.IntVar(&cfg.emulatorPort, "emulator-port", 8765, "loopback `port` of the Storage API emulator; another port than the one in config/samples is written into the applied KeboolaProject")
	flags.IntVar(&cfg.receiverPort, "receiver-port", 8766, "loopback `port` of the webhook receiver; another port than the one in config/samples is written into the applied KeboolaWebhook")
	flags.DurationVar(&cfg.readyTimeout, "ready-timeout", 120*time.Second, "how long to wait for the samples to become Ready")
	flags.BoolVar(&cfg.keepLogs, "keep-logs", false, "keep the log files when the demo exits")
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

	steps := []struct {
		title string
		// logs are the components whose log tails a failure prints.
		logs []string
		fn   func(context.Context) (string, error)
	}{
		{"Checking that ports " + d.emulatorAddress + " and " + d.receiverAddress + " are free", nil, d.checkPorts},
		{"Creating the work directory", nil, d.createEnv},
		{"Reading " + localenv.SamplesDir, nil, d.readSamples},
		{"Building the operator, the emulator and the receiver", nil, d.build},
		{"Starting the control plane (etcd, kube-apiserver)", []string{"kube-apiserver", "etcd"}, d.startControlPlane},
		{"Applying the CRDs and the operator's RBAC from config/default", []string{"kube-apiserver"}, d.installOperatorManifests},
		{"Starting the Storage API emulator on " + d.emulatorAddress, []string{"emulator"}, d.startEmulator},
		{"Starting the webhook receiver on " + d.receiverAddress, []string{"receiver"}, d.startReceiver},
		{"Starting the operator", []string{"operator"}, d.startOperator},
		{"Applying " + localenv.SamplesDir, []string{"operator"}, d.applySamples},
		{"Waiting for the samples to become Ready", []string{"operator", "emulator"}, d.waitReady},
		{"Showing the signing Secret (keys and sizes, no values)", []string{"operator"}, d.showSecret},
		{"Writing the signing secret to the receiver's secret file", nil, d.mountSecret},
		{"Firing " + fireEvent + " through the emulator", []string{"emulator", "receiver"}, d.fire},
		{"Sending a delivery signed with a wrong secret to the receiver", []string{"receiver"}, d.sendForged},
		{"Deleting the samples", []string{"operator", "emulator"}, d.deleteSamples},
	}
	for _, s := range steps {
		if err := d.step(ctx, s.title, s.logs, s.fn); err != nil {
			return err
		}
	}
	return nil
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

func (d *demo) checkPorts(context.Context) (string, error) {
	hints := map[string]string{
		d.emulatorAddress: "stop the other demo or the program that listens there, or choose another port with --emulator-port",
		d.receiverAddress: "stop the other demo or the program that listens there, or choose another port with --receiver-port",
	}
	for _, address := range []string{d.emulatorAddress, d.receiverAddress} {
		if err := localenv.CheckPortFree(address, hints[address]); err != nil {
			return "", err
		}
	}
	return "", nil
}

func (d *demo) createEnv(context.Context) (string, error) {
	env, err := localenv.New(localenv.Options{AssetsDir: d.cfg.assets, Name: "demo", Version: "demo", KeepLogs: d.cfg.keepLogs})
	if err != nil {
		return "", err
	}
	d.env = env
	d.secretFile = filepath.Join(env.Dir, "receiver", "signingSecret")
	return fmt.Sprintf("Work directory: %s\nLogs:           %s/{kube-apiserver,etcd,emulator,receiver,operator}.log", env.Dir, env.LogDir), nil
}

func (d *demo) readSamples(ctx context.Context) (string, error) {
	samples, err := d.env.RenderSamples(ctx)
	if err != nil {
		return "", err
	}
	d.samples = samples

	webhookURL, err := url.Parse(samples.WebhookURL)
	if err != nil {
		return "", fmt.Errorf("invalid spec.url %q of KeboolaWebhook %q: %w", samples.WebhookURL, samples.WebhookName, err)
	}
	d.receiverURL = "http://" + d.receiverAddress + webhookURL.Path
	return fmt.Sprintf("KeboolaProject %q (project %d), KeboolaWebhook %q, Secret %q",
		samples.ProjectName, samples.ProjectID, samples.WebhookName, samples.SecretName), nil
}

func (d *demo) build(ctx context.Context) (string, error) {
	bins, err := d.env.Build(ctx)
	if err != nil {
		return "", err
	}
	d.bins = bins
	return "", nil
}

func (d *demo) startControlPlane(ctx context.Context) (string, error) {
	if err := d.env.StartControlPlane(ctx); err != nil {
		return "", err
	}
	return "Admin kubeconfig: " + d.env.AdminKubeconfig, nil
}

// installOperatorManifests applies config/default without the Deployment
// and the metrics Service: the operator runs as a local process instead,
// and a control plane without nodes would never run the Deployment's Pod.
// config/default, and not config/rbac alone, gives the RBAC objects the
// namespace and name prefix of a real installation.
func (d *demo) installOperatorManifests(ctx context.Context) (string, error) {
	installation, err := d.env.InstallOperator(ctx)
	if err != nil {
		return "", err
	}
	d.operatorKubeconfig = installation.Kubeconfig

	var out strings.Builder
	out.WriteString(installation.Output)
	fmt.Fprintf(&out, "Left out, because the operator runs as a local process: %s\n", strings.Join(installation.Manifests.Skipped, ", "))
	fmt.Fprintf(&out, "Operator kubeconfig, impersonating ServiceAccount %s: %s", installation.Manifests.ServiceAccount, installation.Kubeconfig)
	return out.String(), nil
}

func (d *demo) startEmulator(ctx context.Context) (string, error) {
	emulator, err := d.env.StartEmulator(ctx, d.bins, d.emulatorAddress, d.samples.ProjectID, d.samples.Token)
	if err != nil {
		return "", err
	}
	d.emulator = emulator
	return fmt.Sprintf("Project %d accepts the token of the sample Secret; admin API: http://%s/_emulator/", d.samples.ProjectID, d.emulatorAddress), nil
}

func (d *demo) startReceiver(ctx context.Context) (string, error) {
	webhookURL, err := url.Parse(d.receiverURL)
	if err != nil {
		return "", err
	}
	if err := d.env.StartReceiver(ctx, d.bins, d.receiverAddress, webhookURL.Path, d.secretFile); err != nil {
		return "", err
	}
	return fmt.Sprintf("Receives %s; reads the signing secret from %s", d.receiverURL, d.secretFile), nil
}

func (d *demo) startOperator(ctx context.Context) (string, error) {
	_, healthURL, err := d.env.StartOperator(ctx, d.bins, d.operatorKubeconfig, "--resync-period=30s")
	if err != nil {
		return "", err
	}
	return "Health endpoint: " + healthURL, nil
}

// applySamples applies config/samples unchanged when the emulator and the
// receiver listen on the sample ports, and a copy pointed at the other
// ports otherwise.
func (d *demo) applySamples(ctx context.Context) (string, error) {
	stackURL := "http://" + d.emulatorAddress
	if d.samples.StackURL == stackURL && d.samples.WebhookURL == d.receiverURL {
		return d.env.Kubectl(ctx, nil, "apply", "-k", localenv.SamplesDir, "-n", namespace)
	}
	if err := localenv.SetEndpoints(d.samples.Objects, stackURL, d.receiverAddress); err != nil {
		return "", err
	}
	return d.env.Apply(ctx, d.samples.Objects, "-n", namespace)
}

func (d *demo) waitReady(ctx context.Context) (string, error) {
	project := "keboolaproject/" + d.samples.ProjectName
	hook := "keboolawebhook/" + d.samples.WebhookName
	_, err := d.env.Kubectl(ctx, nil, "wait", "--for=condition=Ready", project, hook,
		"-n", namespace, "--timeout="+d.cfg.readyTimeout.String())
	if err != nil {
		// Show the conditions, which give the reason an object is not Ready.
		status, _ := d.env.Kubectl(ctx, nil, "get", project, hook, "-n", namespace, "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.name}:{"\n"}{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\n"}{end}{end}`)
		return "", fmt.Errorf("%w\nConditions:\n%s", err, status)
	}
	return d.env.Kubectl(ctx, nil, "get", "kbp,kbwh", "-n", namespace)
}

// showSecret prints the keys and annotations of the Secret the operator
// wrote. "kubectl describe" prints the size of each value, never the value.
func (d *demo) showSecret(ctx context.Context) (string, error) {
	return d.env.Kubectl(ctx, nil, "describe", "secret", d.samples.SecretName, "-n", namespace)
}

// mountSecret writes the Secret's signingSecret into the receiver's secret
// file the way the kubelet updates a mounted Secret.
func (d *demo) mountSecret(ctx context.Context) (string, error) {
	secret, err := d.signingSecret(ctx)
	if err != nil {
		return "", err
	}
	return "", localenv.WriteSecretFile(d.secretFile, secret)
}

// signingSecret returns the value of the key signingSecret of the webhook's
// Secret.
func (d *demo) signingSecret(ctx context.Context) ([]byte, error) {
	encoded, err := d.env.Kubectl(ctx, nil, "get", "secret", d.samples.SecretName, "-n", namespace, "-o", "jsonpath={.data.signingSecret}")
	if err != nil {
		return nil, err
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, fmt.Errorf("invalid base64 under signingSecret of Secret %q: %w", d.samples.SecretName, err)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("the Secret %q has no signingSecret", d.samples.SecretName)
	}
	return secret, nil
}

func (d *demo) fire(ctx context.Context) (string, error) {
	deliveries, err := d.emulator.Fire(ctx, d.samples.ProjectID, fireEvent, nil)
	if err != nil {
		return "", err
	}
	if len(deliveries) == 0 {
		return "", fmt.Errorf("the emulator delivered %s to no webhook of project %d", fireEvent, d.samples.ProjectID)
	}
	last := deliveries[len(deliveries)-1]
	if last.Status != 200 {
		return "", fmt.Errorf("the receiver responded to the delivery with status %d %s after %d attempts", last.Status, last.Error, len(deliveries))
	}

	id, err := deliveryID(last.Body)
	if err != nil {
		return "", err
	}
	line, ok := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery verified"`, "dataId="+id+" ")
	if !ok {
		return "", fmt.Errorf("the receiver responded with 200 but logged no verified delivery with data.id %s", id)
	}
	return fmt.Sprintf("Emulator: delivered to webhook %s, the receiver responded with %d\nReceiver: %s", last.WebhookID, last.Status, line), nil
}

// deliveryID returns data.id of a delivery body.
func deliveryID(body string) (string, error) {
	var payload struct {
		Data struct {
			ID any `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &payload); err != nil {
		return "", fmt.Errorf("invalid delivery body: %w", err)
	}
	return fmt.Sprint(payload.Data.ID), nil
}

func (d *demo) sendForged(ctx context.Context) (string, error) {
	id := fmt.Sprintf("forged-%d", time.Now().UnixNano())
	body := fmt.Appendf(nil, `{"event":%q,"data":{"id":%q},"createdTime":%q}`,
		fireEvent, id, time.Now().UTC().Format("2006-01-02T15:04:05-0700"))
	signature := webhook.Sign([]byte("not-the-signing-secret"), body)

	status, err := localenv.PostDelivery(ctx, d.receiverURL, body, signature)
	if err != nil {
		return "", err
	}
	if status != 401 {
		return "", fmt.Errorf("the receiver responded to a wrongly signed delivery with status %d, want 401", status)
	}
	line, _ := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery rejected"`, id)
	return fmt.Sprintf("The receiver responded with %d\nReceiver: %s", status, line), nil
}

func (d *demo) deleteSamples(ctx context.Context) (string, error) {
	deleted, err := d.env.Kubectl(ctx, nil, "delete", "-k", localenv.SamplesDir, "-n", namespace, "--timeout=90s")
	if err != nil {
		return "", err
	}
	webhooks, err := d.emulator.Webhooks(ctx, d.samples.ProjectID)
	if err != nil {
		return "", err
	}
	if len(webhooks) > 0 {
		return "", fmt.Errorf("project %d still has %d webhooks at the emulator, the first with id %s", d.samples.ProjectID, len(webhooks), webhooks[0].ID)
	}
	return deleted + fmt.Sprintf("Webhooks of project %d at the emulator: none", d.samples.ProjectID), nil
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
