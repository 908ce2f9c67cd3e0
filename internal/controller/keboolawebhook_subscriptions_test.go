package controller

import (
	"testing"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

func TestSubscriptionURL(t *testing.T) {
	secret := []byte("abc123")
	tests := map[string]string{
		"https://hooks.example.com/a":           "https://hooks.example.com/a?kbc_secret=abc123",
		"https://hooks.example.com/a?":          "https://hooks.example.com/a?kbc_secret=abc123",
		"https://hooks.example.com/a?x=1":       "https://hooks.example.com/a?x=1&kbc_secret=abc123",
		"https://hooks.example.com/a?x=1&":      "https://hooks.example.com/a?x=1&kbc_secret=abc123",
		"https://hooks.example.com/a&":          "https://hooks.example.com/a&?kbc_secret=abc123",
		"https://hooks.example.com/a%20b?q=%2F": "https://hooks.example.com/a%20b?q=%2F&kbc_secret=abc123",
	}
	for base, want := range tests {
		got := subscriptionURL(base, secret)
		if got != want {
			t.Errorf("subscriptionURL(%q) = %q, want %q", base, got, want)
		}
		if value, ok := urlSecret(got); !ok || value != string(secret) {
			t.Errorf("urlSecret(subscriptionURL(%q)) = %q, %v; want the secret", base, value, ok)
		}
	}
}

func TestSecretParameterValues(t *testing.T) {
	tests := map[string]int{
		"https://hooks.example.com/a":                           0,
		"https://hooks.example.com/a?kbc_secret=1":              1,
		"https://hooks.example.com/a?x=1;kbc_secret=1":          1,
		"https://hooks.example.com/a?kbc%5Fsecret=1":            1,
		"https://hooks.example.com/a?kbc_secret":                1,
		"https://hooks.example.com/a?kbc_secret=1&kbc_secret=2": 2,
		"https://hooks.example.com/kbc_secret=1":                0,
		"https://hooks.example.com/a?kbc_secrets=1":             0,
	}
	for rawURL, want := range tests {
		if got := len(secretParameterValues(rawURL)); got != want {
			t.Errorf("secretParameterValues(%q) has %d values, want %d", rawURL, got, want)
		}
	}
	if _, ok := urlSecret("https://hooks.example.com/a?kbc_secret=1&kbc_secret=2"); ok {
		t.Error("urlSecret() accepted a repeated parameter")
	}
}

func TestPlanSubscriptions(t *testing.T) {
	current := []byte("current")
	url := subscriptionURL("https://hooks.example.com/a", current)
	desired := []keboola.SubscriptionSpec{
		{Event: "job-failed", URL: url},
		{Event: "job-succeeded", URL: url},
	}
	status := &keboolav1.KeboolaWebhookStatus{
		Subscriptions: []keboolav1.SubscriptionStatus{{Event: "job-failed", ID: "2"}, {Event: "job-processing-long", ID: "9"}},
	}
	live := []keboola.Subscription{
		// An adopted duplicate of the recorded subscription.
		{ID: "1", Event: "job-failed", URL: url},
		{ID: "2", Event: "job-failed", URL: url},
		// A subscription whose create was interrupted: it carries the
		// current secret, so it is adopted.
		{ID: "3", Event: "job-succeeded", URL: url, Filters: []keboola.Filter{}},
		// Another KeboolaWebhook's subscription to the same receiver.
		{ID: "4", Event: "job-failed", URL: "https://hooks.example.com/a?kbc_secret=other"},
	}

	plan := planSubscriptions(desired, live, status, current)

	if got := plan.keep["job-failed"]; got != "2" {
		t.Errorf("keep[job-failed] = %q, want the recorded 2", got)
	}
	if got := plan.keep["job-succeeded"]; got != "3" {
		t.Errorf("keep[job-succeeded] = %q, want the adopted 3", got)
	}
	if len(plan.missing) != 0 {
		t.Errorf("missing = %v, want none", plan.missing)
	}
	if len(plan.obsolete) != 1 || plan.obsolete[0] != "1" {
		t.Errorf("obsolete = %v, want [1]", plan.obsolete)
	}
	if len(plan.vanished) != 1 || plan.vanished[0].ID != "9" {
		t.Errorf("vanished = %v, want the recorded 9", plan.vanished)
	}
}

func TestPlanSubscriptionsFindsSecretsByFingerprint(t *testing.T) {
	lost := []byte("lost")
	status := &keboolav1.KeboolaWebhookStatus{SecretFingerprint: fingerprint(lost)}
	live := []keboola.Subscription{{ID: "7", Event: "job-failed", URL: subscriptionURL("https://hooks.example.com/a", lost)}}

	plan := planSubscriptions(nil, live, status, []byte("new"))

	if len(plan.obsolete) != 1 || plan.obsolete[0] != "7" {
		t.Errorf("obsolete = %v, want the subscription that carries the recorded secret", plan.obsolete)
	}
}

func TestCarriesPreviousSecret(t *testing.T) {
	previous := []byte("previous")
	live := []keboola.Subscription{
		{ID: "1", URL: subscriptionURL("https://hooks.example.com/a", previous)},
		{ID: "2", URL: subscriptionURL("https://hooks.example.com/a", []byte("older"))},
	}
	fp := fingerprint(previous)
	if !carriesPreviousSecret(live, "1", fp) {
		t.Error("a subscription with the previous secret is not protected")
	}
	if carriesPreviousSecret(live, "2", fp) {
		t.Error("a subscription with an older secret is protected")
	}
	if !carriesPreviousSecret(live, "3", fp) {
		t.Error("a subscription missing from the list is not protected")
	}
}
