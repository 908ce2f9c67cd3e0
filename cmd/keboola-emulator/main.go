// Command keboola-emulator runs the Keboola Storage API emulator on a
// loopback port, for the local demo and for tests that run the operator as a
// separate process. It serves the Storage API under /v2/storage, the
// Notification service under /notification and the admin API under
// /_emulator/, which adds projects and tokens, fires events and injects
// faults. --webhook-api selects whether the webhooks endpoint, the
// Notification service or both are served.
//
// Usage:
//
//	keboola-emulator --token-file=demo-token.txt
//	curl -H "X-StorageApi-Token: $(cat demo-token.txt)" http://127.0.0.1:8765/v2/storage/tokens/verify
//	keboola-emulator --token-file=demo-token.txt --webhook-api=notification
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// shutdownTimeout bounds the wait for requests in progress after a signal.
const shutdownTimeout = 5 * time.Second

// config holds the command-line flags.
type config struct {
	listen            string
	projectID         int64
	projectName       string
	region            string
	tokenFile         string
	token             string
	tokenID           string
	allowHTTPLoopback bool
	normalize         bool
	deliveryTimeout   time.Duration
	deliveryRetries   int
	deliveryBackoff   time.Duration
	latency           time.Duration
	maxConcurrent     int
	debug             bool
	backends          emulator.Backends
}

// errUsage reports invalid flags, which the flag package has already
// printed together with the usage.
var errUsage = errors.New("invalid flags")

func main() {
	err := run(os.Args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "keboola-emulator:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}

	level := slog.LevelInfo
	if cfg.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	token, err := readToken(cfg)
	if err != nil {
		return err
	}

	server := emulator.New(emulator.Options{
		Backends:                cfg.backends,
		AllowHTTPLoopback:       cfg.allowHTTPLoopback,
		NormalizeWebhooks:       cfg.normalize,
		DeliveryTimeout:         cfg.deliveryTimeout,
		DeliveryRetries:         cfg.deliveryRetries,
		DeliveryBackoff:         cfg.deliveryBackoff,
		Latency:                 cfg.latency,
		MaxConcurrentPerProject: cfg.maxConcurrent,
		Logger:                  logger,
	})
	server.AddProject(emulator.Project{ID: cfg.projectID, Name: cfg.projectName, Region: cfg.region})
	if token != "" {
		server.AddToken(token, emulator.Token{
			ID:                cfg.tokenID,
			Description:       "Demo token",
			ProjectID:         cfg.projectID,
			CanManageWebhooks: true,
			MasterToken:       true,
		})
	}

	if err := server.Listen(cfg.listen); err != nil {
		return err
	}
	logger.Info("Listening", "url", server.URL(), "projectId", cfg.projectID, "projectName", cfg.projectName,
		"webhookApi", cfg.backends.String(), "allowHTTPLoopback", cfg.allowHTTPLoopback, "normalize", cfg.normalize,
		"latency", cfg.latency, "maxConcurrentPerProject", cfg.maxConcurrent)
	if token != "" {
		logger.Info("Added the demo token", "tokenId", cfg.tokenID, "projectId", cfg.projectID)
	} else {
		logger.Info("No demo token given: add tokens with POST /_emulator/tokens")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	stop()

	logger.Info("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		server.Close()
		return fmt.Errorf("failed to shut down within %s: %w", shutdownTimeout, err)
	}
	logger.Info("Stopped")
	return nil
}

func parseFlags(args []string) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("keboola-emulator", flag.ContinueOnError)
	flags.StringVar(&cfg.listen, "listen", "127.0.0.1:8765", "`address` to listen on; the host must be a loopback address or localhost")
	flags.Int64Var(&cfg.projectID, "project-id", 1, "`id` of the project that the demo token belongs to")
	flags.StringVar(&cfg.projectName, "project-name", "Demo", "`name` of the project")
	flags.StringVar(&cfg.region, "region", "us-east-1", "`region` of the project, as token verification reports it")
	flags.StringVar(&cfg.tokenFile, "token-file", "", "`file` containing the demo Storage API token; leading and trailing white space is ignored")
	flags.StringVar(&cfg.token, "token", "", "demo Storage API `token`; prefer --token-file, because other users can see command lines")
	flags.StringVar(&cfg.tokenID, "token-id", "1", "`id` of the demo token, which token verification reports and logs show")
	flags.BoolVar(&cfg.allowHTTPLoopback, "allow-http-loopback", true, "accept http:// webhook URLs for loopback hosts")
	flags.BoolVar(&cfg.normalize, "normalize", true, "store webhook events sorted and add a \"/\" path to URLs with an empty path")
	flags.DurationVar(&cfg.deliveryTimeout, "delivery-timeout", emulator.DefaultDeliveryTimeout, "`timeout` of each delivery attempt")
	flags.IntVar(&cfg.deliveryRetries, "delivery-retries", emulator.DefaultDeliveryRetries, "`number` of retries of a failed delivery; a negative number disables retries")
	flags.DurationVar(&cfg.deliveryBackoff, "delivery-backoff", emulator.DefaultDeliveryBackoff, "`wait` before the first retry of a delivery; it doubles for each further retry")
	flags.DurationVar(&cfg.latency, "latency", 0, "`delay` added to every Storage API request")
	flags.IntVar(&cfg.maxConcurrent, "max-concurrent-per-project", 0,
		"`number` of Storage API requests of one project handled at once; further requests wait in line. 0 means no limit")
	flags.BoolVar(&cfg.debug, "debug", false, "log every request to the Storage API and the Notification service")
	flags.TextVar(&cfg.backends, "webhook-api", emulator.BackendsBoth,
		"`backends` that let clients subscribe receivers to events: webhooks (only the Storage API endpoint /v2/storage/webhooks), "+
			"notification (only the Notification service under /notification, listed in the Storage API index /v2/storage; "+
			"webhooks requests get 404) or both")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	if flags.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: all settings are flags", flags.Args())
	}
	if cfg.maxConcurrent < 0 {
		return cfg, fmt.Errorf("invalid --max-concurrent-per-project %d: it must be 0 (no limit) or more", cfg.maxConcurrent)
	}
	if cfg.latency < 0 {
		return cfg, fmt.Errorf("invalid --latency %s: it must be 0 or more", cfg.latency)
	}
	if cfg.token != "" && cfg.tokenFile != "" {
		return cfg, errors.New("--token and --token-file are both set: use only one")
	}
	return cfg, nil
}

// readToken returns the demo token from --token-file or --token, or "" when
// neither is set.
func readToken(cfg config) (string, error) {
	if cfg.tokenFile == "" {
		return cfg.token, nil
	}
	data, err := os.ReadFile(cfg.tokenFile)
	if err != nil {
		return "", fmt.Errorf("failed to read the token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("the token file %q is empty", cfg.tokenFile)
	}
	return token, nil
}
