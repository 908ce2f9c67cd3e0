package packaging

import (
	"testing"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// TestKstatusComputesOperatorStatus checks what kstatus, and with it Flux's
// health checks, computes from the status the operator writes.
func TestKstatusComputesOperatorStatus(t *testing.T) {
	for _, kind := range bothKinds {
		cases := []struct {
			name        string
			fixture     statusFixture
			want        status.Status
			wantMessage string
		}{
			{
				name:    "ready",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateReady, reason: kind.readyReason, message: "All good"},
				want:    status.CurrentStatus,
			},
			{
				name:        "reconciling",
				fixture:     statusFixture{generation: 1, observedGeneration: 1, state: stateProgressing, reason: kind.progressingReason, message: "Work in progress"},
				want:        status.InProgressStatus,
				wantMessage: "Work in progress",
			},
			{
				name:        "transient failure retried",
				fixture:     statusFixture{generation: 1, observedGeneration: 1, state: stateProgressing, reason: keboolav1.ReasonAPIUnavailable, message: "Storage API returned 503; retrying"},
				want:        status.InProgressStatus,
				wantMessage: "Storage API returned 503; retrying",
			},
			{
				name:        "stalled",
				fixture:     statusFixture{generation: 3, observedGeneration: 3, state: stateStalled, reason: kind.stalledReason, message: "Fix the spec"},
				want:        status.FailedStatus,
				wantMessage: "Fix the spec",
			},
			{
				name:    "generation not observed",
				fixture: statusFixture{generation: 4, observedGeneration: 3, state: stateReady, reason: kind.readyReason, message: "All good"},
				want:    status.InProgressStatus,
			},
			{
				name:    "stalled for an older generation",
				fixture: statusFixture{generation: 4, observedGeneration: 3, state: stateStalled, reason: kind.stalledReason, message: "Fix the spec"},
				want:    status.InProgressStatus,
			},
			{
				name:    "being deleted",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateReady, reason: kind.readyReason, deleting: true},
				want:    status.TerminatingStatus,
			},
			{
				// kstatus cannot tell an object that no controller has seen
				// from one whose controller writes no status, so it reports
				// Current until the operator's first status write.
				name:    "no status yet",
				fixture: statusFixture{generation: 1},
				want:    status.CurrentStatus,
			},
		}
		for _, tc := range cases {
			t.Run(kind.kind+"/"+tc.name, func(t *testing.T) {
				result, err := status.Compute(kind.build(tc.fixture, t))
				if err != nil {
					t.Fatalf("status.Compute failed: %v", err)
				}
				if result.Status != tc.want {
					t.Errorf("status = %s (%q), want %s", result.Status, result.Message, tc.want)
				}
				if tc.wantMessage != "" && result.Message != tc.wantMessage {
					t.Errorf("message = %q, want %q", result.Message, tc.wantMessage)
				}
			})
		}
	}
}

// TestKstatusPausedWebhookInProgress records that kstatus has no paused
// state: a paused KeboolaWebhook, Ready=False without Reconciling or
// Stalled, is InProgress, so a Flux Kustomization that waits for it times out.
func TestKstatusPausedWebhookInProgress(t *testing.T) {
	fixture := statusFixture{
		generation:         1,
		observedGeneration: 1,
		state:              stateWaiting,
		reason:             keboolav1.ReasonPaused,
		message:            "Paused by the keboola.dev/paused annotation",
	}
	result, err := status.Compute(fixture.webhook(t))
	if err != nil {
		t.Fatalf("status.Compute failed: %v", err)
	}
	if result.Status != status.InProgressStatus {
		t.Errorf("status = %s (%q), want %s", result.Status, result.Message, status.InProgressStatus)
	}
}
