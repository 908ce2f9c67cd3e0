package emulator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// subscriptionsPath is the collection of subscriptions, below the
// Notification service's base URL.
const subscriptionsPath = emulator.NotificationPath + "/project-subscriptions"

// webhookSubscriptionBody is a valid create body with a webhook recipient.
const webhookSubscriptionBody = `{"event":"job-failed","recipient":{"channel":"webhook","url":"https://hooks.example.com/n"}}`

// subscriptionIDPattern matches an id that is a number sent as a string.
var subscriptionIDPattern = regexp.MustCompile(`^[1-9][0-9]*$`)

// subscription is a subscription as the Notification service sends it.
type subscription struct {
	ID        string `json:"id"`
	ProjectID string `json:"projectId"`
	Event     string `json:"event"`
	Filters   []struct {
		Field    string `json:"field"`
		Value    any    `json:"value"`
		Operator string `json:"operator"`
	} `json:"filters"`
	Recipient struct {
		Channel string `json:"channel"`
		URL     string `json:"url"`
		Address string `json:"address"`
	} `json:"recipient"`
	ExpiresAt *string `json:"expiresAt"`
	CreatedAt string  `json:"createdAt"`
}

// service is one entry of the services of the Storage API index.
type service struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// createSubscription creates a subscription through the Notification
// service and returns the create response.
func createSubscription(t *testing.T, server *emulator.Server, token, body string) subscription {
	t.Helper()
	resp := call(t, server, http.MethodPost, subscriptionsPath, token, body)
	if resp.status != http.StatusCreated {
		t.Fatalf("create status = %d, expected 201; body %s", resp.status, resp.body)
	}
	return decode[subscription](t, resp)
}

// expectNotificationError checks an error response of the Notification
// service, whose code is the status as a JSON number.
func expectNotificationError(t *testing.T, resp response, status int) string {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status = %d, expected %d; body %s", resp.status, status, resp.body)
	}
	if contentType := resp.header.Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", contentType)
	}
	body := decode[map[string]any](t, resp)
	if code, ok := body["code"].(float64); !ok || int(code) != status {
		t.Errorf("code = %#v, expected the number %d; body %s", body["code"], status, resp.body)
	}
	if body["status"] != "error" {
		t.Errorf("status field = %#v, expected \"error\"; body %s", body["status"], resp.body)
	}
	if id, _ := body["exceptionId"].(string); !strings.HasPrefix(id, "exception-") {
		t.Errorf("exceptionId = %#v, expected an id starting with exception-", body["exceptionId"])
	}
	message, _ := body["error"].(string)
	if message == "" {
		t.Errorf("error message is empty; body %s", resp.body)
	}
	return message
}

// servicesOf returns the services that the index lists, keyed by id.
func servicesOf(t *testing.T, resp response) map[string]string {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("index status = %d, expected 200; body %s", resp.status, resp.body)
	}
	var index struct {
		Services []service `json:"services"`
	}
	if err := json.Unmarshal(resp.body, &index); err != nil {
		t.Fatalf("failed to decode the index %s: %v", resp.body, err)
	}
	services := map[string]string{}
	for _, s := range index.Services {
		services[s.ID] = s.URL
	}
	return services
}

func TestIndexListsServicesPerBackends(t *testing.T) {
	cases := []struct {
		backends     emulator.Backends
		notification bool
	}{
		{emulator.BackendsBoth, true},
		{emulator.BackendsNotification, true},
		{emulator.BackendsWebhooks, false},
	}
	for _, tc := range cases {
		t.Run(tc.backends.String(), func(t *testing.T) {
			server := startServer(t, emulator.Options{Backends: tc.backends})
			services := servicesOf(t, call(t, server, http.MethodGet, emulator.EndpointIndex, tokenA, ""))

			for _, id := range []string{"queue", "encryption"} {
				if !strings.HasPrefix(services[id], server.URL()+"/") {
					t.Errorf("service %s = %q, expected a URL under %s", id, services[id], server.URL())
				}
			}
			url, listed := services["notification"]
			if listed != tc.notification {
				t.Fatalf("notification listed = %v, expected %v; services %v", listed, tc.notification, services)
			}
			if listed && url != server.NotificationURL() {
				t.Errorf("notification URL = %q, expected %q", url, server.NotificationURL())
			}
		})
	}
}

func TestIndexRequiresValidToken(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.AddToken("disabled-token", emulator.Token{ProjectID: projectA, Disabled: true})
	server.AddToken("read-only-token", emulator.Token{ProjectID: projectA})

	expectError(t, call(t, server, http.MethodGet, emulator.EndpointIndex, "", ""), http.StatusUnauthorized, "storage.tokenMissing")
	expectError(t, call(t, server, http.MethodGet, emulator.EndpointIndex, "no-such-token", ""), http.StatusUnauthorized, "storage.tokenInvalid")
	expectError(t, call(t, server, http.MethodGet, emulator.EndpointIndex, "disabled-token", ""), http.StatusUnauthorized, "storage.tokenDisabled")
	// The index needs no permission to manage webhooks.
	servicesOf(t, call(t, server, http.MethodGet, emulator.EndpointIndex, "read-only-token", ""))
}

func TestIndexURLFollowsTLSServer(t *testing.T) {
	server := emulator.New(emulator.Options{AllowHTTPLoopback: true})
	server.AddToken(tokenA, emulator.Token{ProjectID: projectA})
	tlsServer := httptest.NewTLSServer(server.Handler())
	t.Cleanup(tlsServer.Close)
	client := tlsServer.Client()

	get := func(url string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-StorageApi-Token", tokenA)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s failed: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: body}
	}

	notificationURL := servicesOf(t, get(tlsServer.URL+emulator.EndpointIndex))["notification"]
	if expected := tlsServer.URL + emulator.NotificationPath; notificationURL != expected {
		t.Fatalf("notification URL = %q, expected %q", notificationURL, expected)
	}
	if resp := get(notificationURL + "/project-subscriptions"); resp.status != http.StatusOK || strings.TrimSpace(string(resp.body)) != "[]" {
		t.Errorf("list through the listed URL = %d %s, expected 200 []", resp.status, resp.body)
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	server := startServer(t, emulator.Options{})
	body := `{
		"event": "job-failed",
		"filters": [
			{"field": "job.component.id", "value": "keboola.orchestrator"},
			{"field": "durationOvertimePercentage", "value": 0.75, "operator": ">="}
		],
		"recipient": {"channel": "webhook", "url": "https://hooks.example.com/n?key=abc"},
		"expiresAt": "2099-01-07T14:00:00+01:00"
	}`
	created := createSubscription(t, server, tokenA, body)

	if !subscriptionIDPattern.MatchString(created.ID) {
		t.Errorf("id = %q, expected a number sent as a string", created.ID)
	}
	if created.Event != "job-failed" || created.ProjectID != "101" {
		t.Errorf("event = %q, projectId = %q; expected job-failed and 101", created.Event, created.ProjectID)
	}
	if created.Recipient.Channel != "webhook" || created.Recipient.URL != "https://hooks.example.com/n?key=abc" || created.Recipient.Address != "" {
		t.Errorf("recipient = %+v, expected the webhook URL under url", created.Recipient)
	}
	if len(created.Filters) != 2 {
		t.Fatalf("filters = %+v, expected 2", created.Filters)
	}
	if f := created.Filters[0]; f.Field != "job.component.id" || f.Value != "keboola.orchestrator" || f.Operator != "==" {
		t.Errorf("first filter = %+v, expected the default operator ==", f)
	}
	if f := created.Filters[1]; f.Value != 0.75 || f.Operator != ">=" {
		t.Errorf("second filter = %+v, expected the number 0.75 and >=", f)
	}
	if created.ExpiresAt == nil || *created.ExpiresAt != "2099-01-07T13:00:00Z" {
		t.Errorf("expiresAt = %v, expected 2099-01-07T13:00:00Z", created.ExpiresAt)
	}
	if createdAt, err := time.Parse(time.RFC3339, created.CreatedAt); err != nil || time.Since(createdAt) > time.Minute {
		t.Errorf("createdAt = %q, expected a recent RFC 3339 time", created.CreatedAt)
	}

	other := createSubscription(t, server, tokenA, `{"event":"job-succeeded","recipient":{"channel":"email","address":"ops@example.com"}}`)
	if other.ExpiresAt != nil {
		t.Errorf("expiresAt = %q, expected null without an expiry", *other.ExpiresAt)
	}
	if other.Recipient.Channel != "email" || other.Recipient.Address != "ops@example.com" || other.Recipient.URL != "" {
		t.Errorf("email recipient = %+v", other.Recipient)
	}

	list := decode[[]subscription](t, call(t, server, http.MethodGet, subscriptionsPath, tokenA, ""))
	if len(list) != 2 || list[0].ID != created.ID || list[1].ID != other.ID {
		t.Errorf("list = %+v, expected both subscriptions in id order", list)
	}
	filtered := decode[[]subscription](t, call(t, server, http.MethodGet, subscriptionsPath+"?event=job-succeeded", tokenA, ""))
	if len(filtered) != 1 || filtered[0].ID != other.ID {
		t.Errorf("list ?event=job-succeeded = %+v, expected only the second subscription", filtered)
	}
	if resp := call(t, server, http.MethodGet, subscriptionsPath, tokenB, ""); strings.TrimSpace(string(resp.body)) != "[]" {
		t.Errorf("list of project B = %s, expected []", resp.body)
	}

	got := decode[subscription](t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenA, ""))
	if got.ID != created.ID || got.CreatedAt != created.CreatedAt || len(got.Filters) != 2 {
		t.Errorf("get = %+v, expected the created subscription", got)
	}
	expectNotificationError(t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenB, ""), http.StatusNotFound)

	expectNotificationError(t, call(t, server, http.MethodDelete, subscriptionsPath+"/"+created.ID, tokenB, ""), http.StatusNotFound)
	if resp := call(t, server, http.MethodDelete, subscriptionsPath+"/"+created.ID, tokenA, ""); resp.status != http.StatusNoContent || len(resp.body) != 0 {
		t.Errorf("delete = %d %q, expected 204 without a body", resp.status, resp.body)
	}
	expectNotificationError(t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenA, ""), http.StatusNotFound)
	expectNotificationError(t, call(t, server, http.MethodDelete, subscriptionsPath+"/"+created.ID, tokenA, ""), http.StatusNotFound)
	if remaining := server.Subscriptions(projectA); len(remaining) != 1 || remaining[0].ID != other.ID {
		t.Errorf("Subscriptions() = %+v, expected only the second subscription", remaining)
	}
}

func TestCreateSubscriptionValidation(t *testing.T) {
	server := startServer(t, emulator.Options{})
	longURL := "https://hooks.example.com/" + strings.Repeat("a", emulator.MaxWebhookURLBytes)

	cases := []struct {
		name string
		body string
		// mentions is a part of the expected error message.
		mentions string
	}{
		{"body not an object", `[1]`, "JSON object"},
		{"missing event", `{"recipient":{"channel":"webhook","url":"https://x.example.com/"}}`, `"event" is required`},
		{"event not a string", `{"event":7,"recipient":{"channel":"webhook","url":"https://x.example.com/"}}`, `"event" must be a string`},
		{"unknown event", `{"event":"storage.jobFailed","recipient":{"channel":"webhook","url":"https://x.example.com/"}}`, "unknown event"},
		{"missing recipient", `{"event":"job-failed"}`, `"recipient" is required`},
		{"null recipient", `{"event":"job-failed","recipient":null}`, `"recipient" is required`},
		{"recipient not an object", `{"event":"job-failed","recipient":"https://x.example.com/"}`, `"recipient" must be an object`},
		{"missing channel", `{"event":"job-failed","recipient":{"url":"https://x.example.com/"}}`, `"recipient.channel" is required`},
		{"unknown channel", `{"event":"job-failed","recipient":{"channel":"slack","url":"https://x.example.com/"}}`, `"slack"`},
		{"webhook without url", `{"event":"job-failed","recipient":{"channel":"webhook"}}`, `"recipient.url" is required`},
		{"non-https url", `{"event":"job-failed","recipient":{"channel":"webhook","url":"http://hooks.example.com/"}}`, "must use https"},
		{"http loopback url without the option", `{"event":"job-failed","recipient":{"channel":"webhook","url":"http://127.0.0.1:9/"}}`, "must use https"},
		{"relative url", `{"event":"job-failed","recipient":{"channel":"webhook","url":"/hook"}}`, "absolute URL"},
		{"url too long", `{"event":"job-failed","recipient":{"channel":"webhook","url":"` + longURL + `"}}`, "maximum of 2048 bytes"},
		{"non-https address for webhook", `{"event":"job-failed","recipient":{"channel":"webhook","address":"ftp://x.example.com/"}}`, `"recipient.address" must use https`},
		{"email without address", `{"event":"job-failed","recipient":{"channel":"email"}}`, `"recipient.address" is required`},
		{"invalid email", `{"event":"job-failed","recipient":{"channel":"email","address":"not an address"}}`, "email address"},
		{"email with display name", `{"event":"job-failed","recipient":{"channel":"email","address":"Ann <ann@example.com>"}}`, "email address"},
		{"filters not an array", `{"event":"job-failed","filters":{},"recipient":{"channel":"email","address":"a@example.com"}}`, `"filters" must be an array`},
		{"filter without field", `{"event":"job-failed","filters":[{"value":"x"}],"recipient":{"channel":"email","address":"a@example.com"}}`, `"filters[0].field" is required`},
		{"filter with empty field", `{"event":"job-failed","filters":[{"field":"","value":"x"}],"recipient":{"channel":"email","address":"a@example.com"}}`, `"filters[0].field" must not be empty`},
		{"filter without value", `{"event":"job-failed","filters":[{"field":"branch.id"}],"recipient":{"channel":"email","address":"a@example.com"}}`, `"filters[0].value" is required`},
		{"filter with object value", `{"event":"job-failed","filters":[{"field":"branch.id","value":{"id":1}}],"recipient":{"channel":"email","address":"a@example.com"}}`, "a string, a number or a boolean"},
		{"bad operator", `{"event":"job-failed","filters":[{"field":"branch.id","value":"1"},{"field":"phase.id","value":"2","operator":"=~"}],"recipient":{"channel":"email","address":"a@example.com"}}`, `"filters[1].operator" must be one of`},
		{"expiresAt in the past", `{"event":"job-failed","expiresAt":"2020-01-01T00:00:00Z","recipient":{"channel":"email","address":"a@example.com"}}`, "in the future"},
		{"expiresAt not a time", `{"event":"job-failed","expiresAt":"+24 hours","recipient":{"channel":"email","address":"a@example.com"}}`, "RFC 3339"},
		{"expiresAt a number", `{"event":"job-failed","expiresAt":1700000000,"recipient":{"channel":"email","address":"a@example.com"}}`, "a string or null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			message := expectNotificationError(t, call(t, server, http.MethodPost, subscriptionsPath, tokenA, tc.body), http.StatusBadRequest)
			if !strings.Contains(message, tc.mentions) {
				t.Errorf("message = %q, expected it to contain %q", message, tc.mentions)
			}
		})
	}

	if stored := server.Subscriptions(projectA); len(stored) != 0 {
		t.Errorf("rejected creates stored %+v", stored)
	}
}

func TestCreateSubscriptionErrorOmitsURL(t *testing.T) {
	server := startServer(t, emulator.Options{})
	const secret = "receiver-secret-9c1d"
	resp := call(t, server, http.MethodPost, subscriptionsPath, tokenA,
		`{"event":"job-failed","recipient":{"channel":"webhook","url":"http://hooks.example.com/?key=`+secret+`"}}`)
	expectNotificationError(t, resp, http.StatusBadRequest)
	if strings.Contains(string(resp.body), secret) {
		t.Errorf("error body repeats the URL: %s", resp.body)
	}
}

func TestCreateSubscriptionAccepts(t *testing.T) {
	cases := []struct {
		name string
		opts emulator.Options
		body string
		url  string
	}{
		{
			name: "address for webhook channel",
			body: `{"event":"phase-job-failed","recipient":{"channel":"webhook","address":"https://hooks.example.com/a"}}`,
			url:  "https://hooks.example.com/a",
		},
		{
			name: "url preferred over address",
			body: `{"event":"job-failed","recipient":{"channel":"webhook","url":"https://hooks.example.com/u","address":"https://hooks.example.com/a"}}`,
			url:  "https://hooks.example.com/u",
		},
		{
			name: "http loopback url with the option",
			opts: emulator.Options{AllowHTTPLoopback: true},
			body: `{"event":"job-succeeded-with-warning","recipient":{"channel":"webhook","url":"http://127.0.0.1:8766/hook"}}`,
			url:  "http://127.0.0.1:8766/hook",
		},
		{
			name: "null filters and expiresAt and a projectId",
			body: `{"event":"job-processing-long","projectId":"999","filters":null,"expiresAt":null,"recipient":{"channel":"webhook","url":"https://hooks.example.com/n"}}`,
			url:  "https://hooks.example.com/n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := startServer(t, tc.opts)
			created := createSubscription(t, server, tokenA, tc.body)
			if created.Recipient.Channel != "webhook" || created.Recipient.URL != tc.url || created.Recipient.Address != "" {
				t.Errorf("recipient = %+v, expected channel webhook and url %q", created.Recipient, tc.url)
			}
			if created.ProjectID != "101" {
				t.Errorf("projectId = %q, expected the token's project 101", created.ProjectID)
			}
			if created.Filters == nil {
				t.Errorf("filters = null, expected []")
			}
		})
	}
}

func TestCreateSubscriptionEveryEvent(t *testing.T) {
	server := startServer(t, emulator.Options{})
	events := emulator.NotificationEvents()
	if len(events) != 8 {
		t.Fatalf("NotificationEvents() = %v, expected 8 events", events)
	}
	for _, event := range events {
		created := createSubscription(t, server, tokenA, fmt.Sprintf(`{"event":%q,"recipient":{"channel":"email","address":"a@example.com"}}`, event))
		if created.Event != event {
			t.Errorf("event = %q, expected %q", created.Event, event)
		}
	}
}

func TestSubscriptionExpiresByItself(t *testing.T) {
	server := startServer(t, emulator.Options{})
	// RFC 3339 without fractions rounds down, so the subscription expires
	// between 0.5s and 1.5s from now.
	expiresAt := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339)
	created := createSubscription(t, server, tokenA,
		`{"event":"job-failed","expiresAt":"`+expiresAt+`","recipient":{"channel":"webhook","url":"https://hooks.example.com/n"}}`)
	if created.ExpiresAt == nil || *created.ExpiresAt != expiresAt {
		t.Fatalf("expiresAt = %v, expected %s", created.ExpiresAt, expiresAt)
	}

	deadline := time.Now().Add(5 * time.Second)
	for len(server.Subscriptions(projectA)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription still exists 5s after creation, expected it gone after %s", expiresAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if time.Now().Before(mustParseTime(t, expiresAt)) {
		t.Errorf("the subscription disappeared before its expiresAt %s", expiresAt)
	}
	expectNotificationError(t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenA, ""), http.StatusNotFound)
}

func TestSetSubscriptionExpiry(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createSubscription(t, server, tokenA, webhookSubscriptionBody)
	unexpired := createSubscription(t, server, tokenA, webhookSubscriptionBody)

	future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	updated, ok := server.SetSubscriptionExpiry(projectA, created.ID, &future)
	if !ok || updated.ExpiresAt == nil || !updated.ExpiresAt.Equal(future) {
		t.Fatalf("SetSubscriptionExpiry = %+v, %v; expected the new expiry", updated, ok)
	}
	got := decode[subscription](t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenA, ""))
	if got.ExpiresAt == nil || *got.ExpiresAt != "2099-01-01T00:00:00Z" {
		t.Errorf("API expiresAt = %v, expected 2099-01-01T00:00:00Z", got.ExpiresAt)
	}

	if _, ok := server.SetSubscriptionExpiry(projectB, created.ID, &future); ok {
		t.Errorf("SetSubscriptionExpiry changed a subscription of another project")
	}

	past := time.Now().Add(-time.Second)
	if _, ok := server.SetSubscriptionExpiry(projectA, created.ID, &past); !ok {
		t.Fatalf("SetSubscriptionExpiry to the past returned false")
	}
	if _, ok := server.Subscription(projectA, created.ID); ok {
		t.Errorf("Subscription() found the expired subscription")
	}
	list := decode[[]subscription](t, call(t, server, http.MethodGet, subscriptionsPath, tokenA, ""))
	if len(list) != 1 || list[0].ID != unexpired.ID {
		t.Errorf("list = %+v, expected only the subscription that did not expire", list)
	}
	if _, ok := server.SetSubscriptionExpiry(projectA, created.ID, nil); ok {
		t.Errorf("SetSubscriptionExpiry revived an expired subscription")
	}
}

func TestSubscriptionMethodNotAllowed(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createSubscription(t, server, tokenA, webhookSubscriptionBody)

	cases := []struct {
		method, path, allow string
	}{
		{http.MethodPut, subscriptionsPath + "/" + created.ID, "GET, DELETE"},
		{http.MethodPatch, subscriptionsPath + "/" + created.ID, "GET, DELETE"},
		{http.MethodPost, subscriptionsPath + "/" + created.ID, "GET, DELETE"},
		{http.MethodDelete, subscriptionsPath, "GET, POST"},
		{http.MethodPut, subscriptionsPath, "GET, POST"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := call(t, server, tc.method, tc.path, tokenA, `{"event":"job-succeeded"}`)
			expectNotificationError(t, resp, http.StatusMethodNotAllowed)
			if allow := resp.header.Get("Allow"); allow != tc.allow {
				t.Errorf("Allow = %q, expected %q", allow, tc.allow)
			}
		})
	}

	if got, _ := server.Subscription(projectA, created.ID); got.Event != "job-failed" {
		t.Errorf("event = %q after rejected updates, expected job-failed", got.Event)
	}
}

func TestNotificationAuthentication(t *testing.T) {
	server := startServer(t, emulator.Options{})
	expired := time.Now().Add(-time.Hour)
	server.AddToken("expired-token", emulator.Token{ProjectID: projectA, Expires: &expired})
	server.AddToken("disabled-token", emulator.Token{ProjectID: projectA, Disabled: true})
	server.AddToken("read-only-token", emulator.Token{ProjectID: projectA})

	for name, token := range map[string]string{"missing": "", "unknown": "no-such-token", "expired": "expired-token", "disabled": "disabled-token"} {
		t.Run(name+" token", func(t *testing.T) {
			expectNotificationError(t, call(t, server, http.MethodGet, subscriptionsPath, token, ""), http.StatusUnauthorized)
			expectNotificationError(t, call(t, server, http.MethodPost, subscriptionsPath, token, webhookSubscriptionBody), http.StatusUnauthorized)
		})
	}

	// The Notification service does not check the webhook permission.
	created := createSubscription(t, server, "read-only-token", webhookSubscriptionBody)
	if created.ProjectID != "101" {
		t.Errorf("projectId = %q, expected 101", created.ProjectID)
	}
}

func TestNotificationMalformedBodies(t *testing.T) {
	server := startServer(t, emulator.Options{})
	expectNotificationError(t, call(t, server, http.MethodPost, subscriptionsPath, tokenA, `{"event":`), http.StatusBadRequest)
	expectNotificationError(t, call(t, server, http.MethodPost, subscriptionsPath, tokenA, ""), http.StatusBadRequest)
	large := `{"event":"job-failed","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	expectNotificationError(t, call(t, server, http.MethodPost, subscriptionsPath, tokenA, large), http.StatusRequestEntityTooLarge)
	expectNotificationError(t, call(t, server, http.MethodGet, emulator.NotificationPath+"/projects", tokenA, ""), http.StatusNotFound)
}

func TestWebhooksDisabledGives404(t *testing.T) {
	server := startServer(t, emulator.Options{Backends: emulator.BackendsNotification})
	server.AddToken("read-only-token", emulator.Token{ProjectID: projectA})

	requests := []struct {
		method, path, token string
	}{
		{http.MethodGet, "/v2/storage/webhooks", tokenA},
		{http.MethodPost, "/v2/storage/webhooks", tokenA},
		{http.MethodGet, "/v2/storage/webhooks/1", tokenA},
		{http.MethodPut, "/v2/storage/webhooks/1", tokenA},
		{http.MethodDelete, "/v2/storage/webhooks/1", tokenA},
		{http.MethodPatch, "/v2/storage/webhooks", tokenA},
		{http.MethodGet, "/v2/storage/webhooks", "read-only-token"},
	}
	for _, tc := range requests {
		t.Run(tc.method+" "+tc.path+" "+tc.token, func(t *testing.T) {
			expectError(t, call(t, server, tc.method, tc.path, tc.token, createBody), http.StatusNotFound, "storage.notFound")
		})
	}

	t.Run("token checks first", func(t *testing.T) {
		expectError(t, call(t, server, http.MethodGet, "/v2/storage/webhooks", "", ""), http.StatusUnauthorized, "storage.tokenMissing")
		expectError(t, call(t, server, http.MethodPost, "/v2/storage/webhooks", "no-such-token", createBody), http.StatusUnauthorized, "storage.tokenInvalid")
	})

	if webhooks := server.Webhooks(projectA); len(webhooks) != 0 {
		t.Errorf("stored %+v, expected no webhooks", webhooks)
	}
	if n := server.Count(http.MethodPost, emulator.EndpointWebhooks); n != 2 {
		t.Errorf("Count(POST, webhooks) = %d, expected 2", n)
	}
	if resp := call(t, server, http.MethodGet, emulator.EndpointVerify, tokenA, ""); resp.status != http.StatusOK {
		t.Errorf("token verification = %d, expected 200", resp.status)
	}
	createSubscription(t, server, tokenA, webhookSubscriptionBody)
}

func TestNotificationDisabledGives404(t *testing.T) {
	server := startServer(t, emulator.Options{Backends: emulator.BackendsWebhooks})

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		resp := call(t, server, method, subscriptionsPath, tokenA, webhookSubscriptionBody)
		expectError(t, resp, http.StatusNotFound, "storage.notFound")
	}
	if n := server.Count("", emulator.EndpointUnknown); n != 2 {
		t.Errorf("Count(unknown) = %d, expected 2", n)
	}
	if n := server.Count("", emulator.EndpointSubscriptions); n != 0 {
		t.Errorf("Count(subscriptions) = %d, expected 0", n)
	}
	createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
}

func TestNotificationRequestCounters(t *testing.T) {
	server := startServer(t, emulator.Options{})
	call(t, server, http.MethodGet, emulator.EndpointIndex, tokenA, "")
	first := createSubscription(t, server, tokenA, webhookSubscriptionBody)
	second := createSubscription(t, server, tokenA, webhookSubscriptionBody)
	call(t, server, http.MethodGet, subscriptionsPath, tokenA, "")
	call(t, server, http.MethodGet, subscriptionsPath+"/"+first.ID, tokenA, "")
	call(t, server, http.MethodDelete, subscriptionsPath+"/"+second.ID, tokenA, "")
	call(t, server, http.MethodDelete, subscriptionsPath+"/"+second.ID, tokenA, "")

	counts := []struct {
		method, endpoint string
		expected         int
	}{
		{http.MethodGet, emulator.EndpointIndex, 1},
		{http.MethodPost, emulator.EndpointSubscriptions, 2},
		{http.MethodGet, emulator.EndpointSubscriptions, 1},
		{http.MethodGet, emulator.EndpointSubscription, 1},
		{http.MethodDelete, emulator.EndpointSubscription, 2},
		{"", "", 7},
	}
	for _, c := range counts {
		if got := server.Count(c.method, c.endpoint); got != c.expected {
			t.Errorf("Count(%q, %q) = %d, expected %d", c.method, c.endpoint, got, c.expected)
		}
	}

	requests := server.Requests()
	last := requests[len(requests)-1]
	if last.Path != subscriptionsPath+"/"+second.ID || last.Endpoint != emulator.EndpointSubscription || last.Status != http.StatusNotFound || last.TokenID != tokenIDA {
		t.Errorf("last request = %+v, expected the second delete with 404", last)
	}
}

func TestNotificationConcurrencyLimit(t *testing.T) {
	const latency = 50 * time.Millisecond
	server := startServer(t, emulator.Options{Latency: latency, MaxConcurrentPerProject: 1})

	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := send(http.DefaultClient, server, http.MethodPost, subscriptionsPath, tokenA, webhookSubscriptionBody)
			if err != nil || resp.status != http.StatusCreated {
				t.Errorf("create = %+v, %v; expected 201", resp, err)
			}
		})
	}
	wg.Wait()

	if elapsed := time.Since(start); elapsed < 3*latency {
		t.Errorf("3 creates took %s, expected at least %s one at a time", elapsed, 3*latency)
	}
	stats := concurrencyOf(server, projectA)
	if stats.PeakInFlight != 1 || stats.Waited < 1 {
		t.Errorf("statistics = %+v, expected a peak of 1 and waits", stats)
	}
}

func mustParseTime(t *testing.T, value string) time.Time {
	t.Helper()
	parsed, err := time.Parse(time.RFC3339, value)
	if err != nil {
		t.Fatalf("failed to parse %q: %v", value, err)
	}
	return parsed
}

func TestParseBackends(t *testing.T) {
	for _, b := range []emulator.Backends{emulator.BackendsBoth, emulator.BackendsWebhooks, emulator.BackendsNotification} {
		parsed, err := emulator.ParseBackends(b.String())
		if err != nil || parsed != b {
			t.Errorf("ParseBackends(%q) = %s, %v; expected %s", b.String(), parsed, err, b)
		}
		text, err := b.MarshalText()
		if err != nil || string(text) != b.String() {
			t.Errorf("MarshalText() of %s = %q, %v", b, text, err)
		}
	}
	if _, err := emulator.ParseBackends("Webhooks"); err == nil {
		t.Errorf("ParseBackends(Webhooks) succeeded, expected names to be case-sensitive")
	}
	if _, err := emulator.Backends(7).MarshalText(); err == nil {
		t.Errorf("MarshalText() of an invalid value succeeded, expected an error")
	}
}
