package emulator

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests to the Storage API or the Notification
// service misbehave. A request gets at most one fault: the first injected
// fault that matches it. Faults never apply to the admin API.
type Fault struct {
	// Method is the HTTP method the fault matches. Empty matches any.
	Method string
	// Endpoint is the path template the fault matches: EndpointIndex,
	// EndpointVerify, EndpointWebhooks, EndpointWebhook,
	// EndpointSubscriptions, EndpointSubscription or EndpointUnknown. Empty
	// matches any.
	Endpoint string
	// Times is how many matching requests the fault applies to before it
	// is removed. Zero applies it until RemoveFault or ClearFaults.
	Times int
	// Probability is the chance, between 0 and 1, that the fault applies to
	// a matching request. 0 and 1 both mean always. A request that the roll
	// spares does not count towards Times.
	Probability float64
	// Status is the status of the response the fault sends instead of
	// handling the request. The body is an error body
	// {"error", "code", "exceptionId"}, or for 503 the maintenance body
	// {"status": "maintenance", "reason", "estimatedEndTime"}. On an
	// endpoint of the Notification service the error body has that
	// service's shape {"error", "code", "status": "error", "exceptionId"},
	// with the status as a numeric code.
	Status int
	// Body replaces the response body, for example with an HTML proxy page
	// or malformed JSON. A body starting with "<" is sent as text/html,
	// anything else as application/json. A Body without a Status is sent
	// with 200.
	Body string
	// RetryAfter sets the Retry-After header to this duration in whole
	// seconds, rounded up, on a Status response. For 503 it also sets the
	// estimatedEndTime of the maintenance body.
	RetryAfter time.Duration
	// Latency delays the request before anything else happens. A fault with
	// only Latency set delays the request and then handles it normally.
	Latency time.Duration
	// Drop closes the connection without a response and without handling
	// the request.
	//
	// NOTE: Go's http.Transport (checked with Go 1.26) silently replays a
	// GET or HEAD whose reused connection closes before any response byte
	// arrives. With Times set, such a GET may succeed on the replay, so a
	// test that needs the client to see the error uses Times 0 or a client
	// without keep-alives.
	Drop bool
	// LoseResponse handles the request for real (a create does create the
	// webhook or subscription) and then closes the connection instead of
	// sending the response. The same NOTE as for Drop applies to a GET.
	LoseResponse bool
}

// Fault kinds as they appear in Request.Fault.
const (
	faultKindStatus       = "status"
	faultKindDrop         = "drop"
	faultKindLoseResponse = "lose-response"
	faultKindLatency      = "latency"
)

type activeFault struct {
	id        int
	fault     Fault
	remaining int // requests left when fault.Times > 0
}

// kind returns how the fault changes a request, in the words of
// Request.Fault.
func (f Fault) kind() string {
	switch {
	case f.Drop:
		return faultKindDrop
	case f.LoseResponse:
		return faultKindLoseResponse
	case f.Status != 0 || f.Body != "":
		return faultKindStatus
	default:
		return faultKindLatency
	}
}

// InjectFault adds a fault and returns its id for RemoveFault.
func (s *Server) InjectFault(f Fault) (id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaultID++
	s.faults = append(s.faults, activeFault{id: s.nextFaultID, fault: f, remaining: f.Times})
	return s.nextFaultID
}

// RemoveFault removes a fault. Removing an unknown or used up fault does
// nothing.
func (s *Server) RemoveFault(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, active := range s.faults {
		if active.id == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return
		}
	}
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault that applies to a request, and counts the
// request against the fault's Times.
func (s *Server) takeFault(method, endpoint string) (activeFault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		active := &s.faults[i]
		f := active.fault
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.Endpoint != "" && f.Endpoint != endpoint {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && rand.Float64() >= f.Probability {
			continue
		}

		applied := *active
		if f.Times > 0 {
			active.remaining--
			if active.remaining <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return applied, true
	}
	return activeFault{}, false
}

// writeFaultResponse sends the response of a fault with a Status or Body to
// a request for endpoint.
func writeFaultResponse(w http.ResponseWriter, f Fault, endpoint string) int {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.RetryAfter > 0 {
		seconds := int64(math.Ceil(f.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(seconds, 10))
	}

	if f.Body != "" {
		contentType := "application/json"
		if strings.HasPrefix(strings.TrimSpace(f.Body), "<") {
			contentType = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return status
	}

	if status == http.StatusServiceUnavailable {
		writeJSON(w, status, maintenanceBody{
			Status:           "maintenance",
			Reason:           "Scheduled maintenance of the stack",
			EstimatedEndTime: now().Add(f.RetryAfter).Format(TimeFormat),
		})
		return status
	}

	if isNotificationEndpoint(endpoint) {
		writeNotificationError(w, status, faultErrorMessage(status))
		return status
	}
	writeError(w, status, faultErrorCode(status), faultErrorMessage(status))
	return status
}

type maintenanceBody struct {
	Status           string `json:"status"`
	Reason           string `json:"reason"`
	EstimatedEndTime string `json:"estimatedEndTime"`
}

// faultErrorCode returns an error code in the style of the Storage API for
// an injected status.
func faultErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "storage.badRequest"
	case http.StatusUnauthorized:
		return codeTokenInvalid
	case http.StatusForbidden:
		return codeAccessDenied
	case http.StatusNotFound:
		return codeNotFound
	case http.StatusConflict:
		return "storage.conflict"
	case http.StatusUnprocessableEntity:
		return codeValidation
	case http.StatusLocked:
		return "storage.locked"
	case http.StatusTooManyRequests:
		return "storage.tooManyRequests"
	case http.StatusBadGateway:
		return "storage.badGateway"
	case http.StatusGatewayTimeout:
		return "storage.gatewayTimeout"
	default:
		return "storage.internalError"
	}
}

func faultErrorMessage(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return "Error " + strconv.Itoa(status)
	}
	return text + "."
}
