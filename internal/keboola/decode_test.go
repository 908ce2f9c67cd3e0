package keboola

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func timePtr(t time.Time) *time.Time { return &t }

func TestDecodeTokenInfo(t *testing.T) {
	tests := map[string]struct {
		body string
		want *TokenInfo
	}{
		"numeric owner id, no expiry": {
			body: `{"id":"12345","description":"operator","isMasterToken":true,"canManageTokens":true,
				"expires":null,"isExpired":false,"isDisabled":false,
				"owner":{"id":987,"name":"Acme","region":"us-east-1"}}`,
			want: &TokenInfo{
				ID: "12345", Description: "operator", IsMasterToken: true, CanManageTokens: true,
				Owner: Project{ID: 987, Name: "Acme", Region: "us-east-1"},
			},
		},
		"string owner id, RFC 3339 expiry": {
			body: `{"id":"1","expires":"2025-06-30T12:00:00Z","isExpired":true,"isDisabled":true,"owner":{"id":"987","name":"Acme"}}`,
			want: &TokenInfo{
				ID: "1", Expires: timePtr(time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)), IsExpired: true, IsDisabled: true,
				Owner: Project{ID: 987, Name: "Acme"},
			},
		},
		"numeric offset expiry": {
			body: `{"id":"1","expires":"2025-06-30T14:00:00+0200","owner":{"id":5}}`,
			want: &TokenInfo{ID: "1", Expires: timePtr(time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)), Owner: Project{ID: 5}},
		},
		"numeric token id, empty expiry, unknown fields": {
			body: `{"id":77,"expires":"","owner":{"id":5,"features":["x"]},"admin":{"id":1}}`,
			want: &TokenInfo{ID: "77", Owner: Project{ID: 5}},
		},
		"null description": {
			body: `{"id":"1","description":null,"owner":{"id":5,"name":null}}`,
			want: &TokenInfo{ID: "1", Owner: Project{ID: 5}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeTokenInfo([]byte(tt.body))
			if err != nil {
				t.Fatalf("decodeTokenInfo() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("decodeTokenInfo() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeTokenInfoRejects(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"not JSON":              {body: `<html>`, wantErr: "not a token object"},
		"array":                 {body: `[]`, wantErr: "not a token object"},
		"no owner":              {body: `{"id":"1"}`, wantErr: "owner is missing"},
		"no owner id":           {body: `{"id":"1","owner":{"name":"Acme"}}`, wantErr: "owner.id is missing"},
		"owner id not a number": {body: `{"id":"1","owner":{"id":"tok-SECRET-123"}}`, wantErr: "owner.id: not an integer"},
		"fractional owner id":   {body: `{"id":"1","owner":{"id":1.5}}`, wantErr: "owner.id: not an integer"},
		"owner id object":       {body: `{"id":"1","owner":{"id":{}}}`, wantErr: "owner.id: not an integer"},
		"bad expiry":            {body: `{"id":"1","expires":"tomorrow","owner":{"id":1}}`, wantErr: "expires: not a timestamp"},
		"numeric expiry":        {body: `{"id":"1","expires":1700000000,"owner":{"id":1}}`, wantErr: "expires: not a string"},
		"boolean token id":      {body: `{"id":true,"owner":{"id":1}}`, wantErr: "id: not a string or an integer"},
		"bool as string":        {body: `{"isMasterToken":"tok-SECRET-123","owner":{"id":1}}`, wantErr: "not a token object"},
		"trailing garbage":      {body: `{"owner":{"id":1}} x`, wantErr: "not a token object"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeTokenInfo([]byte(tt.body))
			if err == nil {
				t.Fatalf("decodeTokenInfo(%s) error = nil, want %q", tt.body, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeTokenInfo() error = %q, want it to contain %q", err, tt.wantErr)
			}
			assertNoToken(t, err)
		})
	}
}

func TestDecodeWebhook(t *testing.T) {
	tests := map[string]struct {
		body string
		want *Webhook
	}{
		"documented shape": {
			body: `{"id":"123","name":"jobs","url":"https://example.com/hook","events":["storage.jobFailed"],"createdTime":"2024-01-15T10:35:01+0000"}`,
			want: &Webhook{
				ID: "123", Name: "jobs", URL: "https://example.com/hook", Events: []string{"storage.jobFailed"},
				CreatedTime: time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC),
			},
		},
		"numeric id, RFC 3339 time with fraction": {
			body: `{"id":123,"name":"jobs","events":[],"createdTime":"2024-01-15T10:35:01.5Z"}`,
			want: &Webhook{ID: "123", Name: "jobs", Events: []string{}, CreatedTime: time.Date(2024, 1, 15, 10, 35, 1, 500000000, time.UTC)},
		},
		"no time, null events, secret ignored": {
			body: `{"id":"abc","events":null,"secret":"s3cr3t"}`,
			want: &Webhook{ID: "abc"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeWebhook([]byte(tt.body))
			if err != nil {
				t.Fatalf("decodeWebhook() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("decodeWebhook() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeWebhookRejects(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"empty body":       {body: ``, wantErr: "not a webhook object"},
		"no id":            {body: `{"name":"jobs"}`, wantErr: "id is missing"},
		"empty id":         {body: `{"id":""}`, wantErr: "id is missing"},
		"null id":          {body: `{"id":null}`, wantErr: "id is missing"},
		"fractional id":    {body: `{"id":1.5}`, wantErr: "id: not a string or an integer"},
		"exponent id":      {body: `{"id":1e3}`, wantErr: "id: not a string or an integer"},
		"bad created time": {body: `{"id":"1","createdTime":"15/01/2024"}`, wantErr: "createdTime: not a timestamp"},
		"numeric event":    {body: `{"id":"1","events":[1]}`, wantErr: "not a webhook object"},
		"array":            {body: `[{"id":"1"}]`, wantErr: "not a webhook object"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeWebhook([]byte(tt.body))
			if err == nil {
				t.Fatalf("decodeWebhook(%s) error = nil, want %q", tt.body, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeWebhook() error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeWebhookList(t *testing.T) {
	got, err := decodeWebhookList([]byte(`[{"id":"1","name":"a"},{"id":2,"name":"b","events":["storage.tableCreated"]}]`))
	if err != nil {
		t.Fatalf("decodeWebhookList() error = %v", err)
	}
	want := []Webhook{{ID: "1", Name: "a"}, {ID: "2", Name: "b", Events: []string{"storage.tableCreated"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodeWebhookList() mismatch (-want +got):\n%s", diff)
	}

	for _, body := range []string{`[]`, `null`} {
		got, err := decodeWebhookList([]byte(body))
		if err != nil {
			t.Fatalf("decodeWebhookList(%s) error = %v", body, err)
		}
		if got == nil || len(got) != 0 {
			t.Errorf("decodeWebhookList(%s) = %#v, want an empty non-nil slice", body, got)
		}
	}

	_, err = decodeWebhookList([]byte(`[{"id":"1"},{"name":"no id"}]`))
	if err == nil || !strings.Contains(err.Error(), "webhook at index 1: id is missing") {
		t.Errorf("decodeWebhookList() error = %v, want one naming index 1", err)
	}
	_, err = decodeWebhookList([]byte(`{"webhooks":[]}`))
	if err == nil || !strings.Contains(err.Error(), "not an array") {
		t.Errorf("decodeWebhookList() error = %v, want one saying it is not an array", err)
	}
}

func TestDecodeCreatedWebhook(t *testing.T) {
	tests := map[string]struct {
		body       string
		wantSecret string
		wantErr    string
	}{
		"secret":            {body: `{"id":"9","name":"n","secret":"s-1"}`, wantSecret: "s-1"},
		"token fallback":    {body: `{"id":"9","name":"n","token":"s-2"}`, wantSecret: "s-2"},
		"secret wins":       {body: `{"id":"9","secret":"s-1","token":"s-2"}`, wantSecret: "s-1"},
		"empty secret":      {body: `{"id":"9","secret":"","token":"s-2"}`, wantSecret: "s-2"},
		"no secret":         {body: `{"id":"9","name":"n"}`, wantErr: "signing secret is missing"},
		"null secret":       {body: `{"id":"9","secret":null}`, wantErr: "signing secret is missing"},
		"no id":             {body: `{"secret":"s-1"}`, wantErr: "id is missing"},
		"numeric secret":    {body: `{"id":"9","secret":12}`, wantErr: "not a webhook object"},
		"HTML":              {body: `<html>created</html>`, wantErr: "not a webhook object"},
		"empty":             {body: ``, wantErr: "not a webhook object"},
		"secret is a token": {body: `{"id":"9","secret":"tok-SECRET-123"}`, wantSecret: testToken},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeCreatedWebhook([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decodeCreatedWebhook() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeCreatedWebhook() error = %v", err)
			}
			if got.Secret != tt.wantSecret {
				t.Errorf("Secret = %q, want %q", got.Secret, tt.wantSecret)
			}
			if got.ID != "9" {
				t.Errorf("ID = %q, want %q", got.ID, "9")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)
	tests := map[string]struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		"absent":          {value: ""},
		"seconds":         {value: "120", want: 2 * time.Minute, wantOK: true},
		"zero":            {value: "0", want: 0, wantOK: true},
		"padded":          {value: " 5 ", want: 5 * time.Second, wantOK: true},
		"HTTP date":       {value: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, wantOK: true},
		"RFC 850 date":    {value: now.Add(time.Hour).Format(time.RFC850), want: time.Hour, wantOK: true},
		"past date":       {value: now.Add(-time.Hour).Format(http.TimeFormat), want: 0, wantOK: true},
		"far date":        {value: now.Add(100 * 24 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter, wantOK: true},
		"huge seconds":    {value: "99999999999999999999999", want: maxRetryAfter, wantOK: true},
		"negative":        {value: "-5"},
		"fraction":        {value: "1.5"},
		"garbage":         {value: "soon"},
		"seconds of days": {value: "86401", want: maxRetryAfter, wantOK: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.value, now)
			if ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) ok = %v, want %v", tt.value, ok, tt.wantOK)
			}
			if got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestNewAPIErrorBodies(t *testing.T) {
	now := time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)
	tests := map[string]struct {
		status      int
		header      http.Header
		body        string
		bodyErr     error
		want        APIError
		wantMessage string
	}{
		"string code": {
			status: 401,
			body:   `{"error":"Invalid access token","code":"storage.tokenInvalid","exceptionId":"exception-abc"}`,
			want:   APIError{StatusCode: 401, Message: "Invalid access token", Code: "storage.tokenInvalid", ExceptionID: "exception-abc"},
		},
		"numeric code": {
			status: 400,
			body:   `{"error":"Unknown event","code":400,"status":"error","exceptionId":"exception-1"}`,
			want:   APIError{StatusCode: 400, Message: "Unknown event", Code: "400", ExceptionID: "exception-1"},
		},
		"numeric exception id": {
			status: 500,
			body:   `{"error":"boom","exceptionId":12345}`,
			want:   APIError{StatusCode: 500, Message: "boom", ExceptionID: "12345"},
		},
		"message field": {
			status: 404,
			body:   `{"message":"Webhook not found"}`,
			want:   APIError{StatusCode: 404, Message: "Webhook not found"},
		},
		"code of another type": {
			status: 400,
			body:   `{"error":"bad","code":{"nested":true}}`,
			want:   APIError{StatusCode: 400, Message: "bad"},
		},
		"empty body": {
			status:      502,
			want:        APIError{StatusCode: 502},
			wantMessage: "502 Bad Gateway: response body is empty",
		},
		"whitespace body": {
			status:      504,
			body:        " \n",
			want:        APIError{StatusCode: 504},
			wantMessage: "504 Gateway Timeout: response body is empty",
		},
		"HTML body": {
			status:      502,
			header:      http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			body:        "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>",
			want:        APIError{StatusCode: 502},
			wantMessage: `502 Bad Gateway: response body of type "text/html" is not JSON`,
		},
		"malformed JSON": {
			status:      500,
			body:        `{"error": "half`,
			want:        APIError{StatusCode: 500},
			wantMessage: "500 Internal Server Error: response body is not valid JSON",
		},
		"JSON array": {
			status:      500,
			body:        `["error"]`,
			want:        APIError{StatusCode: 500},
			wantMessage: "response body is not valid JSON",
		},
		"JSON without message": {
			status:      409,
			body:        `{"code":"storage.conflict"}`,
			want:        APIError{StatusCode: 409, Code: "storage.conflict"},
			wantMessage: `409 Conflict: response body has no error message (code "storage.conflict")`,
		},
		"too large": {
			status:      500,
			bodyErr:     errBodyTooLarge,
			want:        APIError{StatusCode: 500},
			wantMessage: "response body exceeds 1 MiB",
		},
		"unreadable": {
			status:      500,
			bodyErr:     errors.New("unexpected EOF"),
			want:        APIError{StatusCode: 500},
			wantMessage: "response body could not be read",
		},
		"Retry-After seconds": {
			status: 429,
			header: http.Header{"Retry-After": {"7"}},
			body:   `{"error":"Too many requests"}`,
			want:   APIError{StatusCode: 429, Message: "Too many requests", RetryAfter: 7 * time.Second},
		},
		"Retry-After date": {
			status: 429,
			header: http.Header{"Retry-After": {now.Add(time.Minute).Format(http.TimeFormat)}},
			want:   APIError{StatusCode: 429, RetryAfter: time.Minute},
		},
		"maintenance with header": {
			status: 503,
			header: http.Header{"Retry-After": {"600"}},
			body:   `{"status":"maintenance","reason":"Database upgrade","estimatedEndTime":"2024-01-15T12:00:00+0000"}`,
			want:   APIError{StatusCode: 503, Maintenance: true, Message: "Database upgrade", RetryAfter: 10 * time.Minute},
		},
		"maintenance without header": {
			status: 503,
			body:   `{"status":"maintenance","reason":"Database upgrade","estimatedEndTime":"2024-01-15T10:40:01+0000"}`,
			want:   APIError{StatusCode: 503, Maintenance: true, Message: "Database upgrade", RetryAfter: 5 * time.Minute},
		},
		"maintenance ended": {
			status: 503,
			body:   `{"status":"maintenance","reason":"Upgrade","estimatedEndTime":"2024-01-15T10:00:00+0000"}`,
			want:   APIError{StatusCode: 503, Maintenance: true, Message: "Upgrade"},
		},
		"maintenance without reason": {
			status:      503,
			body:        `{"status":"maintenance"}`,
			want:        APIError{StatusCode: 503, Maintenance: true},
			wantMessage: "503 Service Unavailable: maintenance",
		},
		"maintenance body on another status": {
			status:      500,
			body:        `{"status":"maintenance","reason":"Upgrade"}`,
			want:        APIError{StatusCode: 500},
			wantMessage: "response body has no error message",
		},
		"invalid UTF-8": {
			status: 400,
			body:   "{\"error\":\"bad \xff byte\"}",
			want:   APIError{StatusCode: 400, Message: "bad \uFFFD byte"},
		},
		"long message": {
			status: 400,
			body:   `{"error":"` + strings.Repeat("é", 600) + `"}`,
			want:   APIError{StatusCode: 400, Message: strings.Repeat("é", 500)},
		},
		"token in every field": {
			status: 401,
			header: http.Header{"Content-Type": {"text/plain"}},
			body:   `{"error":"token tok-SECRET-123 is invalid","code":"tok-SECRET-123","exceptionId":"x-tok-SECRET-123"}`,
			want: APIError{
				StatusCode: 401, Message: "token [REDACTED] is invalid", Code: "[REDACTED]", ExceptionID: "x-[REDACTED]",
			},
		},
		"escaped token": {
			status: 401,
			body:   `{"error":"tok-\u0053ECRET-123"}`,
			want:   APIError{StatusCode: 401, Message: "[REDACTED]"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			header := tt.header
			if header == nil {
				header = http.Header{}
			}
			got := newAPIError(errorResponse{
				method: "GET", endpoint: endpointWebhooks, statusCode: tt.status,
				header: header, body: []byte(tt.body), bodyErr: tt.bodyErr, now: now, token: testToken,
			})

			want := tt.want
			want.Method = "GET"
			want.Endpoint = endpointWebhooks
			if diff := cmp.Diff(want, *got, cmp.AllowUnexported(APIError{}), cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".bodyProblem"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("newAPIError() mismatch (-want +got):\n%s", diff)
			}
			if tt.wantMessage != "" && !strings.Contains(got.Error(), tt.wantMessage) {
				t.Errorf("Error() = %q, want it to contain %q", got.Error(), tt.wantMessage)
			}
			if strings.Contains(got.Error(), "<") {
				t.Errorf("Error() = %q contains markup from the body", got.Error())
			}
			assertNoToken(t, got)
			assertOneLine(t, got)
		})
	}
}

// FuzzDecodeTokenInfo checks that the token decoder never panics and that
// its errors never quote a token found in the body.
func FuzzDecodeTokenInfo(f *testing.F) {
	seeds := []string{
		`{"id":"12345","description":"d","isMasterToken":true,"canManageTokens":false,"expires":null,"isExpired":false,"isDisabled":false,"owner":{"id":987,"name":"Acme","region":"us-east-1"}}`,
		`{"id":1,"expires":"2025-06-30T14:00:00+0200","owner":{"id":"987"}}`,
		`{"id":"1","expires":"2025-06-30T12:00:00Z","owner":{"id":"tok-SECRET-123"}}`,
		`{"owner":{"id":1e400}}`,
		`{"owner":{"id":"-9223372036854775809"}}`,
		`{"isMasterToken":"tok-SECRET-123","owner":{"id":1}}`,
		`{"expires":"tok-SECRET-123","owner":{"id":1}}`,
		`{"owner":null}`,
		`null`, ``, `[]`, `"x"`, `<html>`, `{"id":`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := decodeTokenInfo(body)
		if err != nil {
			if info != nil {
				t.Errorf("decodeTokenInfo() returned both a result and an error")
			}
			assertNoToken(t, err)
			return
		}
		if info == nil {
			t.Fatalf("decodeTokenInfo() returned neither a result nor an error")
		}
	})
}

// FuzzDecodeWebhook checks that the webhook decoders never panic, never
// return a webhook without an id or a created webhook without a secret, and
// never quote a token found in the body in an error.
func FuzzDecodeWebhook(f *testing.F) {
	seeds := []string{
		`{"id":"123","name":"jobs","url":"https://example.com/hook","events":["storage.jobFailed"],"createdTime":"2024-01-15T10:35:01+0000","secret":"s"}`,
		`{"id":123,"token":"s","createdTime":"2024-01-15T10:35:01Z"}`,
		`[{"id":"1"},{"id":2,"events":null}]`,
		`{"id":"","secret":"tok-SECRET-123"}`,
		`{"id":"tok-SECRET-123","createdTime":"tok-SECRET-123"}`,
		`{"id":1.5}`, `{"id":-0}`, `{"id":"1","events":[1]}`,
		`null`, ``, `[]`, `[null]`, `<html>`, `{"id":"1"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if webhook, err := decodeWebhook(body); err == nil {
			if webhook.ID == "" {
				t.Errorf("decodeWebhook() returned a webhook without an id")
			}
		} else {
			assertNoToken(t, err)
		}

		if webhooks, err := decodeWebhookList(body); err == nil {
			for i, webhook := range webhooks {
				if webhook.ID == "" {
					t.Errorf("decodeWebhookList() returned webhook %d without an id", i)
				}
			}
		} else {
			assertNoToken(t, err)
		}

		if created, err := decodeCreatedWebhook(body); err == nil {
			if created.ID == "" || created.Secret == "" {
				t.Errorf("decodeCreatedWebhook() = id %q, secret set %v, want both set", created.ID, created.Secret != "")
			}
		} else {
			assertNoToken(t, err)
		}
	})
}

// FuzzDecodeErrorResponse checks that any error response becomes an
// *APIError whose message is one line without the token, with bounded
// fields and a Retry-After within its cap.
func FuzzDecodeErrorResponse(f *testing.F) {
	f.Add(401, `{"error":"Invalid access token","code":"storage.tokenInvalid","exceptionId":"exception-abc"}`, "", "application/json")
	f.Add(400, `{"error":"bad","code":400,"status":"error"}`, "", "application/json")
	f.Add(429, `{"error":"tok-SECRET-123"}`, "5", "application/json")
	f.Add(429, ``, "Mon, 15 Jan 2024 10:36:01 GMT", "")
	f.Add(503, `{"status":"maintenance","reason":"tok-SECRET-123","estimatedEndTime":"2024-01-15T12:00:00+0000"}`, "", "application/json")
	f.Add(502, `<html>tok-SECRET-123</html>`, "tok-SECRET-123", "text/html; charset=tok-SECRET-123")
	f.Add(500, `{"error":"a\u0000b\nc","code":1e999}`, "99999999999999999999", "tok-SECRET-123/json")
	f.Add(999, `{"code":"tok-SECRET-","exceptionId":"123"}`, "-1", "")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter, contentType string) {
		header := http.Header{}
		header.Set("Retry-After", retryAfter)
		header.Set("Content-Type", contentType)
		e := newAPIError(errorResponse{
			method: "POST", endpoint: endpointWebhooks, statusCode: status, header: header,
			body: []byte(body), now: time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC), token: testToken,
		})

		assertNoToken(t, e)
		assertOneLine(t, e)
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Errorf("RetryAfter = %v, want it within [0, %v]", e.RetryAfter, maxRetryAfter)
		}
		if len(e.Message) > maxMessageBytes || len(e.Code) > maxCodeBytes || len(e.ExceptionID) > maxCodeBytes {
			t.Errorf("field lengths message %d, code %d, exception id %d exceed their caps", len(e.Message), len(e.Code), len(e.ExceptionID))
		}
		if !utf8.ValidString(e.Message) || !utf8.ValidString(e.Code) || !utf8.ValidString(e.ExceptionID) {
			t.Errorf("fields are not valid UTF-8: %q %q %q", e.Message, e.Code, e.ExceptionID)
		}
		if e.StatusCode != status {
			t.Errorf("StatusCode = %d, want %d", e.StatusCode, status)
		}
	})
}
