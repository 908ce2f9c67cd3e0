package emulator

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// NotificationPath is the path under which the emulator serves the
// Notification service. The Storage API index lists the service at the
// scheme and host of the index request followed by this path.
const NotificationPath = "/notification"

// Path templates of the Notification service's endpoints, as used by
// Fault.Endpoint, Request.Endpoint and Count. They are relative to the
// service's base URL, so a request for
// "/notification/project-subscriptions/12" has the Endpoint
// EndpointSubscription.
const (
	EndpointSubscriptions = "/project-subscriptions"
	EndpointSubscription  = "/project-subscriptions/{id}"
)

// Recipient channels of a subscription.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// firstSubscriptionID is the id of the first subscription the emulator
// creates. Webhook ids start at 1, so in a test with fewer than 1,000
// webhooks a client that mixes up the two kinds of id gets 404.
const firstSubscriptionID = 1001

// notificationEvents lists the events a subscription may have.
var notificationEvents = []string{
	"job-failed",
	"job-succeeded",
	"job-succeeded-with-warning",
	"job-processing-long",
	"phase-job-failed",
	"phase-job-succeeded",
	"phase-job-succeeded-with-warning",
	"phase-job-processing-long",
}

// filterOperators lists the operators of a subscription filter. A filter
// without an operator is stored with the first, "==".
var filterOperators = []string{"==", "!=", "<", ">", "<=", ">="}

// NotificationEvents returns the events that a subscription of the
// Notification service may have. The service rejects any other event with
// 400.
func NotificationEvents() []string {
	return slices.Clone(notificationEvents)
}

// StoredSubscription is a subscription of the Notification service as the
// emulator stores it. The admin API sends it in this JSON form, in which
// projectId is a number, unlike the string that the service sends.
type StoredSubscription struct {
	ID        string                `json:"id"`
	ProjectID int64                 `json:"projectId"`
	Event     string                `json:"event"`
	Filters   []SubscriptionFilter  `json:"filters"`
	Recipient SubscriptionRecipient `json:"recipient"`
	// ExpiresAt is nil for a subscription that does not expire. Once it
	// has passed, the emulator deletes the subscription at the next read.
	ExpiresAt *time.Time `json:"expiresAt"`
	CreatedAt time.Time  `json:"createdAt"`
}

// SubscriptionFilter limits a subscription to events whose data has a
// value at Field that compares to Value by Operator.
type SubscriptionFilter struct {
	// Field is a dotted path into the event's data, such as
	// "job.component.id".
	Field string `json:"field"`
	// Value is a string, a bool or a json.Number, as the create request
	// sent it.
	Value any `json:"value"`
	// Operator is one of ==, !=, <, >, <= and >=. A create request without
	// an operator stores ==.
	Operator string `json:"operator"`
}

// SubscriptionRecipient is the destination of a subscription's events: a
// webhook URL or an email address.
type SubscriptionRecipient struct {
	// Channel is ChannelWebhook or ChannelEmail.
	Channel string `json:"channel"`
	// URL is the receiver of a webhook recipient.
	URL string `json:"url,omitempty"`
	// Address is the address of an email recipient.
	Address string `json:"address,omitempty"`
}

// Subscriptions returns copies of the project's subscriptions that have not
// expired, ordered by id.
func (s *Server) Subscriptions(projectID int64) []StoredSubscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.projectSubscriptionsLocked(projectID)
}

// Subscription returns a copy of one subscription of the project, and false
// when it does not exist or has expired.
func (s *Server) Subscription(projectID int64, id string) (StoredSubscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredSubscriptionsLocked()
	subscription, ok := s.subscriptions[id]
	if !ok || subscription.ProjectID != projectID {
		return StoredSubscription{}, false
	}
	return cloneSubscription(subscription), true
}

// PutSubscription creates or replaces a subscription out of band, as if
// another client had created it, and returns what it stored. An empty
// sub.ID creates a subscription with a new id. A zero sub.CreatedAt keeps
// the stored time or, for a new subscription, uses the current time. The
// fields are not validated, so tests can store what the API would reject.
// An id that belongs to a subscription of another project moves that
// subscription to projectID.
func (s *Server) PutSubscription(projectID int64, sub StoredSubscription) StoredSubscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredSubscriptionsLocked()

	stored := cloneSubscription(&sub)
	stored.ProjectID = projectID

	previous, exists := s.subscriptions[stored.ID]
	switch {
	case stored.ID == "" || !exists:
		if stored.ID == "" {
			stored.ID = s.newSubscriptionIDLocked()
		} else if n, err := strconv.ParseInt(stored.ID, 10, 64); err == nil && n > s.nextSubscriptionID {
			// Keep later generated ids from colliding with this one.
			s.nextSubscriptionID = n
		}
		if stored.CreatedAt.IsZero() {
			stored.CreatedAt = now()
		}
	case stored.CreatedAt.IsZero():
		stored.CreatedAt = previous.CreatedAt
	}

	s.subscriptions[stored.ID] = &stored
	return cloneSubscription(&stored)
}

// DeleteSubscriptionOutOfBand deletes a subscription of the project as if
// another client had deleted it, and reports whether it existed.
func (s *Server) DeleteSubscriptionOutOfBand(projectID int64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredSubscriptionsLocked()
	subscription, ok := s.subscriptions[id]
	if !ok || subscription.ProjectID != projectID {
		return false
	}
	delete(s.subscriptions, id)
	return true
}

// SetSubscriptionExpiry sets when a subscription of the project expires,
// and returns the updated copy. Nil removes the expiry. A time that has
// passed makes the subscription disappear at the next read, as a real
// subscription does once its expiresAt passes. It returns false when the
// subscription does not exist or has already expired.
func (s *Server) SetSubscriptionExpiry(projectID int64, id string, expiresAt *time.Time) (StoredSubscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredSubscriptionsLocked()
	subscription, ok := s.subscriptions[id]
	if !ok || subscription.ProjectID != projectID {
		return StoredSubscription{}, false
	}
	subscription.ExpiresAt = nil
	if expiresAt != nil {
		expires := expiresAt.UTC()
		subscription.ExpiresAt = &expires
	}
	return cloneSubscription(subscription), true
}

// projectSubscriptionsLocked returns copies of the project's subscriptions
// that have not expired, ordered by id. The caller holds s.mu.
func (s *Server) projectSubscriptionsLocked(projectID int64) []StoredSubscription {
	s.dropExpiredSubscriptionsLocked()
	list := []StoredSubscription{}
	for _, subscription := range s.subscriptions {
		if subscription.ProjectID == projectID {
			list = append(list, cloneSubscription(subscription))
		}
	}
	slices.SortFunc(list, func(a, b StoredSubscription) int { return compareIDs(a.ID, b.ID) })
	return list
}

// dropExpiredSubscriptionsLocked deletes every subscription whose
// ExpiresAt has passed. Every read and write of subscriptions calls it
// first, so an expired subscription is never visible. The caller holds
// s.mu.
func (s *Server) dropExpiredSubscriptionsLocked() {
	current := time.Now()
	for id, subscription := range s.subscriptions {
		if subscription.ExpiresAt != nil && !current.Before(*subscription.ExpiresAt) {
			delete(s.subscriptions, id)
			s.log.Debug("Subscription expired", "subscriptionId", id, "projectId", subscription.ProjectID,
				"expiresAt", subscription.ExpiresAt.Format(time.RFC3339))
		}
	}
}

// newSubscriptionIDLocked returns the next free subscription id. Ids are
// unique across projects. The caller holds s.mu.
func (s *Server) newSubscriptionIDLocked() string {
	for {
		s.nextSubscriptionID++
		id := strconv.FormatInt(s.nextSubscriptionID, 10)
		if _, inUse := s.subscriptions[id]; !inUse {
			return id
		}
	}
}

// isNotificationPath reports whether path is NotificationPath or below it.
func isNotificationPath(path string) bool {
	return path == NotificationPath || strings.HasPrefix(path, NotificationPath+"/")
}

// isNotificationEndpoint reports whether endpoint is a path template of the
// Notification service.
func isNotificationEndpoint(endpoint string) bool {
	return endpoint == EndpointSubscriptions || endpoint == EndpointSubscription
}

// matchNotificationEndpoint returns the path template that path, relative
// to NotificationPath, matches, and for EndpointSubscription the id.
func matchNotificationEndpoint(path string) (endpoint, id string) {
	switch {
	case path == EndpointSubscriptions:
		return EndpointSubscriptions, ""
	case strings.HasPrefix(path, EndpointSubscriptions+"/"):
		id := strings.TrimPrefix(path, EndpointSubscriptions+"/")
		if id == "" || strings.Contains(id, "/") {
			return EndpointUnknown, ""
		}
		return EndpointSubscription, id
	default:
		return EndpointUnknown, ""
	}
}

// cloneSubscription returns a deep copy of sub whose Filters is never nil,
// so that JSON sends an empty list rather than null.
func cloneSubscription(sub *StoredSubscription) StoredSubscription {
	c := *sub
	c.Filters = append([]SubscriptionFilter{}, sub.Filters...)
	if sub.ExpiresAt != nil {
		expires := *sub.ExpiresAt
		c.ExpiresAt = &expires
	}
	return c
}
