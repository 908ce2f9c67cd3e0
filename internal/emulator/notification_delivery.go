package emulator

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultOvertimePercentage is the durationOvertimePercentage of a
// processing-long event in a default payload: the job has run 50% longer
// than usual.
const defaultOvertimePercentage = 0.5

// FireNotification delivers a Notification service event to every
// subscription of the project that has this event, a webhook recipient,
// and filters that all match the event's data. It returns every attempt,
// grouped by subscription in id order, when all deliveries have succeeded
// or given up, or when ctx ends. Email recipients get nothing.
//
// The payload has the envelope of Fire, {"event", "data", "createdTime"},
// with event the Notification event name, such as "job-failed". data has
// realistic defaults: project {id, name}, branch {id}, job {id, status,
// component {id, name}, configuration {id, name}, startTime, endTime,
// durationSeconds}, for phase-job events phase {id, name}, and for
// processing-long events durationOvertimePercentage. A key of the caller's
// data replaces the default value at that key, and a dotted key such as
// "job.component.id" sets one nested value.
//
// Deliveries are not signed: they carry no X-Kbc-Signature header. Retries,
// timeouts and the loopback-only rule are those of Fire.
func (s *Server) FireNotification(ctx context.Context, projectID int64, event string, data map[string]any) []Delivery {
	s.mu.Lock()
	project, known := s.projects[projectID]
	if !known {
		project = Project{ID: projectID}
	}
	var candidates []StoredSubscription
	for _, subscription := range s.projectSubscriptionsLocked(projectID) {
		if subscription.Event == event && subscription.Recipient.Channel == ChannelWebhook {
			candidates = append(candidates, subscription)
		}
	}
	s.nextEventID++
	eventID := strconv.FormatInt(s.nextEventID, 10)
	s.mu.Unlock()

	if len(candidates) == 0 {
		return []Delivery{}
	}

	firedAt := time.Now().UTC().Truncate(time.Second)
	fields := notificationData(project, eventID, event, firedAt)
	applyDataOverrides(fields, data)
	body, sent, err := encodeNotificationPayload(event, fields, firedAt)
	if err != nil {
		// Without a payload the filters cannot be evaluated, so every
		// candidate gets the failed attempt.
		var targets []deliveryTarget
		for _, subscription := range candidates {
			targets = append(targets, subscriptionTarget(subscription))
		}
		return s.deliverAll(ctx, targets, event, nil, err)
	}

	var targets []deliveryTarget
	for _, subscription := range candidates {
		if matchesFilters(sent, subscription.Filters) {
			targets = append(targets, subscriptionTarget(subscription))
		}
	}
	if len(targets) == 0 {
		return []Delivery{}
	}
	return s.deliverAll(ctx, targets, event, body, nil)
}

// subscriptionTarget returns the unsigned delivery target of a
// subscription's webhook recipient.
func subscriptionTarget(subscription StoredSubscription) deliveryTarget {
	return deliveryTarget{subscriptionID: subscription.ID, url: subscription.Recipient.URL}
}

// notificationData returns the default data of a Notification event fired
// at firedAt.
func notificationData(project Project, eventID, event string, firedAt time.Time) map[string]any {
	status := notificationJobStatus(event)
	job := map[string]any{
		"id":              eventID,
		"status":          status,
		"component":       map[string]any{"id": "keboola.ex-db-snowflake", "name": "Snowflake"},
		"configuration":   map[string]any{"id": "1", "name": "Demo configuration"},
		"startTime":       firedAt.Add(-defaultDuration).Format(TimeFormat),
		"endTime":         nil,
		"durationSeconds": nil,
	}
	if status != "processing" {
		job["endTime"] = firedAt.Format(TimeFormat)
		job["durationSeconds"] = int64(defaultDuration.Seconds())
	}

	data := map[string]any{
		"project": map[string]any{"id": strconv.FormatInt(project.ID, 10), "name": project.Name},
		"branch":  map[string]any{"id": "1"},
		"job":     job,
	}
	if strings.HasPrefix(event, "phase-") {
		data["phase"] = map[string]any{"id": "1", "name": "Phase 1"}
	}
	if strings.HasSuffix(event, "-processing-long") {
		data["durationOvertimePercentage"] = defaultOvertimePercentage
	}
	return data
}

// notificationJobStatus returns the status of the job that a Notification
// event reports, in Keboola's words.
func notificationJobStatus(event string) string {
	switch {
	case strings.HasSuffix(event, "-failed"):
		return "error"
	case strings.HasSuffix(event, "-with-warning"):
		return "warning"
	case strings.HasSuffix(event, "-processing-long"):
		return "processing"
	default:
		return "success"
	}
}

// applyDataOverrides sets every key of overrides in data. Keys with fewer
// dots are set first, so "job" replaces the default job before
// "job.component.id" changes one value of the result.
func applyDataOverrides(data, overrides map[string]any) {
	keys := slices.Collect(maps.Keys(overrides))
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "."), strings.Count(b, ".")), strings.Compare(a, b))
	})
	for _, key := range keys {
		setDataValue(data, key, overrides[key])
	}
}

// setDataValue sets the value at key in data. A dotted key such as
// "job.component.id" walks nested objects, and creates or replaces every
// value on the way that is not an object. It copies each object on the way
// before changing it, so an object that the caller passed in stays as it
// was.
func setDataValue(data map[string]any, key string, value any) {
	parts := strings.Split(key, ".")
	current := data
	for _, part := range parts[:len(parts)-1] {
		next, ok := current[part].(map[string]any)
		if ok {
			next = maps.Clone(next)
		} else {
			next = map[string]any{}
		}
		current[part] = next
		current = next
	}
	current[parts[len(parts)-1]] = value
}

// encodeNotificationPayload returns the JSON body of an event and its data
// decoded back from that body, so that filters see exactly what the
// receiver gets, with numbers as json.Number.
func encodeNotificationPayload(event string, data map[string]any, firedAt time.Time) ([]byte, map[string]any, error) {
	body, err := json.Marshal(payload{Event: event, Data: data, CreatedTime: firedAt.Format(TimeFormat)})
	if err != nil {
		return nil, nil, err
	}
	var decoded payload
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.UseNumber()
	if err := decoder.Decode(&decoded); err != nil {
		return nil, nil, fmt.Errorf("failed to decode the encoded payload: %w", err)
	}
	return body, decoded.Data, nil
}

// matchesFilters reports whether data satisfies every filter. A filter
// whose field is missing from data, or is an object, an array or null,
// does not match, whatever its operator.
func matchesFilters(data map[string]any, filters []SubscriptionFilter) bool {
	for _, filter := range filters {
		actual, ok := lookupDataValue(data, filter.Field)
		if !ok || !compareFilterValue(actual, filter.Value, filter.Operator) {
			return false
		}
	}
	return true
}

// lookupDataValue returns the value at a dotted path such as
// "job.component.id" in data. A top-level key that contains dots itself is
// found too.
func lookupDataValue(data map[string]any, path string) (any, bool) {
	if value, ok := data[path]; ok {
		return value, true
	}
	var current any = data
	for part := range strings.SplitSeq(path, ".") {
		object, ok := current.(map[string]any)
		if !ok {
			return nil, false
		}
		if current, ok = object[part]; !ok {
			return nil, false
		}
	}
	return current, true
}

// compareFilterValue reports whether actual compares to expected by
// operator. Two values that both read as finite numbers, such as "12345"
// and 12345, compare as numbers. Other values compare as strings, so
// "false" equals false.
//
// NOTE: how the real service compares values of different JSON types is
// not documented, so this rule is the emulator's own.
func compareFilterValue(actual, expected any, operator string) bool {
	actualText, ok := scalarText(actual)
	if !ok {
		return false
	}
	expectedText, ok := scalarText(expected)
	if !ok {
		return false
	}

	order := strings.Compare(actualText, expectedText)
	actualNumber, actualIsNumber := parseFiniteNumber(actualText)
	expectedNumber, expectedIsNumber := parseFiniteNumber(expectedText)
	if actualIsNumber && expectedIsNumber {
		order = cmp.Compare(actualNumber, expectedNumber)
	}

	switch operator {
	case "", "==":
		return order == 0
	case "!=":
		return order != 0
	case "<":
		return order < 0
	case ">":
		return order > 0
	case "<=":
		return order <= 0
	case ">=":
		return order >= 0
	default:
		return false
	}
}

// scalarText returns a string, bool or number as text, and false for any
// other value.
func scalarText(value any) (string, bool) {
	switch v := value.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), true
	default:
		return "", false
	}
}

// parseFiniteNumber parses text as a number, and rejects NaN and the
// infinities, which strconv.ParseFloat accepts.
func parseFiniteNumber(text string) (float64, bool) {
	number, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(number) || math.IsInf(number, 0) {
		return 0, false
	}
	return number, true
}
