package webhook

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseEventDeliveryFormat(t *testing.T) {
	// The body of a storage.jobSucceeded delivery in the documented format.
	body := []byte(`{
		"event": "storage.jobSucceeded",
		"data": {
			"id": "100000001",
			"runId": "100000001",
			"project": {"id": 1234, "name": "Analytics"},
			"component": "keboola.ex-db-snowflake",
			"configurationId": "1",
			"status": "success",
			"startTime": "2024-01-15T10:34:19+0000",
			"endTime": "2024-01-15T10:35:01+0000",
			"durationSeconds": 42
		},
		"createdTime": "2024-01-15T10:35:01+0000"
	}`)
	got, err := ParseEvent(body)
	if err != nil {
		t.Fatalf("ParseEvent() error = %v", err)
	}

	duration := 42.0
	want := Event{
		Event: "storage.jobSucceeded",
		Data: EventData{
			ID:              "100000001",
			RunID:           "100000001",
			Project:         Project{ID: "1234", Name: "Analytics"},
			Component:       "keboola.ex-db-snowflake",
			ConfigurationID: "1",
			Status:          "success",
			StartTime:       Time{time.Date(2024, 1, 15, 10, 34, 19, 0, time.UTC)},
			EndTime:         Time{time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)},
			DurationSeconds: &duration,
		},
		CreatedTime: Time{time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b Time) bool { return a.Equal(b.Time) })); diff != "" {
		t.Errorf("ParseEvent() mismatch (-want +got):\n%s", diff)
	}
	if key := got.Key(); key != "storage.jobSucceeded:100000001" {
		t.Errorf("Key() = %q, want %q", key, "storage.jobSucceeded:100000001")
	}
}

func TestParseEventJobInProgress(t *testing.T) {
	got, err := ParseEvent([]byte(`{"event":"storage.jobProcessing","data":{"id":7,"status":"processing",` +
		`"startTime":"2024-01-15T10:34:19Z","endTime":null,"durationSeconds":null},"createdTime":""}`))
	if err != nil {
		t.Fatalf("ParseEvent() error = %v", err)
	}
	if got.Data.ID != "7" {
		t.Errorf("Data.ID = %q, want %q", got.Data.ID, "7")
	}
	if !got.Data.StartTime.Equal(time.Date(2024, 1, 15, 10, 34, 19, 0, time.UTC)) {
		t.Errorf("Data.StartTime = %v, want the RFC 3339 time", got.Data.StartTime)
	}
	if !got.Data.EndTime.IsZero() {
		t.Errorf("Data.EndTime = %v, want zero for null", got.Data.EndTime)
	}
	if got.Data.DurationSeconds != nil {
		t.Errorf("Data.DurationSeconds = %v, want nil for null", *got.Data.DurationSeconds)
	}
	if !got.CreatedTime.IsZero() {
		t.Errorf("CreatedTime = %v, want zero for an empty string", got.CreatedTime)
	}
}

func TestParseEventInvalid(t *testing.T) {
	tests := map[string]string{
		"not JSON":             `not json`,
		"array":                `[{"event":"storage.jobFailed"}]`,
		"event missing":        `{"data":{"id":"1"}}`,
		"event empty":          `{"event":"","data":{"id":"1"}}`,
		"id is an object":      `{"event":"storage.jobFailed","data":{"id":{"n":1}}}`,
		"timestamp not a date": `{"event":"storage.jobFailed","createdTime":"yesterday"}`,
		"timestamp a number":   `{"event":"storage.jobFailed","createdTime":1705314901}`,
		"duration a string":    `{"event":"storage.jobFailed","data":{"durationSeconds":"42"}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrInvalidPayload) {
				t.Errorf("ParseEvent(%s) error = %v, want ErrInvalidPayload", body, err)
			}
		})
	}
}

func TestEventKeyWithoutID(t *testing.T) {
	if key := (Event{Event: "storage.jobFailed"}).Key(); key != "" {
		t.Errorf("Key() = %q, want empty without data.id", key)
	}
}

func TestTimeMarshalJSON(t *testing.T) {
	encoded, err := json.Marshal(struct {
		Set   Time `json:"set"`
		Unset Time `json:"unset"`
	}{Set: Time{time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"set":"2024-01-15T10:35:01+0000","unset":null}`; string(encoded) != want {
		t.Errorf("json.Marshal() = %s, want %s", encoded, want)
	}
}

func TestEventKeyOfNotificationDeliveries(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "job event",
			body: `{"event":"job-failed","data":{"job":{"id":"123","status":"error"}}}`,
			want: "job-failed:123",
		},
		{
			name: "phase event",
			body: `{"event":"phase-job-failed","data":{"job":{"id":123},"phase":{"id":"7"}}}`,
			want: "phase-job-failed:123:7",
		},
		{
			name: "data.id wins",
			body: `{"event":"job-failed","data":{"id":"9","job":{"id":"123"}}}`,
			want: "job-failed:9",
		},
		{
			name: "no ids",
			body: `{"event":"job-failed","data":{"job":{"status":"error"}}}`,
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event, err := ParseEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEvent() error = %v", err)
			}
			if got := event.Key(); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}
