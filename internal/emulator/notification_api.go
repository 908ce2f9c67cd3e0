package emulator

import (
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

// notificationErrorBody is the error shape of the Notification service.
// Unlike the Storage API's, its code is the HTTP status as a number.
type notificationErrorBody struct {
	Error       string `json:"error"`
	Code        int    `json:"code"`
	Status      string `json:"status"`
	ExceptionID string `json:"exceptionId"`
}

// subscriptionBody is a subscription as the Notification service sends it.
type subscriptionBody struct {
	ID        string                `json:"id"`
	ProjectID string                `json:"projectId"`
	Event     string                `json:"event"`
	Filters   []SubscriptionFilter  `json:"filters"`
	Recipient SubscriptionRecipient `json:"recipient"`
	// ExpiresAt is in RFC 3339, and null for a subscription that does not
	// expire.
	ExpiresAt *string `json:"expiresAt"`
	CreatedAt string  `json:"createdAt"`
}

// handleNotification handles a request to the Notification service after
// checking the method and the token. Every error response has the
// service's own shape. The service accepts any token that is neither
// disabled nor expired, and never checks CanManageWebhooks.
func (s *Server) handleNotification(w http.ResponseWriter, r *http.Request, endpoint, id string) {
	allowed := []string{http.MethodGet, http.MethodPost}
	if endpoint == EndpointSubscription {
		// The service has no update endpoint: a change is a new
		// subscription and the deletion of the old one.
		allowed = []string{http.MethodGet, http.MethodDelete}
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeNotificationError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("Method %s is not allowed on %s; allowed methods are %s.", r.Method, endpoint, strings.Join(allowed, ", ")))
		return
	}

	token, rejection := s.checkToken(r.Header.Get(tokenHeader), accessUsable)
	if rejection != nil {
		writeNotificationError(w, rejection.status, rejection.message)
		return
	}

	switch {
	case endpoint == EndpointSubscriptions && r.Method == http.MethodGet:
		s.handleListSubscriptions(w, r, token)
	case endpoint == EndpointSubscriptions:
		s.handleCreateSubscription(w, r, token)
	case r.Method == http.MethodGet:
		s.handleGetSubscription(w, token, id)
	default:
		s.handleDeleteSubscription(w, token, id)
	}
}

func (s *Server) handleListSubscriptions(w http.ResponseWriter, r *http.Request, token Token) {
	event := r.URL.Query().Get("event")
	list := []subscriptionBody{}
	for _, subscription := range s.Subscriptions(token.ProjectID) {
		if event == "" || subscription.Event == event {
			list = append(list, newSubscriptionBody(subscription))
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleCreateSubscription(w http.ResponseWriter, r *http.Request, token Token) {
	raw, ok := readNotificationBody(w, r)
	if !ok {
		return
	}
	subscription, err := s.parseSubscription(raw, time.Now())
	if err != nil {
		writeNotificationError(w, http.StatusBadRequest, err.Error())
		return
	}

	s.mu.Lock()
	s.dropExpiredSubscriptionsLocked()
	subscription.ID = s.newSubscriptionIDLocked()
	subscription.ProjectID = token.ProjectID
	subscription.CreatedAt = now()
	s.subscriptions[subscription.ID] = &subscription
	created := cloneSubscription(&subscription)
	s.mu.Unlock()

	writeJSON(w, http.StatusCreated, newSubscriptionBody(created))
}

func (s *Server) handleGetSubscription(w http.ResponseWriter, token Token, id string) {
	subscription, ok := s.Subscription(token.ProjectID, id)
	if !ok {
		writeSubscriptionNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, newSubscriptionBody(subscription))
}

func (s *Server) handleDeleteSubscription(w http.ResponseWriter, token Token, id string) {
	if !s.DeleteSubscriptionOutOfBand(token.ProjectID, id) {
		writeSubscriptionNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readNotificationBody decodes a request body that must be a JSON object,
// or writes a 400 or 413 response and returns false.
func readNotificationBody(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeNotificationError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("The request body is larger than the maximum of %d bytes.", maxRequestBody))
			return nil, false
		}
		writeNotificationError(w, http.StatusBadRequest, "Failed to read the request body.")
		return nil, false
	}

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		writeNotificationError(w, http.StatusBadRequest, "The request body must be a JSON object.")
		return nil, false
	}
	return raw, true
}

func newSubscriptionBody(sub StoredSubscription) subscriptionBody {
	body := subscriptionBody{
		ID:        sub.ID,
		ProjectID: strconv.FormatInt(sub.ProjectID, 10),
		Event:     sub.Event,
		Filters:   append([]SubscriptionFilter{}, sub.Filters...),
		Recipient: sub.Recipient,
		CreatedAt: sub.CreatedAt.UTC().Format(time.RFC3339),
	}
	if sub.ExpiresAt != nil {
		expires := sub.ExpiresAt.UTC().Format(time.RFC3339)
		body.ExpiresAt = &expires
	}
	return body
}

func writeSubscriptionNotFound(w http.ResponseWriter, id string) {
	writeNotificationError(w, http.StatusNotFound, fmt.Sprintf("Subscription %q was not found.", id))
}

// writeNotificationError sends an error body in the shape of the
// Notification service with a new exception id.
func writeNotificationError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, notificationErrorBody{
		Error:       message,
		Code:        status,
		Status:      "error",
		ExceptionID: "exception-" + randomHex(16),
	})
}
