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
	"testing"

	"github.com/keboola/keboola-operator/pkg/webhook"
)

const testBody = `{"event":"storage.jobSucceeded","data":{"id":"42"},"createdTime":"2024-01-15T10:35:01+0000"}`

func TestReceiverResponses(t *testing.T) {
	secret := []byte("whsec-test")
	tests := map[string]struct {
		body       string
		signature  string
		noSecret   bool
		wantStatus int
		wantLog    string
	}{
		"valid signature": {
			body: testBody, signature: webhook.Sign(secret, []byte(testBody)),
			wantStatus: http.StatusOK, wantLog: `msg="Delivery verified" event=storage.jobSucceeded dataId=42`,
		},
		"missing signature": {
			body: testBody, signature: "",
			wantStatus: http.StatusUnauthorized, wantLog: `reason="missing signature"`,
		},
		"wrong secret": {
			body: testBody, signature: webhook.Sign([]byte("wrong"), []byte(testBody)),
			wantStatus: http.StatusUnauthorized, wantLog: `reason="invalid signature"`,
		},
		"body over 1 MiB": {
			body: strings.Repeat("x", maxBodyBytes+1), signature: "00",
			wantStatus: http.StatusRequestEntityTooLarge, wantLog: `msg="Delivery rejected"`,
		},
		"verified body not JSON": {
			body: "not json", signature: webhook.Sign(secret, []byte("not json")),
			wantStatus: http.StatusBadRequest, wantLog: `msg="Delivery rejected"`,
		},
		"secret file missing": {
			body: testBody, signature: webhook.Sign(secret, []byte(testBody)), noSecret: true,
			wantStatus: http.StatusServiceUnavailable, wantLog: "signing secret not available",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signingSecret")
			if !tc.noSecret {
				if err := os.WriteFile(path, append(secret, '\n'), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			h := &receiver{secrets: webhook.NewSecretFile(path), log: slog.New(slog.NewTextHandler(&logs, nil))}

			req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tc.body))
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
			if strings.Contains(logs.String(), string(secret)) {
				t.Errorf("log contains the signing secret: %q", logs.String())
			}
			if tc.signature != "" && len(tc.signature) > 2 && strings.Contains(logs.String(), tc.signature) {
				t.Errorf("log contains the signature: %q", logs.String())
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 {
				t.Errorf("log has %d lines, want 1: %q", n, logs.String())
			}
		})
	}
}

func TestParseFlagsRejectsRelativePath(t *testing.T) {
	_, err := parseFlags([]string{"--path=webhook"})
	if err == nil {
		t.Fatal("parseFlags() returned no error for a path without a leading /")
	}
}

func TestDeliveryPathRejectsGet(t *testing.T) {
	// The mux of run routes only POST to the receiver.
	h := &receiver{secrets: webhook.NewSecretFile("unused"), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhook", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhook status = %d, want %d", rec.Code, http.StatusMethodNotAllowed)
	}
}
