package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

func TestClassifyAPIError(t *testing.T) {
	tests := map[string]struct {
		err            error
		wantState      readinessState
		wantReason     string
		wantTerminal   bool
		wantRetryAfter time.Duration
		wantInMessage  string
	}{
		"422 carries the API's message": {
			err:           &keboola.APIError{Method: "POST", Endpoint: "/v2/storage/webhooks", StatusCode: 422, Message: "url must be https"},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonInvalidSpec,
			wantTerminal:  true,
			wantInMessage: "url must be https",
		},
		"400 is invalid too": {
			err:          &keboola.APIError{Method: "PUT", Endpoint: "/v2/storage/webhooks/{id}", StatusCode: 400, Message: "unknown event"},
			wantState:    stateStalled,
			wantReason:   keboolav1.ReasonInvalidSpec,
			wantTerminal: true,
		},
		"401": {
			err:          &keboola.APIError{Method: "GET", Endpoint: "/v2/storage/webhooks", StatusCode: 401},
			wantState:    stateStalled,
			wantReason:   keboolav1.ReasonUnauthorized,
			wantTerminal: true,
		},
		"403": {
			err:          &keboola.APIError{Method: "GET", Endpoint: "/v2/storage/webhooks", StatusCode: 403},
			wantState:    stateStalled,
			wantReason:   keboolav1.ReasonForbidden,
			wantTerminal: true,
		},
		"429 with Retry-After": {
			err:            &keboola.APIError{Method: "POST", Endpoint: "/v2/storage/webhooks", StatusCode: 429, RetryAfter: 7 * time.Second},
			wantState:      stateProgressing,
			wantReason:     keboolav1.ReasonRateLimited,
			wantRetryAfter: 7 * time.Second,
			wantInMessage:  "7s",
		},
		"throttled by the client": {
			err:            &keboola.ThrottledError{Method: "GET", Endpoint: "/v2/storage/webhooks", RetryAfter: 2 * time.Minute},
			wantState:      stateProgressing,
			wantReason:     keboolav1.ReasonRateLimited,
			wantRetryAfter: 2 * time.Minute,
		},
		"503 maintenance": {
			err:            &keboola.APIError{Method: "GET", Endpoint: "/v2/storage/webhooks", StatusCode: 503, Maintenance: true, RetryAfter: time.Minute},
			wantState:      stateProgressing,
			wantReason:     keboolav1.ReasonRateLimited,
			wantRetryAfter: time.Minute,
		},
		"500": {
			err:        &keboola.APIError{Method: "GET", Endpoint: "/v2/storage/webhooks", StatusCode: 500},
			wantState:  stateProgressing,
			wantReason: keboolav1.ReasonAPIUnavailable,
		},
		"lost create response": {
			err:        &keboola.TransportError{Method: "POST", Endpoint: "/v2/storage/webhooks", RequestSent: true, Err: errors.New("EOF")},
			wantState:  stateProgressing,
			wantReason: keboolav1.ReasonAPIUnavailable,
		},
		"wrapped": {
			err:          fmt.Errorf("outer: %w", &keboola.APIError{Method: "POST", Endpoint: "/v2/storage/webhooks", StatusCode: 403}),
			wantState:    stateStalled,
			wantReason:   keboolav1.ReasonForbidden,
			wantTerminal: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := classifyAPIError("create the webhook", tc.err)
			if got.readiness.state != tc.wantState {
				t.Errorf("state = %v, want %v", got.readiness.state, tc.wantState)
			}
			if got.readiness.reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", got.readiness.reason, tc.wantReason)
			}
			if got.terminal != tc.wantTerminal {
				t.Errorf("terminal = %v, want %v", got.terminal, tc.wantTerminal)
			}
			if got.retryAfter != tc.wantRetryAfter {
				t.Errorf("retryAfter = %v, want %v", got.retryAfter, tc.wantRetryAfter)
			}
			if !strings.Contains(got.readiness.message, tc.wantInMessage) {
				t.Errorf("message %q does not contain %q", got.readiness.message, tc.wantInMessage)
			}
		})
	}
}

func TestProjectReadiness(t *testing.T) {
	readyConditions := []metav1.Condition{{Type: keboolav1.ConditionReady, Status: metav1.ConditionTrue, Reason: keboolav1.ReasonVerified, ObservedGeneration: 2}}
	deleted := metav1.Now()
	tests := map[string]struct {
		project    *keboolav1.KeboolaProject
		wantUsable bool
		wantInMsg  string
	}{
		"missing": {wantInMsg: "not found"},
		"ready": {
			project:    &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: keboolav1.KeboolaProjectStatus{Conditions: readyConditions, ProjectID: 7}},
			wantUsable: true,
		},
		"ready for an older generation": {
			project:   &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: keboolav1.KeboolaProjectStatus{Conditions: readyConditions, ProjectID: 7}},
			wantInMsg: "not Ready",
		},
		"not ready shows the reason": {
			project: &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Status: keboolav1.KeboolaProjectStatus{Conditions: []metav1.Condition{
				{Type: keboolav1.ConditionReady, Status: metav1.ConditionFalse, Reason: keboolav1.ReasonSecretNotFound, ObservedGeneration: 1}}}},
			wantInMsg: keboolav1.ReasonSecretNotFound,
		},
		"being deleted": {
			project:   &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Generation: 2, DeletionTimestamp: &deleted}, Status: keboolav1.KeboolaProjectStatus{Conditions: readyConditions, ProjectID: 7}},
			wantInMsg: "being deleted",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, usable := projectReadiness("main", tc.project)
			if usable != tc.wantUsable {
				t.Fatalf("usable = %v, want %v", usable, tc.wantUsable)
			}
			if usable {
				return
			}
			if got.reason != keboolav1.ReasonProjectNotReady || got.state != stateProgressing {
				t.Errorf("readiness = %+v, want progressing with reason ProjectNotReady", got)
			}
			if !strings.Contains(got.message, tc.wantInMsg) {
				t.Errorf("message %q does not contain %q", got.message, tc.wantInMsg)
			}
		})
	}
}

func TestCreatingReadiness(t *testing.T) {
	tests := map[string]string{
		pendingReasonCreate:   keboolav1.ReasonCreating,
		pendingReasonRecreate: keboolav1.ReasonCreating,
		pendingReasonRotate:   keboolav1.ReasonRotating,
	}
	for pending, want := range tests {
		got := creatingReadiness(pending)
		if got.reason != want || got.state != stateProgressing {
			t.Errorf("creatingReadiness(%q) = %+v, want progressing with reason %s", pending, got, want)
		}
	}
}

func TestPausedReadiness(t *testing.T) {
	got := pausedReadiness()
	if got.state != stateWaiting || got.reason != keboolav1.ReasonPaused {
		t.Errorf("pausedReadiness() = %+v, want waiting with reason Paused", got)
	}
	if !strings.Contains(got.message, keboolav1.AnnotationPaused) || !strings.Contains(got.message, "Remove the annotation") {
		t.Errorf("message %q does not say how to resume", got.message)
	}
}

func TestDeletionBlockedReadiness(t *testing.T) {
	got := deletionBlockedReadiness([]string{"12", "13"}, `KeboolaProject "main" not found`)
	if got.state != stateStalled || got.reason != keboolav1.ReasonDeletionBlocked {
		t.Errorf("readiness = %+v, want stalled with reason DeletionBlocked", got)
	}
	for _, want := range []string{`"12", "13"`, "Restore the KeboolaProject", "deletionPolicy", "Orphan"} {
		if !strings.Contains(got.message, want) {
			t.Errorf("message %q does not contain %q", got.message, want)
		}
	}

	paused := pausedDeletionReadiness([]string{"12"})
	for _, want := range []string{`webhook "12"`, keboolav1.AnnotationPaused, "Orphan"} {
		if !strings.Contains(paused.message, want) {
			t.Errorf("paused message %q does not contain %q", paused.message, want)
		}
	}
}

func TestStalledOnInvalidSpec(t *testing.T) {
	stalledAt := func(reason string, generation int64) []metav1.Condition {
		return []metav1.Condition{{Type: keboolav1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: generation}}
	}
	tests := map[string]struct {
		conditions []metav1.Condition
		want       bool
	}{
		"same generation":  {conditions: stalledAt(keboolav1.ReasonInvalidSpec, 3), want: true},
		"newer spec":       {conditions: stalledAt(keboolav1.ReasonInvalidSpec, 2)},
		"other reason":     {conditions: stalledAt(keboolav1.ReasonUnauthorized, 3)},
		"no stall at all":  {},
		"stall is not set": {conditions: []metav1.Condition{{Type: keboolav1.ConditionStalled, Status: metav1.ConditionFalse, Reason: keboolav1.ReasonInvalidSpec, ObservedGeneration: 3}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := stalledOnInvalidSpec(tc.conditions, 3); got != tc.want {
				t.Errorf("stalledOnInvalidSpec() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCommitWebhook(t *testing.T) {
	tests := map[string]struct {
		before      keboolav1.KeboolaWebhookStatus
		id          string
		wantRetired []string
	}{
		"first webhook": {
			before: keboolav1.KeboolaWebhookStatus{PendingCreate: &keboolav1.PendingCreate{AttemptID: "a"}},
			id:     "10",
		},
		"rotation retires the previous webhook": {
			before:      keboolav1.KeboolaWebhookStatus{WebhookID: "10", PendingCreate: &keboolav1.PendingCreate{AttemptID: "a"}},
			id:          "11",
			wantRetired: []string{"10"},
		},
		"retired list keeps older entries once": {
			before:      keboolav1.KeboolaWebhookStatus{WebhookID: "10", RetiredWebhookIDs: []string{"9", "10"}},
			id:          "11",
			wantRetired: []string{"9", "10"},
		},
		"adopting a retired id removes it from the list": {
			before:      keboolav1.KeboolaWebhookStatus{WebhookID: "10", RetiredWebhookIDs: []string{"11"}},
			id:          "11",
			wantRetired: []string{"10"},
		},
		"same id": {
			before: keboolav1.KeboolaWebhookStatus{WebhookID: "10"},
			id:     "10",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status := tc.before.DeepCopy()
			commitWebhook(status, tc.id, "sha256:0011223344556677", "token-2")
			if status.WebhookID != tc.id {
				t.Errorf("webhookID = %q, want %q", status.WebhookID, tc.id)
			}
			if status.PendingCreate != nil {
				t.Errorf("pendingCreate = %+v, want nil", status.PendingCreate)
			}
			if status.SecretFingerprint != "sha256:0011223344556677" || status.RotationToken != "token-2" {
				t.Errorf("fingerprint, rotationToken = %q, %q; want the committed values", status.SecretFingerprint, status.RotationToken)
			}
			if status.LastSyncedTime == nil {
				t.Error("lastSyncedTime is not set")
			}
			if diff := cmp.Diff(tc.wantRetired, status.RetiredWebhookIDs); diff != "" {
				t.Errorf("retiredWebhookIDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsWarningReason(t *testing.T) {
	for _, reason := range []string{keboolav1.ReasonInvalidSpec, keboolav1.ReasonUnauthorized, keboolav1.ReasonForbidden,
		keboolav1.ReasonRateLimited, keboolav1.ReasonAPIUnavailable, keboolav1.ReasonSecretConflict, keboolav1.ReasonDeletionBlocked} {
		if !isWarningReason(reason) {
			t.Errorf("isWarningReason(%q) = false, want true", reason)
		}
	}
	for _, reason := range []string{keboolav1.ReasonSynced, keboolav1.ReasonCreating, keboolav1.ReasonPaused, keboolav1.ReasonProjectNotReady, ""} {
		if isWarningReason(reason) {
			t.Errorf("isWarningReason(%q) = true, want false", reason)
		}
	}
}
