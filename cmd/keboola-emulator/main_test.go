package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.listen != "127.0.0.1:8765" {
		t.Errorf("listen = %q, expected 127.0.0.1:8765", cfg.listen)
	}
	if !cfg.allowHTTPLoopback || !cfg.normalize {
		t.Errorf("allowHTTPLoopback = %v, normalize = %v, expected both true", cfg.allowHTTPLoopback, cfg.normalize)
	}
	if cfg.deliveryBackoff != time.Second || cfg.deliveryRetries != 3 || cfg.deliveryTimeout != 30*time.Second {
		t.Errorf("delivery settings = %s, %d, %s", cfg.deliveryBackoff, cfg.deliveryRetries, cfg.deliveryTimeout)
	}
	if cfg.backends != emulator.BackendsBoth {
		t.Errorf("backends = %s, expected both", cfg.backends)
	}
}

func TestParseFlagsWebhookAPI(t *testing.T) {
	cases := map[string]emulator.Backends{
		"webhooks":     emulator.BackendsWebhooks,
		"notification": emulator.BackendsNotification,
		"both":         emulator.BackendsBoth,
	}
	for value, expected := range cases {
		cfg, err := parseFlags([]string{"--webhook-api=" + value})
		if err != nil {
			t.Fatalf("parseFlags(--webhook-api=%s) failed: %v", value, err)
		}
		if cfg.backends != expected {
			t.Errorf("--webhook-api=%s gave backends %s, expected %s", value, cfg.backends, expected)
		}
	}
}

func TestParseFlagsLatencyAndLimit(t *testing.T) {
	cfg, err := parseFlags([]string{"--latency=20ms", "--max-concurrent-per-project=4"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.latency != 20*time.Millisecond {
		t.Errorf("latency = %s, expected 20ms", cfg.latency)
	}
	if cfg.maxConcurrent != 4 {
		t.Errorf("maxConcurrent = %d, expected 4", cfg.maxConcurrent)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	cases := map[string][]string{
		"token and token file": {"--token=a", "--token-file=b"},
		"unknown flag":         {"--nope"},
		"positional argument":  {"extra"},
		"negative limit":       {"--max-concurrent-per-project=-1"},
		"negative latency":     {"--latency=-1s"},
		"unknown webhook API":  {"--webhook-api=storage"},
		"empty webhook API":    {"--webhook-api="},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseFlags(args); err == nil {
				t.Errorf("parseFlags(%q) succeeded, expected an error", args)
			}
		})
	}

	if _, err := parseFlags([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseFlags(-h) error = %v, expected flag.ErrHelp", err)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  demo-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if token, err := readToken(config{tokenFile: file}); err != nil || token != "demo-token" {
		t.Errorf("readToken(file) = %q, %v; expected demo-token", token, err)
	}
	if token, err := readToken(config{token: "flag-token"}); err != nil || token != "flag-token" {
		t.Errorf("readToken(flag) = %q, %v; expected flag-token", token, err)
	}
	if token, err := readToken(config{}); err != nil || token != "" {
		t.Errorf("readToken() = %q, %v; expected no token", token, err)
	}
	if _, err := readToken(config{tokenFile: empty}); err == nil {
		t.Errorf("readToken(empty file) succeeded, expected an error")
	}
	if _, err := readToken(config{tokenFile: filepath.Join(dir, "missing")}); err == nil {
		t.Errorf("readToken(missing file) succeeded, expected an error")
	}
}
