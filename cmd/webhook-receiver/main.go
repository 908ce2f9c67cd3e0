// Command webhook-receiver is a reference receiver of Keboola webhook
// deliveries. It verifies the X-Kbc-Signature header of each delivery with
// the signing secret that the keboola-operator writes into a Secret, and
// logs one line per delivery.
//
// In a cluster, mount the Secret's key "signingSecret" as a file and pass
// its path. The receiver reads the file again when the kubelet replaces it,
// so a rotated secret takes effect without a restart:
//
//	webhook-receiver --listen=:8766 --secret-file=/etc/keboola-webhook/signingSecret
//
// It responds with 200 to a delivery with a valid signature, 401 to one with
// a missing or wrong signature, 413 to a body over 1 MiB, 400 to a verified
// body that is not a JSON object, and 503 while the secret file is missing
// or empty. GET /healthz returns 200 while the process runs.
package main

import (
	"context"
	"encoding/json"
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
	maxBodyBytes = 1 << 20
	// shutdownTimeout bounds the wait for requests in progress after a
	// signal.
	shutdownTimeout = 5 * time.Second
)

// errUsage reports invalid flags, which the flag package has already
// printed together with the usage.
var errUsage = errors.New("invalid flags")

type config struct {
	listen      string
	path        string
	secretFile  string
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
	secrets := webhook.NewSecretFile(cfg.secretFile)
	if _, err := secrets.Secret(); err != nil {
		// The Secret may not exist yet: the operator writes it once the
		// webhook is created. Deliveries get 503 until then.
		logger.Warn("Signing secret not available yet; deliveries get 503 until it is", "secretFile", cfg.secretFile, "error", err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST "+cfg.path, &receiver{secrets: secrets, log: logger})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})

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
	logger.Info("Listening", "version", version, "address", listener.Addr().String(), "path", cfg.path, "secretFile", cfg.secretFile)

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
	flags.StringVar(&cfg.path, "path", "/webhook", "URL `path` that receives deliveries")
	flags.StringVar(&cfg.secretFile, "secret-file", "/etc/keboola-webhook/signingSecret",
		"`file` containing the webhook's signing secret, read again whenever it is replaced; leading and trailing white space is ignored")
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
	if cfg.secretFile == "" {
		return cfg, errors.New("--secret-file is empty: set the file that contains the signing secret")
	}
	return cfg, nil
}

// receiver handles deliveries.
type receiver struct {
	secrets *webhook.SecretFile
	log     *slog.Logger
}

// delivery contains the fields of a delivery body that the receiver logs.
type delivery struct {
	Event string `json:"event"`
	Data  struct {
		ID json.RawMessage `json:"id"`
	} `json:"data"`
}

func (h *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.reject(w, r, http.StatusRequestEntityTooLarge, "body larger than 1 MiB", nil)
			return
		}
		h.reject(w, r, http.StatusBadRequest, "failed to read the body", nil)
		return
	}

	secret, err := h.secrets.Secret()
	if err != nil {
		h.log.Error("Delivery rejected: signing secret not available", "remoteAddress", r.RemoteAddr, "error", err)
		http.Error(w, "signing secret not available", http.StatusServiceUnavailable)
		return
	}

	signature := r.Header.Get(webhook.SignatureHeader)
	if signature == "" {
		h.reject(w, r, http.StatusUnauthorized, "missing signature", body)
		return
	}
	if !webhook.Verify(secret, body, signature) {
		h.reject(w, r, http.StatusUnauthorized, "invalid signature", body)
		return
	}

	var d delivery
	if err := json.Unmarshal(body, &d); err != nil {
		h.reject(w, r, http.StatusBadRequest, "signature valid but the body is not a JSON delivery", nil)
		return
	}
	h.log.Info("Delivery verified", "event", d.Event, "dataId", rawID(d.Data.ID), "bytes", len(body))
	w.WriteHeader(http.StatusOK)
}

// reject responds with status and logs the reason. The event and data.id of
// an unverified body are logged for diagnosis only, because anyone can send
// them.
func (h *receiver) reject(w http.ResponseWriter, r *http.Request, status int, reason string, body []byte) {
	attrs := []any{"reason", reason, "status", status, "remoteAddress", r.RemoteAddr}
	var d delivery
	if body != nil && json.Unmarshal(body, &d) == nil {
		attrs = append(attrs, "unverifiedEvent", truncate(d.Event), "unverifiedDataId", truncate(rawID(d.Data.ID)))
	}
	h.log.Warn("Delivery rejected", attrs...)
	http.Error(w, http.StatusText(status), status)
}

// rawID formats a JSON id, which Keboola sends as a string or a number.
func rawID(raw json.RawMessage) string {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text
	}
	return string(raw)
}

// truncate shortens untrusted text for a log line.
func truncate(s string) string {
	const maxLen = 128
	if len(s) > maxLen {
		return s[:maxLen] + "..."
	}
	return s
}
