package keboola

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Path templates of the Storage API endpoints. They are the Endpoint of
// errors and the endpoint label of metrics, so they never contain ids.
const (
	endpointVerifyToken = "/v2/storage/tokens/verify"
	endpointWebhooks    = "/v2/storage/webhooks"
	endpointWebhook     = "/v2/storage/webhooks/{id}"
)

// tokenHeader is the request header that carries the Storage API token.
const tokenHeader = "X-StorageApi-Token"

// maxTokenBytes is the longest token that Factory.Client accepts. Storage
// API tokens are a few dozen characters, and common HTTP servers reject a
// header line longer than 8 KiB (nginx's default large_client_header_buffers),
// so a longer value is not a token. Rejecting it early keeps the client
// from sending, for example, a whole file that was stored by mistake with
// every request.
const maxTokenBytes = 4096

// Options configures the clients of a Factory. A zero field takes its
// default.
type Options struct {
	// Timeout is the limit of one attempt, from sending the request to
	// reading the whole response. Retries get a new timeout each. Default
	// 30s.
	Timeout time.Duration
	// QPS is the sustained number of requests per second that all clients
	// of one stack may send together. Default 10. A negative value removes
	// the limit.
	QPS float64
	// Burst is the number of requests that the clients of one stack may
	// send at once above QPS. Default 20.
	Burst int
	// MaxRetries is the number of times a failed GET, PUT or DELETE is sent
	// again. Default 4. A negative value disables retries.
	MaxRetries int
	// MinBackoff is the wait before the first retry. It doubles for each
	// further retry, with jitter, up to MaxBackoff. Default 200ms.
	MinBackoff time.Duration
	// MaxBackoff caps the backoff between retries. A longer Retry-After from
	// the server still wins, up to MaxRetryAfter. Default 30s.
	MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After that the client waits for,
	// including a pause that an earlier response to another client of the
	// stack started. A longer one ends the request with an error that
	// matches ErrRateLimited and carries the wait, so that a controller can
	// requeue instead of blocking a worker. Default 1m.
	MaxRetryAfter time.Duration
	// UserAgent is the User-Agent header of every request. Default
	// "keboola-operator/<version>", with the version of the main module
	// or "dev" when the build has none.
	UserAgent string
	// HTTPClient sends the requests. Default: a client with a clone of
	// http.DefaultTransport. The client never follows redirects, whatever
	// the CheckRedirect of this field, because a redirect would carry the
	// token to another location.
	HTTPClient *http.Client
	// Metrics records requests, retries and rate limiter waits. Nil
	// records nothing.
	Metrics *Metrics
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.QPS == 0 {
		o.QPS = 10
	}
	if o.Burst <= 0 {
		o.Burst = 20
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = 4
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = time.Minute
	}
	if o.UserAgent == "" {
		o.UserAgent = "keboola-operator/" + mainModuleVersion()
	}
	return o
}

func mainModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "dev"
	}
	return info.Main.Version
}

// Factory creates clients that share one rate limiter per stack. Create one
// Factory per process, so that every client of a stack draws from the same
// budget whatever token it uses. A Factory is safe for concurrent use.
type Factory struct {
	options    Options
	httpClient *http.Client

	// clock, jitter and newLimiter are replaced by tests.
	clock      clock
	jitter     func() float64
	newLimiter func(qps float64, burst int) limiter

	mu    sync.Mutex
	hosts map[string]*hostLimiter
}

// NewFactory returns a Factory whose clients use options.
func NewFactory(options Options) *Factory {
	options = options.withDefaults()

	var httpClient http.Client
	if options.HTTPClient != nil {
		httpClient = *options.HTTPClient
	} else {
		httpClient.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}

	return &Factory{
		options:    options,
		httpClient: &httpClient,
		clock:      realClock{},
		jitter:     rand.Float64,
		newLimiter: newRateLimiter,
		hosts:      make(map[string]*hostLimiter),
	}
}

// Client returns a client of the stack at stackURL that authenticates with
// token. The stack URL is normalized by NormalizeStackURL, and its errors
// match ErrInvalidStackURL. Whitespace around the token, such as the
// trailing newline of a file-based Secret, is removed. An empty token, one
// longer than 4,096 bytes, or one with characters that an HTTP header
// cannot carry, is an error that matches ErrInvalidToken.
func (f *Factory) Client(stackURL, token string) (*Client, error) {
	baseURL, err := NormalizeStackURL(stackURL)
	if err != nil {
		return nil, err
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, fmt.Errorf("%w: the token is empty", ErrInvalidToken)
	}
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: the token is %d bytes long, more than the maximum of %d", ErrInvalidToken, len(token), maxTokenBytes)
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return nil, fmt.Errorf("%w: the token contains a character other than printable ASCII", ErrInvalidToken)
		}
	}

	return &Client{
		baseURL:     baseURL,
		serviceName: "Storage API",
		token:       token,
		options:     f.options,
		httpClient:  f.httpClient,
		factory:     f,
		host:        f.hostLimiter(baseURL),
		metrics:     f.options.Metrics,
		clock:       f.clock,
		jitter:      f.jitter,
	}, nil
}

// hostLimiter returns the shared state of the host at baseURL, a normalized
// "scheme://host[:port]", creating it on first use.
func (f *Factory) hostLimiter(baseURL string) *hostLimiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	host, ok := f.hosts[baseURL]
	if !ok {
		host = &hostLimiter{limiter: f.newLimiter(f.options.QPS, f.options.Burst)}
		f.hosts[baseURL] = host
	}
	return host
}

// Client is a Storage API client for one stack and one token. It is safe for
// concurrent use.
type Client struct {
	// baseURL is prepended to every request path. It is the stack URL, or
	// the base URL of a Notification service client, which may end in a
	// path prefix.
	baseURL string
	// serviceName names the API in log lines, such as "Storage API".
	serviceName string
	token       string
	options     Options
	httpClient  *http.Client
	// factory gives the clients of other Keboola services of the stack
	// their hosts' shared rate limiters.
	factory *Factory
	host    *hostLimiter
	metrics *Metrics
	clock   clock
	jitter  func() float64
}

var _ API = (*Client)(nil)

// StackURL returns the normalized base URL of the client's stack, such as
// "https://connection.keboola.com".
func (c *Client) StackURL() string { return c.baseURL }

// doAndDecode sends req and decodes a successful response body with decode.
// A body that does not decode becomes the response's decode error, which
// marks the outcome of a create as unknown.
func doAndDecode[T any](ctx context.Context, c *Client, req *request, decode func([]byte) (T, error)) (T, error) {
	var zero T
	resp, err := c.do(ctx, req)
	if err != nil {
		return zero, err
	}
	value, err := decode(resp.body)
	if err != nil {
		return zero, resp.decodeError(req, err)
	}
	return value, nil
}

// VerifyToken implements API.
func (c *Client) VerifyToken(ctx context.Context) (*TokenInfo, error) {
	req := &request{method: http.MethodGet, endpoint: endpointVerifyToken, path: endpointVerifyToken}
	return doAndDecode(ctx, c, req, decodeTokenInfo)
}

// ListWebhooks implements API.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	req := &request{method: http.MethodGet, endpoint: endpointWebhooks, path: endpointWebhooks}
	return doAndDecode(ctx, c, req, decodeWebhookList)
}

// GetWebhook implements API.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	req, err := webhookRequest(http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	return doAndDecode(ctx, c, req, decodeWebhook)
}

// CreateWebhook implements API. A nil spec.Events is sent as an empty list,
// which the API rejects as invalid because a webhook needs at least one
// event.
func (c *Client) CreateWebhook(ctx context.Context, spec WebhookSpec) (*CreatedWebhook, error) {
	events := spec.Events
	if events == nil {
		events = []string{}
	}
	body, err := json.Marshal(map[string]any{"name": spec.Name, "url": spec.URL, "events": events})
	if err != nil {
		return nil, fmt.Errorf("keboola: failed to encode webhook: %w", err)
	}

	req := &request{method: http.MethodPost, endpoint: endpointWebhooks, path: endpointWebhooks, body: body}
	return doAndDecode(ctx, c, req, decodeCreatedWebhook)
}

// UpdateWebhook implements API. A non-nil empty update.Events is sent as an
// empty list.
func (c *Client) UpdateWebhook(ctx context.Context, id string, update WebhookUpdate) (*Webhook, error) {
	fields := map[string]any{}
	if update.Name != nil {
		fields["name"] = *update.Name
	}
	if update.URL != nil {
		fields["url"] = *update.URL
	}
	if update.Events != nil {
		fields["events"] = update.Events
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("keboola: failed to encode webhook update: %w", err)
	}

	req, err := webhookRequest(http.MethodPut, id, body)
	if err != nil {
		return nil, err
	}
	return doAndDecode(ctx, c, req, decodeWebhook)
}

// DeleteWebhook implements API. A 404 response is success.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	req, err := webhookRequest(http.MethodDelete, id, nil)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, req)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// request is one Storage API call.
type request struct {
	method string
	// endpoint is the path template, for errors and metrics.
	endpoint string
	// path is the escaped path that is sent.
	path string
	// body is the JSON body, or nil.
	body []byte
	// redact lists values of the request, besides the token, that an error
	// must not repeat, such as a receiver URL with a secret in its query.
	redact []string
}

// webhookRequest returns a request to /v2/storage/webhooks/{id}. An empty id
// is an error that matches ErrInvalidRequest.
func webhookRequest(method, id string, body []byte) (*request, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: %s %s: the webhook id is empty", ErrInvalidRequest, method, endpointWebhook)
	}
	return &request{
		method:   method,
		endpoint: endpointWebhook,
		path:     endpointWebhooks + "/" + url.PathEscape(id),
		body:     body,
	}, nil
}

// response is a 2xx response with its whole body.
type response struct {
	statusCode int
	body       []byte
}

func (r *response) decodeError(req *request, err error) error {
	return &ResponseError{Method: req.method, Endpoint: req.endpoint, StatusCode: r.statusCode, Err: err}
}

// send makes one attempt at req. It waits for the stack's rate limiter,
// sends the request with the per-attempt timeout and reads the response.
// It returns the response for a 2xx status and an error otherwise.
func (c *Client) send(ctx context.Context, req *request) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &TransportError{Method: req.method, Endpoint: req.endpoint, Err: err}
	}
	if err := c.waitForHost(ctx, req); err != nil {
		return nil, err
	}

	attemptCtx, cancel := context.WithTimeout(ctx, c.options.Timeout)
	defer cancel()

	// Once the client has a connection, the server may receive the request,
	// so a failure after that leaves the outcome of a create unknown.
	var connected atomic.Bool
	attemptCtx = httptrace.WithClientTrace(attemptCtx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})

	httpReq, err := c.newHTTPRequest(attemptCtx, req)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	httpResp, err := c.httpClient.Do(httpReq)
	if err != nil {
		c.metrics.observeRequest(req.method, req.endpoint, "error", time.Since(start))
		return nil, c.transportError(ctx, attemptCtx, req, err, connected.Load())
	}
	body, readErr := readBody(httpResp)
	httpResp.Body.Close()
	c.metrics.observeRequest(req.method, req.endpoint, codeClass(httpResp.StatusCode), time.Since(start))

	if httpResp.StatusCode >= 200 && httpResp.StatusCode < 300 {
		switch {
		case errors.Is(readErr, errBodyTooLarge):
			return nil, &ResponseError{Method: req.method, Endpoint: req.endpoint, StatusCode: httpResp.StatusCode, Err: readErr}
		case readErr != nil:
			return nil, c.transportError(ctx, attemptCtx, req, readErr, true)
		}
		return &response{statusCode: httpResp.StatusCode, body: body}, nil
	}

	apiErr := newAPIError(errorResponse{
		method:     req.method,
		endpoint:   req.endpoint,
		statusCode: httpResp.StatusCode,
		header:     httpResp.Header,
		body:       body,
		bodyErr:    readErr,
		now:        c.clock.Now(),
		token:      c.token,
		redact:     req.redact,
	})
	if apiErr.StatusCode >= 300 && apiErr.StatusCode < 400 && apiErr.Message == "" {
		apiErr.bodyProblem = "redirects are not followed, check the stack URL"
	}
	if errors.Is(apiErr, ErrRateLimited) && apiErr.RetryAfter > 0 {
		c.host.pauseUntil(c.clock.Now().Add(apiErr.RetryAfter))
	}
	return nil, apiErr
}

func (c *Client) newHTTPRequest(ctx context.Context, req *request) (*http.Request, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	httpReq, err := http.NewRequestWithContext(ctx, req.method, c.baseURL+req.path, body)
	if err != nil {
		// The base URL is normalized and the path escaped, so this is a
		// programming error. The error of NewRequest quotes only the URL,
		// which has no token.
		return nil, fmt.Errorf("keboola: %s %s: failed to build request: %w", req.method, req.endpoint, err)
	}
	httpReq.Header.Set(tokenHeader, c.token)
	httpReq.Header.Set("User-Agent", c.options.UserAgent)
	httpReq.Header.Set("Accept", "application/json")
	if req.body != nil {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	return httpReq, nil
}

// transportError wraps err, a failure to send the request or read its
// response. It reports a timeout only when the attempt's own deadline
// passed while the caller's context was still live.
func (c *Client) transportError(ctx, attemptCtx context.Context, req *request, err error, sent bool) error {
	// The *url.Error quotes the URL with the webhook id, and the endpoint
	// template already names the request.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return &TransportError{
		Method:      req.method,
		Endpoint:    req.endpoint,
		TimedOut:    ctx.Err() == nil && errors.Is(attemptCtx.Err(), context.DeadlineExceeded),
		RequestSent: sent,
		Err:         err,
		timeout:     c.options.Timeout,
	}
}

// readBody reads the whole body of resp, at most maxBodyBytes. A larger body
// is errBodyTooLarge.
func readBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	return body, nil
}
