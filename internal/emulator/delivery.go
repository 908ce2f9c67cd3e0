package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SignatureHeader carries the signature of a delivery's body.
const SignatureHeader = "X-Kbc-Signature"

// maxDeliveryLogEntries bounds the delivery log, which keeps whole bodies.
const maxDeliveryLogEntries = 10_000

// maxReceiverResponse is how much of a receiver's response body is read
// before the connection is closed.
const maxReceiverResponse = 64 << 10

// Delivery is one attempt to deliver an event to a webhook or to the
// webhook recipient of a subscription.
type Delivery struct {
	// WebhookID is the id of the webhook, and empty for a subscription.
	WebhookID string
	// SubscriptionID is the id of the subscription of the Notification
	// service, and empty for a webhook.
	SubscriptionID string
	URL            string
	Event          string
	// Attempt counts from 1 for the first attempt.
	Attempt int
	// Status is the receiver's response status, and 0 when there was no
	// response.
	Status int
	// Err is the error that kept the attempt from getting a response: a
	// rejected target, a connection error or a timeout. It is empty when
	// the receiver responded, whatever the status.
	Err  string
	Time time.Time
	// Body is the exact request body, the same for every attempt of an
	// event.
	Body []byte
	// Signature is the X-Kbc-Signature header sent: Sign(secret, Body). It
	// is empty for a subscription, whose deliveries are not signed.
	Signature string
}

// Succeeded reports whether the receiver responded with a 2xx status.
func (d Delivery) Succeeded() bool {
	return d.Status >= 200 && d.Status < 300
}

// deliveryLog keeps the latest delivery attempts in a ring.
type deliveryLog struct {
	entries []Delivery
	next    int
	max     int
}

func (l *deliveryLog) add(d Delivery) {
	if len(l.entries) < l.max {
		l.entries = append(l.entries, d)
		return
	}
	l.entries[l.next] = d
	l.next = (l.next + 1) % l.max
}

func (l *deliveryLog) list() []Delivery {
	list := make([]Delivery, 0, len(l.entries))
	list = append(list, l.entries[l.next:]...)
	return append(list, l.entries[:l.next]...)
}

// Sign returns the signature of a delivery body: the lowercase hex
// HMAC-SHA256 of body keyed with the webhook's secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Fire delivers event to every webhook of the project that subscribes to
// it, and returns every attempt, grouped by webhook in id order. It returns
// when all deliveries have succeeded or given up, or when ctx ends.
//
// The payload is {"event", "data", "createdTime"}. data has realistic
// defaults for id, runId, project, component, configurationId, status,
// startTime, endTime and durationSeconds. Each key of the caller's data
// replaces the default of the same key. Every webhook gets the same body,
// each signed with its own secret.
//
// A failed attempt, one without a 2xx response, is retried up to
// Options.DeliveryRetries times with exponential backoff. A webhook whose
// host is not a loopback host gets one rejected attempt, made without any
// network traffic.
func (s *Server) Fire(ctx context.Context, projectID int64, event string, data map[string]any) []Delivery {
	s.mu.Lock()
	project, known := s.projects[projectID]
	if !known {
		project = Project{ID: projectID}
	}
	var targets []deliveryTarget
	for _, webhook := range s.projectWebhooksLocked(projectID) {
		if slices.Contains(webhook.Events, event) {
			targets = append(targets, deliveryTarget{webhookID: webhook.ID, url: webhook.URL, secret: webhook.Secret})
		}
	}
	s.nextEventID++
	eventID := strconv.FormatInt(s.nextEventID, 10)
	s.mu.Unlock()

	if len(targets) == 0 {
		return []Delivery{}
	}

	body, err := buildPayload(project, eventID, event, data, time.Now().UTC())
	return s.deliverAll(ctx, targets, event, body, err)
}

// deliveryTarget is one receiver of an event: a webhook, or the webhook
// recipient of a subscription.
type deliveryTarget struct {
	webhookID      string
	subscriptionID string
	url            string
	// secret signs the body. It is empty for a subscription, and then no
	// signature header is sent.
	secret string
}

// logAttributes returns the id of the target as log attributes.
func (t deliveryTarget) logAttributes() []any {
	if t.subscriptionID != "" {
		return []any{"subscriptionId", t.subscriptionID}
	}
	return []any{"webhookId", t.webhookID}
}

// deliverAll sends body to all targets at once and returns every attempt,
// grouped by target in the order of targets. When encodeErr reports that
// the payload failed to encode, it records one failed attempt per target
// instead.
func (s *Server) deliverAll(ctx context.Context, targets []deliveryTarget, event string, body []byte, encodeErr error) []Delivery {
	if encodeErr != nil {
		// Only the caller's data can fail to encode.
		failed := []Delivery{}
		for _, target := range targets {
			failed = append(failed, s.recordDelivery(Delivery{
				WebhookID:      target.webhookID,
				SubscriptionID: target.subscriptionID,
				URL:            target.url,
				Event:          event,
				Attempt:        1,
				Err:            fmt.Sprintf("failed to encode the payload: %v", encodeErr),
				Time:           time.Now().UTC(),
			}))
		}
		return failed
	}

	perTarget := make([][]Delivery, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Go(func() {
			perTarget[i] = s.deliver(ctx, target, event, body)
		})
	}
	wg.Wait()
	return slices.Concat(perTarget...)
}

// Deliveries returns the latest delivery attempts of all Fire and
// FireNotification calls, in the order they ended. Only the last 10,000 are
// kept.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveries.list()
}

// deliver sends one event to one target, retrying failed attempts.
func (s *Server) deliver(ctx context.Context, target deliveryTarget, event string, body []byte) []Delivery {
	signature := ""
	if target.secret != "" {
		signature = Sign(target.secret, body)
	}
	base := Delivery{
		WebhookID:      target.webhookID,
		SubscriptionID: target.subscriptionID,
		URL:            target.url,
		Event:          event,
		Body:           body,
		Signature:      signature,
	}
	log := s.log.With(target.logAttributes()...)

	if err := checkDeliveryTarget(target.url); err != nil {
		rejected := base
		rejected.Attempt = 1
		rejected.Err = err.Error()
		rejected.Time = time.Now().UTC()
		log.Warn("Delivery rejected", "event", event, "error", err)
		return []Delivery{s.recordDelivery(rejected)}
	}

	var attempts []Delivery
	maxAttempts := 1 + s.opts.DeliveryRetries
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 && !sleepContext(ctx, s.backoff(attempt-1)) {
			log.Warn("Delivery cancelled", "event", event, "attempts", len(attempts), "error", ctx.Err())
			return attempts
		}

		result := base
		result.Attempt = attempt
		result.Status, result.Err = s.post(ctx, target.url, body, signature)
		result.Time = time.Now().UTC()
		attempts = append(attempts, s.recordDelivery(result))

		log.Debug("Delivery attempt", "event", event,
			"attempt", attempt, "status", result.Status, "error", result.Err)
		if result.Succeeded() {
			return attempts
		}
	}

	last := attempts[len(attempts)-1]
	log.Warn("Delivery failed", "event", event,
		"attempts", len(attempts), "status", last.Status, "error", last.Err)
	return attempts
}

// backoff returns the wait before retry number retry (counted from 1):
// DeliveryBackoff, then twice that, and so on.
func (s *Server) backoff(retry int) time.Duration {
	wait := s.opts.DeliveryBackoff
	for i := 1; i < retry && wait < time.Hour; i++ {
		wait *= 2
	}
	return wait
}

// post makes one delivery attempt and returns the response status, or the
// reason for no response. An empty signature sends no signature header.
func (s *Server) post(ctx context.Context, target string, body []byte, signature string) (int, string) {
	attemptCtx, cancel := context.WithTimeout(ctx, s.opts.DeliveryTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Sprintf("failed to build the request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keboola-emulator")
	if signature != "" {
		req.Header.Set(SignatureHeader, signature)
	}

	resp, err := s.delivery.Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Sprintf("attempt timed out after %s", s.opts.DeliveryTimeout)
		}
		// A *url.Error repeats the URL, which may carry a receiver's
		// secret in its query, so keep only the cause.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return 0, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReceiverResponse))
	_ = resp.Body.Close()
	return resp.StatusCode, ""
}

func (s *Server) recordDelivery(d Delivery) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries.add(d)
	return d
}

// payload is the body of a delivery, in the field order Keboola sends.
type payload struct {
	Event       string         `json:"event"`
	Data        map[string]any `json:"data"`
	CreatedTime string         `json:"createdTime"`
}

// defaultDuration is the run time of the job in a default payload.
const defaultDuration = 42 * time.Second

// buildPayload returns the JSON body of an event fired at firedAt.
func buildPayload(project Project, eventID, event string, overrides map[string]any, firedAt time.Time) ([]byte, error) {
	firedAt = firedAt.Truncate(time.Second)
	status := jobStatus(event)
	data := map[string]any{
		"id":              eventID,
		"runId":           eventID,
		"project":         map[string]any{"id": project.ID, "name": project.Name},
		"component":       defaultComponent(event),
		"configurationId": "1",
		"status":          status,
		"startTime":       firedAt.Add(-defaultDuration).Format(TimeFormat),
		"endTime":         nil,
		"durationSeconds": nil,
	}
	if status != "processing" && status != "waiting" {
		data["endTime"] = firedAt.Format(TimeFormat)
		data["durationSeconds"] = int64(defaultDuration.Seconds())
	}
	for key, value := range overrides {
		data[key] = value
	}

	return json.Marshal(payload{Event: event, Data: data, CreatedTime: firedAt.Format(TimeFormat)})
}

// jobStatus returns the status of the job an event reports, in Keboola's
// words.
func jobStatus(event string) string {
	switch {
	case strings.HasSuffix(event, "Failed"):
		return "error"
	case strings.HasSuffix(event, "Processing"):
		return "processing"
	case strings.HasSuffix(event, "Waiting"):
		return "waiting"
	default:
		return "success"
	}
}

func defaultComponent(event string) string {
	if strings.HasPrefix(event, "orchestration.") {
		return "keboola.orchestrator"
	}
	return "keboola.ex-db-snowflake"
}

// checkDeliveryTarget rejects a webhook URL that is not http or https or
// whose host is not a loopback host. It resolves no names.
func checkDeliveryTarget(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("delivery rejected: invalid webhook URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("delivery rejected: invalid scheme %q, expected http or https", u.Scheme)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("delivery rejected: host %q is not a loopback host (localhost, 127.0.0.0/8 or ::1)", u.Hostname())
	}
	return nil
}

// newDeliveryClient returns the HTTP client for deliveries. It can only
// connect to loopback addresses, uses no proxy and follows no redirects, so
// no delivery leaves the machine, whatever the webhook URL contains.
func newDeliveryClient(tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return dialLoopback(ctx, dialer, network, address)
		},
		TLSClientConfig:     tlsConfig.Clone(),
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialLoopback connects to address only if its host is a loopback IP
// address or "localhost". It maps "localhost" to 127.0.0.1 and then ::1
// itself, so that no name is ever looked up.
func dialLoopback(ctx context.Context, dialer *net.Dialer, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("connection to %q rejected: it is not a loopback address", host)
	}

	candidates := []string{host}
	if isLocalhostName(host) {
		candidates = []string{"127.0.0.1", "::1"}
	}

	var errs []error
	for _, candidate := range candidates {
		conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(candidate, port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
