package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

func (s *Server) adminListSubscriptions(w http.ResponseWriter, r *http.Request) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.Subscriptions(projectID))
}

func (s *Server) adminPutSubscription(w http.ResponseWriter, r *http.Request) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	var subscription StoredSubscription
	if !readAdminJSON(w, r, &subscription) {
		return
	}
	writeJSON(w, http.StatusOK, s.PutSubscription(projectID, subscription))
}

func (s *Server) adminDeleteSubscription(w http.ResponseWriter, r *http.Request, id string) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	if !s.DeleteSubscriptionOutOfBand(projectID, id) {
		writeAdminSubscriptionNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminSetSubscriptionExpiry handles a body {"expiresAt": time or null}, in
// which null removes the expiry and the field must be present.
func (s *Server) adminSetSubscriptionExpiry(w http.ResponseWriter, r *http.Request, id string) {
	projectID, ok := readProjectParameter(w, r)
	if !ok {
		return
	}
	var body map[string]json.RawMessage
	if !readAdminJSON(w, r, &body) {
		return
	}
	raw, present := body["expiresAt"]
	if !present {
		writeError(w, http.StatusBadRequest, codeValidation, `Field "expiresAt" is required: a time, or null to remove the expiry.`)
		return
	}

	var expiresAt *time.Time
	if !isAbsent(raw) {
		parsed, err := parseJSONTime(raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeValidation,
				fmt.Sprintf(`Field "expiresAt" must be null, or an RFC 3339 time or a time in the format %s.`, TimeFormat))
			return
		}
		expiresAt = &parsed
	}

	updated, ok := s.SetSubscriptionExpiry(projectID, id, expiresAt)
	if !ok {
		writeAdminSubscriptionNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, updated)
}

func (s *Server) adminFireNotification(w http.ResponseWriter, r *http.Request) {
	var body adminFire
	if !readAdminJSON(w, r, &body) {
		return
	}
	if !slices.Contains(notificationEvents, body.Event) {
		writeError(w, http.StatusBadRequest, codeValidation,
			fmt.Sprintf(`Field "event" must be a Notification event, one of %s.`, strings.Join(notificationEvents, ", ")))
		return
	}
	deliveries := s.FireNotification(r.Context(), body.Project, body.Event, body.Data)
	writeJSON(w, http.StatusOK, newAdminDeliveries(deliveries))
}

// parseJSONTime decodes a JSON string that holds an RFC 3339 time or a time
// in TimeFormat.
func parseJSONTime(raw json.RawMessage) (time.Time, error) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return time.Time{}, err
	}
	return parseTime(text)
}

func writeAdminSubscriptionNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Subscription %q was not found.", id))
}
