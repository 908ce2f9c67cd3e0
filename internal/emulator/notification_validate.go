package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// subscriptionTimeLayouts are the layouts accepted for expiresAt: RFC 3339,
// and RFC 3339 with a space in place of the "T", as in
// "2030-01-07 14:00:00+01:00".
//
// NOTE: the OpenAPI description of the Notification service also shows
// relative times such as "+24 hours" in its examples. The emulator rejects
// them with 400.
var subscriptionTimeLayouts = []string{time.RFC3339, "2006-01-02 15:04:05Z07:00"}

// parseSubscription checks the body of a create request and returns the
// subscription it describes, without id, project and creation time. at is
// the current time, which expiresAt must follow. The error message is sent
// to the client as is. Fields other than event, filters, recipient and
// expiresAt are ignored, among them projectId, because the project is the
// token's.
func (s *Server) parseSubscription(raw map[string]json.RawMessage, at time.Time) (StoredSubscription, error) {
	var sub StoredSubscription

	event, err := requiredString(raw, "event", "event")
	if err != nil {
		return sub, err
	}
	if !slices.Contains(notificationEvents, event) {
		return sub, apiError(`Field "event" contains the unknown event %q. Known events are %s.`,
			event, strings.Join(notificationEvents, ", "))
	}
	sub.Event = event

	if sub.Filters, err = parseFilters(raw["filters"]); err != nil {
		return sub, err
	}
	if sub.Recipient, err = s.parseRecipient(raw["recipient"]); err != nil {
		return sub, err
	}
	if sub.ExpiresAt, err = parseExpiresAt(raw["expiresAt"], at); err != nil {
		return sub, err
	}
	return sub, nil
}

// parseFilters checks the field "filters", which may be absent or null.
func parseFilters(raw json.RawMessage) ([]SubscriptionFilter, error) {
	filters := []SubscriptionFilter{}
	if isAbsent(raw) {
		return filters, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, apiError(`Field "filters" must be an array of objects.`)
	}

	for i, item := range items {
		name := fmt.Sprintf("filters[%d]", i)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
			return nil, apiError(`Field %q must be an object with "field", "value" and an optional "operator".`, name)
		}

		field, err := requiredString(fields, "field", name+".field")
		if err != nil {
			return nil, err
		}
		value, err := parseFilterValue(fields["value"], name+".value")
		if err != nil {
			return nil, err
		}
		operator := filterOperators[0]
		if !isAbsent(fields["operator"]) {
			if err := json.Unmarshal(fields["operator"], &operator); err != nil || !slices.Contains(filterOperators, operator) {
				return nil, apiError(`Field %q must be one of %s.`, name+".operator", strings.Join(filterOperators, ", "))
			}
		}
		filters = append(filters, SubscriptionFilter{Field: field, Value: value, Operator: operator})
	}
	return filters, nil
}

// parseFilterValue returns the value of a filter: a string, a bool or a
// json.Number, which keeps a number exactly as sent.
func parseFilterValue(raw json.RawMessage, name string) (any, error) {
	if isAbsent(raw) {
		return nil, apiError(`Field %q is required.`, name)
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, apiError(`Field %q must be a string, a number or a boolean.`, name)
	}
	switch value.(type) {
	case string, bool, json.Number:
		return value, nil
	default:
		return nil, apiError(`Field %q must be a string, a number or a boolean.`, name)
	}
}

// parseRecipient checks the field "recipient". A webhook recipient's URL
// is read from "url" or, when that is absent, from "address", which some
// clients send for every channel.
func (s *Server) parseRecipient(raw json.RawMessage) (SubscriptionRecipient, error) {
	if isAbsent(raw) {
		return SubscriptionRecipient{}, apiError(`Field "recipient" is required.`)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return SubscriptionRecipient{}, apiError(`Field "recipient" must be an object with "channel" and "url" or "address".`)
	}

	channel, err := requiredString(fields, "channel", "recipient.channel")
	if err != nil {
		return SubscriptionRecipient{}, err
	}
	switch channel {
	case ChannelWebhook:
		field := "url"
		if isAbsent(fields["url"]) && !isAbsent(fields["address"]) {
			field = "address"
		}
		url, err := requiredString(fields, field, "recipient."+field)
		if err != nil {
			return SubscriptionRecipient{}, err
		}
		if err := s.validateURLField("recipient."+field, url); err != nil {
			return SubscriptionRecipient{}, err
		}
		return SubscriptionRecipient{Channel: ChannelWebhook, URL: url}, nil

	case ChannelEmail:
		address, err := requiredString(fields, "address", "recipient.address")
		if err != nil {
			return SubscriptionRecipient{}, err
		}
		// mail.ParseAddress also accepts a display name, such as
		// "Ann <ann@example.com>", which the service does not.
		if parsed, err := mail.ParseAddress(address); err != nil || parsed.Address != address {
			return SubscriptionRecipient{}, apiError(`Field "recipient.address" must be an email address such as "user@example.com".`)
		}
		return SubscriptionRecipient{Channel: ChannelEmail, Address: address}, nil

	default:
		return SubscriptionRecipient{}, apiError(`Field "recipient.channel" must be %q or %q, not %q.`, ChannelWebhook, ChannelEmail, channel)
	}
}

// parseExpiresAt checks the field "expiresAt", which may be absent or null
// for a subscription that does not expire. The time is stored in UTC,
// truncated to the second as the service sends it.
//
// NOTE: the emulator rejects a time that is not in the future. Whether the
// real service does is not documented.
func parseExpiresAt(raw json.RawMessage, at time.Time) (*time.Time, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, apiError(`Field "expiresAt" must be a string or null.`)
	}

	for _, layout := range subscriptionTimeLayouts {
		expires, err := time.Parse(layout, text)
		if err != nil {
			continue
		}
		expires = expires.UTC().Truncate(time.Second)
		if !expires.After(at) {
			return nil, apiError(`Field "expiresAt" must be in the future.`)
		}
		return &expires, nil
	}
	return nil, apiError(`Field "expiresAt" must be a time in RFC 3339 format, such as "2030-01-07T14:00:00+01:00".`)
}

// requiredString returns the non-empty string in fields[key], or an error
// that calls the field name.
func requiredString(fields map[string]json.RawMessage, key, name string) (string, error) {
	raw := fields[key]
	if isAbsent(raw) {
		return "", apiError(`Field %q is required.`, name)
	}
	var value string
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", apiError(`Field %q must be a string.`, name)
	}
	if value == "" {
		return "", apiError(`Field %q must not be empty.`, name)
	}
	return value, nil
}

// isAbsent reports whether a field of a JSON object was absent or null.
func isAbsent(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
