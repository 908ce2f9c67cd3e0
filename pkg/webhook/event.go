package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TimeFormat is the layout of the timestamps in a delivery, for example
// "2024-01-15T10:35:01+0000".
const TimeFormat = "2006-01-02T15:04:05-0700"

// Event is the JSON body of a delivery:
//
//	{"event": "storage.jobSucceeded", "data": {...}, "createdTime": "2024-01-15T10:35:01+0000"}
//
// Fields that Keboola adds later are ignored. The verified raw body is in
// Delivery.Body for a receiver that needs them.
type Event struct {
	// Event is the event type, such as "storage.jobFailed".
	Event string `json:"event"`
	// Data describes the job that the event reports.
	Data EventData `json:"data"`
	// CreatedTime is when Keboola created the event.
	CreatedTime Time `json:"createdTime"`
}

// EventData is the "data" object of a delivery.
type EventData struct {
	// ID identifies the event together with Event.Event. A retried
	// delivery carries the same ID.
	ID ID `json:"id"`
	// RunID is the run id of the job.
	RunID ID `json:"runId"`
	// Project is the Keboola project of the job.
	Project Project `json:"project"`
	// Component is the id of the job's component, such as
	// "keboola.ex-db-snowflake".
	Component string `json:"component"`
	// ConfigurationID is the id of the component configuration the job ran.
	ConfigurationID ID `json:"configurationId"`
	// Status is the job's status in Keboola's words, such as "success",
	// "error", "processing" or "waiting".
	Status string `json:"status"`
	// StartTime is when the job started.
	StartTime Time `json:"startTime"`
	// EndTime is when the job ended. It is zero for a job that still runs.
	EndTime Time `json:"endTime"`
	// DurationSeconds is the run time of the job in seconds, and nil for a
	// job that still runs.
	DurationSeconds *float64 `json:"durationSeconds"`
	// Job is the job of a delivery from the Notification service, which
	// describes the job in "data.job" instead of at the top of "data".
	Job Job `json:"job"`
	// Phase is the phase of a flow for the Notification service's events
	// whose names start with "phase-".
	Phase Phase `json:"phase"`
}

// Job is the "data.job" object of a delivery from the Notification service.
//
// NOTE: the layout of Notification service deliveries is taken from the
// project's emulator and not confirmed against a real stack.
type Job struct {
	// ID is the job id.
	ID ID `json:"id"`
	// Status is the job's status, such as "success" or "error".
	Status string `json:"status"`
}

// Phase is the "data.phase" object of a delivery from the Notification
// service.
type Phase struct {
	// ID is the phase id.
	ID ID `json:"id"`
}

// Project is the "data.project" object of a delivery.
type Project struct {
	// ID is the project id, which Keboola sends as a number.
	ID ID `json:"id"`
	// Name is the project's name.
	Name string `json:"name"`
}

// Key returns the key that identifies the event across retried and
// duplicated deliveries: the event type and data.id, joined by a colon, such
// as "storage.jobFailed:123". Event types contain no colon, so two different
// events never share a key. A delivery from the Notification service has no
// data.id, and its key is the event type, data.job.id and, when present,
// data.phase.id, such as "phase-job-failed:123:7". It returns "" when the
// delivery has none of these ids.
func (e Event) Key() string {
	switch {
	case e.Data.ID != "":
		return e.Event + ":" + string(e.Data.ID)
	case e.Data.Job.ID == "":
		return ""
	case e.Data.Phase.ID != "":
		return e.Event + ":" + string(e.Data.Job.ID) + ":" + string(e.Data.Phase.ID)
	}
	return e.Event + ":" + string(e.Data.Job.ID)
}

// ErrInvalidPayload is returned by ParseEvent for a body that is not a
// delivery.
var ErrInvalidPayload = errors.New("invalid payload")

// ParseEvent decodes a delivery body. It returns an error that wraps
// ErrInvalidPayload when the body is not a JSON object, when a known field
// has the wrong type, or when "event" is missing or empty.
func ParseEvent(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidPayload, err)
	}
	if e.Event == "" {
		return Event{}, fmt.Errorf("%w: the field \"event\" is missing or empty", ErrInvalidPayload)
	}
	return e, nil
}

// ID is an identifier that Keboola sends as a JSON string, or for some
// fields as a number. A number is kept as its decimal text, so 123 and "123"
// decode to the same ID. JSON null decodes to "".
type ID string

// UnmarshalJSON decodes a JSON string, number or null.
func (id *ID) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*id = ""
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("an id must be a JSON string or number, got %s", truncateJSON(data))
	}
	*id = ID(n.String())
	return nil
}

// Time is a timestamp of a delivery. It decodes Keboola's format
// (TimeFormat) and RFC 3339. JSON null and "" decode to the zero Time, and
// the zero Time encodes as null.
type Time struct {
	time.Time
}

// UnmarshalJSON decodes a timestamp string or null.
func (t *Time) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("a timestamp must be a JSON string, got %s", truncateJSON(data))
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, layout := range []string{TimeFormat, time.RFC3339Nano} {
		if parsed, err := time.Parse(layout, s); err == nil {
			t.Time = parsed
			return nil
		}
	}
	return fmt.Errorf("invalid timestamp %q: expected the format %s or RFC 3339", s, TimeFormat)
}

// MarshalJSON encodes t in Keboola's format, and the zero Time as null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Format(TimeFormat))
}

// truncateJSON shortens an unexpected JSON value for an error message.
func truncateJSON(data []byte) string {
	const maxLen = 32
	if len(data) > maxLen {
		return string(data[:maxLen]) + "..."
	}
	return string(data)
}
