package emulator

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// messageError is an error whose message the API sends to the client as is,
// so it is a full sentence.
type messageError struct {
	message string
}

func (e *messageError) Error() string {
	return e.message
}

// apiError returns a messageError with a formatted message.
func apiError(format string, args ...any) error {
	return &messageError{message: fmt.Sprintf(format, args...)}
}

// Limits of a webhook that the Storage API enforces.
const (
	MaxWebhookURLBytes  = 2048
	MaxWebhookNameBytes = 255
	MaxWebhookEvents    = 50
)

// eventTypes lists the event types that a webhook may subscribe to.
var eventTypes = []string{
	"storage.jobSucceeded",
	"storage.jobFailed",
	"storage.jobProcessing",
	"storage.jobWaiting",
	"storage.tableCreated",
	"storage.tableImported",
	"storage.tableDeleted",
	"orchestration.jobSucceeded",
	"orchestration.jobFailed",
}

// validateCreate checks the body of a create request, in which every field
// is required. The error message is sent to the client as is.
func (s *Server) validateCreate(fields webhookFields) error {
	switch {
	case fields.Name == nil:
		return apiError(`Field "name" is required.`)
	case fields.URL == nil:
		return apiError(`Field "url" is required.`)
	case fields.Events == nil:
		return apiError(`Field "events" is required.`)
	}
	return s.validateUpdate(fields)
}

// validateUpdate checks the fields present in a create or update body, of
// which there must be at least one.
func (s *Server) validateUpdate(fields webhookFields) error {
	if fields.Name == nil && fields.URL == nil && fields.Events == nil {
		return apiError(`The request must set at least one of the fields "name", "url" and "events".`)
	}
	if fields.Name != nil {
		if err := validateName(*fields.Name); err != nil {
			return err
		}
	}
	if fields.URL != nil {
		if err := s.validateURL(*fields.URL); err != nil {
			return err
		}
	}
	if fields.Events != nil {
		if err := validateEvents(fields.Events); err != nil {
			return err
		}
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return apiError(`Field "name" must not be empty.`)
	case len(name) > MaxWebhookNameBytes:
		return apiError(`Field "name" is %d bytes long, more than the maximum of %d bytes.`, len(name), MaxWebhookNameBytes)
	case !utf8.ValidString(name):
		return apiError(`Field "name" must be valid UTF-8.`)
	}
	return nil
}

// validateURL checks the field "url" of a webhook.
func (s *Server) validateURL(rawURL string) error {
	return s.validateURLField("url", rawURL)
}

// validateURLField checks a webhook URL sent in the named field: an
// absolute https URL of at most MaxWebhookURLBytes, or with
// AllowHTTPLoopback an http URL of a loopback host. The messages never
// repeat the URL, because its query may carry a receiver's secret.
func (s *Server) validateURLField(field, rawURL string) error {
	if rawURL == "" {
		return apiError(`Field %q must not be empty.`, field)
	}
	if len(rawURL) > MaxWebhookURLBytes {
		return apiError(`Field %q is %d bytes long, more than the maximum of %d bytes.`, field, len(rawURL), MaxWebhookURLBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return apiError(`Field %q is not a valid URL.`, field)
	}
	if u.Scheme == "" || u.Host == "" || u.Hostname() == "" {
		return apiError(`Field %q must be an absolute URL with a host, such as "https://example.com/hook".`, field)
	}
	if u.User != nil {
		return apiError(`Field %q must not contain user information.`, field)
	}

	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if s.opts.AllowHTTPLoopback && isLoopbackHost(u.Hostname()) {
			return nil
		}
		return apiError(`Field %q must use https.`, field)
	default:
		return apiError(`Field %q must use https, not %q.`, field, u.Scheme)
	}
}

func validateEvents(events []string) error {
	if len(events) == 0 {
		return apiError(`Field "events" must contain at least one event type.`)
	}
	if len(events) > MaxWebhookEvents {
		return apiError(`Field "events" contains %d entries, more than the maximum of %d.`, len(events), MaxWebhookEvents)
	}

	seen := make(map[string]bool, len(events))
	for _, event := range events {
		if seen[event] {
			return apiError(`Field "events" contains %q more than once.`, event)
		}
		seen[event] = true
		if !slices.Contains(eventTypes, event) {
			return apiError(`Field "events" contains the unknown event type %q. Known types are %s.`,
				event, strings.Join(eventTypes, ", "))
		}
	}
	return nil
}

// EventTypes returns the event types that a webhook may subscribe to. The
// Storage API rejects any other type with 400.
func EventTypes() []string {
	return slices.Clone(eventTypes)
}
