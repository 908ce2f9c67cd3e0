package keboola

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const webhookBody = `{"id":"wh-1","name":"jobs","url":"https://example.com/hook","events":["storage.jobFailed"],"createdTime":"2024-01-15T10:35:01+0000"}`

func TestFactoryClientRejects(t *testing.T) {
	tests := map[string]struct {
		stackURL string
		token    string
		want     error
	}{
		"invalid stack":        {stackURL: "ftp://connection.keboola.com", token: testToken, want: ErrInvalidStackURL},
		"empty token":          {stackURL: "connection.keboola.com", token: "", want: ErrInvalidToken},
		"blank token":          {stackURL: "connection.keboola.com", token: " \n", want: ErrInvalidToken},
		"line break in token":  {stackURL: "connection.keboola.com", token: "tok-SECRET-123\r\nX-Other: 1", want: ErrInvalidToken},
		"space in token":       {stackURL: "connection.keboola.com", token: "tok-SECRET-123 x", want: ErrInvalidToken},
		"non-ASCII in token":   {stackURL: "connection.keboola.com", token: "tok-SECRET-123é", want: ErrInvalidToken},
		"token of 1 MB":        {stackURL: "connection.keboola.com", token: "tok-SECRET-" + strings.Repeat("x", 1_000_000), want: ErrInvalidToken},
		"token as stack value": {stackURL: "https://tok-SECRET-123@x", token: testToken, want: ErrInvalidStackURL},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := NewFactory(Options{}).Client(tt.stackURL, tt.token)
			if err == nil {
				t.Fatalf("Client() = %v, want an error", c)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Client() error = %v, want one matching %v", err, tt.want)
			}
			assertNoToken(t, err)
		})
	}
}

func TestFactoryClientTrimsToken(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	c, err := NewFactory(Options{}).Client(srv.URL+"/", testToken+"\n")
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	if got, want := c.StackURL(), srv.URL; got != want {
		t.Errorf("StackURL() = %q, want %q", got, want)
	}
	if _, err := c.ListWebhooks(context.Background()); err != nil {
		t.Fatalf("ListWebhooks() error = %v", err)
	}
	if got := srv.recorded()[0].token; got != testToken {
		t.Errorf("token header = %q, want the trimmed token", got)
	}
}

func TestClientRequests(t *testing.T) {
	name, url := "renamed", "https://example.com/new"
	tests := map[string]struct {
		call            func(ctx context.Context, c *Client) error
		reply           reply
		wantMethod      string
		wantPath        string
		wantRawPath     string
		wantBody        string
		wantContentType string
	}{
		"verify": {
			call: func(ctx context.Context, c *Client) error {
				info, err := c.VerifyToken(ctx)
				if err == nil && info.Owner.ID != 42 {
					return fmt.Errorf("owner id = %d, want 42", info.Owner.ID)
				}
				return err
			},
			reply:      reply{status: 200, body: `{"id":"1","owner":{"id":42,"name":"Acme"}}`},
			wantMethod: "GET", wantPath: "/v2/storage/tokens/verify",
		},
		"list": {
			call: func(ctx context.Context, c *Client) error {
				webhooks, err := c.ListWebhooks(ctx)
				if err == nil && len(webhooks) != 1 {
					return fmt.Errorf("got %d webhooks, want 1", len(webhooks))
				}
				return err
			},
			reply:      reply{status: 200, body: "[" + webhookBody + "]"},
			wantMethod: "GET", wantPath: "/v2/storage/webhooks",
		},
		"get escapes the id": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.GetWebhook(ctx, "a/b c")
				return err
			},
			reply:      reply{status: 200, body: webhookBody},
			wantMethod: "GET", wantPath: "/v2/storage/webhooks/a/b c", wantRawPath: "/v2/storage/webhooks/a%2Fb%20c",
		},
		"create": {
			call: func(ctx context.Context, c *Client) error {
				created, err := c.CreateWebhook(ctx, WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
				if err == nil && created.Secret != "sig-1" {
					return fmt.Errorf("secret = %q, want %q", created.Secret, "sig-1")
				}
				return err
			},
			reply:      reply{status: 201, body: `{"id":"wh-1","name":"jobs","secret":"sig-1"}`},
			wantMethod: "POST", wantPath: "/v2/storage/webhooks",
			wantBody:        `{"events":["storage.jobFailed"],"name":"jobs","url":"https://example.com/hook"}`,
			wantContentType: "application/json",
		},
		"create with nil events": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateWebhook(ctx, WebhookSpec{Name: "jobs", URL: "https://example.com/hook"})
				return err
			},
			reply:      reply{status: 200, body: `{"id":"wh-1","token":"sig-1"}`},
			wantMethod: "POST", wantPath: "/v2/storage/webhooks",
			wantBody:        `{"events":[],"name":"jobs","url":"https://example.com/hook"}`,
			wantContentType: "application/json",
		},
		"update name and url": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateWebhook(ctx, "wh-1", WebhookUpdate{Name: &name, URL: &url})
				return err
			},
			reply:      reply{status: 200, body: webhookBody},
			wantMethod: "PUT", wantPath: "/v2/storage/webhooks/wh-1",
			wantBody:        `{"name":"renamed","url":"https://example.com/new"}`,
			wantContentType: "application/json",
		},
		"update events only": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateWebhook(ctx, "wh-1", WebhookUpdate{Events: []string{"storage.tableCreated", "storage.jobFailed"}})
				return err
			},
			reply:      reply{status: 200, body: webhookBody},
			wantMethod: "PUT", wantPath: "/v2/storage/webhooks/wh-1",
			wantBody:        `{"events":["storage.tableCreated","storage.jobFailed"]}`,
			wantContentType: "application/json",
		},
		"delete": {
			call: func(ctx context.Context, c *Client) error {
				return c.DeleteWebhook(ctx, "wh-1")
			},
			reply:      reply{status: 204},
			wantMethod: "DELETE", wantPath: "/v2/storage/webhooks/wh-1",
		},
	}
	for testName, tt := range tests {
		t.Run(testName, func(t *testing.T) {
			srv := newTestServer(t, replies(tt.reply))
			c, _ := newTestClient(t, srv, Options{})

			if err := tt.call(context.Background(), c); err != nil {
				t.Fatalf("call error = %v", err)
			}

			assertOneRequest(t, srv, expectedRequest{
				method: tt.wantMethod, path: tt.wantPath, rawPath: tt.wantRawPath,
				contentType: tt.wantContentType, body: tt.wantBody,
			})
		})
	}
}

func assertJSONEqual(t *testing.T, got, want string) {
	t.Helper()
	var gotValue, wantValue any
	if err := json.Unmarshal([]byte(got), &gotValue); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &wantValue); err != nil {
		t.Fatalf("expected body %q is not JSON: %v", want, err)
	}
	if diff := cmp.Diff(wantValue, gotValue); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
}

func TestClientCustomUserAgent(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	c, _ := newTestClient(t, srv, Options{UserAgent: "test-agent/1"})
	if _, err := c.ListWebhooks(context.Background()); err != nil {
		t.Fatalf("ListWebhooks() error = %v", err)
	}
	if got := srv.recorded()[0].userAgent; got != "test-agent/1" {
		t.Errorf("User-Agent = %q, want %q", got, "test-agent/1")
	}
}

func TestClientEmptyWebhookID(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: webhookBody}))
	c, _ := newTestClient(t, srv, Options{})
	ctx := context.Background()

	_, getErr := c.GetWebhook(ctx, "")
	_, updateErr := c.UpdateWebhook(ctx, "", WebhookUpdate{})
	deleteErr := c.DeleteWebhook(ctx, "")
	for _, err := range []error{getErr, updateErr, deleteErr} {
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("error = %v, want one matching ErrInvalidRequest", err)
		}
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestClientErrorStatuses(t *testing.T) {
	tests := []struct {
		status     int
		want       []error
		wantCreate []error
	}{
		{status: 400, want: []error{ErrInvalidRequest}, wantCreate: []error{ErrInvalidRequest}},
		{status: 401, want: []error{ErrUnauthorized}, wantCreate: []error{ErrUnauthorized}},
		{status: 403, want: []error{ErrForbidden}, wantCreate: []error{ErrForbidden}},
		{status: 404, want: []error{ErrNotFound}, wantCreate: []error{ErrNotFound}},
		{status: 409, want: []error{ErrRetryable}, wantCreate: []error{ErrRetryable}},
		{status: 422, want: []error{ErrInvalidRequest}, wantCreate: []error{ErrInvalidRequest}},
		{status: 423, want: []error{ErrRetryable}, wantCreate: []error{ErrRetryable}},
		{status: 429, want: []error{ErrRateLimited, ErrRetryable}, wantCreate: []error{ErrRateLimited, ErrRetryable}},
		{status: 500, want: []error{ErrRetryable}, wantCreate: []error{ErrRetryable, ErrOutcomeUnknown}},
		{status: 502, want: []error{ErrRetryable}, wantCreate: []error{ErrRetryable, ErrOutcomeUnknown}},
		{status: 503, want: []error{ErrRateLimited, ErrRetryable}, wantCreate: []error{ErrRateLimited, ErrRetryable, ErrOutcomeUnknown}},
		{status: 504, want: []error{ErrRetryable}, wantCreate: []error{ErrRetryable, ErrOutcomeUnknown}},
	}
	body := `{"error":"failure tok-SECRET-123","code":"storage.failure","exceptionId":"exception-7"}`
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			srv := newTestServer(t, replies(reply{status: tt.status, body: body}))
			c, _ := newTestClient(t, srv, Options{MaxRetries: -1})
			ctx := context.Background()

			_, err := c.GetWebhook(ctx, "wh-1")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("GetWebhook() error = %v, want an *APIError", err)
			}
			if apiErr.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", apiErr.StatusCode, tt.status)
			}
			if apiErr.Method != "GET" || apiErr.Endpoint != "/v2/storage/webhooks/{id}" {
				t.Errorf("request = %s %s, want GET /v2/storage/webhooks/{id}", apiErr.Method, apiErr.Endpoint)
			}
			if apiErr.Code != "storage.failure" {
				t.Errorf("Code = %q, want %q", apiErr.Code, "storage.failure")
			}
			if apiErr.Message != "failure [REDACTED]" {
				t.Errorf("Message = %q, want %q", apiErr.Message, "failure [REDACTED]")
			}
			if apiErr.ExceptionID != "exception-7" {
				t.Errorf("ExceptionID = %q, want %q", apiErr.ExceptionID, "exception-7")
			}
			assertSentinels(t, err, tt.want...)
			assertNoToken(t, err)
			assertOneLine(t, err)

			_, err = c.CreateWebhook(ctx, WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
			assertSentinels(t, err, tt.wantCreate...)
			assertNoToken(t, err)

			if n := srv.count(); n != 2 {
				t.Errorf("server got %d requests, want 2 (no retries)", n)
			}
		})
	}
}

func TestClientErrorStatusNoRetryForTerminal(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 422} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			t.Run(fmt.Sprintf("%s %d", method, status), func(t *testing.T) {
				srv := newTestServer(t, replies(reply{status: status, body: `{"error":"no"}`}))
				c, clk := newTestClient(t, srv, Options{})
				err := callMethod(context.Background(), c, method)
				if status == 404 && method == "DELETE" {
					if err != nil {
						t.Errorf("DeleteWebhook() error = %v, want nil for 404", err)
					}
				} else if err == nil {
					t.Errorf("error = nil, want %d", status)
				}
				if n := srv.count(); n != 1 {
					t.Errorf("server got %d requests, want 1", n)
				}
				if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
					t.Errorf("client slept %v, want no waits", sleeps)
				}
			})
		}
	}
}

// callMethod sends one request of method to /v2/storage/webhooks/wh-1, or
// to /v2/storage/webhooks for POST.
func callMethod(ctx context.Context, c *Client, method string) error {
	var err error
	switch method {
	case "GET":
		_, err = c.GetWebhook(ctx, "wh-1")
	case "PUT":
		name := "jobs"
		_, err = c.UpdateWebhook(ctx, "wh-1", WebhookUpdate{Name: &name})
	case "DELETE":
		err = c.DeleteWebhook(ctx, "wh-1")
	case "POST":
		_, err = c.CreateWebhook(ctx, WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
	}
	return err
}

func TestClientBodies(t *testing.T) {
	huge := `{"error":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	tests := map[string]struct {
		handler     func(w http.ResponseWriter, r *http.Request, index int)
		wantStatus  int
		wantMessage string
		wantType    string
	}{
		"empty error body": {
			handler:     replies(reply{status: 502}),
			wantStatus:  502,
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 502 Bad Gateway: response body is empty",
			wantType:    "api",
		},
		"HTML error body": {
			handler: replies(reply{
				status: 502, header: map[string]string{"Content-Type": "text/html"},
				body: "<html><body>Bad gateway tok-SECRET-123</body></html>",
			}),
			wantStatus:  502,
			wantMessage: `keboola: GET /v2/storage/webhooks/{id}: 502 Bad Gateway: response body of type "text/html" is not JSON`,
			wantType:    "api",
		},
		"malformed JSON error body": {
			handler:     replies(reply{status: 500, body: `{"error":`}),
			wantStatus:  500,
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 500 Internal Server Error: response body is not valid JSON",
			wantType:    "api",
		},
		"oversize error body with length": {
			handler:     replies(reply{status: 500, body: huge}),
			wantStatus:  500,
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 500 Internal Server Error: response body exceeds 1 MiB",
			wantType:    "api",
		},
		"oversize success body with length": {
			handler:     replies(reply{status: 200, body: huge}),
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 200 OK: invalid response body: response body exceeds 1 MiB",
			wantType:    "response",
		},
		"oversize success body chunked": {
			handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusOK)
				chunk := []byte(strings.Repeat(" ", 64<<10))
				for range 20 {
					_, _ = w.Write(chunk)
					w.(http.Flusher).Flush()
				}
			},
			wantMessage: "invalid response body: response body exceeds 1 MiB",
			wantType:    "response",
		},
		"malformed JSON success body": {
			handler:     replies(reply{status: 200, body: `{"id":"wh-1"`}),
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 200 OK: invalid response body: not a webhook object",
			wantType:    "response",
		},
		"truncated success body": {
			handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
				hijackAndWrite(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":\"wh-")
			},
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: request failed: unexpected EOF",
			wantType:    "transport",
		},
		"truncated error body": {
			handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
				hijackAndWrite(w, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"error\":")
			},
			wantStatus:  500,
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: 500 Internal Server Error: response body could not be read",
			wantType:    "api",
		},
		"connection closed without response": {
			handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
				hijackAndWrite(w, "")
			},
			wantMessage: "keboola: GET /v2/storage/webhooks/{id}: request failed: EOF",
			wantType:    "transport",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, tt.handler)
			c, _ := newTestClient(t, srv, Options{MaxRetries: -1})

			_, err := c.GetWebhook(context.Background(), "wh-1")
			if err == nil {
				t.Fatal("GetWebhook() error = nil, want an error")
			}
			if got := err.Error(); got != tt.wantMessage && !strings.Contains(got, tt.wantMessage) {
				t.Errorf("Error() = %q, want %q", got, tt.wantMessage)
			}
			switch tt.wantType {
			case "api":
				var apiErr *APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("error %v is not an *APIError", err)
				}
				if apiErr.StatusCode != tt.wantStatus {
					t.Errorf("StatusCode = %d, want %d", apiErr.StatusCode, tt.wantStatus)
				}
			case "response":
				var responseErr *ResponseError
				if !errors.As(err, &responseErr) {
					t.Fatalf("error %v is not a *ResponseError", err)
				}
			case "transport":
				var transportErr *TransportError
				if !errors.As(err, &transportErr) {
					t.Fatalf("error %v is not a *TransportError", err)
				}
				if !transportErr.RequestSent {
					t.Errorf("RequestSent = false, want true")
				}
			}
			assertNoToken(t, err)
			assertOneLine(t, err)
		})
	}
}

// hijackAndWrite takes over the connection, writes raw and closes it, so
// that the client sees a response cut short.
func hijackAndWrite(w http.ResponseWriter, raw string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_, _ = buf.WriteString(raw)
	_ = buf.Flush()
	_ = conn.Close()
}

func TestClientBodyAtLimit(t *testing.T) {
	body := "[]" + strings.Repeat(" ", maxBodyBytes-2)
	srv := newTestServer(t, replies(reply{status: 200, body: body}))
	c, _ := newTestClient(t, srv, Options{})
	webhooks, err := c.ListWebhooks(context.Background())
	if err != nil {
		t.Fatalf("ListWebhooks() error = %v for a body of exactly 1 MiB", err)
	}
	if len(webhooks) != 0 {
		t.Errorf("ListWebhooks() = %v, want none", webhooks)
	}
}

func TestClientTimeout(t *testing.T) {
	blockUntilCanceled := func(_ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	slowBody := func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `[{"id":`)
		w.(http.Flusher).Flush()
		blockUntilCanceled(w, r, 0)
	}
	tests := map[string]struct {
		handler func(w http.ResponseWriter, r *http.Request, index int)
		method  string
		want    []error
	}{
		"GET slow headers":  {handler: blockUntilCanceled, method: "GET", want: []error{ErrRetryable}},
		"GET slow body":     {handler: slowBody, method: "GET", want: []error{ErrRetryable}},
		"POST slow headers": {handler: blockUntilCanceled, method: "POST", want: []error{ErrRetryable, ErrOutcomeUnknown}},
		"POST slow body":    {handler: slowBody, method: "POST", want: []error{ErrRetryable, ErrOutcomeUnknown}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, tt.handler)
			c, _ := newTestClient(t, srv, Options{Timeout: 100 * time.Millisecond, MaxRetries: -1})

			start := time.Now()
			err := callMethod(context.Background(), c, tt.method)
			elapsed := time.Since(start)

			var transportErr *TransportError
			if !errors.As(err, &transportErr) {
				t.Fatalf("error = %v, want a *TransportError", err)
			}
			if !transportErr.TimedOut {
				t.Errorf("TimedOut = false, want true")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(err, context.DeadlineExceeded) = false, want true")
			}
			if !strings.Contains(err.Error(), "request timed out after 100ms") {
				t.Errorf("Error() = %q, want it to say the request timed out after 100ms", err)
			}
			if elapsed > 3*time.Second {
				t.Errorf("call took %v, want about the 100ms timeout", elapsed)
			}
			assertSentinels(t, err, tt.want...)
			assertNoToken(t, err)
		})
	}
}

func TestClientTimeoutRetried(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, index int) {
		if index == 0 {
			<-r.Context().Done()
			return
		}
		replies(reply{status: 200, body: `[]`})(w, r, index)
	})
	c, clk := newTestClient(t, srv, Options{Timeout: 100 * time.Millisecond})
	if _, err := c.ListWebhooks(context.Background()); err != nil {
		t.Fatalf("ListWebhooks() error = %v, want success on the retry", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
	if diff := cmp.Diff([]time.Duration{100 * time.Millisecond}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}
}

func TestClientCallerContextCanceled(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		<-r.Context().Done()
	})
	c, _ := newTestClient(t, srv, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.CreateWebhook(ctx, WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})

	var transportErr *TransportError
	if !errors.As(err, &transportErr) {
		t.Fatalf("error = %v, want a *TransportError", err)
	}
	if transportErr.TimedOut {
		t.Errorf("TimedOut = true, want false for a canceled caller context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false, want true")
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("errors.Is(err, ErrOutcomeUnknown) = false, want true for a create canceled after it was sent")
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestClientContextCanceledBeforeSend(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 201, body: `{"id":"1","secret":"s"}`}))
	c, _ := newTestClient(t, srv, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := callMethod(ctx, c, "POST")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want one matching context.Canceled", err)
	}
	if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrRateLimited) {
		t.Errorf("error = %v matches ErrOutcomeUnknown or ErrRateLimited, want neither for a request never sent", err)
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestClientConnectionRefused(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200}))
	c, clk := newTestClient(t, srv, Options{MaxRetries: 2})
	srv.Close()

	_, err := c.CreateWebhook(context.Background(), WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
	var transportErr *TransportError
	if !errors.As(err, &transportErr) {
		t.Fatalf("CreateWebhook() error = %v, want a *TransportError", err)
	}
	if transportErr.RequestSent {
		t.Errorf("RequestSent = true, want false when the connection was refused")
	}
	assertSentinels(t, err, ErrRetryable)

	_, err = c.ListWebhooks(context.Background())
	assertSentinels(t, err, ErrRetryable)
	if diff := cmp.Diff([]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}
	assertNoToken(t, err)
}

func TestClientCreateConnectionReset(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		hijackAndWrite(w, "")
	})
	c, _ := newTestClient(t, srv, Options{})
	_, err := c.CreateWebhook(context.Background(), WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
	assertSentinels(t, err, ErrRetryable, ErrOutcomeUnknown)
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
	if !strings.Contains(err.Error(), "outcome unknown") {
		t.Errorf("Error() = %q, want it to say the outcome is unknown", err)
	}
}

func TestClientCreateUnusableResponse(t *testing.T) {
	tests := map[string]struct {
		handler func(w http.ResponseWriter, r *http.Request, index int)
		wantErr string
	}{
		"no secret":     {handler: replies(reply{status: 201, body: `{"id":"wh-1","name":"jobs"}`}), wantErr: "signing secret is missing"},
		"no id":         {handler: replies(reply{status: 201, body: `{"name":"jobs","secret":"s"}`}), wantErr: "id is missing"},
		"empty body":    {handler: replies(reply{status: 201}), wantErr: "not a webhook object"},
		"oversize body": {handler: replies(reply{status: 201, body: `{"id":"1","secret":"` + strings.Repeat("s", maxBodyBytes) + `"}`}), wantErr: "exceeds 1 MiB"},
		"truncated body": {handler: func(w http.ResponseWriter, _ *http.Request, _ int) {
			hijackAndWrite(w, "HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{\"id\":")
		}, wantErr: "unexpected EOF"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, tt.handler)
			c, _ := newTestClient(t, srv, Options{})
			created, err := c.CreateWebhook(context.Background(), WebhookSpec{Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"}})
			if created != nil {
				t.Errorf("CreateWebhook() = %+v, want nil", created)
			}
			assertSentinels(t, err, ErrRetryable, ErrOutcomeUnknown)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Error() = %q, want it to contain %q", err, tt.wantErr)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

func TestClientDeleteNotFoundIsSuccess(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 502, body: `{"error":"upstream"}`},
		reply{status: 404, body: `{"error":"Webhook not found","code":"storage.webhookNotFound"}`},
	))
	c, _ := newTestClient(t, srv, Options{})
	if err := c.DeleteWebhook(context.Background(), "wh-1"); err != nil {
		t.Errorf("DeleteWebhook() error = %v, want nil when the retry finds the webhook gone", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestClientRedirectNotFollowed(t *testing.T) {
	target := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, target.URL+"/v2/storage/webhooks?token="+testToken, http.StatusFound)
	})
	f, _ := newTestFactory(Options{HTTPClient: &http.Client{}})
	c, err := f.Client(srv.URL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}

	_, err = c.ListWebhooks(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusFound {
		t.Fatalf("ListWebhooks() error = %v, want an *APIError with status 302", err)
	}
	if !strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("Error() = %q, want it to say that redirects are not followed", err)
	}
	if n := target.count(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
	assertNoToken(t, err)
}

func TestClientErrorsNeverContainToken(t *testing.T) {
	echo := func(status int) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			token := r.Header.Get("X-StorageApi-Token")
			w.Header().Set("Content-Type", "application/json; x="+token)
			w.Header().Set("Retry-After", token)
			w.Header().Set("Location", "https://example.com/"+token)
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error": "token " + token, "code": token, "exceptionId": token,
				"status": "maintenance", "reason": token, "estimatedEndTime": token,
			})
		}
	}
	statuses := []int{301, 400, 401, 403, 404, 409, 422, 423, 429, 500, 502, 503, 504}
	for _, status := range statuses {
		for _, method := range []string{"GET", "PUT", "DELETE", "POST"} {
			t.Run(fmt.Sprintf("%s %d", method, status), func(t *testing.T) {
				srv := newTestServer(t, echo(status))
				c, _ := newTestClient(t, srv, Options{MaxRetries: 1})
				err := callMethod(context.Background(), c, method)
				if err == nil && (method != "DELETE" || status != 404) {
					t.Fatalf("error = nil, want %d", status)
				}
				assertNoToken(t, err)
				assertOneLine(t, err)
			})
		}
	}

	t.Run("token in success bodies", func(t *testing.T) {
		srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			token := r.Header.Get("X-StorageApi-Token")
			_, _ = fmt.Fprintf(w, `{"id":%q,"owner":{"id":%q},"expires":%q,"createdTime":%q,"name":%q}`, token, token, token, token, token)
		})
		c, _ := newTestClient(t, srv, Options{})
		ctx := context.Background()
		_, verifyErr := c.VerifyToken(ctx)
		_, listErr := c.ListWebhooks(ctx)
		_, getErr := c.GetWebhook(ctx, "wh-1")
		_, createErr := c.CreateWebhook(ctx, WebhookSpec{Name: "jobs"})
		for _, err := range []error{verifyErr, listErr, getErr, createErr} {
			if err == nil {
				t.Errorf("error = nil, want a decode error")
			}
			assertNoToken(t, err)
		}
	})
}

func TestClientRetriesThenSucceeds(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 500, body: `{"error":"boom"}`},
		reply{status: 502},
		reply{status: 409, body: `{"error":"conflict"}`},
		reply{status: 423, body: `{"error":"locked"}`},
		reply{status: 200, body: webhookBody},
	))
	c, clk := newTestClient(t, srv, Options{})
	webhook, err := c.GetWebhook(context.Background(), "wh-1")
	if err != nil {
		t.Fatalf("GetWebhook() error = %v", err)
	}
	if webhook.ID != "wh-1" {
		t.Errorf("ID = %q, want %q", webhook.ID, "wh-1")
	}
	if n := srv.count(); n != 5 {
		t.Errorf("server got %d requests, want 5", n)
	}
	// Without jitter each wait is half of its step: 200ms, 400ms, 800ms, 1.6s.
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	if diff := cmp.Diff(want, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}
}

func TestClientRetriesExhausted(t *testing.T) {
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			srv := newTestServer(t, replies(reply{status: 504}))
			c, clk := newTestClient(t, srv, Options{MaxRetries: 3, MinBackoff: time.Second, MaxBackoff: 3 * time.Second})
			err := callMethod(context.Background(), c, method)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 504 {
				t.Fatalf("error = %v, want the last 504 *APIError", err)
			}
			if n := srv.count(); n != 4 {
				t.Errorf("server got %d requests, want 4", n)
			}
			// Steps 1s, 2s, then 3s capped by MaxBackoff.
			want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
			if diff := cmp.Diff(want, clk.recordedSleeps()); diff != "" {
				t.Errorf("waits mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientCreateNeverRetried(t *testing.T) {
	for _, status := range []int{409, 423, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newTestServer(t, replies(reply{status: status, header: map[string]string{"Retry-After": "1"}}))
			c, clk := newTestClient(t, srv, Options{})
			err := callMethod(context.Background(), c, "POST")
			if err == nil {
				t.Fatal("CreateWebhook() error = nil, want an error")
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
		})
	}
}

func TestClientRetryAfter(t *testing.T) {
	start := newFakeClock().Now()
	tests := map[string]struct {
		first     reply
		wantSleep time.Duration
	}{
		"429 seconds": {
			first:     reply{status: 429, header: map[string]string{"Retry-After": "7"}},
			wantSleep: 7 * time.Second,
		},
		"429 HTTP date": {
			first:     reply{status: 429, header: map[string]string{"Retry-After": start.Add(9 * time.Second).Format(http.TimeFormat)}},
			wantSleep: 9 * time.Second,
		},
		"429 shorter than backoff": {
			first:     reply{status: 429, header: map[string]string{"Retry-After": "0"}},
			wantSleep: 100 * time.Millisecond,
		},
		"503 maintenance header": {
			first: reply{
				status: 503, header: map[string]string{"Retry-After": "45"},
				body: `{"status":"maintenance","reason":"Upgrade","estimatedEndTime":"2024-01-15T11:00:00+0000"}`,
			},
			wantSleep: 45 * time.Second,
		},
		"503 maintenance end time": {
			first: reply{
				status: 503,
				body:   `{"status":"maintenance","reason":"Upgrade","estimatedEndTime":"2024-01-15T10:35:31+0000"}`,
			},
			wantSleep: 30 * time.Second,
		},
		"Retry-After over MaxBackoff": {
			first:     reply{status: 429, header: map[string]string{"Retry-After": "50"}},
			wantSleep: 50 * time.Second,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, replies(tt.first, reply{status: 200, body: `[]`}))
			c, clk := newTestClient(t, srv, Options{MaxBackoff: 10 * time.Second})
			if _, err := c.ListWebhooks(context.Background()); err != nil {
				t.Fatalf("ListWebhooks() error = %v", err)
			}
			if diff := cmp.Diff([]time.Duration{tt.wantSleep}, clk.recordedSleeps()); diff != "" {
				t.Errorf("waits mismatch (-want +got):\n%s", diff)
			}
			if n := srv.count(); n != 2 {
				t.Errorf("server got %d requests, want 2", n)
			}
		})
	}
}

func TestClientRetryAfterTooLong(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 503, header: map[string]string{"Retry-After": "3600"}, body: `{"status":"maintenance","reason":"Upgrade"}`},
		reply{status: 200, body: `[]`},
	))
	c, clk := newTestClient(t, srv, Options{MaxRetryAfter: 10 * time.Minute})

	_, err := c.ListWebhooks(context.Background())
	if got, ok := RetryAfter(err); !ok || got != time.Hour {
		t.Errorf("RetryAfter(err) = %v, %v, want 1h, true", got, ok)
	}
	assertSentinels(t, err, ErrRateLimited, ErrRetryable)
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
	if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
		t.Errorf("client slept %v, want no waits", sleeps)
	}
}

func TestClientBackoffStopsOnCancel(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 500}))
	c, err := NewFactory(Options{MinBackoff: 20 * time.Second}).Client(srv.URL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.ListWebhooks(ctx)
	elapsed := time.Since(start)

	if elapsed > 5*time.Second {
		t.Errorf("ListWebhooks() took %v, want it to return when the context is canceled", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false, want true (err: %v)", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
		t.Errorf("error = %v, want it to carry the last 500 response", err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
	assertOneLine(t, err)
}

func TestClientBackoffBeyondDeadline(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 500}))
	c, clk := newTestClient(t, srv, Options{MinBackoff: 10 * time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.ListWebhooks(ctx)

	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
		t.Errorf("error = %v, want the 500 *APIError at once", err)
	}
	if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
		t.Errorf("client slept %v, want no wait past the deadline", sleeps)
	}
}

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{attempt: 0, jitter: 0, want: 100 * time.Millisecond},
		{attempt: 0, jitter: 0.5, want: 150 * time.Millisecond},
		{attempt: 0, jitter: 0.999, want: 199900 * time.Microsecond},
		{attempt: 1, jitter: 0, want: 200 * time.Millisecond},
		{attempt: 3, jitter: 0, want: 800 * time.Millisecond},
		{attempt: 10, jitter: 0, want: 15 * time.Second},
		{attempt: 10, jitter: 0.999, want: 29985 * time.Millisecond},
		{attempt: 1000, jitter: 0, want: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("attempt %d jitter %v", tt.attempt, tt.jitter), func(t *testing.T) {
			got := backoffDelay(tt.attempt, 200*time.Millisecond, 30*time.Second, tt.jitter)
			if got != tt.want {
				t.Errorf("backoffDelay() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientRetryLogOmitsToken(t *testing.T) {
	var logs strings.Builder
	logger := newRecordingLogger(&logs)
	srv := newTestServer(t, replies(
		reply{status: 500, body: `{"error":"token tok-SECRET-123 broke"}`},
		reply{status: 200, body: `[]`},
	))
	c, _ := newTestClient(t, srv, Options{})
	if _, err := c.ListWebhooks(withLogger(context.Background(), logger)); err != nil {
		t.Fatalf("ListWebhooks() error = %v", err)
	}
	if !strings.Contains(logs.String(), "Retrying Storage API request") {
		t.Errorf("log = %q, want a retry line", logs.String())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log contains the token: %q", logs.String())
	}
}
