// Command webhook-receiver is a reference receiver of Keboola webhook
// deliveries. It verifies each delivery with the secrets that the
// keboola-operator writes into a Secret, skips repeated deliveries of an
// event, and logs one line per delivery. It never logs a secret, a
// signature or the request URL.
//
// It accepts the deliveries of both Keboola backends without a setting:
// those of the Storage API's webhooks endpoint by their X-Kbc-Signature
// header, and those of the Notification service by the query parameter
// kbc_secret in the URL that the operator registers. When the header is
// present it decides, and otherwise the parameter does. The parameter
// must appear once. Register --path as the URL's path, because the
// receiver matches only the path.
//
// In a cluster, mount the whole Secret as a volume and pass its directory.
// The receiver then accepts both the current secret (key signingSecret) and,
// during a rotation, the previous one (key previousSigningSecret), and it
// follows the kubelet's updates of the volume without a restart:
//
//	webhook-receiver --listen=:8766 --secret-dir=/etc/keboola-webhook
//
// --secret-file reads only the current secret from one file, as the local
// demo does:
//
//	webhook-receiver --listen=127.0.0.1:8766 --secret-file=/tmp/demo/signingSecret
//
// Responses to deliveries:
//
//   - 200 for a valid signature or URL secret, also for a repeated delivery
//     of an event;
//   - 401 for a missing or wrong signature or URL secret, and for a
//     repeated or empty kbc_secret parameter;
//   - 413 for a body over 1 MiB;
//   - 400 for a verified body that is not a delivery;
//   - 503 while no secret is available.
//
// GET /healthz returns 200 while the process runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keboola/keboola-operator/pkg/webhook"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const (
	// maxBodyBytes is the largest delivery body accepted.
	maxBodyBytes = webhook.DefaultMaxBodyBytes
	// shutdownTimeout bounds the wait for requests in progress after a
	// signal.
	shutdownTimeout = 5 * time.Second
	// seenEvents and seenTTL size the set of events already processed.
	// Keboola retries a failed delivery for minutes, so a day covers every
	// retry of an event.
	seenEvents = 100_000
	seenTTL    = 24 * time.Hour
)

// errUsage reports invalid flags, which the flag package has already
// printed together with the usage.
var errUsage = errors.New("invalid flags")

type config struct {
	listen      string
	path        string
	secretFile  string
	secretDir   string
	showVersion bool
}

func main() {
	err := run(os.Args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "webhook-receiver:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if cfg.showVersion {
		fmt.Println(version)
		return nil
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	secrets, source := cfg.secretSource()
	if _, err := secrets.Secrets(); err != nil {
		// The Secret may not exist yet: the operator writes it once the
		// webhook is created. Deliveries get 503 until then.
		logger.Warn("Signing secret not available yet; deliveries get 503 until it is", "source", source, "error", err)
	}

	mux := newMux(cfg.path, newReceiver(secrets, logger))

	listener, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", cfg.listen, err)
	}
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Keboola gives up on an attempt after 30 seconds.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  60 * time.Second,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("Listening", "version", version, "address", listener.Addr().String(), "path", cfg.path, "source", source)

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-served:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}

	logger.Info("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("failed to shut down within %s: %w", shutdownTimeout, err)
	}
	logger.Info("Stopped")
	return nil
}

func parseFlags(args []string) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	flags.StringVar(&cfg.listen, "listen", "127.0.0.1:8766", "`address` to listen on, such as :8766 for every interface")
	flags.StringVar(&cfg.path, "path", "/webhook", "URL `path` that receives deliveries, without the query string that carries kbc_secret")
	flags.StringVar(&cfg.secretFile, "secret-file", "/etc/keboola-webhook/signingSecret",
		"`file` containing the webhook's signing secret, which verifies both the X-Kbc-Signature header and the kbc_secret query parameter; read again whenever it is replaced; leading and trailing white space is ignored. Set either this or --secret-dir")
	flags.StringVar(&cfg.secretDir, "secret-dir", "",
		"`directory` in which the webhook's Secret is mounted as a volume; the receiver accepts the secrets in its files signingSecret and, during a rotation, previousSigningSecret, and follows the kubelet's updates")
	flags.BoolVar(&cfg.showVersion, "version", false, "print the version and exit")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	if flags.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: all settings are flags", flags.Args())
	}
	if len(cfg.path) == 0 || cfg.path[0] != '/' {
		return cfg, fmt.Errorf("invalid --path %q: it must start with /", cfg.path)
	}
	secretFileSet := false
	flags.Visit(func(f *flag.Flag) { secretFileSet = secretFileSet || f.Name == "secret-file" })
	if secretFileSet && cfg.secretDir != "" {
		return cfg, errors.New("--secret-file and --secret-dir are both set: set only one")
	}
	if cfg.secretDir == "" && cfg.secretFile == "" {
		return cfg, errors.New("--secret-file is empty: set the file that contains the signing secret, or --secret-dir")
	}
	return cfg, nil
}

// secretSource returns the source of the accepted secrets and its
// description for the log.
func (cfg config) secretSource() (webhook.SecretSource, string) {
	if cfg.secretDir != "" {
		return webhook.NewSecretDir(cfg.secretDir), "directory " + cfg.secretDir
	}
	return webhook.NewSecretFile(cfg.secretFile), "file " + cfg.secretFile
}

// newMux routes POST requests to path, whatever their query string, to
// receiver, and serves GET /healthz.
func newMux(path string, receiver http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST "+path, receiver)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// newReceiver returns the handler of deliveries: the webhook package's
// Middleware and Deduplicator around a handler that logs each event.
func newReceiver(secrets webhook.SecretSource, logger *slog.Logger) http.Handler {
	verify := &webhook.Middleware{
		Secrets:      secrets,
		MaxBodyBytes: maxBodyBytes,
		OnReject:     func(r *http.Request, rejection webhook.Rejection) { logRejection(logger, r, rejection) },
	}
	dedupe := &webhook.Deduplicator{
		Seen: webhook.NewMemorySeenSet(seenEvents, seenTTL),
		OnDuplicate: func(_ *http.Request, d *webhook.Delivery) {
			logger.Info("Duplicate delivery skipped", "event", d.Event.Event, "dataId", deliveryID(d.Event))
		},
		OnError: func(r *http.Request, err error) {
			logger.Error("Failed to record the event as seen", "remoteAddress", r.RemoteAddr, "error", err)
		},
	}
	return verify.Wrap(dedupe.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.DeliveryFromContext(r.Context())
		logger.Info("Delivery verified", "event", d.Event.Event, "dataId", deliveryID(d.Event),
			"status", deliveryStatus(d.Event), "secret", secretName(d.SecretIndex), "proof", string(d.Proof), "bytes", len(d.Body))
		w.WriteHeader(http.StatusOK)
	})))
}

// deliveryID returns data.id of a delivery, or data.job.id for one from the
// Notification service, which has no data.id.
func deliveryID(e webhook.Event) string {
	if e.Data.ID != "" {
		return string(e.Data.ID)
	}
	return string(e.Data.Job.ID)
}

// deliveryStatus returns data.status of a delivery, or data.job.status for
// one from the Notification service.
func deliveryStatus(e webhook.Event) string {
	if e.Data.Status != "" {
		return e.Data.Status
	}
	return e.Data.Job.Status
}

// secretName names the secret that a delivery's proof matched, for the log.
func secretName(index int) string {
	if index == 0 {
		return "current"
	}
	return "previous"
}

// logRejection logs why a request was rejected. The event and data.id of an
// unverified body are logged for diagnosis only, because anyone can send
// them.
func logRejection(logger *slog.Logger, r *http.Request, rejection webhook.Rejection) {
	attrs := []any{"reason", rejection.Err.Error(), "status", rejection.Status, "remoteAddress", r.RemoteAddr}
	if rejection.Body != nil {
		if event, err := webhook.ParseEvent(rejection.Body); err == nil {
			attrs = append(attrs, "unverifiedEvent", truncate(event.Event), "unverifiedDataId", truncate(string(event.Data.ID)))
		}
	}
	if rejection.Status == http.StatusServiceUnavailable {
		logger.Error("Delivery rejected", attrs...)
		return
	}
	logger.Warn("Delivery rejected", attrs...)
}

// truncate shortens untrusted text for a log line.
func truncate(s string) string {
	const maxLen = 128
	if len(s) > maxLen {
		return s[:maxLen] + "..."
	}
	return s
}
