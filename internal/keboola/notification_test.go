package keboola

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// receiverSecret is the secret in the query of receiverURL. Like testToken,
// it is distinctive so that a test can search for it in any output.
const (
	receiverSecret = "rcv-SECRET-456"
	receiverURL    = "https://receiver.example.com/hooks/jobs?secret=" + receiverSecret
)

const subscriptionFixture = `{"id":"17","projectId":"1234","event":"job-failed",` +
	`"filters":[{"field":"job.component.id","value":"keboola.orchestrator","operator":"=="}],` +
	`"recipient":{"channel":"webhook","url":"` + receiverURL + `"},"expiresAt":null}`

// routes returns a handler that replies to each path with its own scripted
// replies, counted per path, and a 404 for any other path. "{{server}}" in a
// reply body is replaced by the URL under which the client reached the
// server, such as "http://127.0.0.1:41234".
func routes(script map[string][]reply) func(http.ResponseWriter, *http.Request, int) {
	var mu sync.Mutex
	counts := map[string]int{}
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		replyScript, ok := script[r.URL.Path]
		if !ok {
			replies(reply{status: http.StatusNotFound, body: `{"error":"no route"}`})(w, r, 0)
			return
		}
		mu.Lock()
		index := counts[r.URL.Path]
		counts[r.URL.Path]++
		mu.Unlock()
		next := replyScript[min(index, len(replyScript)-1)]
		next.body = strings.ReplaceAll(next.body, "{{server}}", "http://"+r.Host)
		replies(next)(w, r, 0)
	}
}

// indexBody returns a Storage API index that lists the Notification service
// at serviceURL among other services.
func indexBody(serviceURL string) string {
	return `{"api":"storage","version":"v2","components":[],"services":[` +
		`{"id":"queue","url":"https://queue.example.com"},` +
		`{"id":"notification","url":"` + serviceURL + `"},` +
		`{"id":"encryption","url":"https://encryption.example.com"}]}`
}

func TestDetectWebhookAPIStorage(t *testing.T) {
	tests := map[string]reply{
		"200 list":          {status: 200, body: `[]`},
		"403 forbidden":     {status: 403, body: `{"error":"You don't have access to the resource."}`},
		"oversize 200 body": {status: 200, body: "[" + strings.Repeat(" ", maxBodyBytes) + "]"},
	}
	for name, webhooksReply := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, routes(map[string][]reply{
				"/v2/storage/webhooks": {webhooksReply},
				"/v2/storage":          {{status: 200, body: indexBody("http://127.0.0.1:1/notification")}},
			}))
			c, _ := newTestClient(t, srv, Options{})

			detection, err := c.DetectWebhookAPI(context.Background())
			if err != nil {
				t.Fatalf("DetectWebhookAPI() error = %v", err)
			}
			want := &Detection{API: WebhookAPIStorage, Reason: "The stack has the webhooks endpoint of the Storage API."}
			if diff := cmp.Diff(want, detection); diff != "" {
				t.Errorf("DetectWebhookAPI() mismatch (-want +got):\n%s", diff)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("server got %d requests, want 1 (no index request)", n)
			}
		})
	}
}

func TestDetectWebhookAPIReturnsUnclearAnswers(t *testing.T) {
	srv := newTestServer(t, routes(map[string][]reply{
		"/v2/storage/webhooks": {{status: 400, body: `{"error":"bad request"}`}},
		"/v2/storage":          {{status: 200, body: indexBody("http://127.0.0.1:1/notification")}},
	}))
	c, _ := newTestClient(t, srv, Options{})

	if _, err := c.DetectWebhookAPI(context.Background()); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("DetectWebhookAPI() error = %v, want one that matches ErrInvalidRequest", err)
	}
}

func TestErrorsRedactURLSecrets(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	bodies := []string{
		`{"error":"Invalid recipient https://hooks.example.com/a?kbc_secret=` + secret + `&x=1"}`,
		`{"error":"Invalid recipient https://hooks.example.com/a?KBC_SECRET=` + secret + `"}`,
		`{"error":"Invalid recipient https://hooks.example.com/a?kbc%5Fsecret%3D` + secret + `"}`,
	}
	for _, body := range bodies {
		srv := newTestServer(t, routes(map[string][]reply{
			"/v2/storage/webhooks": {{status: 422, body: body}},
		}))
		c, _ := newTestClient(t, srv, Options{})
		_, err := c.ListWebhooks(context.Background())
		if err == nil {
			t.Fatalf("ListWebhooks() error = nil, want the 422")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains the URL secret", err)
		}
	}
}

func TestDetectWebhookAPINotification(t *testing.T) {
	tests := map[string]struct {
		webhooksStatus int
		// index is the index body, in which {{server}} is replaced by the
		// server URL.
		index   string
		wantURL string
	}{
		"404 then index": {
			webhooksStatus: 404,
			index:          indexBody("{{server}}/notification"),
			wantURL:        "/notification",
		},
		"405 then index": {
			webhooksStatus: 405,
			index:          indexBody("{{server}}/notification"),
			wantURL:        "/notification",
		},
		"trailing slash stripped": {
			webhooksStatus: 404,
			index:          indexBody("{{server}}/notification/"),
			wantURL:        "/notification",
		},
		"service at the root": {
			webhooksStatus: 404,
			index:          indexBody("{{server}}"),
			wantURL:        "",
		},
		"unusual entries skipped": {
			webhooksStatus: 404,
			index: `{"services":[1,null,"notification",{"id":7,"url":"x"},{"id":"notification"},` +
				`{"id":"notification","url":42},{"id":"notification","url":"{{server}}/notification","extra":{"a":1}}],"features":["x"]}`,
			wantURL: "/notification",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, routes(map[string][]reply{
				"/v2/storage/webhooks": {{status: tt.webhooksStatus, body: `{"error":"Route not found"}`}},
				"/v2/storage":          {{status: 200, body: tt.index}},
			}))
			c, _ := newTestClient(t, srv, Options{})

			detection, err := c.DetectWebhookAPI(context.Background())
			if err != nil {
				t.Fatalf("DetectWebhookAPI() error = %v", err)
			}
			want := &Detection{
				API:             WebhookAPINotification,
				NotificationURL: srv.URL + tt.wantURL,
				Reason:          "The stack has no webhooks endpoint, and its Storage API index lists the Notification service.",
			}
			if diff := cmp.Diff(want, detection); diff != "" {
				t.Errorf("DetectWebhookAPI() mismatch (-want +got):\n%s", diff)
			}

			requests := srv.recorded()
			if len(requests) != 2 {
				t.Fatalf("server got %d requests, want 2", len(requests))
			}
			if got := requests[1]; got.method != "GET" || got.path != "/v2/storage" {
				t.Errorf("second request = %s %s, want GET /v2/storage", got.method, got.path)
			}
			if got := requests[1].token; got != testToken {
				t.Errorf("index request token = %q, want the client's token", got)
			}
		})
	}
}

func TestDetectWebhookAPIIndexExcludesComponents(t *testing.T) {
	index := routes(map[string][]reply{"/v2/storage": {{status: 200, body: `{"services":[]}`}}})
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, i int) {
		if r.URL.Path == "/v2/storage" && r.URL.RawQuery != "exclude=components" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		index(w, r, i)
	})
	c, _ := newTestClient(t, srv, Options{})

	_, err := c.DetectWebhookAPI(context.Background())
	if !errors.Is(err, ErrNoWebhookAPI) {
		t.Errorf("DetectWebhookAPI() error = %v, want one matching ErrNoWebhookAPI after GET /v2/storage?exclude=components", err)
	}
}

func TestDetectWebhookAPIFailures(t *testing.T) {
	tests := map[string]struct {
		webhooks     []reply
		index        reply
		options      Options
		wantRequests int
		wantIs       []error
		wantNotIs    []error
		wantMessage  string
	}{
		"401": {
			webhooks:     []reply{{status: 401, body: `{"error":"Invalid access token","code":"storage.tokenInvalid"}`}},
			wantRequests: 1,
			wantIs:       []error{ErrUnauthorized},
			wantNotIs:    []error{ErrNoWebhookAPI},
		},
		"404 then index without notification": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: `{"services":[{"id":"queue","url":"https://queue.example.com"}]}`},
			wantRequests: 2,
			wantIs:       []error{ErrNoWebhookAPI},
			wantMessage:  "GET /v2/storage/webhooks returned 404 Not Found, and the Storage API index lists no Notification service",
		},
		"404 then index without services": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: `{"api":"storage"}`},
			wantRequests: 2,
			wantIs:       []error{ErrNoWebhookAPI},
		},
		"404 then services not a list": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: `{"services":{"notification":"https://notification.example.com"}}`},
			wantRequests: 2,
			wantIs:       []error{ErrNoWebhookAPI},
		},
		"404 then garbled index": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: `{"services":[`},
			wantRequests: 2,
			wantNotIs:    []error{ErrNoWebhookAPI, ErrUntrustedServiceURL},
			wantMessage:  "keboola: GET /v2/storage: 200 OK: invalid response body: not a Storage API index object",
		},
		"404 then index not an object": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: `[]`},
			wantRequests: 2,
			wantNotIs:    []error{ErrNoWebhookAPI},
			wantMessage:  "not a Storage API index object",
		},
		"404 then index 500": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 500, body: `{"error":"boom"}`},
			options:      Options{MaxRetries: -1},
			wantRequests: 2,
			wantIs:       []error{ErrRetryable},
			wantNotIs:    []error{ErrNoWebhookAPI},
		},
		"service on another domain": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: indexBody("https://notification.attacker.example/x")},
			wantRequests: 2,
			wantIs:       []error{ErrUntrustedServiceURL},
			wantNotIs:    []error{ErrNoWebhookAPI},
			wantMessage:  "keboola: untrusted Notification service URL in the Storage API index: its host must be",
		},
		"plain http on a non-loopback host": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: indexBody("http://notification.attacker.example/x")},
			wantRequests: 2,
			wantIs:       []error{ErrUntrustedServiceURL},
		},
		"service URL with a query": {
			webhooks:     []reply{{status: 404}},
			index:        reply{status: 200, body: indexBody("http://127.0.0.1:1/notification?attacker=1")},
			wantRequests: 2,
			wantIs:       []error{ErrUntrustedServiceURL},
			wantMessage:  "it must not contain a query",
		},
		"500 after retries": {
			webhooks:     []reply{{status: 500, body: `{"error":"boom"}`}},
			options:      Options{MaxRetries: 2},
			wantRequests: 3,
			wantIs:       []error{ErrRetryable},
			wantNotIs:    []error{ErrNoWebhookAPI},
		},
		"429": {
			webhooks:     []reply{{status: 429, header: map[string]string{"Retry-After": "600"}}},
			wantRequests: 1,
			wantIs:       []error{ErrRateLimited},
		},
		"409": {
			webhooks:     []reply{{status: 409, body: `{"error":"conflict"}`}},
			options:      Options{MaxRetries: -1},
			wantRequests: 1,
			wantIs:       []error{ErrRetryable},
		},
		"redirect": {
			webhooks:     []reply{{status: 302, header: map[string]string{"Location": "https://elsewhere.example.com/"}}},
			wantRequests: 1,
			wantMessage:  "redirects are not followed",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, routes(map[string][]reply{
				"/v2/storage/webhooks": tt.webhooks,
				"/v2/storage":          {tt.index},
			}))
			c, _ := newTestClient(t, srv, tt.options)

			detection, err := c.DetectWebhookAPI(context.Background())
			if err == nil {
				t.Fatalf("DetectWebhookAPI() = %+v, want an error", detection)
			}
			if detection != nil {
				t.Errorf("DetectWebhookAPI() = %+v, want nil with the error", detection)
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("errors.Is(err, %v) = false, want true (err: %v)", want, err)
				}
			}
			for _, notWant := range tt.wantNotIs {
				if errors.Is(err, notWant) {
					t.Errorf("errors.Is(err, %v) = true, want false (err: %v)", notWant, err)
				}
			}
			if tt.wantMessage != "" && !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("Error() = %q, want it to contain %q", err, tt.wantMessage)
			}
			if n := srv.count(); n != tt.wantRequests {
				t.Errorf("server got %d requests, want %d", n, tt.wantRequests)
			}
			if strings.Contains(err.Error(), "attacker") || strings.Contains(err.Error(), "://") {
				t.Errorf("Error() = %q quotes a URL", err)
			}
			assertNoToken(t, err)
			assertOneLine(t, err)
		})
	}
}

func TestDetectWebhookAPITransportError(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200}))
	c, _ := newTestClient(t, srv, Options{MaxRetries: -1})
	srv.Close()

	_, err := c.DetectWebhookAPI(context.Background())
	var transportErr *TransportError
	if !errors.As(err, &transportErr) {
		t.Fatalf("DetectWebhookAPI() error = %v, want a *TransportError", err)
	}
	if errors.Is(err, ErrNoWebhookAPI) {
		t.Errorf("errors.Is(err, ErrNoWebhookAPI) = true, want false for a connection failure")
	}
}

func TestNotificationServiceURL(t *testing.T) {
	srv := newTestServer(t, routes(map[string][]reply{
		"/v2/storage": {{status: 200, body: indexBody("{{server}}/notification/")}},
	}))
	c, _ := newTestClient(t, srv, Options{})

	got, err := c.NotificationServiceURL(context.Background())
	if err != nil {
		t.Fatalf("NotificationServiceURL() error = %v", err)
	}
	if want := srv.URL + "/notification"; got != want {
		t.Errorf("NotificationServiceURL() = %q, want %q", got, want)
	}
	requests := srv.recorded()
	if len(requests) != 1 || requests[0].path != "/v2/storage" {
		t.Errorf("requests = %+v, want only GET /v2/storage", requests)
	}
}

func TestNotificationServiceURLFailures(t *testing.T) {
	tests := map[string]struct {
		index reply
		want  error
	}{
		"not listed":         {index: reply{status: 200, body: `{"services":[]}`}, want: ErrNoWebhookAPI},
		"untrusted":          {index: reply{status: 200, body: indexBody("https://notification.attacker.example")}, want: ErrUntrustedServiceURL},
		"unauthorized token": {index: reply{status: 401, body: `{"error":"Invalid access token"}`}, want: ErrUnauthorized},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, routes(map[string][]reply{"/v2/storage": {tt.index}}))
			c, _ := newTestClient(t, srv, Options{})
			got, err := c.NotificationServiceURL(context.Background())
			if !errors.Is(err, tt.want) {
				t.Errorf("NotificationServiceURL() = %q, %v, want an error matching %v", got, err, tt.want)
			}
			if got != "" {
				t.Errorf("NotificationServiceURL() = %q, want \"\" with the error", got)
			}
			assertNoToken(t, err)
		})
	}
}

func TestNotificationsRejectsUntrustedURL(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	c, _ := newTestClient(t, srv, Options{})

	for _, baseURL := range []string{
		"",
		"https://notification.attacker.example",
		"http://notification.attacker.example",
		srv.URL + "/notification?token=attacker",
		"http://attacker:pw@127.0.0.1/notification",
	} {
		t.Run(baseURL, func(t *testing.T) {
			api, err := c.Notifications(baseURL)
			if !errors.Is(err, ErrUntrustedServiceURL) {
				t.Fatalf("Notifications() = %v, %v, want an error matching ErrUntrustedServiceURL", api, err)
			}
			if strings.Contains(err.Error(), "attacker") {
				t.Errorf("Error() = %q quotes the URL", err)
			}
			assertOneLine(t, err)
		})
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

// newNotificationClient returns a client of the Notification service that
// srv serves under /notification, and the fake clock of its factory.
func newNotificationClient(t *testing.T, srv *testServer, options Options) (NotificationAPI, *fakeClock) {
	t.Helper()
	c, clk := newTestClient(t, srv, options)
	api, err := c.Notifications(srv.URL + "/notification/")
	if err != nil {
		t.Fatalf("Notifications() error = %v", err)
	}
	return api, clk
}

func TestNotificationRequests(t *testing.T) {
	expiresAt := time.Date(2025, 6, 30, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := map[string]struct {
		call            func(ctx context.Context, api NotificationAPI) error
		reply           reply
		wantMethod      string
		wantPath        string
		wantRawPath     string
		wantBody        string
		wantContentType string
	}{
		"list": {
			call: func(ctx context.Context, api NotificationAPI) error {
				subscriptions, err := api.ListSubscriptions(ctx)
				if err == nil && len(subscriptions) != 1 {
					return fmt.Errorf("got %d subscriptions, want 1", len(subscriptions))
				}
				return err
			},
			reply:      reply{status: 200, body: "[" + subscriptionFixture + "]"},
			wantMethod: "GET", wantPath: "/notification/project-subscriptions",
		},
		"get escapes the id": {
			call: func(ctx context.Context, api NotificationAPI) error {
				_, err := api.GetSubscription(ctx, "a/b c")
				return err
			},
			reply:      reply{status: 200, body: subscriptionFixture},
			wantMethod: "GET", wantPath: "/notification/project-subscriptions/a/b c",
			wantRawPath: "/notification/project-subscriptions/a%2Fb%20c",
		},
		"create with filters and expiry": {
			call: func(ctx context.Context, api NotificationAPI) error {
				_, err := api.CreateSubscription(ctx, SubscriptionSpec{
					Event: "job-failed",
					Filters: []Filter{
						{Field: "job.component.id", Value: "keboola.orchestrator"},
						{Field: "job.duration", Value: "60", Operator: ">"},
					},
					URL:       receiverURL,
					ExpiresAt: &expiresAt,
				})
				return err
			},
			reply:      reply{status: 201, body: subscriptionFixture},
			wantMethod: "POST", wantPath: "/notification/project-subscriptions",
			wantBody: `{"event":"job-failed","filters":[{"field":"job.component.id","value":"keboola.orchestrator"},` +
				`{"field":"job.duration","value":"60","operator":">"}],` +
				`"recipient":{"channel":"webhook","url":"` + receiverURL + `"},"expiresAt":"2025-06-30T14:00:00+02:00"}`,
			wantContentType: "application/json",
		},
		"create without filters or expiry": {
			call: func(ctx context.Context, api NotificationAPI) error {
				_, err := api.CreateSubscription(ctx, SubscriptionSpec{Event: "job-succeeded", Filters: []Filter{}, URL: receiverURL})
				return err
			},
			reply:      reply{status: 200, body: subscriptionFixture},
			wantMethod: "POST", wantPath: "/notification/project-subscriptions",
			wantBody:        `{"event":"job-succeeded","recipient":{"channel":"webhook","url":"` + receiverURL + `"}}`,
			wantContentType: "application/json",
		},
		"delete": {
			call: func(ctx context.Context, api NotificationAPI) error {
				return api.DeleteSubscription(ctx, "17")
			},
			reply:      reply{status: 204},
			wantMethod: "DELETE", wantPath: "/notification/project-subscriptions/17",
		},
		"delete with 200": {
			call: func(ctx context.Context, api NotificationAPI) error {
				return api.DeleteSubscription(ctx, "17")
			},
			reply:      reply{status: 200, body: `{}`},
			wantMethod: "DELETE", wantPath: "/notification/project-subscriptions/17",
		},
	}
	for testName, tt := range tests {
		t.Run(testName, func(t *testing.T) {
			srv := newTestServer(t, replies(tt.reply))
			api, _ := newNotificationClient(t, srv, Options{})

			if err := tt.call(context.Background(), api); err != nil {
				t.Fatalf("call error = %v", err)
			}

			assertOneRequest(t, srv, expectedRequest{
				method: tt.wantMethod, path: tt.wantPath, rawPath: tt.wantRawPath,
				contentType: tt.wantContentType, body: tt.wantBody,
			})
		})
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	// The handler keeps the subscriptions that the test creates, as the
	// service does, and sends ids as strings.
	var mu sync.Mutex
	stored := map[string]json.RawMessage{}
	var order []string
	var srv *testServer
	srv = newTestServer(t, func(w http.ResponseWriter, r *http.Request, index int) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		id := strings.TrimPrefix(r.URL.Path, "/notification/project-subscriptions/")
		switch {
		case r.Method == "POST" && r.URL.Path == "/notification/project-subscriptions":
			var body map[string]any
			recorded := srv.recorded()
			_ = json.Unmarshal([]byte(recorded[len(recorded)-1].body), &body)
			body["id"] = strconv.Itoa(100 + index)
			body["projectId"] = "1234"
			encoded, _ := json.Marshal(body)
			stored[body["id"].(string)] = encoded
			order = append(order, body["id"].(string))
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(encoded)
		case r.Method == "GET" && r.URL.Path == "/notification/project-subscriptions":
			list := []json.RawMessage{}
			for _, id := range order {
				if body, ok := stored[id]; ok {
					list = append(list, body)
				}
			}
			_ = json.NewEncoder(w).Encode(list)
		case r.Method == "GET" && stored[id] != nil:
			_, _ = w.Write(stored[id])
		case r.Method == "DELETE" && stored[id] != nil:
			delete(stored, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"Subscription not found","code":404,"status":"error","exceptionId":"exception-1"}`))
		}
	})
	api, _ := newNotificationClient(t, srv, Options{})
	ctx := context.Background()

	expiresAt := time.Date(2030, 1, 7, 14, 0, 0, 0, time.UTC)
	spec := SubscriptionSpec{
		Event:     "job-failed",
		Filters:   []Filter{{Field: "job.configuration.id", Value: "98765", Operator: "!="}},
		URL:       receiverURL,
		ExpiresAt: &expiresAt,
	}
	created, err := api.CreateSubscription(ctx, spec)
	if err != nil {
		t.Fatalf("CreateSubscription() error = %v", err)
	}
	want := &Subscription{ID: "100", Event: spec.Event, Filters: spec.Filters, URL: receiverURL, ExpiresAt: &expiresAt}
	timeEqual := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	if diff := cmp.Diff(want, created, timeEqual); diff != "" {
		t.Errorf("CreateSubscription() mismatch (-want +got):\n%s", diff)
	}

	got, err := api.GetSubscription(ctx, created.ID)
	if err != nil {
		t.Fatalf("GetSubscription() error = %v", err)
	}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("GetSubscription() mismatch (-want +got):\n%s", diff)
	}

	list, err := api.ListSubscriptions(ctx)
	if err != nil {
		t.Fatalf("ListSubscriptions() error = %v", err)
	}
	if diff := cmp.Diff([]Subscription{*want}, list, timeEqual); diff != "" {
		t.Errorf("ListSubscriptions() mismatch (-want +got):\n%s", diff)
	}

	if err := api.DeleteSubscription(ctx, created.ID); err != nil {
		t.Fatalf("DeleteSubscription() error = %v", err)
	}
	if err := api.DeleteSubscription(ctx, created.ID); err != nil {
		t.Errorf("second DeleteSubscription() error = %v, want nil for a subscription already gone", err)
	}
	_, err = api.GetSubscription(ctx, created.ID)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSubscription() after delete error = %v, want one matching ErrNotFound", err)
	}
	list, err = api.ListSubscriptions(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("ListSubscriptions() after delete = %v, %v, want an empty list", list, err)
	}
}

func TestNotificationEmptyID(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: subscriptionFixture}))
	api, _ := newNotificationClient(t, srv, Options{})
	ctx := context.Background()

	_, getErr := api.GetSubscription(ctx, "")
	deleteErr := api.DeleteSubscription(ctx, "")
	for _, err := range []error{getErr, deleteErr} {
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("error = %v, want one matching ErrInvalidRequest", err)
		}
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestNotificationGetNotFound(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 404, body: `{"error":"Subscription not found","code":404,"status":"error"}`}))
	api, _ := newNotificationClient(t, srv, Options{})

	_, err := api.GetSubscription(context.Background(), "17")
	assertSentinels(t, err, ErrNotFound)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Endpoint != "/project-subscriptions/{id}" {
		t.Errorf("error = %v, want an *APIError of endpoint /project-subscriptions/{id}", err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestNotificationErrorNumericCode(t *testing.T) {
	srv := newTestServer(t, replies(reply{
		status: 400,
		body:   `{"error":"Invalid event","code":400,"status":"error","exceptionId":"exception-42"}`,
	}))
	api, _ := newNotificationClient(t, srv, Options{})

	_, err := api.CreateSubscription(context.Background(), SubscriptionSpec{Event: "nope", URL: receiverURL})
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("CreateSubscription() error = %v, want an *APIError", err)
	}
	if apiErr.Code != "400" {
		t.Errorf("Code = %q, want %q", apiErr.Code, "400")
	}
	if apiErr.Message != "Invalid event" {
		t.Errorf("Message = %q, want %q", apiErr.Message, "Invalid event")
	}
	if apiErr.ExceptionID != "exception-42" {
		t.Errorf("ExceptionID = %q, want %q", apiErr.ExceptionID, "exception-42")
	}
	if apiErr.Maintenance {
		t.Errorf("Maintenance = true, want false for status \"error\"")
	}
	assertSentinels(t, err, ErrInvalidRequest)
	want := `keboola: POST /project-subscriptions: 400 Bad Request: "Invalid event" (code "400", exception id "exception-42")`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNotificationCreateNeverRetried(t *testing.T) {
	for _, status := range []int{409, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newTestServer(t, replies(reply{status: status, header: map[string]string{"Retry-After": "1"}, body: `{"error":"failed","code":` + strconv.Itoa(status) + `}`}))
			api, clk := newNotificationClient(t, srv, Options{})

			created, err := api.CreateSubscription(context.Background(), SubscriptionSpec{Event: "job-failed", URL: receiverURL})
			if err == nil {
				t.Fatalf("CreateSubscription() = %+v, want an error", created)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
			if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
				t.Errorf("client slept %v, want no waits", sleeps)
			}
			if got, want := errors.Is(err, ErrOutcomeUnknown), status >= 500; got != want {
				t.Errorf("errors.Is(err, ErrOutcomeUnknown) = %v, want %v", got, want)
			}
			if status >= 500 && !strings.Contains(err.Error(), "outcome unknown, the subscription may exist") {
				t.Errorf("Error() = %q, want it to say that the subscription may exist", err)
			}
		})
	}
}

func TestNotificationCreateUnusableResponse(t *testing.T) {
	tests := map[string]struct {
		handler func(w http.ResponseWriter, r *http.Request, index int)
		wantErr string
	}{
		"no id":    {handler: replies(reply{status: 201, body: `{"event":"job-failed"}`}), wantErr: "id is missing"},
		"no event": {handler: replies(reply{status: 201, body: `{"id":"1"}`}), wantErr: "event is missing"},
		"empty":    {handler: replies(reply{status: 201}), wantErr: "not a subscription object"},
		"reset": {handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
			hijackAndWrite(w, "")
		}, wantErr: "request failed"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, tt.handler)
			api, _ := newNotificationClient(t, srv, Options{})

			created, err := api.CreateSubscription(context.Background(), SubscriptionSpec{Event: "job-failed", URL: receiverURL})
			if created != nil {
				t.Errorf("CreateSubscription() = %+v, want nil", created)
			}
			assertSentinels(t, err, ErrRetryable, ErrOutcomeUnknown)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Error() = %q, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "the subscription may exist") {
				t.Errorf("Error() = %q, want it to say that the subscription may exist", err)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

func TestNotificationGetRetriedAfter503(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 503, header: map[string]string{"Retry-After": "3"}, body: `{"error":"busy","code":503,"status":"error"}`},
		reply{status: 200, body: subscriptionFixture},
	))
	api, clk := newNotificationClient(t, srv, Options{})

	subscription, err := api.GetSubscription(context.Background(), "17")
	if err != nil {
		t.Fatalf("GetSubscription() error = %v", err)
	}
	if subscription.ID != "17" {
		t.Errorf("ID = %q, want %q", subscription.ID, "17")
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
	if diff := cmp.Diff([]time.Duration{3 * time.Second}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}
}

func TestNotificationRetriesExhausted(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 504, body: `{"error":"timeout","code":504,"status":"error"}`}))
	api, clk := newNotificationClient(t, srv, Options{MaxRetries: 2})

	err := api.DeleteSubscription(context.Background(), "17")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 504 {
		t.Fatalf("DeleteSubscription() error = %v, want the last 504 *APIError", err)
	}
	assertSentinels(t, err, ErrRetryable)
	if n := srv.count(); n != 3 {
		t.Errorf("server got %d requests, want 3", n)
	}
	if diff := cmp.Diff([]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}
}

func TestNotificationListRetriedThenSucceeds(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 502},
		reply{status: 200, body: `{"subscriptions":[` + subscriptionFixture + `]}`},
	))
	api, _ := newNotificationClient(t, srv, Options{})

	subscriptions, err := api.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatalf("ListSubscriptions() error = %v", err)
	}
	if len(subscriptions) != 1 || subscriptions[0].URL != receiverURL {
		t.Errorf("ListSubscriptions() = %+v, want the one subscription", subscriptions)
	}
}

func TestNotificationDeleteNotFoundIsSuccess(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 502, body: `{"error":"upstream"}`},
		reply{status: 404, body: `{"error":"Subscription not found","code":404,"status":"error"}`},
	))
	api, _ := newNotificationClient(t, srv, Options{})
	if err := api.DeleteSubscription(context.Background(), "17"); err != nil {
		t.Errorf("DeleteSubscription() error = %v, want nil when the retry finds the subscription gone", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestNotificationErrorsNeverContainReceiverURL(t *testing.T) {
	// echo repeats the request body, its receiver URL and the URL's query in
	// every field of an error response.
	echo := func(status int) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			var body struct {
				Recipient struct {
					URL string `json:"url"`
				} `json:"recipient"`
			}
			recorded := []byte(r.Header.Get("X-Test-Body"))
			_ = json.Unmarshal(recorded, &body)
			receiver := body.Recipient.URL
			_, query, _ := strings.Cut(receiver, "?")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"error": fmt.Sprintf("Invalid recipient %s (query %s, value %s) in %s", receiver, query,
					strings.TrimPrefix(query, "secret="), recorded),
				"code":        receiver,
				"status":      "error",
				"exceptionId": query,
			})
		}
	}
	for _, status := range []int{400, 409, 422, 429, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var srv *testServer
			srv = newTestServer(t, func(w http.ResponseWriter, r *http.Request, index int) {
				recorded := srv.recorded()
				r.Header.Set("X-Test-Body", recorded[len(recorded)-1].body)
				echo(status)(w, r, index)
			})
			api, _ := newNotificationClient(t, srv, Options{})

			_, err := api.CreateSubscription(context.Background(), SubscriptionSpec{Event: "job-failed", URL: receiverURL})
			if err == nil {
				t.Fatal("CreateSubscription() error = nil, want an error")
			}
			assertNoReceiverSecret(t, err)
			assertNoToken(t, err)
			assertOneLine(t, err)
			if !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("Error() = %q, want the echoed URL replaced by [REDACTED]", err)
			}
		})
	}

	t.Run("URL in success bodies", func(t *testing.T) {
		srv := newTestServer(t, replies(reply{status: 201, body: `{"id":"1","event":"job-failed","recipient":{"url":"` +
			receiverURL + `"},"expiresAt":"` + receiverURL + `"}`}))
		api, _ := newNotificationClient(t, srv, Options{})
		ctx := context.Background()

		_, createErr := api.CreateSubscription(ctx, SubscriptionSpec{Event: "job-failed", URL: receiverURL})
		_, getErr := api.GetSubscription(ctx, "1")
		_, listErr := api.ListSubscriptions(ctx)
		for _, err := range []error{createErr, getErr, listErr} {
			if err == nil {
				t.Errorf("error = nil, want a decode error")
			}
			assertNoReceiverSecret(t, err)
		}
	})
}

// assertNoReceiverSecret fails when err's message contains the receiver URL
// or its secret.
func assertNoReceiverSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); strings.Contains(msg, receiverSecret) || strings.Contains(msg, "receiver.example.com") {
		t.Errorf("error message contains the receiver URL or its secret: %s", msg)
	}
}

func TestReceiverURLSecrets(t *testing.T) {
	tests := map[string]struct {
		url  string
		want []string
	}{
		"query secret": {
			url:  "https://r.example.com/h?secret=abc%2Fdefgh&x=1",
			want: []string{"https://r.example.com/h?secret=abc%2Fdefgh&x=1", "secret=abc%2Fdefgh&x=1", "secret=abc/defgh&x=1", "abc/defgh"},
		},
		"user info": {
			url:  "https://user:pa55word@r.example.com/h",
			want: []string{"https://user:pa55word@r.example.com/h", "pa55word"},
		},
		"no query": {
			url:  "https://r.example.com/h",
			want: []string{"https://r.example.com/h"},
		},
		"not a URL": {
			url:  "://bad url",
			want: []string{"://bad url"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, receiverURLSecrets(tt.url)); diff != "" {
				t.Errorf("receiverURLSecrets() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotificationMetricsLabels(t *testing.T) {
	srv := newTestServer(t, routes(map[string][]reply{
		"/v2/storage/webhooks":                       {{status: 404}},
		"/v2/storage":                                {{status: 200, body: indexBody("{{server}}/notification")}},
		"/notification/project-subscriptions":        {{status: 201, body: subscriptionFixture}, {status: 200, body: "[" + subscriptionFixture + "]"}},
		"/notification/project-subscriptions/777123": {{status: 500}, {status: 200, body: subscriptionFixture}, {status: 404}},
	}))
	reg := prometheus.NewRegistry()
	c, _ := newTestClient(t, srv, Options{Metrics: NewMetrics(reg)})
	ctx := context.Background()

	detection, err := c.DetectWebhookAPI(ctx)
	if err != nil {
		t.Fatalf("DetectWebhookAPI() error = %v", err)
	}
	api, err := c.Notifications(detection.NotificationURL)
	if err != nil {
		t.Fatalf("Notifications() error = %v", err)
	}
	if _, err := api.CreateSubscription(ctx, SubscriptionSpec{Event: "job-failed", URL: receiverURL}); err != nil {
		t.Fatalf("CreateSubscription() error = %v", err)
	}
	if _, err := api.ListSubscriptions(ctx); err != nil {
		t.Fatalf("ListSubscriptions() error = %v", err)
	}
	if _, err := api.GetSubscription(ctx, "777123"); err != nil {
		t.Fatalf("GetSubscription() error = %v", err)
	}
	if err := api.DeleteSubscription(ctx, "777123"); err != nil {
		t.Fatalf("DeleteSubscription() error = %v", err)
	}

	metrics := gatherMetrics(t, reg)
	requestTests := []map[string]string{
		{"method": "GET", "endpoint": "/v2/storage/webhooks", "code_class": "4xx"},
		{"method": "GET", "endpoint": "/v2/storage", "code_class": "2xx"},
		{"method": "POST", "endpoint": "/project-subscriptions", "code_class": "2xx"},
		{"method": "GET", "endpoint": "/project-subscriptions", "code_class": "2xx"},
		{"method": "GET", "endpoint": "/project-subscriptions/{id}", "code_class": "5xx"},
		{"method": "GET", "endpoint": "/project-subscriptions/{id}", "code_class": "2xx"},
		{"method": "DELETE", "endpoint": "/project-subscriptions/{id}", "code_class": "4xx"},
	}
	for _, labels := range requestTests {
		if got, ok := findSample(metrics["keboola_api_requests_total"], labels); !ok || got.count != 1 {
			t.Errorf("keboola_api_requests_total%v = %v (present %v), want 1", labels, got.count, ok)
		}
	}
	if got, ok := findSample(metrics["keboola_api_retries_total"],
		map[string]string{"method": "GET", "endpoint": "/project-subscriptions/{id}"}); !ok || got.count != 1 {
		t.Errorf("GET /project-subscriptions/{id} retries = %v (present %v), want 1", got.count, ok)
	}

	for name, samples := range metrics {
		for _, s := range samples {
			for key, value := range s.labels {
				if strings.Contains(value, "777") || strings.Contains(value, receiverSecret) ||
					strings.Contains(value, "://") || strings.Contains(value, "/notification") {
					t.Errorf("%s label %s=%q contains an id, a URL or a path prefix", name, key, value)
				}
			}
		}
	}
}

func TestNotificationsShareHostPause(t *testing.T) {
	srv := newTestServer(t, routes(map[string][]reply{
		"/notification/project-subscriptions": {{status: 429, header: map[string]string{"Retry-After": "5"}}, {status: 200, body: `[]`}},
	}))
	srvURL := srv.URL
	other := newTestServer(t, replies(reply{status: 200, body: `[]`}))

	f, clk := newTestFactory(Options{MaxRetries: -1})
	first, err := f.Client(srvURL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	second, err := f.Client(srvURL, "tok-OTHER-789")
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	firstAPI, err := first.Notifications(srvURL + "/notification")
	if err != nil {
		t.Fatalf("Notifications() error = %v", err)
	}
	secondAPI, err := second.Notifications(srvURL + "/notification")
	if err != nil {
		t.Fatalf("Notifications() error = %v", err)
	}
	ctx := context.Background()

	_, err = firstAPI.ListSubscriptions(ctx)
	assertSentinels(t, err, ErrRateLimited, ErrRetryable)
	if _, err := secondAPI.ListSubscriptions(ctx); err != nil {
		t.Fatalf("second ListSubscriptions() error = %v", err)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}

	// A service on another host has a limiter of its own, with no pause.
	otherClient, err := f.Client(other.URL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	otherAPI, err := otherClient.Notifications(other.URL)
	if err != nil {
		t.Fatalf("Notifications() error = %v", err)
	}
	if _, err := otherAPI.ListSubscriptions(ctx); err != nil {
		t.Fatalf("ListSubscriptions() on another host error = %v", err)
	}
	if n := len(clk.recordedSleeps()); n != 1 {
		t.Errorf("client waited %d times, want no wait for another host", n)
	}
}

func TestNotificationRetryLog(t *testing.T) {
	var logs strings.Builder
	logger := newRecordingLogger(&logs)
	srv := newTestServer(t, replies(
		reply{status: 500, body: `{"error":"failed for tok-SECRET-123"}`},
		reply{status: 200, body: `[]`},
	))
	api, _ := newNotificationClient(t, srv, Options{})
	if _, err := api.ListSubscriptions(withLogger(context.Background(), logger)); err != nil {
		t.Fatalf("ListSubscriptions() error = %v", err)
	}
	if !strings.Contains(logs.String(), "Retrying Notification service request") {
		t.Errorf("log = %q, want a retry line of the Notification service", logs.String())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log contains the token: %q", logs.String())
	}
}
