package keboola

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Callers test for them with errors.Is. One error may match
// several of them: a 429 matches both ErrRateLimited and ErrRetryable, and a
// create whose outcome is unknown matches both ErrOutcomeUnknown and
// ErrRetryable.
var (
	// ErrInvalidRequest matches 400 and 422 responses. The API rejected the
	// request itself, so sending it again fails the same way.
	ErrInvalidRequest = errors.New("keboola: invalid request")

	// ErrUnauthorized matches 401 responses, which mean that the token is
	// invalid, expired or issued by another stack.
	ErrUnauthorized = errors.New("keboola: unauthorized")

	// ErrForbidden matches 403 responses, which mean that the token lacks a
	// permission.
	ErrForbidden = errors.New("keboola: forbidden")

	// ErrNotFound matches 404 responses.
	ErrNotFound = errors.New("keboola: not found")

	// ErrRateLimited matches 429 and 503 responses, and requests that the
	// client did not send because of the stack's shared rate limit.
	ErrRateLimited = errors.New("keboola: rate limited")

	// ErrRetryable matches errors that may go away when the request is sent
	// again later: 409, 423, 429, 500, 502, 503 and 504 responses, transport
	// failures, timeouts and client-side rate limiting.
	ErrRetryable = errors.New("keboola: retryable")

	// ErrOutcomeUnknown matches a failed create (POST) that may still have
	// created the webhook or the subscription. That is a timeout or a
	// connection lost after the request was sent, a 5xx response, or a 2xx
	// response whose body is unusable.
	ErrOutcomeUnknown = errors.New("keboola: outcome unknown")

	// ErrInvalidStackURL matches the errors of NormalizeStackURL.
	ErrInvalidStackURL = errors.New("keboola: invalid stack URL")

	// ErrInvalidToken matches the error of Factory.Client for an empty token
	// or one that cannot be sent in an HTTP header.
	ErrInvalidToken = errors.New("keboola: invalid token")
)

// APIError is the error of a response with a status code outside 2xx. Its
// fields never contain the token, because the client replaces the token with
// "[REDACTED]" in every value that it copies from the response.
type APIError struct {
	// Method is the HTTP method of the request, such as "PUT".
	Method string
	// Endpoint is the path template of the request, such as
	// "/v2/storage/webhooks/{id}", without ids.
	Endpoint string
	// StatusCode is the HTTP status code of the response.
	StatusCode int
	// Code is the API's machine-readable error code, such as
	// "storage.tokenInvalid". A numeric code is kept as its decimal text.
	Code string
	// Message is the API's "error" field, or the reason of a maintenance
	// response, cut to 1,000 bytes.
	Message string
	// ExceptionID is the API's id of the failure, for Keboola support.
	ExceptionID string
	// RetryAfter is how long the server asked clients to wait, from the
	// Retry-After header or the estimated end of a maintenance. Zero means
	// the server gave no wait.
	RetryAfter time.Duration
	// Maintenance is true for a 503 response whose body reports a
	// maintenance of the stack.
	Maintenance bool

	// bodyProblem explains why Message is empty, such as "response body is
	// not valid JSON".
	bodyProblem string
}

// Error returns one line such as
// `keboola: PUT /v2/storage/webhooks/{id}: 422 Unprocessable Entity: "url must be https" (code "storage.validation")`.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keboola: %s %s: %s", e.Method, e.Endpoint, statusLine(e.StatusCode))

	switch {
	case e.Maintenance && e.Message != "":
		fmt.Fprintf(&b, ": maintenance: %q", e.Message)
	case e.Maintenance:
		b.WriteString(": maintenance")
	case e.Message != "":
		fmt.Fprintf(&b, ": %q", e.Message)
	case e.bodyProblem != "":
		b.WriteString(": " + e.bodyProblem)
	}

	var details []string
	if e.Code != "" {
		details = append(details, fmt.Sprintf("code %q", e.Code))
	}
	if e.ExceptionID != "" {
		details = append(details, fmt.Sprintf("exception id %q", e.ExceptionID))
	}
	if e.RetryAfter > 0 {
		details = append(details, "retry after "+e.RetryAfter.String())
	}
	if e.outcomeUnknown() {
		details = append(details, outcomeUnknownNote(e.Endpoint))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	return b.String()
}

// Is maps the status code to the sentinel errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	case ErrRetryable:
		return isRetryableStatus(e.StatusCode) || e.outcomeUnknown()
	case ErrOutcomeUnknown:
		return e.outcomeUnknown()
	}
	return false
}

// outcomeUnknown reports whether the request was a create that the server
// may have carried out before it failed.
func (e *APIError) outcomeUnknown() bool {
	return e.Method == http.MethodPost && e.StatusCode >= 500
}

// outcomeUnknownNote returns the note that ends the message of a create
// whose outcome is unknown, naming what the create at endpoint makes.
func outcomeUnknownNote(endpoint string) string {
	if strings.HasPrefix(endpoint, endpointSubscriptions) {
		return "outcome unknown, the subscription may exist"
	}
	return "outcome unknown, the webhook may exist"
}

func isRetryableStatus(code int) bool {
	switch code {
	case http.StatusConflict, http.StatusLocked, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func statusLine(code int) string {
	if text := http.StatusText(code); text != "" {
		return fmt.Sprintf("%d %s", code, text)
	}
	return fmt.Sprintf("status %d", code)
}

// TransportError is the error of a request that got no complete response.
// The connection failed, the attempt timed out, the context ended, or the
// response body was cut short. It always matches ErrRetryable. A create
// (POST) that may have reached the server also matches ErrOutcomeUnknown.
type TransportError struct {
	// Method is the HTTP method of the request.
	Method string
	// Endpoint is the path template of the request, without ids.
	Endpoint string
	// TimedOut is true when the attempt ran out of its own timeout
	// (Options.Timeout), not of the caller's context.
	TimedOut bool
	// RequestSent is true when the client had a connection to the server,
	// so the server may have received the request. It is false for
	// failures to resolve or connect.
	RequestSent bool
	// Err is the underlying error, such as a *net.OpError,
	// io.ErrUnexpectedEOF or context.Canceled.
	Err error

	// timeout is the per-attempt timeout, for the message.
	timeout time.Duration
}

func (e *TransportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keboola: %s %s: ", e.Method, e.Endpoint)
	if e.TimedOut {
		fmt.Fprintf(&b, "request timed out after %s", e.timeout)
	} else {
		fmt.Fprintf(&b, "request failed: %v", e.Err)
	}
	if e.outcomeUnknown() {
		b.WriteString(" (" + outcomeUnknownNote(e.Endpoint) + ")")
	}
	return b.String()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRetryable, or ErrOutcomeUnknown for a
// create that may have reached the server.
func (e *TransportError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return true
	case ErrOutcomeUnknown:
		return e.outcomeUnknown()
	}
	return false
}

func (e *TransportError) outcomeUnknown() bool {
	return e.Method == http.MethodPost && e.RequestSent
}

// ResponseError is the error of a 2xx response whose body is larger than
// 1 MiB, is not valid JSON, or lacks a required field. For a create (POST)
// the webhook or subscription may exist, so the error matches
// ErrOutcomeUnknown and ErrRetryable. For other methods it matches no
// sentinel, because sending the request again would most likely return the
// same body.
type ResponseError struct {
	// Method is the HTTP method of the request.
	Method string
	// Endpoint is the path template of the request, without ids.
	Endpoint string
	// StatusCode is the HTTP status code of the response.
	StatusCode int
	// Err describes the problem with the body. It never quotes the body.
	Err error
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("keboola: %s %s: %s: invalid response body: %v",
		e.Method, e.Endpoint, statusLine(e.StatusCode), e.Err)
	if e.Method == http.MethodPost {
		msg += " (" + outcomeUnknownNote(e.Endpoint) + ")"
	}
	return msg
}

func (e *ResponseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrOutcomeUnknown or ErrRetryable for a
// create (POST).
func (e *ResponseError) Is(target error) bool {
	if e.Method != http.MethodPost {
		return false
	}
	return target == ErrOutcomeUnknown || target == ErrRetryable
}

// ThrottledError is the error of a request that the client did not send
// because of throttling. Either the wait for the stack's shared rate limiter
// would have outlasted the context's deadline, or the context ended during
// that wait. Or an earlier 429 or 503 response asked every client of the
// stack to wait longer than Options.MaxRetryAfter or the context's deadline.
// It matches ErrRateLimited and ErrRetryable. It never matches
// ErrOutcomeUnknown, because nothing was sent.
type ThrottledError struct {
	// Method is the HTTP method of the request.
	Method string
	// Endpoint is the path template of the request, without ids.
	Endpoint string
	// RetryAfter is the remaining wait that an earlier response asked for,
	// or zero when the client-side rate limiter or the context stopped the
	// request.
	RetryAfter time.Duration
	// Err is the error of the rate limiter or the context, if any.
	Err error
}

func (e *ThrottledError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("keboola: %s %s: not sent because the stack asked clients to wait %s",
			e.Method, e.Endpoint, e.RetryAfter)
	}
	return fmt.Sprintf("keboola: %s %s: not sent while waiting for the rate limiter: %v",
		e.Method, e.Endpoint, e.Err)
}

func (e *ThrottledError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRateLimited or ErrRetryable.
func (e *ThrottledError) Is(target error) bool {
	return target == ErrRateLimited || target == ErrRetryable
}

// RetryAfter returns the wait that the server asked for, found in an
// *APIError or *ThrottledError in err's chain. It returns false when err
// carries no such wait.
func RetryAfter(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, true
	}
	var throttled *ThrottledError
	if errors.As(err, &throttled) && throttled.RetryAfter > 0 {
		return throttled.RetryAfter, true
	}
	return 0, false
}
