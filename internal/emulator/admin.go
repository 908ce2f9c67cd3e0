package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// adminPrefix is the path prefix of the admin API, which sets up and
// inspects the emulator without a Storage API token.
const adminPrefix = "/_emulator/"

// maxAdminBody limits the body of an admin request.
const maxAdminBody = 1 << 20

// adminToken is the body of POST /_emulator/tokens.
type adminToken struct {
	Token       string `json:"token"`
	ID          string `json:"id"`
	Description string `json:"description"`
	ProjectID   int64  `json:"projectID"`
	// Expires accepts RFC 3339 or the API's own format.
	Expires         string `json:"expires"`
	Disabled        bool   `json:"disabled"`
	MasterToken     bool   `json:"masterToken"`
	CanManageTokens bool   `json:"canManageTokens"`
	// CanManageWebhooks is true when absent, since that is what a demo
	// token needs.
	CanManageWebhooks *bool `json:"canManageWebhooks"`
}

// adminTokenInfo is the response to POST /_emulator/tokens, which leaves
// out the token itself.
type adminTokenInfo struct {
	ID                string     `json:"id"`
	Description       string     `json:"description"`
	ProjectID         int64      `json:"projectID"`
	Expires           *time.Time `json:"expires"`
	Disabled          bool       `json:"disabled"`
	MasterToken       bool       `json:"masterToken"`
	CanManageTokens   bool       `json:"canManageTokens"`
	CanManageWebhooks bool       `json:"canManageWebhooks"`
}

// adminFire is the body of POST /_emulator/fire.
type adminFire struct {
	Project int64          `json:"project"`
	Event   string         `json:"event"`
	Data    map[string]any `json:"data"`
}

// adminFault is a Fault in JSON. Durations are Go duration strings such as
// "1.5s" or numbers of seconds.
type adminFault struct {
	Method       string       `json:"method"`
	Endpoint     string       `json:"endpoint"`
	Times        int          `json:"times"`
	Probability  float64      `json:"probability"`
	Status       int          `json:"status"`
	Body         string       `json:"body"`
	RetryAfter   jsonDuration `json:"retryAfter"`
	Latency      jsonDuration `json:"latency"`
	Drop         bool         `json:"drop"`
	LoseResponse bool         `json:"loseResponse"`
}

// adminDelivery is a Delivery in JSON, with the body as a string.
type adminDelivery struct {
	WebhookID      string    `json:"webhookId"`
	SubscriptionID string    `json:"subscriptionId,omitempty"`
	URL            string    `json:"url"`
	Event          string    `json:"event"`
	Attempt        int       `json:"attempt"`
	Status         int       `json:"status"`
	Error          string    `json:"error,omitempty"`
	Time           time.Time `json:"time"`
	Body           string    `json:"body"`
	Signature      string    `json:"signature"`
}

// adminStats is the response to GET /_emulator/stats.
type adminStats struct {
	Requests []RequestCount       `json:"requests"`
	Projects []ProjectConcurrency `json:"projects"`
}

// jsonDuration decodes a Go duration string or a number of seconds.
type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(data []byte) error {
	var seconds float64
	if err := json.Unmarshal(data, &seconds); err == nil {
		*d = jsonDuration(seconds * float64(time.Second))
		return nil
	}
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return errors.New(`a duration must be a string such as "1.5s" or a number of seconds`)
	}
	parsed, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", text, err)
	}
	*d = jsonDuration(parsed)
	return nil
}

// serveAdmin handles the admin API:
//
//	GET    /_emulator/healthz
//	POST   /_emulator/projects         {"id", "name", "region"}
//	POST   /_emulator/tokens           {"token", "id", "description", "projectID", "expires", "disabled", ...}
//	GET    /_emulator/webhooks?project=ID   every webhook of the project, secrets included
//	POST   /_emulator/webhooks?project=ID   PutWebhook: an out-of-band create or edit
//	DELETE /_emulator/webhooks/{id}?project=ID
//	POST   /_emulator/fire             {"project", "event", "data"}, returns the delivery attempts
//	GET    /_emulator/subscriptions?project=ID   every subscription of the project that has not expired
//	POST   /_emulator/subscriptions?project=ID   PutSubscription: an out-of-band create or edit
//	DELETE /_emulator/subscriptions/{id}?project=ID
//	PUT    /_emulator/subscriptions/{id}/expiresAt?project=ID   {"expiresAt": RFC 3339 or null}
//	POST   /_emulator/fire-notification   {"project", "event", "data"}, FireNotification, returns the delivery attempts
//	GET    /_emulator/deliveries
//	POST   /_emulator/faults           a Fault in JSON, returns {"id"}
//	DELETE /_emulator/faults           removes all faults
//	DELETE /_emulator/faults/{id}
//	GET    /_emulator/requests
//	DELETE /_emulator/requests         empties the request log, the counters and the concurrency statistics
//	GET    /_emulator/stats            {"requests": Counts, "projects": Concurrency}
//
// It accepts only requests from a loopback address with a loopback Host
// header, which stops DNS rebinding, and only JSON request bodies, which a
// web page cannot send to another origin without a CORS preflight that the
// emulator never allows.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if err := checkAdminRequest(r); err != nil {
		writeError(w, http.StatusForbidden, codeAccessDenied, err.Error())
		return
	}

	path := strings.TrimPrefix(r.URL.Path, adminPrefix)
	switch {
	case path == "healthz" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case path == "projects" && r.Method == http.MethodPost:
		s.adminAddProject(w, r)
	case path == "tokens" && r.Method == http.MethodPost:
		s.adminAddToken(w, r)
	case path == "webhooks" && r.Method == http.MethodGet:
		s.adminListWebhooks(w, r)
	case path == "webhooks" && r.Method == http.MethodPost:
		s.adminPutWebhook(w, r)
	case strings.HasPrefix(path, "webhooks/") && r.Method == http.MethodDelete:
		s.adminDeleteWebhook(w, r, strings.TrimPrefix(path, "webhooks/"))
	case path == "fire" && r.Method == http.MethodPost:
		s.adminFire(w, r)
	case path == "subscriptions" && r.Method == http.MethodGet:
		s.adminListSubscriptions(w, r)
	case path == "subscriptions" && r.Method == http.MethodPost:
		s.adminPutSubscription(w, r)
	case strings.HasPrefix(path, "subscriptions/") && strings.HasSuffix(path, "/expiresAt") && r.Method == http.MethodPut:
		s.adminSetSubscriptionExpiry(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "subscriptions/"), "/expiresAt"))
	case strings.HasPrefix(path, "subscriptions/") && r.Method == http.MethodDelete:
		s.adminDeleteSubscription(w, r, strings.TrimPrefix(path, "subscriptions/"))
	case path == "fire-notification" && r.Method == http.MethodPost:
		s.adminFireNotification(w, r)
	case path == "deliveries" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, newAdminDeliveries(s.Deliveries()))
	case path == "faults" && r.Method == http.MethodPost:
		s.adminInjectFault(w, r)
	case path == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "faults/") && r.Method == http.MethodDelete:
		s.adminRemoveFault(w, strings.TrimPrefix(path, "faults/"))
	case path == "requests" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Requests())
	case path == "requests" && r.Method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case path == "stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, adminStats{Requests: s.Counts(), Projects: s.Concurrency()})
	default:
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("No admin endpoint matches %s %s.", r.Method, r.URL.Path))
	}
}

// checkAdminRequest rejects admin requests that may come from another
// machine or from a web page.
func checkAdminRequest(r *http.Request) error {
	remoteHost, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !isLoopbackHost(remoteHost) {
		return apiError("The admin API accepts requests from loopback addresses only.")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !isLoopbackHost(host) {
		return apiError("The admin API accepts requests only with a loopback Host header such as 127.0.0.1.")
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mediaType != "application/json" {
			return apiError("The admin API accepts only request bodies with the header Content-Type: application/json.")
		}
	}
	return nil
}

func (s *Server) adminAddProject(w http.ResponseWriter, r *http.Request) {
	var project Project
	if !readAdminJSON(w, r, &project) {
		return
	}
	s.AddProject(project)
	writeJSON(w, http.StatusOK, project)
}

func (s *Server) adminAddToken(w http.ResponseWriter, r *http.Request) {
	var body adminToken
	if !readAdminJSON(w, r, &body) {
		return
	}
	if body.Token == "" {
		writeError(w, http.StatusBadRequest, codeValidation, `Field "token" is required.`)
		return
	}

	token := Token{
		ID:                body.ID,
		Description:       body.Description,
		ProjectID:         body.ProjectID,
		Disabled:          body.Disabled,
		MasterToken:       body.MasterToken,
		CanManageTokens:   body.CanManageTokens,
		CanManageWebhooks: body.CanManageWebhooks == nil || *body.CanManageWebhooks,
	}
	if body.Expires != "" {
		expires, err := parseTime(body.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeValidation,
				fmt.Sprintf(`Field "expires" must be an RFC 3339 time or in the format %s.`, TimeFormat))
			return
		}
		token.Expires = &expires
	}
	s.AddToken(body.Token, token)

	s.mu.Lock()
	token = s.tokens[body.Token]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, adminTokenInfo{
		ID:                token.ID,
		Description:       token.Description,
		ProjectID:         token.ProjectID,
		Expires:           token.Expires,
		Disabled:          token.Disabled,
		MasterToken:       token.MasterToken,
		CanManageTokens:   token.CanManageTokens,
		CanManageWebhooks: token.CanManageWebhooks,
	})
}

func (s *Server) adminListWebhooks(w http.ResponseWriter, r *http.Request) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.Webhooks(projectID))
}

func (s *Server) adminPutWebhook(w http.ResponseWriter, r *http.Request) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	var webhook StoredWebhook
	if !readAdminJSON(w, r, &webhook) {
		return
	}
	writeJSON(w, http.StatusOK, s.PutWebhook(projectID, webhook))
}

func (s *Server) adminDeleteWebhook(w http.ResponseWriter, r *http.Request, id string) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	if !s.DeleteWebhookOutOfBand(projectID, id) {
		writeWebhookNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminFire(w http.ResponseWriter, r *http.Request) {
	var body adminFire
	if !readAdminJSON(w, r, &body) {
		return
	}
	if body.Event == "" {
		writeError(w, http.StatusBadRequest, codeValidation, `Field "event" is required.`)
		return
	}
	deliveries := s.Fire(r.Context(), body.Project, body.Event, body.Data)
	writeJSON(w, http.StatusOK, newAdminDeliveries(deliveries))
}

func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	var body adminFault
	if !readAdminJSON(w, r, &body) {
		return
	}
	id := s.InjectFault(Fault{
		Method:       body.Method,
		Endpoint:     body.Endpoint,
		Times:        body.Times,
		Probability:  body.Probability,
		Status:       body.Status,
		Body:         body.Body,
		RetryAfter:   time.Duration(body.RetryAfter),
		Latency:      time.Duration(body.Latency),
		Drop:         body.Drop,
		LoseResponse: body.LoseResponse,
	})
	writeJSON(w, http.StatusCreated, map[string]int{"id": id})
}

func (s *Server) adminRemoveFault(w http.ResponseWriter, rawID string) {
	id, err := strconv.Atoi(rawID)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, fmt.Sprintf("Invalid fault id %q: it must be a number.", rawID))
		return
	}
	s.RemoveFault(id)
	w.WriteHeader(http.StatusNoContent)
}

// readAdminJSON decodes a request body into target, or writes a 400
// response and returns false. A number that goes into an interface value,
// such as the data of an event or the value of a filter, is decoded as a
// json.Number, which keeps it exactly as sent.
func readAdminJSON(w http.ResponseWriter, r *http.Request, target any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeMalformedBody, "Failed to read the request body.")
		return false
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	err = decoder.Decode(target)
	if err == nil {
		if _, next := decoder.Token(); !errors.Is(next, io.EOF) {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, codeMalformedBody, fmt.Sprintf("Invalid JSON request body: %v.", err))
		return false
	}
	return true
}

// readProjectParameter returns the query parameter "project", or writes a
// 400 response and returns false.
func readProjectParameter(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.URL.Query().Get("project")
	projectID, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, `The query parameter "project" must be a project id, such as ?project=1.`)
		return 0, false
	}
	return projectID, true
}

func newAdminDeliveries(deliveries []Delivery) []adminDelivery {
	list := make([]adminDelivery, 0, len(deliveries))
	for _, d := range deliveries {
		list = append(list, adminDelivery{
			WebhookID:      d.WebhookID,
			SubscriptionID: d.SubscriptionID,
			URL:            d.URL,
			Event:          d.Event,
			Attempt:        d.Attempt,
			Status:         d.Status,
			Error:          d.Err,
			Time:           d.Time,
			Body:           string(d.Body),
			Signature:      d.Signature,
		})
	}
	return list
}

// parseTime parses an RFC 3339 time or a time in TimeFormat.
func parseTime(value string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, value); err == nil {
		return t, nil
	}
	return time.Parse(TimeFormat, value)
}
