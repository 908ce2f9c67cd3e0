package keboola

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gatheredSample is one sample of a gathered metric family.
type gatheredSample struct {
	labels map[string]string
	count  float64
}

// gatherMetrics returns every sample of the families whose names start with
// "keboola_api_", keyed by family name. A counter's count is its value and a
// histogram's count is its sample count.
func gatherMetrics(t *testing.T, reg *prometheus.Registry) map[string][]gatheredSample {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	result := map[string][]gatheredSample{}
	for _, family := range families {
		if !strings.HasPrefix(family.GetName(), "keboola_api_") {
			continue
		}
		for _, metric := range family.GetMetric() {
			sample := gatheredSample{labels: map[string]string{}}
			for _, label := range metric.GetLabel() {
				sample.labels[label.GetName()] = label.GetValue()
			}
			switch {
			case metric.GetCounter() != nil:
				sample.count = metric.GetCounter().GetValue()
			case metric.GetHistogram() != nil:
				sample.count = float64(metric.GetHistogram().GetSampleCount())
			}
			result[family.GetName()] = append(result[family.GetName()], sample)
		}
	}
	return result
}

func findSample(samples []gatheredSample, labels map[string]string) (gatheredSample, bool) {
	for _, s := range samples {
		match := len(s.labels) == len(labels)
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s, true
		}
	}
	return gatheredSample{}, false
}

func TestMetricsRecordRequests(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request, index int) {
		switch {
		case r.Method == http.MethodGet && index == 0:
			w.WriteHeader(http.StatusBadGateway)
		case r.Method == http.MethodGet:
			_, _ = w.Write([]byte(`{"id":"wh-777","name":"jobs"}`))
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	reg := prometheus.NewRegistry()
	c, _ := newTestClient(t, srv, Options{Metrics: NewMetrics(reg)})
	ctx := context.Background()

	if _, err := c.GetWebhook(ctx, "wh-777"); err != nil {
		t.Fatalf("GetWebhook() error = %v", err)
	}
	if err := c.DeleteWebhook(ctx, "wh-777"); err != nil {
		t.Fatalf("DeleteWebhook() error = %v", err)
	}

	metrics := gatherMetrics(t, reg)
	requestTests := []struct {
		labels map[string]string
		want   float64
	}{
		{labels: map[string]string{"method": "GET", "endpoint": "/v2/storage/webhooks/{id}", "code_class": "5xx"}, want: 1},
		{labels: map[string]string{"method": "GET", "endpoint": "/v2/storage/webhooks/{id}", "code_class": "2xx"}, want: 1},
		{labels: map[string]string{"method": "DELETE", "endpoint": "/v2/storage/webhooks/{id}", "code_class": "4xx"}, want: 1},
	}
	for _, tt := range requestTests {
		got, ok := findSample(metrics["keboola_api_requests_total"], tt.labels)
		if !ok {
			t.Errorf("keboola_api_requests_total%v is missing", tt.labels)
			continue
		}
		if got.count != tt.want {
			t.Errorf("keboola_api_requests_total%v = %v, want %v", tt.labels, got.count, tt.want)
		}
	}

	if got, ok := findSample(metrics["keboola_api_request_duration_seconds"],
		map[string]string{"method": "GET", "endpoint": "/v2/storage/webhooks/{id}"}); !ok || got.count != 2 {
		t.Errorf("GET duration histogram count = %v (present %v), want 2", got.count, ok)
	}
	if got, ok := findSample(metrics["keboola_api_retries_total"],
		map[string]string{"method": "GET", "endpoint": "/v2/storage/webhooks/{id}"}); !ok || got.count != 1 {
		t.Errorf("GET retries = %v (present %v), want 1", got.count, ok)
	}
	if got, ok := findSample(metrics["keboola_api_rate_limiter_wait_seconds"], map[string]string{}); !ok || got.count != 3 {
		t.Errorf("rate limiter wait count = %v (present %v), want 3", got.count, ok)
	}

	for name, samples := range metrics {
		for _, s := range samples {
			for key, value := range s.labels {
				if strings.Contains(value, testToken) || strings.Contains(value, "777") {
					t.Errorf("%s label %s=%q contains the token or a webhook id", name, key, value)
				}
			}
		}
	}
}

func TestMetricsTransportErrorClass(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200}))
	reg := prometheus.NewRegistry()
	c, _ := newTestClient(t, srv, Options{Metrics: NewMetrics(reg), MaxRetries: -1})
	srv.Close()

	if _, err := c.VerifyToken(context.Background()); err == nil {
		t.Fatal("VerifyToken() error = nil, want a connection error")
	}
	labels := map[string]string{"method": "GET", "endpoint": "/v2/storage/tokens/verify", "code_class": "error"}
	if got, ok := findSample(gatherMetrics(t, reg)["keboola_api_requests_total"], labels); !ok || got.count != 1 {
		t.Errorf("keboola_api_requests_total%v = %v (present %v), want 1", labels, got.count, ok)
	}
}

func TestNewMetricsRegistersTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := NewMetrics(reg)
	second := NewMetrics(reg)
	if first.requests != second.requests || first.limiterWait != second.limiterWait {
		t.Errorf("second NewMetrics() on the same registry did not reuse the registered collectors")
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.observeRequest("GET", endpointWebhooks, "2xx", 0)
	m.observeRetry("GET", endpointWebhooks)
	m.observeLimiterWait(0)

	unregistered := NewMetrics(nil)
	unregistered.observeRequest("GET", endpointWebhooks, "2xx", 0)
}

func TestCodeClass(t *testing.T) {
	tests := map[int]string{200: "2xx", 204: "2xx", 302: "3xx", 404: "4xx", 429: "4xx", 503: "5xx", 99: "other", 600: "other"}
	for status, want := range tests {
		if got := codeClass(status); got != want {
			t.Errorf("codeClass(%d) = %q, want %q", status, got, want)
		}
	}
}
