package keboola

import (
	"encoding/json"
	"errors"
	"fmt"
)

// subscriptionListKeys are the fields under which decodeSubscriptionList
// looks for the list when the body is an object instead of an array, in
// this order.
var subscriptionListKeys = []string{"subscriptions", "data", "items"}

// subscriptionJSON is a subscription object of the Notification service.
// Fields whose JSON type may vary stay raw.
type subscriptionJSON struct {
	ID        json.RawMessage `json:"id"`
	Event     *string         `json:"event"`
	Filters   []filterJSON    `json:"filters"`
	Recipient *recipientJSON  `json:"recipient"`
	ExpiresAt json.RawMessage `json:"expiresAt"`
}

// filterJSON is one filter. The service accepts a string, an integer or a
// boolean as the value.
type filterJSON struct {
	Field    *string         `json:"field"`
	Value    json.RawMessage `json:"value"`
	Operator *string         `json:"operator"`
}

// recipientJSON is the recipient of a subscription. A webhook has "url", but
// some clients create webhooks with "address", the field of email
// recipients.
type recipientJSON struct {
	Channel *string `json:"channel"`
	URL     *string `json:"url"`
	Address *string `json:"address"`
}

// decodeNotificationServiceURL decodes the Storage API index and returns the
// "url" of the first entry of its "services" list whose "id" is
// "notification". It returns "" when the index lists no such entry with a
// URL, also when "services" is missing or not a list. Entries that are not
// objects, or whose id or url is not a string, are skipped. A body that is
// not a JSON object is an error.
func decodeNotificationServiceURL(body []byte) (string, error) {
	var index map[string]json.RawMessage
	if err := json.Unmarshal(body, &index); err != nil {
		return "", fmt.Errorf("not a Storage API index object: %w", err)
	}
	if index == nil {
		return "", errors.New("not a Storage API index object")
	}

	var services []json.RawMessage
	if err := json.Unmarshal(index["services"], &services); err != nil {
		return "", nil
	}
	for _, raw := range services {
		var service map[string]json.RawMessage
		if err := json.Unmarshal(raw, &service); err != nil {
			continue
		}
		if stringField(service, "id") != notificationServiceID {
			continue
		}
		if serviceURL := stringField(service, "url"); serviceURL != "" {
			return serviceURL, nil
		}
	}
	return "", nil
}

// decodeSubscription decodes one subscription object. The id and the event
// are required.
func decodeSubscription(body []byte) (*Subscription, error) {
	var raw subscriptionJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a subscription object: %w", err)
	}
	subscription, err := convertSubscription(&raw)
	if err != nil {
		return nil, err
	}
	return &subscription, nil
}

// decodeSubscriptionList decodes a JSON array of subscription objects, or an
// object that holds that array under one of subscriptionListKeys. A null
// body or list is an empty list.
func decodeSubscriptionList(body []byte) ([]Subscription, error) {
	var raws []subscriptionJSON
	if err := json.Unmarshal(body, &raws); err != nil {
		list, found := subscriptionListField(body)
		if !found {
			return nil, fmt.Errorf("not an array of subscription objects: %w", err)
		}
		if err := json.Unmarshal(list, &raws); err != nil {
			return nil, fmt.Errorf("not an array of subscription objects: %w", err)
		}
	}

	subscriptions := make([]Subscription, 0, len(raws))
	for i := range raws {
		subscription, err := convertSubscription(&raws[i])
		if err != nil {
			return nil, fmt.Errorf("subscription at index %d: %w", i, err)
		}
		subscriptions = append(subscriptions, subscription)
	}
	return subscriptions, nil
}

// subscriptionListField returns the value of the first of
// subscriptionListKeys that the JSON object body has, or false when body is
// not an object or has none of them.
func subscriptionListField(body []byte) (json.RawMessage, bool) {
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(body, &wrapper); err != nil {
		return nil, false
	}
	for _, key := range subscriptionListKeys {
		if list, ok := wrapper[key]; ok {
			return list, true
		}
	}
	return nil, false
}

func convertSubscription(raw *subscriptionJSON) (Subscription, error) {
	id, present, err := decodeID(raw.ID)
	if err != nil {
		return Subscription{}, fmt.Errorf("id: %w", err)
	}
	if !present || id == "" {
		return Subscription{}, errors.New("id is missing")
	}
	event := deref(raw.Event)
	if event == "" {
		return Subscription{}, errors.New("event is missing")
	}
	expiresAt, err := decodeTimestamp(raw.ExpiresAt)
	if err != nil {
		return Subscription{}, fmt.Errorf("expiresAt: %w", err)
	}

	subscription := Subscription{ID: id, Event: event, URL: recipientURL(raw.Recipient), ExpiresAt: expiresAt}
	for i := range raw.Filters {
		filter, err := convertFilter(&raw.Filters[i])
		if err != nil {
			return Subscription{}, fmt.Errorf("filters[%d]: %w", i, err)
		}
		subscription.Filters = append(subscription.Filters, filter)
	}
	return subscription, nil
}

// convertFilter converts one filter. A number or boolean value becomes its
// JSON text, such as "42" or "true". The operator "==" becomes "", which
// Filter defines as the same, so that a filter created without an operator
// equals the one the service returns.
func convertFilter(raw *filterJSON) (Filter, error) {
	value, err := decodeFilterValue(raw.Value)
	if err != nil {
		return Filter{}, fmt.Errorf("value: %w", err)
	}
	operator := deref(raw.Operator)
	if operator == "==" {
		operator = ""
	}
	return Filter{Field: deref(raw.Field), Value: value, Operator: operator}, nil
}

// decodeFilterValue returns a JSON string's text, or the JSON text of a
// number or boolean, or "" for an absent or null value.
func decodeFilterValue(raw json.RawMessage) (string, error) {
	if isAbsent(raw) {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case 't', 'f':
		return string(raw), nil
	case '{', '[':
		return "", errors.New("not a string, number or boolean")
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", errors.New("not a string, number or boolean")
	}
	return n.String(), nil
}

// recipientURL returns the URL of a webhook recipient: "url", or "address"
// when "url" is empty. A recipient without a channel gives its "url" only,
// and one of another channel, such as email, gives "".
func recipientURL(raw *recipientJSON) string {
	if raw == nil {
		return ""
	}
	switch deref(raw.Channel) {
	case "webhook":
		if u := deref(raw.URL); u != "" {
			return u
		}
		return deref(raw.Address)
	case "":
		return deref(raw.URL)
	}
	return ""
}
