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

// validateURL checks a webhook URL. The messages never repeat the URL,
// because its query may carry a receiver's secret.
func (s *Server) validateURL(rawURL string) error {
	if rawURL == "" {
		return apiError(`Field "url" must not be empty.`)
	}
	if len(rawURL) > MaxWebhookURLBytes {
		return apiError(`Field "url" is %d bytes long, more than the maximum of %d bytes.`, len(rawURL), MaxWebhookURLBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return apiError(`Field "url" is not a valid URL.`)
	}
	if u.Scheme == "" || u.Host == "" || u.Hostname() == "" {
		return apiError(`Field "url" must be an absolute URL with a host, such as "https://example.com/hook".`)
	}
	if u.User != nil {
		return apiError(`Field "url" must not contain user information.`)
	}

	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if s.opts.AllowHTTPLoopback && isLoopbackHost(u.Hostname()) {
			return nil
		}
		return apiError(`Field "url" must use https.`)
	default:
		return apiError(`Field "url" must use https, not %q.`, u.Scheme)
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
