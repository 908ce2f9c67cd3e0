package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/keboola/keboola-operator/internal/localenv"
)

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
	emulator, err := d.env.StartEmulator(ctx, d.bins, d.emulatorAddress, d.samples.ProjectID, d.samples.Token, d.cfg.webhookAPI.emulatorArgs()...)
	if err != nil {
		return "", err
	}
	d.emulator = emulator
	details := fmt.Sprintf("Project %d accepts the token of the sample Secret; request counts: http://%s/_emulator/stats", d.samples.ProjectID, d.emulatorAddress)
	if d.cfg.webhookAPI == notificationAPI {
		details += fmt.Sprintf("\nNotification service: http://%s/notification; requests to /v2/storage/webhooks get 404", d.emulatorAddress)
	}
	return details, nil
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
// receiver listen on the sample ports and the demo shows the webhooks
// endpoint. Otherwise it applies a copy pointed at the other ports, and for
// the Notification service with the KeboolaWebhook's events set to
// notificationEvents. The KeboolaProject has no spec.webhookAPI in either
// case, so the operator detects the webhook API.
func (d *demo) applySamples(ctx context.Context) (string, error) {
	stackURL := "http://" + d.emulatorAddress
	samePorts := d.samples.StackURL == stackURL && d.samples.WebhookURL == d.receiverURL
	if samePorts && d.cfg.webhookAPI == webhooksAPI {
		return d.env.Kubectl(ctx, nil, "apply", "-k", localenv.SamplesDir, "-n", namespace)
	}
	if err := localenv.SetEndpoints(d.samples.Objects, stackURL, d.receiverAddress); err != nil {
		return "", err
	}
	if d.cfg.webhookAPI == notificationAPI {
		if err := localenv.SetWebhookEvents(d.samples.Objects, notificationEvents); err != nil {
			return "", err
		}
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
	subscriptions, err := d.emulator.Subscriptions(ctx, d.samples.ProjectID)
	if err != nil {
		return "", err
	}
	if len(subscriptions) > 0 {
		return "", fmt.Errorf("project %d still has %d subscriptions at the emulator, the first with id %s and event %s",
			d.samples.ProjectID, len(subscriptions), subscriptions[0].ID, subscriptions[0].Event)
	}
	return deleted + fmt.Sprintf("Webhooks of project %d at the emulator: none\nSubscriptions of project %d at the emulator: none",
		d.samples.ProjectID, d.samples.ProjectID), nil
}
