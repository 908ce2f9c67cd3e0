package keboola

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the Storage API and Notification
// service clients. Label values are HTTP methods and path templates such as
// "/v2/storage/webhooks/{id}" or "/project-subscriptions/{id}", never ids,
// URLs or tokens. A nil *Metrics is valid and records nothing.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	limiterWait prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg, unless reg is
// nil. When reg already has a metric of the same name and labels, for
// example from an earlier call, the registered one is used.
//
// The metrics are:
//   - keboola_api_requests_total{method, endpoint, code_class}: HTTP
//     attempts, where code_class is "2xx" to "5xx" by status code, or "error"
//     when no response arrived.
//   - keboola_api_request_duration_seconds{method, endpoint}: the time from
//     sending an attempt to reading its whole response.
//   - keboola_api_retries_total{method, endpoint}: retries after a retryable
//     failure.
//   - keboola_api_rate_limiter_wait_seconds: the time a request waited for
//     its host's rate limiter and for pauses that the server asked for.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keboola_api_requests_total",
			Help: "Storage API and Notification service request attempts by method, endpoint template and status code class (2xx, 3xx, 4xx, 5xx, or error when no response arrived).",
		}, []string{"method", "endpoint", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keboola_api_request_duration_seconds",
			Help:    "Duration in seconds of Storage API and Notification service request attempts, including reading the response body.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keboola_api_retries_total",
			Help: "Storage API and Notification service requests sent again after a retryable failure, by method and endpoint template.",
		}, []string{"method", "endpoint"}),
		limiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keboola_api_rate_limiter_wait_seconds",
			Help:    "Time in seconds that Storage API and Notification service requests waited for their host's client-side rate limiter and for server-requested pauses.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60},
		}),
	}
	if reg == nil {
		return m
	}

	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.retries = register(reg, m.retries)
	m.limiterWait = register(reg, m.limiterWait)
	return m
}

// register registers c with reg and returns it, or returns the collector
// that reg already has under the same description. It panics on any other
// registration error, as prometheus.MustRegister does, because that is a
// programming error.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

func (m *Metrics) observeRequest(method, endpoint, codeClass string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, endpoint, codeClass).Inc()
	m.duration.WithLabelValues(method, endpoint).Observe(d.Seconds())
}

func (m *Metrics) observeRetry(method, endpoint string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(method, endpoint).Inc()
}

func (m *Metrics) observeLimiterWait(d time.Duration) {
	if m == nil {
		return
	}
	m.limiterWait.Observe(d.Seconds())
}

// codeClass returns the code_class label of an HTTP status code, such as
// "4xx".
func codeClass(statusCode int) string {
	switch {
	case statusCode >= 200 && statusCode < 300:
		return "2xx"
	case statusCode >= 300 && statusCode < 400:
		return "3xx"
	case statusCode >= 400 && statusCode < 500:
		return "4xx"
	case statusCode >= 500 && statusCode < 600:
		return "5xx"
	}
	return "other"
}
