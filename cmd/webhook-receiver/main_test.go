package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keboola/keboola-operator/pkg/webhook"
)

const testBody = `{"event":"storage.jobSucceeded","data":{"id":"42","status":"success"},"createdTime":"2024-01-15T10:35:01+0000"}`

func TestReceiverResponses(t *testing.T) {
	secret := []byte("whsec-test")
	previous := []byte("whsec-previous")
	tests := map[string]struct {
		body       string
		signature  string
		query      string
		noSecret   bool
		wantStatus int
		wantLog    string
	}{
		"valid signature": {
			body: testBody, signature: webhook.Sign(secret, []byte(testBody)),
			wantStatus: http.StatusOK, wantLog: `msg="Delivery verified" event=storage.jobSucceeded dataId=42 status=success secret=current proof=signature`,
		},
		"signed with the previous secret": {
			body: testBody, signature: webhook.Sign(previous, []byte(testBody)),
			wantStatus: http.StatusOK, wantLog: `msg="Delivery verified" event=storage.jobSucceeded dataId=42 status=success secret=previous proof=signature`,
		},
		"URL secret is the current secret": {
			body: testBody, query: "kbc_secret=" + string(secret),
			wantStatus: http.StatusOK, wantLog: `msg="Delivery verified" event=storage.jobSucceeded dataId=42 status=success secret=current proof=url-secret`,
		},
		"URL secret is the previous secret": {
			body: testBody, query: "kbc_secret=" + string(previous),
			wantStatus: http.StatusOK, wantLog: `msg="Delivery verified" event=storage.jobSucceeded dataId=42 status=success secret=previous proof=url-secret`,
		},
		"wrong URL secret": {
			body: testBody, query: "kbc_secret=whsec-wrong",
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid URL secret" status=401`,
		},
		"repeated URL secret": {
			body: testBody, query: "kbc_secret=" + string(secret) + "&kbc_secret=" + string(secret),
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid URL secret: the query parameter kbc_secret appears 2 times, expected once"`,
		},
		"empty URL secret": {
			body: testBody, query: "kbc_secret=",
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid URL secret: the query parameter kbc_secret is empty"`,
		},
		"wrong signature and right URL secret": {
			body: testBody, signature: webhook.Sign([]byte("wrong"), []byte(testBody)), query: "kbc_secret=" + string(secret),
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid signature"`,
		},
		"missing signature": {
			body: testBody, signature: "",
			wantStatus: http.StatusUnauthorized, wantLog: `reason="missing signature or URL secret"`,
		},
		"wrong secret": {
			body: testBody, signature: webhook.Sign([]byte("wrong"), []byte(testBody)),
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid signature" status=401 remoteAddress=192.0.2.1:1234 unverifiedEvent=storage.jobSucceeded unverifiedDataId=42`,
		},
		"body over 1 MiB": {
			body: strings.Repeat("x", maxBodyBytes+1), signature: "00",
			wantStatus: http.StatusRequestEntityTooLarge, wantLog: `msg="Delivery rejected" reason="body too large`,
		},
		"verified body not JSON": {
			body: "not json", signature: webhook.Sign(secret, []byte("not json")),
			wantStatus: http.StatusBadRequest, wantLog: `msg="Delivery rejected" reason="invalid payload`,
		},
		"secret file missing": {
			body: testBody, signature: webhook.Sign(secret, []byte(testBody)), noSecret: true,
			wantStatus: http.StatusServiceUnavailable, wantLog: "signing secret not available",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if !tc.noSecret {
				writeTestFile(t, filepath.Join(dir, webhook.SecretKeySigningSecret), append(secret, '\n'))
				writeTestFile(t, filepath.Join(dir, webhook.SecretKeyPreviousSigningSecret), previous)
			}
			var logs bytes.Buffer
			h := newReceiver(webhook.NewSecretDir(dir), slog.New(slog.NewTextHandler(&logs, nil)))

			target := "/webhook"
			if tc.query != "" {
				target += "?" + tc.query
			}
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(tc.body))
			if tc.signature != "" {
				req.Header.Set(webhook.SignatureHeader, tc.signature)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log = %q, want it to contain %q", logs.String(), tc.wantLog)
			}
			for _, s := range [][]byte{secret, previous, []byte("whsec-wrong")} {
				if strings.Contains(logs.String(), string(s)) {
					t.Errorf("log contains a signing secret: %q", logs.String())
				}
			}
			if len(tc.signature) > 2 && strings.Contains(logs.String(), tc.signature) {
				t.Errorf("log contains the signature: %q", logs.String())
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 {
				t.Errorf("log has %d lines, want 1: %q", n, logs.String())
			}
		})
	}
}

func TestReceiverSkipsDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), webhook.SecretKeySigningSecret)
	secret := []byte("whsec-test")
	writeTestFile(t, path, secret)
	var logs bytes.Buffer
	h := newReceiver(webhook.NewSecretFile(path), slog.New(slog.NewTextHandler(&logs, nil)))

	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(testBody))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, []byte(testBody)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("status = %d, want 200", rec.Code)
		}
	}
	if n := strings.Count(logs.String(), `msg="Delivery verified"`); n != 1 {
		t.Errorf("log has %d verified deliveries, want 1: %q", n, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="Duplicate delivery skipped" event=storage.jobSucceeded dataId=42`) {
		t.Errorf("log = %q, want a skipped duplicate", logs.String())
	}
}

func TestParseFlagsRejectsRelativePath(t *testing.T) {
	_, err := parseFlags([]string{"--path=webhook"})
	if err == nil {
		t.Fatal("parseFlags() returned no error for a path without a leading /")
	}
}

func TestParseFlagsSecretSource(t *testing.T) {
	tests := map[string]struct {
		args       []string
		wantSource string
		wantErr    bool
	}{
		"default file":        {args: nil, wantSource: "file /etc/keboola-webhook/signingSecret"},
		"file":                {args: []string{"--secret-file=/tmp/s"}, wantSource: "file /tmp/s"},
		"directory":           {args: []string{"--secret-dir=/etc/keboola-webhook"}, wantSource: "directory /etc/keboola-webhook"},
		"file and directory":  {args: []string{"--secret-file=/tmp/s", "--secret-dir=/tmp"}, wantErr: true},
		"empty file, no dir":  {args: []string{"--secret-file="}, wantErr: true},
		"unexpected argument": {args: []string{"extra"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args)
			if tc.wantErr {
				if err == nil {
					t.Fatal("parseFlags() returned no error")
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags() error = %v", err)
			}
			if _, source := cfg.secretSource(); source != tc.wantSource {
				t.Errorf("source = %q, want %q", source, tc.wantSource)
			}
		})
	}
}

func TestDeliveryPathRejectsGet(t *testing.T) {
	h := newReceiver(webhook.NewSecretFile("unused"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := newMux("/webhook", h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhook", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhook status = %d, want %d", rec.Code, http.StatusMethodNotAllowed)
	}
}

// TestReceiverOverHTTP sends one event through a loopback HTTP server as
// both backends deliver it: signed, as the Storage API's webhooks endpoint
// does, and with the secret in the URL, as the Notification service does.
func TestReceiverOverHTTP(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	writeTestFile(t, filepath.Join(dir, webhook.SecretKeySigningSecret), secret)
	var logs syncBuffer
	server := httptest.NewServer(newMux("/webhook", newReceiver(webhook.NewSecretDir(dir), slog.New(slog.NewTextHandler(&logs, nil)))))
	defer server.Close()

	deliveries := []struct {
		name      string
		query     string
		signature string
		body      string
		want      int
	}{
		{name: "signed", signature: webhook.Sign(secret, []byte(testBody)), body: testBody, want: http.StatusOK},
		{name: "URL secret, same event", query: "?kbc_secret=" + string(secret), body: testBody, want: http.StatusOK},
		{name: "URL secret, wrong", query: "?kbc_secret=" + strings.Repeat("0", 64), body: testBody, want: http.StatusUnauthorized},
		{name: "URL secret, other parameters", query: "?project=1234&kbc_secret=" + string(secret) + "&x=y",
			body: strings.Replace(testBody, `"42"`, `"43"`, 1), want: http.StatusOK},
	}
	for _, d := range deliveries {
		req, err := http.NewRequest(http.MethodPost, server.URL+"/webhook"+d.query, strings.NewReader(d.body))
		if err != nil {
			t.Fatal(err)
		}
		if d.signature != "" {
			req.Header.Set(webhook.SignatureHeader, d.signature)
		}
		resp, err := server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != d.want {
			t.Errorf("%s: status = %d, want %d", d.name, resp.StatusCode, d.want)
		}
	}

	output := logs.String()
	if n := strings.Count(output, `msg="Delivery verified"`); n != 2 {
		t.Errorf("log has %d verified deliveries, want 2: %q", n, output)
	}
	if !strings.Contains(output, `msg="Duplicate delivery skipped" event=storage.jobSucceeded dataId=42`) {
		t.Errorf("log = %q, want the URL-secret delivery of the signed event skipped as a duplicate", output)
	}
	if strings.Contains(output, string(secret)) {
		t.Errorf("log contains the secret: %q", output)
	}
}

// syncBuffer is a bytes.Buffer that is safe for concurrent use, because the
// server logs from the goroutines of its connections.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeTestFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
}
