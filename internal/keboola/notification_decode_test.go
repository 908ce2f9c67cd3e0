package keboola

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeSubscription(t *testing.T) {
	tests := map[string]struct {
		body string
		want *Subscription
	}{
		"documented shape": {
			body: `{"id":"17","projectId":"1234","event":"job-failed",
				"filters":[{"field":"job.component.id","value":"keboola.orchestrator"},{"field":"job.duration","value":"60","operator":">"}],
				"recipient":{"channel":"webhook","url":"https://r.example.com/h?secret=s3cr3t-value"},
				"expiresAt":"2027-01-07T14:00:00+01:00","createdAt":"2024-01-15T10:35:01+00:00"}`,
			want: &Subscription{
				ID:    "17",
				Event: "job-failed",
				Filters: []Filter{
					{Field: "job.component.id", Value: "keboola.orchestrator"},
					{Field: "job.duration", Value: "60", Operator: ">"},
				},
				URL:       "https://r.example.com/h?secret=s3cr3t-value",
				ExpiresAt: timePtr(time.Date(2027, 1, 7, 13, 0, 0, 0, time.UTC)),
			},
		},
		"numeric id, null filters, null expiry": {
			body: `{"id":17,"event":"job-succeeded","filters":null,"recipient":{"channel":"webhook","url":"https://r.example.com/h"},"expiresAt":null}`,
			want: &Subscription{ID: "17", Event: "job-succeeded", URL: "https://r.example.com/h"},
		},
		"address instead of url": {
			body: `{"id":"5","event":"job-failed","recipient":{"channel":"webhook","address":"https://r.example.com/h"}}`,
			want: &Subscription{ID: "5", Event: "job-failed", URL: "https://r.example.com/h"},
		},
		"url wins over address": {
			body: `{"id":"5","event":"job-failed","recipient":{"channel":"webhook","url":"https://a.example.com","address":"https://b.example.com"}}`,
			want: &Subscription{ID: "5", Event: "job-failed", URL: "https://a.example.com"},
		},
		"email recipient": {
			body: `{"id":"6","event":"job-failed","recipient":{"channel":"email","address":"ops@example.com"}}`,
			want: &Subscription{ID: "6", Event: "job-failed"},
		},
		"recipient without channel": {
			body: `{"id":"6","event":"job-failed","recipient":{"url":"https://r.example.com/h","address":"ops@example.com"}}`,
			want: &Subscription{ID: "6", Event: "job-failed", URL: "https://r.example.com/h"},
		},
		"no recipient, empty filters, empty expiry": {
			body: `{"id":"7","event":"job-failed","filters":[],"expiresAt":""}`,
			want: &Subscription{ID: "7", Event: "job-failed"},
		},
		"scalar filter values and == operator": {
			body: `{"id":"8","event":"job-failed","filters":[
				{"field":"job.configuration.id","value":98765,"operator":"=="},
				{"field":"branch.isDefault","value":true},
				{"field":"job.duration","value":1.5e2,"operator":">="},
				{"field":"x","value":null,"operator":"!="},
				{"field":"y"}]}`,
			want: &Subscription{ID: "8", Event: "job-failed", Filters: []Filter{
				{Field: "job.configuration.id", Value: "98765"},
				{Field: "branch.isDefault", Value: "true"},
				{Field: "job.duration", Value: "1.5e2", Operator: ">="},
				{Field: "x", Operator: "!="},
				{Field: "y"},
			}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeSubscription([]byte(tt.body))
			if err != nil {
				t.Fatalf("decodeSubscription() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("decodeSubscription() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSubscriptionRejects(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"not JSON":              {body: `<html>`, wantErr: "not a subscription object"},
		"empty":                 {body: ``, wantErr: "not a subscription object"},
		"array":                 {body: `[]`, wantErr: "not a subscription object"},
		"no id":                 {body: `{"event":"job-failed"}`, wantErr: "id is missing"},
		"null id":               {body: `{"id":null,"event":"job-failed"}`, wantErr: "id is missing"},
		"empty id":              {body: `{"id":"","event":"job-failed"}`, wantErr: "id is missing"},
		"fractional id":         {body: `{"id":1.5,"event":"job-failed"}`, wantErr: "id: not a string or an integer"},
		"boolean id":            {body: `{"id":true,"event":"job-failed"}`, wantErr: "id: not a string or an integer"},
		"no event":              {body: `{"id":"1"}`, wantErr: "event is missing"},
		"empty event":           {body: `{"id":"1","event":""}`, wantErr: "event is missing"},
		"numeric event":         {body: `{"id":"1","event":7}`, wantErr: "not a subscription object"},
		"bad expiry":            {body: `{"id":"1","event":"e","expiresAt":"tok-SECRET-123"}`, wantErr: "expiresAt: not a timestamp"},
		"numeric expiry":        {body: `{"id":"1","event":"e","expiresAt":1700000000}`, wantErr: "expiresAt: not a string"},
		"filters not a list":    {body: `{"id":"1","event":"e","filters":{"field":"x"}}`, wantErr: "not a subscription object"},
		"filter value object":   {body: `{"id":"1","event":"e","filters":[{"field":"x","value":{"a":1}}]}`, wantErr: "filters[0]: value: not a string, number or boolean"},
		"filter value array":    {body: `{"id":"1","event":"e","filters":[{"field":"x","value":[1]}]}`, wantErr: "filters[0]: value: not a string, number or boolean"},
		"recipient as a string": {body: `{"id":"1","event":"e","recipient":"https://r.example.com/h?secret=rcv-SECRET-456"}`, wantErr: "not a subscription object"},
		"trailing garbage":      {body: `{"id":"1","event":"e"} x`, wantErr: "not a subscription object"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeSubscription([]byte(tt.body))
			if err == nil {
				t.Fatalf("decodeSubscription(%s) = %+v, want an error containing %q", tt.body, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeSubscription() error = %q, want it to contain %q", err, tt.wantErr)
			}
			assertNoToken(t, err)
			assertNoReceiverSecret(t, err)
		})
	}
}

func TestDecodeSubscriptionList(t *testing.T) {
	one := `{"id":"1","event":"job-failed"}`
	two := `{"id":2,"event":"job-succeeded","recipient":{"channel":"webhook","address":"https://r.example.com"}}`
	want := []Subscription{
		{ID: "1", Event: "job-failed"},
		{ID: "2", Event: "job-succeeded", URL: "https://r.example.com"},
	}
	tests := map[string]struct {
		body string
		want []Subscription
	}{
		"array":                     {body: "[" + one + "," + two + "]", want: want},
		"empty array":               {body: `[]`, want: []Subscription{}},
		"null":                      {body: `null`, want: []Subscription{}},
		"wrapped in subscriptions":  {body: `{"subscriptions":[` + one + "," + two + `],"total":2}`, want: want},
		"wrapped in data":           {body: `{"data":[` + one + "," + two + `]}`, want: want},
		"wrapped in items":          {body: `{"items":[` + one + "," + two + `]}`, want: want},
		"wrapped null":              {body: `{"subscriptions":null}`, want: []Subscription{}},
		"subscriptions before data": {body: `{"data":[` + two + `],"subscriptions":[` + one + `]}`, want: want[:1]},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeSubscriptionList([]byte(tt.body))
			if err != nil {
				t.Fatalf("decodeSubscriptionList() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeSubscriptionList() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSubscriptionListRejects(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"not JSON":              {body: `<html>`, wantErr: "not an array of subscription objects"},
		"empty":                 {body: ``, wantErr: "not an array of subscription objects"},
		"object without a list": {body: `{"id":"1","event":"e"}`, wantErr: "not an array of subscription objects"},
		"wrapped object":        {body: `{"data":{"id":"1"}}`, wantErr: "not an array of subscription objects"},
		"item without id":       {body: `[{"id":"1","event":"e"},{"event":"e"}]`, wantErr: "subscription at index 1: id is missing"},
		"null item":             {body: `[null]`, wantErr: "subscription at index 0: id is missing"},
		"wrapped bad item":      {body: `{"subscriptions":[{"id":"1"}]}`, wantErr: "subscription at index 0: event is missing"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeSubscriptionList([]byte(tt.body))
			if err == nil {
				t.Fatalf("decodeSubscriptionList(%s) = %+v, want an error containing %q", tt.body, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeSubscriptionList() error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeNotificationServiceURL(t *testing.T) {
	tests := map[string]struct {
		body string
		want string
	}{
		"listed":              {body: `{"services":[{"id":"queue","url":"https://q"},{"id":"notification","url":"https://n"}]}`, want: "https://n"},
		"first with a url":    {body: `{"services":[{"id":"notification","url":""},{"id":"notification","url":"https://a"},{"id":"notification","url":"https://b"}]}`, want: "https://a"},
		"not listed":          {body: `{"services":[{"id":"queue","url":"https://q"}]}`},
		"no services":         {body: `{"api":"storage"}`},
		"null services":       {body: `{"services":null}`},
		"services an object":  {body: `{"services":{"notification":{"url":"https://n"}}}`},
		"services a string":   {body: `{"services":"notification"}`},
		"entries of any type": {body: `{"services":[1,"notification",null,[],{"id":["notification"],"url":"https://x"},{"id":"notification","url":{"href":"https://y"}}]}`},
		"id case differs":     {body: `{"services":[{"id":"Notification","url":"https://n"}]}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeNotificationServiceURL([]byte(tt.body))
			if err != nil {
				t.Fatalf("decodeNotificationServiceURL() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("decodeNotificationServiceURL() = %q, want %q", got, tt.want)
			}
		})
	}

	for _, body := range []string{``, `null`, `[]`, `"x"`, `<html>`, `{"services":[`} {
		t.Run("rejects "+body, func(t *testing.T) {
			if got, err := decodeNotificationServiceURL([]byte(body)); err == nil {
				t.Errorf("decodeNotificationServiceURL(%q) = %q, want an error", body, got)
			}
		})
	}
}

func TestTrustedServiceURL(t *testing.T) {
	tests := []struct {
		stack      string
		raw        string
		wantURL    string
		wantOrigin string
	}{
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com",
			wantURL: "https://notification.keboola.com", wantOrigin: "https://notification.keboola.com"},
		{stack: "https://connection.eu-central-1.keboola.com", raw: "https://Notification.EU-Central-1.keboola.com./",
			wantURL: "https://notification.eu-central-1.keboola.com", wantOrigin: "https://notification.eu-central-1.keboola.com"},
		{stack: "https://connection.keboola.com", raw: "https://connection.keboola.com:443/notification//",
			wantURL: "https://connection.keboola.com/notification", wantOrigin: "https://connection.keboola.com"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com:8443/v1/a%20b",
			wantURL: "https://notification.keboola.com:8443/v1/a%20b", wantOrigin: "https://notification.keboola.com:8443"},
		{stack: "https://connection.keboola.com", raw: " https://notification.keboola.com ",
			wantURL: "https://notification.keboola.com", wantOrigin: "https://notification.keboola.com"},
		{stack: "http://127.0.0.1:8765", raw: "http://127.0.0.1:8765/notification",
			wantURL: "http://127.0.0.1:8765/notification", wantOrigin: "http://127.0.0.1:8765"},
		{stack: "http://127.0.0.1:8765", raw: "http://localhost:9000",
			wantURL: "http://localhost:9000", wantOrigin: "http://localhost:9000"},
		{stack: "http://[::1]:8765", raw: "http://[::1]:9000/n/",
			wantURL: "http://[::1]:9000/n", wantOrigin: "http://[::1]:9000"},
		{stack: "https://127.0.0.1:8765", raw: "https://127.0.0.1:9000",
			wantURL: "https://127.0.0.1:9000", wantOrigin: "https://127.0.0.1:9000"},
		{stack: "https://10.0.0.5", raw: "https://10.0.0.5/notification",
			wantURL: "https://10.0.0.5/notification", wantOrigin: "https://10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.stack+" "+tt.raw, func(t *testing.T) {
			gotURL, gotOrigin, err := trustedServiceURL(tt.stack, tt.raw)
			if err != nil {
				t.Fatalf("trustedServiceURL() error = %v", err)
			}
			if gotURL != tt.wantURL {
				t.Errorf("URL = %q, want %q", gotURL, tt.wantURL)
			}
			if gotOrigin != tt.wantOrigin {
				t.Errorf("origin = %q, want %q", gotOrigin, tt.wantOrigin)
			}
		})
	}
}

func TestTrustedServiceURLRejects(t *testing.T) {
	// Every rejected URL contains "attacker" so that the test can check that
	// no message quotes it.
	tests := []struct {
		stack   string
		raw     string
		wantErr string
	}{
		{stack: "https://connection.keboola.com", raw: "https://notification.attacker.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "https://keboola.com.attacker.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "https://attacker.notification.keboola.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "https://attacker-keboola.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "https://attacker.com", wantErr: "its host must be"},
		{stack: "https://keboola.com", raw: "https://attacker.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "https://127.0.0.1/attacker", wantErr: "its host must be"},
		{stack: "https://10.0.0.5", raw: "https://10.0.0.6/attacker", wantErr: "its host must be"},
		{stack: "http://127.0.0.1:8765", raw: "http://notification.attacker.com", wantErr: "it must use https"},
		{stack: "http://127.0.0.1:8765", raw: "https://notification.attacker.com", wantErr: "its host must be"},
		{stack: "https://connection.keboola.com", raw: "http://notification.keboola.com/attacker", wantErr: "it must use https"},
		{stack: "https://127.0.0.1:8765", raw: "http://127.0.0.1:9000/attacker", wantErr: "it must use https"},
		{stack: "http://127.0.0.1:8765", raw: "ftp://127.0.0.1/attacker", wantErr: "it must use https"},
		{stack: "https://connection.keboola.com", raw: "https://attacker:pw@notification.keboola.com", wantErr: "user info"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com/?attacker=1", wantErr: "query"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com/?", wantErr: "query"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com/#attacker", wantErr: "fragment"},
		{stack: "https://connection.keboola.com", raw: "/attacker/notification", wantErr: "absolute URL"},
		{stack: "https://connection.keboola.com", raw: "notification.keboola.com/attacker", wantErr: "absolute URL"},
		{stack: "https://connection.keboola.com", raw: "https:attacker", wantErr: "absolute URL"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com/attacker/../x", wantErr: "dot segments"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com/attacker/%2e%2e/x", wantErr: "dot segments"},
		{stack: "https://connection.keboola.com", raw: "https://notification.keboola.com:99999/attacker", wantErr: "its port must be"},
		{stack: "https://connection.keboola.com", raw: "https://notif_attacker.keboola.com", wantErr: "not a valid DNS name"},
		{stack: "https://connection.keboola.com", raw: "https://attacker\x7f.keboola.com", wantErr: "not a valid URL"},
		{stack: "https://connection.keboola.com", raw: "  ", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.stack+" "+tt.raw, func(t *testing.T) {
			gotURL, _, err := trustedServiceURL(tt.stack, tt.raw)
			if err == nil {
				t.Fatalf("trustedServiceURL() = %q, want an error containing %q", gotURL, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("trustedServiceURL() error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "attacker") {
				t.Errorf("trustedServiceURL() error = %q quotes the URL", err)
			}
		})
	}
}

// FuzzDecodeSubscription checks that the subscription decoders never panic,
// never return a subscription without an id or an event, and never put the
// token or a receiver secret in an error.
func FuzzDecodeSubscription(f *testing.F) {
	seeds := []string{
		`{"id":"17","event":"job-failed","filters":[{"field":"job.component.id","value":"x","operator":"=="}],"recipient":{"channel":"webhook","url":"https://r.example.com/h?secret=rcv-SECRET-456"},"expiresAt":"2027-01-07T14:00:00+01:00"}`,
		`{"id":17,"event":"e","recipient":{"channel":"webhook","address":"https://r.example.com/h?secret=rcv-SECRET-456"},"expiresAt":null}`,
		`[{"id":"1","event":"e"},{"id":2,"event":"f","filters":null}]`,
		`{"subscriptions":[{"id":"1","event":"e"}]}`,
		`{"data":null}`,
		`{"id":"tok-SECRET-123","event":"tok-SECRET-123","expiresAt":"rcv-SECRET-456"}`,
		`{"id":"1","event":"e","filters":[{"value":{"a":"rcv-SECRET-456"}}]}`,
		`{"id":"1","event":"e","filters":[{"value":1e999}]}`,
		`{"id":"1","event":"e","recipient":"rcv-SECRET-456"}`,
		`{"id":1.5}`, `{"id":-0,"event":""}`, `null`, ``, `[]`, `[null]`, `<html>`, `{"id":"1"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if subscription, err := decodeSubscription(body); err == nil {
			if subscription.ID == "" || subscription.Event == "" {
				t.Errorf("decodeSubscription() returned a subscription without an id or an event: %+v", subscription)
			}
		} else {
			assertNoToken(t, err)
			assertNoReceiverSecret(t, err)
		}

		if subscriptions, err := decodeSubscriptionList(body); err == nil {
			for i, subscription := range subscriptions {
				if subscription.ID == "" || subscription.Event == "" {
					t.Errorf("decodeSubscriptionList() returned subscription %d without an id or an event", i)
				}
			}
		} else {
			assertNoToken(t, err)
			assertNoReceiverSecret(t, err)
		}
	})
}

// FuzzDecodeNotificationServiceURL checks that the index decoder never
// panics, and that an error comes without a URL.
func FuzzDecodeNotificationServiceURL(f *testing.F) {
	seeds := []string{
		`{"services":[{"id":"notification","url":"https://notification.keboola.com"}]}`,
		`{"services":[1,null,{"id":"notification"},{"id":"notification","url":7}]}`,
		`{"services":{"id":"notification"}}`,
		`{"services":"tok-SECRET-123"}`,
		`null`, ``, `[]`, `<html>`, `{"services":[`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		serviceURL, err := decodeNotificationServiceURL(body)
		if err != nil {
			if serviceURL != "" {
				t.Errorf("decodeNotificationServiceURL() returned both %q and an error", serviceURL)
			}
			assertNoToken(t, err)
		}
	})
}

// FuzzTrustedServiceURL checks that the URL check never panics, that its
// errors never quote the URL, and that an accepted URL passes the check
// again unchanged.
func FuzzTrustedServiceURL(f *testing.F) {
	seeds := []string{
		"https://notification.keboola.com", "https://notification.keboola.com/a/b/",
		"http://127.0.0.1:8765/notification", "https://attacker@notification.keboola.com",
		"https://[::1]:1/x", "https://notification.keboola.com/%zz", "https://notification.keboola.com/%2e",
		"//notification.keboola.com", "https:///x", "", "tok-SECRET-123",
	}
	for _, s := range seeds {
		f.Add("https://connection.keboola.com", s)
		f.Add("http://127.0.0.1:8765", s)
	}
	f.Fuzz(func(t *testing.T, stack, raw string) {
		stackURL, err := NormalizeStackURL(stack)
		if err != nil {
			return
		}
		serviceURL, origin, err := trustedServiceURL(stackURL, raw)
		if err != nil {
			if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
				t.Errorf("trustedServiceURL() error = %q quotes the URL", err)
			}
			return
		}
		if !strings.HasPrefix(serviceURL, origin) {
			t.Errorf("URL %q does not start with its origin %q", serviceURL, origin)
		}
		again, againOrigin, err := trustedServiceURL(stackURL, serviceURL)
		if err != nil || again != serviceURL || againOrigin != origin {
			t.Errorf("second check of %q = %q, %q, %v, want it unchanged", serviceURL, again, againOrigin, err)
		}
	})
}

func TestCreatedSubscriptionErrorIsOutcomeUnknown(t *testing.T) {
	err := &ResponseError{Method: "POST", Endpoint: endpointSubscriptions, StatusCode: 201, Err: errors.New("id is missing")}
	want := "keboola: POST /project-subscriptions: 201 Created: invalid response body: id is missing (outcome unknown, the subscription may exist)"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("errors.Is(err, ErrOutcomeUnknown) = false, want true")
	}
}
