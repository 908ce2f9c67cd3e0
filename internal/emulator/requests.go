package emulator

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// maxRequestLogEntries bounds the request log. Counters are exact beyond it.
const maxRequestLogEntries = 100_000

// Request is one request to the Storage API or the Notification service as
// the emulator recorded it.
type Request struct {
	Time time.Time `json:"time"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Endpoint is the path template that the path matched, one of
	// EndpointIndex, EndpointVerify, EndpointWebhooks, EndpointWebhook,
	// EndpointSubscriptions, EndpointSubscription or EndpointUnknown.
	Endpoint string `json:"endpoint"`
	// Path is the request path, such as "/v2/storage/webhooks/12" or
	// "/notification/project-subscriptions/1001".
	Path string `json:"path"`
	// TokenID is the id of the request's token, and empty when the token is
	// missing or unknown. The token itself is never recorded.
	TokenID string `json:"tokenId"`
	// Status is the response status, and 0 when the connection was dropped
	// without a response.
	Status int `json:"status"`
	// Fault describes the fault that applied to the request, such as
	// "1:status", "2:drop", "3:lose-response" or "4:latency" (the fault id and
	// its kind), and is empty when none applied.
	Fault string `json:"fault"`
}

// requestLog keeps the latest requests in a ring and exact counts of all
// requests since the last reset.
type requestLog struct {
	entries []Request
	next    int // index of the next write once entries is full
	max     int
	counts  map[requestKey]int
}

type requestKey struct {
	method   string
	endpoint string
}

func newRequestLog(max int) requestLog {
	return requestLog{max: max, counts: make(map[requestKey]int)}
}

func (l *requestLog) add(r Request) {
	l.counts[requestKey{method: r.Method, endpoint: r.Endpoint}]++
	if len(l.entries) < l.max {
		l.entries = append(l.entries, r)
		return
	}
	l.entries[l.next] = r
	l.next = (l.next + 1) % l.max
}

// list returns the kept requests, oldest first.
func (l *requestLog) list() []Request {
	list := make([]Request, 0, len(l.entries))
	list = append(list, l.entries[l.next:]...)
	return append(list, l.entries[:l.next]...)
}

// Requests returns the latest requests to the Storage API and the
// Notification service, oldest first. Only the last 100,000 are kept. Admin
// requests under /_emulator/ are not recorded.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests.list()
}

// Count returns how many requests with method and endpoint (a path
// template such as EndpointWebhook or EndpointSubscriptions) the emulator
// received since it started or since ResetRequests. An empty method or
// endpoint matches any.
// The count is exact even when the request log has dropped old entries.
// Requests that a fault dropped or delayed are counted too.
func (s *Server) Count(method, endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for key, n := range s.requests.counts {
		if method != "" && !strings.EqualFold(method, key.method) {
			continue
		}
		if endpoint != "" && endpoint != key.endpoint {
			continue
		}
		total += n
	}
	return total
}

// RequestCount is the number of requests with one method and endpoint.
type RequestCount struct {
	Method string `json:"method"`
	// Endpoint is a path template such as EndpointWebhooks.
	Endpoint string `json:"endpoint"`
	Count    int    `json:"count"`
}

// Counts returns the exact number of requests per method and endpoint
// since the emulator started or since ResetRequests, ordered by endpoint
// and method.
func (s *Server) Counts() []RequestCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]RequestCount, 0, len(s.requests.counts))
	for key, n := range s.requests.counts {
		list = append(list, RequestCount{Method: key.method, Endpoint: key.endpoint, Count: n})
	}
	slices.SortFunc(list, func(a, b RequestCount) int {
		return cmp.Or(strings.Compare(a.Endpoint, b.Endpoint), strings.Compare(a.Method, b.Method))
	})
	return list
}

// ResetRequests empties the request log and sets all counts and the
// statistics of Concurrency to zero.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.requests = newRequestLog(s.requests.max)
	s.mu.Unlock()
	s.limiter.reset()
}
