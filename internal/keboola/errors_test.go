package keboola

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestAPIErrorMessage(t *testing.T) {
	tests := map[string]struct {
		err  *APIError
		want string
	}{
		"message and code": {
			err: &APIError{
				Method: "PUT", Endpoint: endpointWebhook, StatusCode: 422,
				Message: "url must be https", Code: "storage.validation",
			},
			want: `keboola: PUT /v2/storage/webhooks/{id}: 422 Unprocessable Entity: "url must be https" (code "storage.validation")`,
		},
		"exception id and retry after": {
			err: &APIError{
				Method: "GET", Endpoint: endpointWebhooks, StatusCode: 429,
				Message: "slow down", ExceptionID: "exception-42", RetryAfter: 5 * time.Second,
			},
			want: `keboola: GET /v2/storage/webhooks: 429 Too Many Requests: "slow down" (exception id "exception-42", retry after 5s)`,
		},
		"body problem": {
			err:  &APIError{Method: "GET", Endpoint: endpointVerifyToken, StatusCode: 502, bodyProblem: "response body is empty"},
			want: `keboola: GET /v2/storage/tokens/verify: 502 Bad Gateway: response body is empty`,
		},
		"maintenance": {
			err: &APIError{
				Method: "GET", Endpoint: endpointWebhooks, StatusCode: 503,
				Maintenance: true, Message: "database upgrade", RetryAfter: 10 * time.Minute,
			},
			want: `keboola: GET /v2/storage/webhooks: 503 Service Unavailable: maintenance: "database upgrade" (retry after 10m0s)`,
		},
		"create with server error": {
			err:  &APIError{Method: "POST", Endpoint: endpointWebhooks, StatusCode: 500, Message: "oops"},
			want: `keboola: POST /v2/storage/webhooks: 500 Internal Server Error: "oops" (outcome unknown, the webhook may exist)`,
		},
		"unknown status": {
			err:  &APIError{Method: "GET", Endpoint: endpointWebhooks, StatusCode: 599},
			want: `keboola: GET /v2/storage/webhooks: status 599`,
		},
		"message with quotes and line break": {
			err:  &APIError{Method: "GET", Endpoint: endpointWebhooks, StatusCode: 400, Message: "bad \"name\"\nsecond line"},
			want: `keboola: GET /v2/storage/webhooks: 400 Bad Request: "bad \"name\"\nsecond line"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
			assertOneLine(t, tt.err)
		})
	}
}

func TestAPIErrorSentinels(t *testing.T) {
	tests := []struct {
		status   int
		want     []error
		wantPost []error
	}{
		{status: 301},
		{status: 400, want: []error{ErrInvalidRequest}},
		{status: 401, want: []error{ErrUnauthorized}},
		{status: 403, want: []error{ErrForbidden}},
		{status: 404, want: []error{ErrNotFound}},
		{status: 405},
		{status: 409, want: []error{ErrRetryable}},
		{status: 422, want: []error{ErrInvalidRequest}},
		{status: 423, want: []error{ErrRetryable}},
		{status: 429, want: []error{ErrRateLimited, ErrRetryable}},
		{status: 500, want: []error{ErrRetryable}, wantPost: []error{ErrRetryable, ErrOutcomeUnknown}},
		{status: 501, wantPost: []error{ErrRetryable, ErrOutcomeUnknown}},
		{status: 502, want: []error{ErrRetryable}, wantPost: []error{ErrRetryable, ErrOutcomeUnknown}},
		{status: 503, want: []error{ErrRateLimited, ErrRetryable}, wantPost: []error{ErrRateLimited, ErrRetryable, ErrOutcomeUnknown}},
		{status: 504, want: []error{ErrRetryable}, wantPost: []error{ErrRetryable, ErrOutcomeUnknown}},
	}
	for _, tt := range tests {
		for _, method := range []string{"GET", "PUT", "DELETE", "POST"} {
			t.Run(fmt.Sprintf("%s %d", method, tt.status), func(t *testing.T) {
				want := tt.want
				if method == "POST" && tt.wantPost != nil {
					want = tt.wantPost
				}
				err := fmt.Errorf("failed to reconcile: %w", &APIError{Method: method, Endpoint: endpointWebhooks, StatusCode: tt.status})
				assertSentinels(t, err, want...)
			})
		}
	}
}

func TestTransportErrorSentinels(t *testing.T) {
	tests := map[string]struct {
		err  *TransportError
		want []error
	}{
		"GET sent":         {err: &TransportError{Method: "GET", RequestSent: true, Err: io.EOF}, want: []error{ErrRetryable}},
		"POST not sent":    {err: &TransportError{Method: "POST", Err: io.EOF}, want: []error{ErrRetryable}},
		"POST sent":        {err: &TransportError{Method: "POST", RequestSent: true, Err: io.EOF}, want: []error{ErrRetryable, ErrOutcomeUnknown}},
		"DELETE timed out": {err: &TransportError{Method: "DELETE", RequestSent: true, TimedOut: true, Err: context.DeadlineExceeded}, want: []error{ErrRetryable}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assertSentinels(t, tt.err, tt.want...)
			if !errors.Is(tt.err, tt.err.Err) {
				t.Errorf("errors.Is(err, %v) = false, want true through Unwrap", tt.err.Err)
			}
		})
	}
}

func TestTransportErrorMessage(t *testing.T) {
	tests := map[string]struct {
		err  *TransportError
		want string
	}{
		"timeout": {
			err:  &TransportError{Method: "GET", Endpoint: endpointWebhook, TimedOut: true, RequestSent: true, Err: context.DeadlineExceeded, timeout: 30 * time.Second},
			want: "keboola: GET /v2/storage/webhooks/{id}: request timed out after 30s",
		},
		"create reset": {
			err:  &TransportError{Method: "POST", Endpoint: endpointWebhooks, RequestSent: true, Err: io.ErrUnexpectedEOF},
			want: "keboola: POST /v2/storage/webhooks: request failed: unexpected EOF (outcome unknown, the webhook may exist)",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResponseErrorSentinels(t *testing.T) {
	get := &ResponseError{Method: "GET", Endpoint: endpointWebhooks, StatusCode: 200, Err: errBodyTooLarge}
	assertSentinels(t, get)
	if !errors.Is(get, errBodyTooLarge) {
		t.Errorf("errors.Is(err, errBodyTooLarge) = false, want true through Unwrap")
	}

	post := &ResponseError{Method: "POST", Endpoint: endpointWebhooks, StatusCode: 201, Err: errors.New("id is missing")}
	assertSentinels(t, post, ErrOutcomeUnknown, ErrRetryable)
	want := "keboola: POST /v2/storage/webhooks: 201 Created: invalid response body: id is missing (outcome unknown, the webhook may exist)"
	if got := post.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestThrottledErrorSentinels(t *testing.T) {
	paused := &ThrottledError{Method: "POST", Endpoint: endpointWebhooks, RetryAfter: 2 * time.Minute}
	assertSentinels(t, paused, ErrRateLimited, ErrRetryable)
	if want := "keboola: POST /v2/storage/webhooks: not sent because the stack asked clients to wait 2m0s"; paused.Error() != want {
		t.Errorf("Error() = %q, want %q", paused.Error(), want)
	}

	canceled := &ThrottledError{Method: "GET", Endpoint: endpointWebhooks, Err: context.Canceled}
	assertSentinels(t, canceled, ErrRateLimited, ErrRetryable)
	if !errors.Is(canceled, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false, want true through Unwrap")
	}
}

func TestRetryAfterHelper(t *testing.T) {
	tests := map[string]struct {
		err    error
		want   time.Duration
		wantOK bool
	}{
		"nil":                      {err: nil},
		"plain error":              {err: io.EOF},
		"API error without wait":   {err: &APIError{StatusCode: 500}},
		"API error with wait":      {err: &APIError{StatusCode: 429, RetryAfter: 3 * time.Second}, want: 3 * time.Second, wantOK: true},
		"wrapped API error":        {err: fmt.Errorf("failed to list webhooks: %w", &APIError{StatusCode: 503, RetryAfter: time.Hour}), want: time.Hour, wantOK: true},
		"throttled with wait":      {err: &ThrottledError{RetryAfter: 90 * time.Second}, want: 90 * time.Second, wantOK: true},
		"throttled without wait":   {err: &ThrottledError{Err: context.Canceled}},
		"retry canceled after 429": {err: fmt.Errorf("%w (retry canceled: %w)", &APIError{StatusCode: 429, RetryAfter: time.Second}, context.Canceled), want: time.Second, wantOK: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := RetryAfter(tt.err)
			if ok != tt.wantOK {
				t.Errorf("RetryAfter() ok = %v, want %v", ok, tt.wantOK)
			}
			if got != tt.want {
				t.Errorf("RetryAfter() = %v, want %v", got, tt.want)
			}
		})
	}
}
