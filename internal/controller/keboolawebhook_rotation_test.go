package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

var rotationNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rotationSecret returns a Secret with the current signing secret of
// webhook "10" and, when previousID is set, the previous one.
func rotationSecret(previousID string) *corev1.Secret {
	secret := &corev1.Secret{Data: map[string][]byte{
		keboolav1.SecretKeySigningSecret: []byte("current"),
		keboolav1.SecretKeyWebhookID:     []byte("10"),
	}}
	if previousID != "" {
		secret.Data[keboolav1.SecretKeyPreviousSigningSecret] = []byte("previous")
		secret.Data[keboolav1.SecretKeyPreviousWebhookID] = []byte(previousID)
	}
	return secret
}

func TestSecretToKeep(t *testing.T) {
	status := keboolav1.KeboolaWebhookStatus{WebhookID: "10", SecretFingerprint: fingerprint([]byte("current"))}
	edited := rotationSecret("9")
	edited.Data[keboolav1.SecretKeySigningSecret] = []byte("typed-by-hand")

	tests := map[string]struct {
		reason string
		secret *corev1.Secret
		want   *previousSecret
	}{
		"rotation keeps the current secret": {
			reason: pendingReasonRotate, secret: rotationSecret("9"),
			want: &previousSecret{webhookID: "10", value: []byte("current")},
		},
		"rotation after an edit keeps nothing":    {reason: pendingReasonRotate, secret: edited},
		"rotation without a Secret keeps nothing": {reason: pendingReasonRotate},
		"recreate keeps the previous secret of a rotation in progress": {
			reason: pendingReasonRecreate, secret: rotationSecret("9"),
			want: &previousSecret{webhookID: "9", value: []byte("previous")},
		},
		"recreate without a rotation keeps nothing": {reason: pendingReasonRecreate, secret: rotationSecret("")},
		"first create keeps nothing":                {reason: pendingReasonCreate, secret: rotationSecret("9")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &webhookPass{wh: &keboolav1.KeboolaWebhook{Status: status}, secret: tc.secret}
			got := secretToKeep(p, tc.reason)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(previousSecret{})); diff != "" {
				t.Errorf("secretToKeep() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRotationPhases(t *testing.T) {
	grace := 5 * time.Minute
	status := &keboolav1.KeboolaWebhookStatus{WebhookID: "10"}

	beginRotation(status, &previousSecret{webhookID: "10", value: []byte("current")}, rotationNow)
	if status.Rotation.Phase != keboolav1.RotationPhasePublishing || status.Rotation.PreviousWebhookID != "10" {
		t.Fatalf("after beginRotation: rotation = %+v, want Publishing from webhook 10", status.Rotation)
	}
	if status.Rotation.PreviousSecretFingerprint != fingerprint([]byte("current")) {
		t.Errorf("PreviousSecretFingerprint = %q, want the fingerprint of the kept secret", status.Rotation.PreviousSecretFingerprint)
	}
	if !overlapProtects(status, "10") {
		t.Error("overlapProtects() = false while publishing, want true")
	}

	commitWebhook(status, "11", "sha256:new", "token")
	startOverlap(status, rotationNow, grace)
	if status.Rotation.Phase != keboolav1.RotationPhaseOverlapping {
		t.Fatalf("after startOverlap: phase = %q, want Overlapping", status.Rotation.Phase)
	}
	if !status.Rotation.OverlapUntil.Time.Equal(rotationNow.Add(grace)) {
		t.Errorf("OverlapUntil = %v, want %v", status.Rotation.OverlapUntil, rotationNow.Add(grace))
	}
	if diff := cmp.Diff([]string{"10"}, status.RetiredWebhookIDs); diff != "" {
		t.Errorf("RetiredWebhookIDs mismatch (-want +got):\n%s", diff)
	}
	if !overlapProtects(status, "10") || overlapProtects(status, "9") {
		t.Error("overlapProtects() must protect only the previous webhook of the rotation")
	}

	rounded := &keboolav1.KeboolaWebhookStatus{Rotation: &keboolav1.RotationStatus{Phase: keboolav1.RotationPhasePublishing}}
	startOverlap(rounded, rotationNow.Add(300*time.Millisecond), grace)
	if want := rotationNow.Add(grace + time.Second); !rounded.Rotation.OverlapUntil.Time.Equal(want) {
		t.Errorf("OverlapUntil of a start between seconds = %v, want it rounded up to %v", rounded.Rotation.OverlapUntil, want)
	}

	until := status.Rotation.OverlapUntil.DeepCopy()
	startOverlap(status, rotationNow.Add(time.Minute), grace)
	if !status.Rotation.OverlapUntil.Equal(until) {
		t.Error("startOverlap() moved overlapUntil of a rotation that already overlaps")
	}

	status.Rotation.Phase = keboolav1.RotationPhaseRetiring
	if overlapProtects(status, "10") {
		t.Error("overlapProtects() = true while retiring, want false")
	}
}

func TestAbandonPublishing(t *testing.T) {
	for _, phase := range []keboolav1.RotationPhase{
		keboolav1.RotationPhasePublishing, keboolav1.RotationPhaseOverlapping, keboolav1.RotationPhaseRetiring,
	} {
		status := &keboolav1.KeboolaWebhookStatus{Rotation: &keboolav1.RotationStatus{Phase: phase, PreviousWebhookID: "9"}}
		abandonPublishing(status)
		if cleared := status.Rotation == nil; cleared != (phase == keboolav1.RotationPhasePublishing) {
			t.Errorf("abandonPublishing() in phase %s: cleared = %v, want it cleared only while publishing", phase, cleared)
		}
	}
}

func TestAdoptRotation(t *testing.T) {
	grace := time.Minute
	publishing := &keboolav1.RotationStatus{
		Phase: keboolav1.RotationPhasePublishing, PreviousWebhookID: "10", StartedTime: metav1.NewTime(rotationNow),
	}
	tests := map[string]struct {
		rotation        *keboolav1.RotationStatus
		secret          *corev1.Secret
		wantPhase       keboolav1.RotationPhase
		wantFingerprint string
	}{
		"recorded rotation with the previous secret kept": {
			rotation: publishing, secret: rotationSecret("10"),
			wantPhase: keboolav1.RotationPhaseOverlapping, wantFingerprint: fingerprint([]byte("previous")),
		},
		"recorded rotation after the Secret was lost": {
			rotation: publishing, secret: rotationSecret(""),
			wantPhase: keboolav1.RotationPhaseOverlapping,
		},
		"rotation of another instance found through the Secret": {
			secret:    rotationSecret("10"),
			wantPhase: keboolav1.RotationPhaseOverlapping, wantFingerprint: fingerprint([]byte("previous")),
		},
		"plain create":                        {secret: rotationSecret("")},
		"previous secret of an older webhook": {secret: rotationSecret("8")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status := &keboolav1.KeboolaWebhookStatus{WebhookID: "11", Rotation: tc.rotation.DeepCopy()}
			adoptRotation(status, tc.secret, "10", rotationNow, grace)
			if tc.wantPhase == "" {
				if status.Rotation != nil {
					t.Errorf("rotation = %+v, want none", status.Rotation)
				}
				return
			}
			if status.Rotation == nil {
				t.Fatalf("rotation = nil, want phase %s", tc.wantPhase)
			}
			if status.Rotation.Phase != tc.wantPhase {
				t.Errorf("phase = %q, want %q", status.Rotation.Phase, tc.wantPhase)
			}
			if status.Rotation.PreviousWebhookID != "10" {
				t.Errorf("PreviousWebhookID = %q, want %q", status.Rotation.PreviousWebhookID, "10")
			}
			if status.Rotation.PreviousSecretFingerprint != tc.wantFingerprint {
				t.Errorf("PreviousSecretFingerprint = %q, want %q", status.Rotation.PreviousSecretFingerprint, tc.wantFingerprint)
			}
			if status.Rotation.OverlapUntil == nil || !status.Rotation.OverlapUntil.Time.Equal(rotationNow.Add(grace)) {
				t.Errorf("OverlapUntil = %v, want %v", status.Rotation.OverlapUntil, rotationNow.Add(grace))
			}
		})
	}
}

func TestNextPassResult(t *testing.T) {
	resync := 10 * time.Minute
	overlapping := func(until time.Time) *keboolav1.KeboolaWebhookStatus {
		u := metav1.NewTime(until)
		return &keboolav1.KeboolaWebhookStatus{Rotation: &keboolav1.RotationStatus{
			Phase: keboolav1.RotationPhaseOverlapping, PreviousWebhookID: "9", OverlapUntil: &u,
		}}
	}
	tests := map[string]struct {
		status  *keboolav1.KeboolaWebhookStatus
		wantMin time.Duration
		wantMax time.Duration
	}{
		"no rotation":                 {status: &keboolav1.KeboolaWebhookStatus{}, wantMin: resync, wantMax: resync + resync/10},
		"grace period ends sooner":    {status: overlapping(rotationNow.Add(time.Minute)), wantMin: time.Minute, wantMax: time.Minute + time.Second},
		"grace period ends later":     {status: overlapping(rotationNow.Add(time.Hour)), wantMin: resync, wantMax: resync + resync/10},
		"grace period already passed": {status: overlapping(rotationNow.Add(-time.Minute)), wantMin: 0, wantMax: time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := nextPassResult(tc.status, resync, rotationNow).RequeueAfter
			if got < tc.wantMin || got > tc.wantMax {
				t.Errorf("RequeueAfter = %s, want between %s and %s", got, tc.wantMin, tc.wantMax)
			}
		})
	}
}
