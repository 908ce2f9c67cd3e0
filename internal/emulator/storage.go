package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Path templates of the Storage API endpoints, as used by Fault.Endpoint,
// Request.Endpoint and Count. The Notification service has its own
// templates, such as EndpointSubscriptions.
const (
	// EndpointIndex is the Storage API index, which lists the stack's
	// services.
	EndpointIndex    = "/v2/storage"
	EndpointVerify   = "/v2/storage/tokens/verify"
	EndpointWebhooks = "/v2/storage/webhooks"
	EndpointWebhook  = "/v2/storage/webhooks/{id}"
	// EndpointUnknown is the template of every path that is no endpoint.
	EndpointUnknown = "unknown"
)

// tokenHeader carries the Storage API token of a request.
const tokenHeader = "X-StorageApi-Token"

// maxRequestBody limits the body of a Storage API request. A webhook is far
// smaller: its URL is at most 2,048 bytes and its name at most 255.
const maxRequestBody = 1 << 20

// Error codes in the style of the Storage API.
const (
	codeTokenMissing     = "storage.tokenMissing"
	codeTokenInvalid     = "storage.tokenInvalid"
	codeTokenExpired     = "storage.tokenExpired"
	codeTokenDisabled    = "storage.tokenDisabled"
	codeAccessDenied     = "storage.accessDenied"
	codeNotFound         = "storage.notFound"
	codeMethodNotAllowed = "storage.methodNotAllowed"
	codeMalformedBody    = "storage.malformedRequest"
	codeBodyTooLarge     = "storage.requestTooLarge"
	codeValidation       = "storage.webhooks.validation"
	codeWebhookNotFound  = "storage.webhooks.notFound"
)

// errorBody is the error shape of the Storage API.
type errorBody struct {
	Error       string `json:"error"`
	Code        string `json:"code"`
	ExceptionID string `json:"exceptionId"`
}

// webhookBody is a webhook as the Storage API sends it, without its secret.
type webhookBody struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	CreatedTime string   `json:"createdTime"`
}

// createdWebhookBody is the response to a create, the only one that carries
// the signing secret.
type createdWebhookBody struct {
	webhookBody
	Secret string `json:"secret,omitempty"`
	Token  string `json:"token,omitempty"`
}

type ownerBody struct {
	ID     any    `json:"id"` // int64, or a string with Options.OwnerIDAsString
	Name   string `json:"name"`
	Region string `json:"region"`
}

type verifyBody struct {
	ID              string    `json:"id"`
	Description     string    `json:"description"`
	IsMasterToken   bool      `json:"isMasterToken"`
	CanManageTokens bool      `json:"canManageTokens"`
	Expires         *string   `json:"expires"`
	IsExpired       bool      `json:"isExpired"`
	IsDisabled      bool      `json:"isDisabled"`
	Owner           ownerBody `json:"owner"`
}

// serveStorage handles one Storage API request: it waits for a free slot of
// the token's project, applies the configured latency and any matching
// fault, handles the request, and records it.
func (s *Server) serveStorage(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	endpoint, resourceID := matchEndpoint(r.URL.Path, s.opts.Backends)
	tokenID, projectID, knownToken := s.tokenOwner(r.Header.Get(tokenHeader))
	record := Request{
		Time:     started.UTC(),
		Method:   r.Method,
		Endpoint: endpoint,
		Path:     r.URL.Path,
		TokenID:  tokenID,
	}
	// The request is recorded before its connection is dropped, so a client
	// that sees the error also finds the request in Requests.
	recorded := false
	finish := func() {
		if !recorded {
			recorded = true
			s.recordRequest(record, time.Since(started))
		}
	}
	defer finish()

	if knownToken {
		bufferBody(r)
		release, acquired := s.limiter.acquire(r.Context(), projectID)
		if !acquired {
			return
		}
		defer release()
	}

	if !sleepContext(r.Context(), s.opts.Latency) {
		return
	}

	active, faulty := s.takeFault(r.Method, endpoint)
	if faulty {
		record.Fault = strconv.Itoa(active.id) + ":" + active.fault.kind()
		if !sleepContext(r.Context(), active.fault.Latency) {
			return
		}
		switch active.fault.kind() {
		case faultKindDrop:
			finish()
			dropConnection(w)
			return
		case faultKindLoseResponse:
			buffered := &bufferedResponse{header: make(http.Header)}
			s.handleStorage(buffered, r, endpoint, resourceID)
			record.Status = buffered.statusCode()
			finish()
			dropConnection(w)
			return
		case faultKindStatus:
			record.Status = writeFaultResponse(w, active.fault, endpoint)
			return
		}
	}

	recorder := &statusRecorder{ResponseWriter: w}
	s.handleStorage(recorder, r, endpoint, resourceID)
	record.Status = recorder.statusCode()
}

// bufferBody reads the request body, up to one byte more than
// maxRequestBody, before the request waits for a slot. The server notices
// that a client closed its connection only once the handler has read the body
// to its end, so without this a request that its client abandoned would
// still take a slot and delay the requests behind it. The body stays
// readable, and an oversized body still fails the size check.
func bufferBody(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	buffered, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	var rest io.Reader = r.Body
	if err != nil {
		rest = errReader{err}
	}
	r.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(buffered), rest), Closer: r.Body}
}

// errReader returns err on every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// readCloser reads from Reader and closes Closer.
type readCloser struct {
	io.Reader
	io.Closer
}

// handleStorage routes a request to its endpoint's handler after checking
// the method and the token. id is the webhook or subscription id of an
// endpoint whose template ends in {id}.
func (s *Server) handleStorage(w http.ResponseWriter, r *http.Request, endpoint, id string) {
	if isNotificationEndpoint(endpoint) {
		s.handleNotification(w, r, endpoint, id)
		return
	}
	if (endpoint == EndpointWebhooks || endpoint == EndpointWebhook) && !s.opts.Backends.webhooks() {
		s.handleMissingWebhooks(w, r)
		return
	}

	var allowed []string
	switch endpoint {
	case EndpointIndex, EndpointVerify:
		allowed = []string{http.MethodGet}
	case EndpointWebhooks:
		allowed = []string{http.MethodGet, http.MethodPost}
	case EndpointWebhook:
		allowed = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	default:
		s.handleUnknownPath(w, r)
		return
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
			fmt.Sprintf("Method %s is not allowed on %s; allowed methods are %s.", r.Method, endpoint, strings.Join(allowed, ", ")))
		return
	}

	token, ok := s.authenticate(w, r, endpoint)
	if !ok {
		return
	}

	switch {
	case endpoint == EndpointVerify:
		s.handleVerify(w, token)
	case endpoint == EndpointIndex:
		s.handleIndex(w, r)
	case endpoint == EndpointWebhooks && r.Method == http.MethodGet:
		s.handleListWebhooks(w, token)
	case endpoint == EndpointWebhooks:
		s.handleCreateWebhook(w, r, token)
	case r.Method == http.MethodGet:
		s.handleGetWebhook(w, token, id)
	case r.Method == http.MethodPut:
		s.handleUpdateWebhook(w, r, token, id)
	default:
		s.handleDeleteWebhook(w, token, id)
	}
}

// handleUnknownPath sends 404 for a path that matches no endpoint. Under
// NotificationPath, with the Notification service served, the body has
// that service's error shape.
func (s *Server) handleUnknownPath(w http.ResponseWriter, r *http.Request) {
	message := fmt.Sprintf("No endpoint matches %s %s.", r.Method, r.URL.Path)
	if s.opts.Backends.notification() && isNotificationPath(r.URL.Path) {
		writeNotificationError(w, http.StatusNotFound, message)
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, message)
}

// handleMissingWebhooks sends 404 for a webhooks request when the webhooks
// endpoint is not served, once the token passes the usual checks, as a
// stack without the endpoint does. The permission to manage webhooks is not
// checked, because no endpoint requires it.
func (s *Server) handleMissingWebhooks(w http.ResponseWriter, r *http.Request) {
	if _, rejection := s.checkToken(r.Header.Get(tokenHeader), accessUsable); rejection != nil {
		writeError(w, rejection.status, rejection.code, rejection.message)
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound,
		fmt.Sprintf("No endpoint matches %s %s, because this stack has no webhooks endpoint.", r.Method, r.URL.Path))
}

// tokenAccess is the level of access that an endpoint requires of a
// request's token.
type tokenAccess int

const (
	// accessKnown accepts any known token, even a disabled or expired one.
	accessKnown tokenAccess = iota
	// accessUsable accepts a known token that is neither disabled nor
	// expired.
	accessUsable
	// accessWebhooks accepts a usable token that may manage webhooks.
	accessWebhooks
)

// tokenRejection is the reason a request's token was rejected: the response
// status and the Storage API error code and message.
type tokenRejection struct {
	status  int
	code    string
	message string
}

// checkToken returns the token stored for credential, or the reason it
// does not grant access.
func (s *Server) checkToken(credential string, access tokenAccess) (Token, *tokenRejection) {
	if credential == "" {
		return Token{}, &tokenRejection{http.StatusUnauthorized, codeTokenMissing, "Access token must be set in the " + tokenHeader + " header."}
	}

	s.mu.Lock()
	token, known := s.tokens[credential]
	s.mu.Unlock()
	if !known {
		return Token{}, &tokenRejection{http.StatusUnauthorized, codeTokenInvalid, "Invalid access token."}
	}
	if access == accessKnown {
		return token, nil
	}

	switch {
	case token.Disabled:
		return Token{}, &tokenRejection{http.StatusUnauthorized, codeTokenDisabled, "The access token is disabled."}
	case isExpired(token, time.Now()):
		return Token{}, &tokenRejection{http.StatusUnauthorized, codeTokenExpired, "The access token has expired."}
	case access == accessWebhooks && !token.CanManageWebhooks:
		return Token{}, &tokenRejection{http.StatusForbidden, codeAccessDenied, "The access token is not allowed to manage webhooks."}
	}
	return token, nil
}

// authenticate returns the request's token, or writes an error response and
// returns false.
//
// Token verification accepts a disabled or expired token and returns 200
// with isDisabled or isExpired set, so the caller learns why the token is
// unusable. Every other endpoint rejects such a token with 401, and the
// webhook endpoints also require CanManageWebhooks.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, endpoint string) (Token, bool) {
	access := accessWebhooks
	switch endpoint {
	case EndpointVerify:
		access = accessKnown
	case EndpointIndex:
		access = accessUsable
	}

	token, rejection := s.checkToken(r.Header.Get(tokenHeader), access)
	if rejection != nil {
		writeError(w, rejection.status, rejection.code, rejection.message)
		return Token{}, false
	}
	return token, true
}

func (s *Server) handleVerify(w http.ResponseWriter, token Token) {
	s.mu.Lock()
	project, known := s.projects[token.ProjectID]
	s.mu.Unlock()
	if !known {
		project = Project{ID: token.ProjectID}
	}

	body := verifyBody{
		ID:              token.ID,
		Description:     token.Description,
		IsMasterToken:   token.MasterToken,
		CanManageTokens: token.CanManageTokens || token.MasterToken,
		IsExpired:       isExpired(token, time.Now()),
		IsDisabled:      token.Disabled,
		Owner:           ownerBody{ID: project.ID, Name: project.Name, Region: project.Region},
	}
	if token.Expires != nil {
		expires := token.Expires.UTC().Format(TimeFormat)
		body.Expires = &expires
	}
	if s.opts.OwnerIDAsString {
		body.Owner.ID = strconv.FormatInt(project.ID, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleListWebhooks(w http.ResponseWriter, token Token) {
	stored := s.Webhooks(token.ProjectID)
	list := make([]webhookBody, 0, len(stored))
	for _, webhook := range stored {
		list = append(list, newWebhookBody(webhook))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, token Token) {
	fields, ok := readWebhookFields(w, r)
	if !ok {
		return
	}
	if err := s.validateCreate(fields); err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, err.Error())
		return
	}

	url, events := s.normalizeWebhook(*fields.URL, fields.Events)
	s.mu.Lock()
	webhook := &StoredWebhook{
		ID:          s.newWebhookIDLocked(),
		ProjectID:   token.ProjectID,
		Name:        *fields.Name,
		URL:         url,
		Events:      events,
		Secret:      newSecret(),
		CreatedTime: now(),
	}
	s.webhooks[webhook.ID] = webhook
	created := cloneWebhook(webhook)
	s.mu.Unlock()

	body := createdWebhookBody{webhookBody: newWebhookBody(created)}
	if s.opts.SecretAsToken {
		body.Token = created.Secret
	} else {
		body.Secret = created.Secret
	}
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) handleGetWebhook(w http.ResponseWriter, token Token, id string) {
	webhook, ok := s.Webhook(token.ProjectID, id)
	if !ok {
		writeWebhookNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookBody(webhook))
}

func (s *Server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request, token Token, id string) {
	fields, ok := readWebhookFields(w, r)
	if !ok {
		return
	}
	if err := s.validateUpdate(fields); err != nil {
		writeError(w, http.StatusBadRequest, codeValidation, err.Error())
		return
	}

	s.mu.Lock()
	webhook, exists := s.webhooks[id]
	if !exists || webhook.ProjectID != token.ProjectID {
		s.mu.Unlock()
		writeWebhookNotFound(w, id)
		return
	}
	if fields.Name != nil {
		webhook.Name = *fields.Name
	}
	if fields.URL != nil {
		webhook.URL, _ = s.normalizeWebhook(*fields.URL, nil)
	}
	if fields.Events != nil {
		_, webhook.Events = s.normalizeWebhook("", fields.Events)
	}
	updated := cloneWebhook(webhook)
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, newWebhookBody(updated))
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, token Token, id string) {
	if !s.DeleteWebhookOutOfBand(token.ProjectID, id) {
		writeWebhookNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookFields are the fields of a create or update body. A nil field was
// absent.
type webhookFields struct {
	Name   *string
	URL    *string
	Events []string
}

// readWebhookFields decodes a create or update body, or writes a 400 or 413
// response and returns false.
func readWebhookFields(w http.ResponseWriter, r *http.Request) (webhookFields, bool) {
	var fields webhookFields
	var raw map[string]json.RawMessage

	body := http.MaxBytesReader(w, r.Body, maxRequestBody)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge,
				fmt.Sprintf("The request body is larger than the maximum of %d bytes.", maxRequestBody))
			return fields, false
		}
		writeError(w, http.StatusBadRequest, codeMalformedBody, "Failed to read the request body.")
		return fields, false
	}
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		writeError(w, http.StatusBadRequest, codeMalformedBody, "The request body must be a JSON object.")
		return fields, false
	}

	decode := func(field string, target any, expected string) bool {
		value, present := raw[field]
		if !present {
			return true
		}
		if bytes.Equal(bytes.TrimSpace(value), []byte("null")) || json.Unmarshal(value, target) != nil {
			writeError(w, http.StatusBadRequest, codeValidation, fmt.Sprintf("Field %q must be %s.", field, expected))
			return false
		}
		return true
	}
	var name, url string
	var events []string
	if !decode("name", &name, "a string") || !decode("url", &url, "a string") || !decode("events", &events, "an array of strings") {
		return fields, false
	}
	if _, present := raw["name"]; present {
		fields.Name = &name
	}
	if _, present := raw["url"]; present {
		fields.URL = &url
	}
	if _, present := raw["events"]; present {
		fields.Events = events
		if fields.Events == nil {
			fields.Events = []string{}
		}
	}
	return fields, true
}

// matchEndpoint returns the path template that path matches, and for
// EndpointWebhook or EndpointSubscription the id. Paths of the Notification
// service match only when backends serves it.
func matchEndpoint(path string, backends Backends) (endpoint, id string) {
	switch {
	case path == EndpointIndex:
		return EndpointIndex, ""
	case path == EndpointVerify:
		return EndpointVerify, ""
	case isNotificationPath(path):
		if !backends.notification() {
			return EndpointUnknown, ""
		}
		return matchNotificationEndpoint(strings.TrimPrefix(path, NotificationPath))
	case path == EndpointWebhooks:
		return EndpointWebhooks, ""
	case strings.HasPrefix(path, EndpointWebhooks+"/"):
		id := strings.TrimPrefix(path, EndpointWebhooks+"/")
		if id == "" || strings.Contains(id, "/") {
			return EndpointUnknown, ""
		}
		return EndpointWebhook, id
	default:
		return EndpointUnknown, ""
	}
}

// tokenOwner returns the id and the project of a known token, and false for
// a missing or unknown token.
func (s *Server) tokenOwner(credential string) (tokenID string, projectID int64, known bool) {
	if credential == "" {
		return "", 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	token, known := s.tokens[credential]
	return token.ID, token.ProjectID, known
}

// recordRequest adds a request to the log and logs it at debug level.
func (s *Server) recordRequest(record Request, duration time.Duration) {
	s.mu.Lock()
	s.requests.add(record)
	s.mu.Unlock()

	s.log.Debug("Storage API request",
		"method", record.Method,
		"endpoint", record.Endpoint,
		"path", record.Path,
		"status", record.Status,
		"tokenId", record.TokenID,
		"fault", record.Fault,
		"duration", duration)
}

func isExpired(token Token, at time.Time) bool {
	return token.Expires != nil && !at.Before(*token.Expires)
}

func newWebhookBody(w StoredWebhook) webhookBody {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	return webhookBody{
		ID:          w.ID,
		Name:        w.Name,
		URL:         w.URL,
		Events:      events,
		CreatedTime: w.CreatedTime.UTC().Format(TimeFormat),
	}
}

func writeWebhookNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, codeWebhookNotFound, fmt.Sprintf("Webhook %q was not found.", id))
}

// writeError sends an error body in the shape of the Storage API with a new
// exception id.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: message, Code: code, ExceptionID: "exception-" + randomHex(16)})
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	data, err := json.Marshal(value)
	if err != nil {
		// Only the emulator's own types are marshalled here, and they
		// always encode.
		panic(fmt.Sprintf("failed to encode a response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
