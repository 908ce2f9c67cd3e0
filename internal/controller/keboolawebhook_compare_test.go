package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keboola/keboola-operator/internal/keboola"
)

func TestCanonicalURL(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"empty path gets a slash":   {in: "https://example.com", want: "https://example.com/"},
		"slash before a query":      {in: "https://example.com?x=1", want: "https://example.com/?x=1"},
		"scheme and host lowercase": {in: "HTTPS://Example.COM/Hooks", want: "https://example.com/Hooks"},
		"default https port":        {in: "https://example.com:443/a", want: "https://example.com/a"},
		"default http port":         {in: "http://127.0.0.1:80", want: "http://127.0.0.1/"},
		"other port kept":           {in: "https://example.com:8443/a", want: "https://example.com:8443/a"},
		"IPv6 host":                 {in: "http://[::1]:80/x", want: "http://[::1]/x"},
		"path case kept":            {in: "https://example.com/A/b?Q=R", want: "https://example.com/A/b?Q=R"},
		"not a URL":                 {in: "::not a url", want: "::not a url"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := canonicalURL(tc.in); got != tc.want {
				t.Errorf("canonicalURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWebhookUpdate(t *testing.T) {
	desired := desiredWebhook{
		Name:   "shop/orders",
		URL:    "https://example.com",
		Events: []string{"storage.jobFailed", "storage.jobSucceeded"},
	}
	tests := map[string]struct {
		live        keboola.Webhook
		wantChanged bool
		wantUpdate  keboola.WebhookUpdate
	}{
		"normalised by the API": {
			live: keboola.Webhook{Name: "shop/orders", URL: "https://example.com/", Events: []string{"storage.jobSucceeded", "storage.jobFailed"}},
		},
		"name differs": {
			live:        keboola.Webhook{Name: "keboola-operator:pending:x:y", URL: "https://example.com/", Events: desired.Events},
			wantChanged: true,
			wantUpdate:  keboola.WebhookUpdate{Name: ptrTo("shop/orders")},
		},
		"url differs": {
			live:        keboola.Webhook{Name: "shop/orders", URL: "https://evil.example.com/", Events: desired.Events},
			wantChanged: true,
			wantUpdate:  keboola.WebhookUpdate{URL: ptrTo("https://example.com")},
		},
		"events differ": {
			live:        keboola.Webhook{Name: "shop/orders", URL: "https://example.com", Events: []string{"storage.jobFailed"}},
			wantChanged: true,
			wantUpdate:  keboola.WebhookUpdate{Events: desired.Events},
		},
		"duplicates ignored": {
			live: keboola.Webhook{Name: "shop/orders", URL: "https://example.com", Events: []string{"storage.jobFailed", "storage.jobSucceeded", "storage.jobFailed"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			update, changed := webhookUpdate(desired, tc.live)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.wantUpdate, update); diff != "" {
				t.Errorf("update mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdatedFields(t *testing.T) {
	tests := map[string]struct {
		update keboola.WebhookUpdate
		want   string
	}{
		"one":   {update: keboola.WebhookUpdate{URL: ptrTo("u")}, want: "url"},
		"two":   {update: keboola.WebhookUpdate{URL: ptrTo("u"), Events: []string{"e"}}, want: "url and events"},
		"three": {update: keboola.WebhookUpdate{Name: ptrTo("n"), URL: ptrTo("u"), Events: []string{"e"}}, want: "name, url and events"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := updatedFields(tc.update); got != tc.want {
				t.Errorf("updatedFields() = %q, want %q", got, tc.want)
			}
		})
	}
}
