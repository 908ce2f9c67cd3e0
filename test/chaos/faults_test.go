package chaos

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// apiTimeout is the operator's per-attempt timeout of a Storage API
// request in the soak (--api-timeout). One latency fault lasts longer, so
// that some requests time out on the client while the emulator still waits.
const apiTimeout = 5 * time.Second

// faultPlan returns the faults that the webhooks stack injects during the
// soak. A request gets at most one fault, the first one
// in this order whose roll succeeds, so the probabilities below are upper
// bounds of each kind's share.
func faultPlan() []emulator.Fault {
	return append([]emulator.Fault{
		// The emulator creates the webhook and closes the connection
		// instead of sending the response, as a proxy that fails after
		// forwarding a request would. The operator must find the webhook
		// by its marker name and delete it.
		{Method: http.MethodPost, Endpoint: emulator.EndpointWebhooks, LoseResponse: true, Probability: 0.2},
	}, commonFaults()...)
}

// notificationFaultPlan returns the faults that the Notification stack
// injects during the soak, in the order in which they are tried. The faults on the subscription endpoints come first, then
// those on the requests of the detection of the webhook API, then the
// faults of every endpoint that faultPlan injects too.
func notificationFaultPlan() []emulator.Fault {
	return append([]emulator.Fault{
		// A subscription is created but its id never reaches the operator.
		// The next pass must find it by the secret in its URL and adopt or
		// delete it.
		{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, LoseResponse: true, Probability: 0.2},
		{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, Drop: true, Probability: 0.05},
		// A delete that is carried out but whose response is lost. The
		// retry gets 404, which must count as done.
		{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, LoseResponse: true, Probability: 0.1},
		{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: http.StatusInternalServerError, Probability: 0.05},
		{Method: http.MethodGet, Endpoint: emulator.EndpointSubscriptions, Status: http.StatusBadGateway, Probability: 0.05},
		{Method: http.MethodGet, Endpoint: emulator.EndpointSubscriptions, Drop: true, Probability: 0.03},
		// The operator reads the Storage API index (GET /v2/storage) only
		// when it detects a project's webhook API, which the soak makes it
		// do again by changing spec.webhookAPI. The first read under faults
		// fails for certain, and later ones often. A failed read must
		// neither change the recorded webhook API nor lose subscriptions.
		{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: http.StatusInternalServerError, Times: 1},
		{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Probability: 0.2},
		{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Drop: true, Probability: 0.2},
		// The probe of the webhooks endpoint decides between the two APIs.
		// A 404 means that the stack lacks the endpoint, but a 502 comes
		// from a failing server and must not make the operator pick either
		// API.
		{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: http.StatusBadGateway, Probability: 0.2},
	}, commonFaults()...)
}

// commonFaults returns the faults that both stacks inject on every
// endpoint, after their own.
func commonFaults() []emulator.Fault {
	return []emulator.Fault{
		// A connection closed before the request is handled.
		{Drop: true, Probability: 0.04},
		{Status: http.StatusInternalServerError, Probability: 0.05},
		{Status: http.StatusBadGateway, Probability: 0.02},
		{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Probability: 0.05},
		// Maintenance: 503 with Retry-After and a maintenance body.
		{Status: http.StatusServiceUnavailable, RetryAfter: 2 * time.Second, Probability: 0.02},
		{Latency: apiTimeout + time.Second, Probability: 0.01},
		{Latency: time.Second, Probability: 0.03},
		{Latency: 150 * time.Millisecond, Probability: 0.15},
	}
}

// faultCounts are the faults that the emulator applied, by kind, from its
// request log.
type faultCounts struct {
	// ByKind counts faults by the kind the emulator records in
	// Request.Fault ("status", "drop", "lose-response", "latency"), with
	// status faults split by status, such as "status 503".
	ByKind map[string]int `json:"byKind"`
	// ByRequest counts faults by "METHOD endpoint", such as
	// "GET /v2/storage".
	ByRequest map[string]int `json:"byRequest"`
	Total     int            `json:"total"`
	// LostCreateResponses counts the creates that the emulator carried out
	// but whose responses it never sent.
	LostCreateResponses int `json:"lostCreateResponses"`
	// Complete is false when the emulator's request log dropped old
	// entries, which makes the counts lower bounds.
	Complete bool `json:"complete"`
}

// countFaults counts the faults in the emulator's request log.
func countFaults(emu *emulator.Server) faultCounts {
	requests := emu.Requests()
	counts := faultCounts{ByKind: map[string]int{}, ByRequest: map[string]int{}, Complete: len(requests) == emu.Count("", "")}
	for _, r := range requests {
		if r.Fault == "" {
			continue
		}
		_, kind, _ := strings.Cut(r.Fault, ":")
		if kind == "status" {
			kind = "status " + strconv.Itoa(r.Status)
		}
		if kind == "lose-response" && r.Method == http.MethodPost && r.Status >= 200 && r.Status < 300 {
			counts.LostCreateResponses++
		}
		counts.ByKind[kind]++
		counts.ByRequest[r.Method+" "+r.Endpoint]++
		counts.Total++
	}
	return counts
}

// apiCallCounts returns the emulator's request counts as "METHOD endpoint"
// keys, and their total.
func apiCallCounts(emu *emulator.Server) (map[string]int, int) {
	calls := map[string]int{}
	total := 0
	for _, c := range emu.Counts() {
		calls[c.Method+" "+c.Endpoint] = c.Count
		total += c.Count
	}
	return calls, total
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
