package controller

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testStackURL     = "https://connection.keboola.com"
	testFingerprint  = "sha256:0123456789abcdef"
	otherFingerprint = "sha256:fedcba9876543210"
)

// projectOption changes a KeboolaProject built by newTestProject.
type projectOption func(*keboolav1.KeboolaProject)

// newTestProject returns a KeboolaProject at generation 2 with token Secret
// "keboola-token" and no status.
func newTestProject(options ...projectOption) *keboolav1.KeboolaProject {
	project := &keboolav1.KeboolaProject{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "analytics", Generation: 2, UID: "uid-1"},
		Spec: keboolav1.KeboolaProjectSpec{
			StackURL:       "connection.keboola.com",
			TokenSecretRef: keboolav1.SecretKeyReference{Name: "keboola-token"},
		},
	}
	for _, option := range options {
		option(project)
	}
	return project
}

func withExpectedProjectID(id int64) projectOption {
	return func(p *keboolav1.KeboolaProject) { p.Spec.ExpectedProjectID = &id }
}

// withVerifiedStatus gives the project the status of a successful
// verification of token 321 of project 1001 at generation 2.
func withVerifiedStatus(expires *time.Time) projectOption {
	return func(p *keboolav1.KeboolaProject) {
		p.Status = keboolav1.KeboolaProjectStatus{
			ObservedGeneration: 2,
			StackURL:           testStackURL,
			ProjectID:          1001,
			ProjectName:        "Analytics",
			Region:             "us-east-1",
			TokenID:            "321",
			TokenDescription:   "operator",
			TokenFingerprint:   testFingerprint,
			LastVerifiedTime:   &metav1.Time{Time: testNow.Add(-time.Hour)},
		}
		if expires != nil {
			p.Status.TokenExpiresAt = &metav1.Time{Time: *expires}
		}
		setReadiness(&p.Status.Conditions, 2, ready(keboolav1.ReasonVerified, "Token 321 is valid for project 1001 \"Analytics\"."))
	}
}

// withStalledStatus gives the project a Stalled status for reason.
func withStalledStatus(reason string) projectOption {
	return func(p *keboolav1.KeboolaProject) {
		p.Status.ObservedGeneration = 2
		p.Status.TokenFingerprint = testFingerprint
		setReadiness(&p.Status.Conditions, 2, stalled(reason, "recorded message"))
	}
}

func tokenResponse(projectID int64, options ...func(*keboola.TokenInfo)) *keboola.TokenInfo {
	info := &keboola.TokenInfo{
		ID:          "321",
		Description: "operator",
		Owner:       keboola.Project{ID: projectID, Name: "Analytics", Region: "us-east-1"},
	}
	for _, option := range options {
		option(info)
	}
	return info
}

func expiringAt(t time.Time) func(*keboola.TokenInfo) {
	return func(info *keboola.TokenInfo) { info.Expires = &t }
}

func apiError(status int, message string) error {
	return &keboola.APIError{
		Method:      http.MethodGet,
		Endpoint:    "/v2/storage/tokens/verify",
		StatusCode:  status,
		Message:     message,
		ExceptionID: "exception-42",
	}
}

func timePtr(t time.Time) *time.Time { return &t }

func TestTokenReadiness(t *testing.T) {
	cases := map[string]struct {
		project       *keboolav1.KeboolaProject
		check         tokenCheck
		wantState     readinessState
		wantReason    string
		wantInMessage []string
	}{
		"valid token": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001)},
			wantState:     stateReady,
			wantReason:    keboolav1.ReasonVerified,
			wantInMessage: []string{"321", "1001", `"Analytics"`},
		},
		"token of the expected project": {
			project:    newTestProject(withExpectedProjectID(1001)),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001)},
			wantState:  stateReady,
			wantReason: keboolav1.ReasonVerified,
		},
		"token of another project": {
			project:       newTestProject(withExpectedProjectID(1001)),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(2002)},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonProjectMismatch,
			wantInMessage: []string{"2002", "1001", `"keboola-token"`},
		},
		"disabled token": {
			project: newTestProject(),
			check: tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001, func(i *keboola.TokenInfo) {
				i.IsDisabled = true
			})},
			wantState:  stateStalled,
			wantReason: keboolav1.ReasonTokenDisabled,
		},
		"token flagged as expired": {
			project: newTestProject(),
			check: tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001, func(i *keboola.TokenInfo) {
				i.IsExpired = true
			})},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonTokenExpired,
			wantInMessage: []string{"an unknown time"},
		},
		"token past its expiry": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001, expiringAt(testNow))},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonTokenExpired,
			wantInMessage: []string{"2026-03-01T12:00:00Z"},
		},
		"token expiring later": {
			project:    newTestProject(),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001, expiringAt(testNow.Add(time.Minute)))},
			wantState:  stateReady,
			wantReason: keboolav1.ReasonVerified,
		},
		"invalid stack URL": {
			project:       newTestProject(),
			check:         tokenCheck{err: fmt.Errorf("%w: it must not contain a path", keboola.ErrInvalidStackURL)},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonInvalidSpec,
			wantInMessage: []string{"spec.stackURL", "it must not contain a path"},
		},
		"missing Secret": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, err: fmt.Errorf("%w: Secret %q does not exist", errTokenSecretNotFound, "keboola-token")},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonSecretNotFound,
			wantInMessage: []string{`"keboola-token"`},
		},
		"missing key": {
			project:    newTestProject(),
			check:      tokenCheck{stackURL: testStackURL, err: fmt.Errorf("%w: Secret %q has no key %q", errTokenKeyMissing, "keboola-token", "token")},
			wantState:  stateStalled,
			wantReason: keboolav1.ReasonSecretKeyMissing,
		},
		"token the client rejects": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: fmt.Errorf("%w: bad character", keboola.ErrInvalidToken)},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonUnauthorized,
			wantInMessage: []string{`key "token"`, `"keboola-token"`, "cannot be a Storage API token: bad character."},
		},
		"HTTP 401": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusUnauthorized, "Invalid access token.")},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonUnauthorized,
			wantInMessage: []string{testStackURL, "HTTP 401", "Invalid access token."},
		},
		"HTTP 403": {
			project:    newTestProject(),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusForbidden, "")},
			wantState:  stateStalled,
			wantReason: keboolav1.ReasonForbidden,
		},
		"HTTP 404": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusNotFound, "")},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonInvalidSpec,
			wantInMessage: []string{"spec.stackURL"},
		},
		"HTTP 429": {
			project:    newTestProject(),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusTooManyRequests, "")},
			wantState:  stateProgressing,
			wantReason: keboolav1.ReasonRateLimited,
		},
		"HTTP 503 maintenance": {
			project: newTestProject(),
			check: tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: &keboola.APIError{
				Method: http.MethodGet, StatusCode: http.StatusServiceUnavailable, Maintenance: true, RetryAfter: time.Minute,
			}},
			wantState:  stateProgressing,
			wantReason: keboolav1.ReasonRateLimited,
		},
		"HTTP 500": {
			project:       newTestProject(),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusInternalServerError, "Internal error.")},
			wantState:     stateProgressing,
			wantReason:    keboolav1.ReasonAPIUnavailable,
			wantInMessage: []string{"HTTP 500"},
		},
		"timeout": {
			project: newTestProject(),
			check: tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: &keboola.TransportError{
				Method: http.MethodGet, TimedOut: true, Err: errors.New("deadline exceeded"),
			}},
			wantState:     stateProgressing,
			wantReason:    keboolav1.ReasonAPIUnavailable,
			wantInMessage: []string{"timed out"},
		},
		"skipped while Ready": {
			project:    newTestProject(withVerifiedStatus(nil)),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, skipped: true},
			wantState:  stateReady,
			wantReason: keboolav1.ReasonVerified,
		},
		"skipped after the recorded expiry": {
			project:    newTestProject(withVerifiedStatus(timePtr(testNow.Add(-time.Second)))),
			check:      tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, skipped: true},
			wantState:  stateStalled,
			wantReason: keboolav1.ReasonTokenExpired,
		},
		"skipped while Stalled": {
			project:       newTestProject(withStalledStatus(keboolav1.ReasonUnauthorized)),
			check:         tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, skipped: true},
			wantState:     stateStalled,
			wantReason:    keboolav1.ReasonUnauthorized,
			wantInMessage: []string{"recorded message"},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tokenReadiness(tc.project, tc.check, testNow)
			if got.state != tc.wantState {
				t.Errorf("state = %d, want %d", got.state, tc.wantState)
			}
			if got.reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", got.reason, tc.wantReason)
			}
			for _, part := range tc.wantInMessage {
				if !strings.Contains(got.message, part) {
					t.Errorf("message %q does not contain %q", got.message, part)
				}
			}
			if strings.Contains(got.message, "exception-42") {
				t.Errorf("message %q contains the exception id, which changes with every request", got.message)
			}
		})
	}
}

func TestRecordTokenCheck(t *testing.T) {
	verified := newTestProject(withVerifiedStatus(nil)).Status

	cases := map[string]struct {
		status   keboolav1.KeboolaProjectStatus
		check    tokenCheck
		verdict  readiness
		wasReady bool
		want     keboolav1.KeboolaProjectStatus
	}{
		"first verification records every detail": {
			check:   tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001, expiringAt(testNow.Add(time.Hour)))},
			verdict: ready(keboolav1.ReasonVerified, ""),
			want: keboolav1.KeboolaProjectStatus{
				StackURL:         testStackURL,
				ProjectID:        1001,
				ProjectName:      "Analytics",
				Region:           "us-east-1",
				TokenID:          "321",
				TokenDescription: "operator",
				TokenExpiresAt:   &metav1.Time{Time: testNow.Add(time.Hour)},
				TokenFingerprint: testFingerprint,
				LastVerifiedTime: &metav1.Time{Time: testNow},
			},
		},
		"repeated verification keeps the time": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001)},
			verdict:  ready(keboolav1.ReasonVerified, ""),
			wasReady: true,
			want:     verified,
		},
		"verification after a failure updates the time": {
			status:  verified,
			check:   tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, info: tokenResponse(1001)},
			verdict: ready(keboolav1.ReasonVerified, ""),
			want:    withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) { s.LastVerifiedTime = &metav1.Time{Time: testNow} }),
		},
		"new token of another project": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: otherFingerprint, info: tokenResponse(2002)},
			verdict:  ready(keboolav1.ReasonVerified, ""),
			wasReady: true,
			want: withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) {
				s.ProjectID = 2002
				s.TokenFingerprint = otherFingerprint
				s.LastVerifiedTime = &metav1.Time{Time: testNow}
			}),
		},
		"new token rejected with details": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: otherFingerprint, info: tokenResponse(2002)},
			verdict:  stalled(keboolav1.ReasonProjectMismatch, ""),
			wasReady: true,
			want: withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) {
				s.ProjectID = 2002
				s.TokenFingerprint = otherFingerprint
				s.LastVerifiedTime = nil
			}),
		},
		"new token rejected without details": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: otherFingerprint, err: apiError(http.StatusUnauthorized, "")},
			verdict:  stalled(keboolav1.ReasonUnauthorized, ""),
			wasReady: true,
			want: keboolav1.KeboolaProjectStatus{
				ObservedGeneration: 2,
				StackURL:           testStackURL,
				TokenFingerprint:   otherFingerprint,
				Conditions:         verified.Conditions,
			},
		},
		"same token rejected without details keeps them": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: testFingerprint, err: apiError(http.StatusUnauthorized, "")},
			verdict:  stalled(keboolav1.ReasonUnauthorized, ""),
			wasReady: true,
			want:     verified,
		},
		"transient failure with a new token keeps the last good details": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, fingerprint: otherFingerprint, err: apiError(http.StatusBadGateway, "")},
			verdict:  progressing(keboolav1.ReasonAPIUnavailable, ""),
			wasReady: true,
			want:     verified,
		},
		"missing Secret keeps the details": {
			status:   verified,
			check:    tokenCheck{stackURL: testStackURL, err: errTokenSecretNotFound},
			verdict:  stalled(keboolav1.ReasonSecretNotFound, ""),
			wasReady: true,
			want:     verified,
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			status := *tc.status.DeepCopy()
			recordTokenCheck(&status, tc.check, tc.verdict, tc.wasReady, testNow)
			if diff := cmp.Diff(tc.want, status); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}

}

func withChanges(status keboolav1.KeboolaProjectStatus, change func(*keboolav1.KeboolaProjectStatus)) keboolav1.KeboolaProjectStatus {
	changed := status.DeepCopy()
	change(changed)
	return *changed
}

func TestCanSkipVerification(t *testing.T) {
	fresh := verificationRecord{uid: "uid-1", generation: 2, fingerprint: testFingerprint, at: testNow.Add(-time.Minute)}
	const resync = 10 * time.Minute

	cases := map[string]struct {
		project     *keboolav1.KeboolaProject
		fingerprint string
		last        verificationRecord
		want        bool
	}{
		"Ready and verified recently": {
			project: newTestProject(withVerifiedStatus(nil)), fingerprint: testFingerprint, last: fresh, want: true,
		},
		"Ready but verified a resync period ago": {
			project: newTestProject(withVerifiedStatus(nil)), fingerprint: testFingerprint,
			last: verificationRecord{uid: "uid-1", generation: 2, fingerprint: testFingerprint, at: testNow.Add(-resync)},
			want: false,
		},
		"Ready but no verification since the restart": {
			project: newTestProject(withVerifiedStatus(nil)), fingerprint: testFingerprint, want: false,
		},
		"Ready but the token changed": {
			project: newTestProject(withVerifiedStatus(nil)), fingerprint: otherFingerprint, last: fresh, want: false,
		},
		"Ready but the spec changed": {
			project:     newTestProject(withVerifiedStatus(nil), func(p *keboolav1.KeboolaProject) { p.Generation = 3 }),
			fingerprint: testFingerprint, last: fresh, want: false,
		},
		"Ready but a recreated object": {
			project:     newTestProject(withVerifiedStatus(nil), func(p *keboolav1.KeboolaProject) { p.UID = "uid-2" }),
			fingerprint: testFingerprint, last: fresh, want: false,
		},
		"Stalled on the token": {
			project: newTestProject(withStalledStatus(keboolav1.ReasonUnauthorized)), fingerprint: testFingerprint, want: true,
		},
		"Stalled on the project id": {
			project: newTestProject(withStalledStatus(keboolav1.ReasonProjectMismatch)), fingerprint: testFingerprint, want: true,
		},
		"Stalled on the token, then the token changed": {
			project: newTestProject(withStalledStatus(keboolav1.ReasonUnauthorized)), fingerprint: otherFingerprint, want: false,
		},
		"Stalled on a missing Secret": {
			project: newTestProject(withStalledStatus(keboolav1.ReasonSecretNotFound)), fingerprint: testFingerprint, want: false,
		},
		"retrying a transient failure": {
			project: newTestProject(withVerifiedStatus(nil), func(p *keboolav1.KeboolaProject) {
				setReadiness(&p.Status.Conditions, 2, progressing(keboolav1.ReasonAPIUnavailable, ""))
			}),
			fingerprint: testFingerprint, last: fresh, want: false,
		},
		"never verified": {
			project: newTestProject(), fingerprint: "", want: false,
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := canSkipVerification(tc.project, tc.fingerprint, tc.last, testNow, resync); got != tc.want {
				t.Errorf("canSkipVerification() = %t, want %t", got, tc.want)
			}
		})
	}

	t.Run("Ready with periodic verification off", func(t *testing.T) {
		project := newTestProject(withVerifiedStatus(nil))
		last := verificationRecord{uid: "uid-1", generation: 2, fingerprint: testFingerprint, at: testNow.Add(-24 * time.Hour)}
		if !canSkipVerification(project, testFingerprint, last, testNow, 0) {
			t.Error("canSkipVerification() = false, want true")
		}
	})
}

func TestTokenExpiryCondition(t *testing.T) {
	const warning = 24 * time.Hour
	cases := map[string]struct {
		status      *keboolav1.KeboolaProjectStatus
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		"token without expiry": {
			status:      &newTestProject(withVerifiedStatus(nil)).Status,
			wantStatus:  metav1.ConditionFalse,
			wantReason:  keboolav1.ReasonTokenNotExpiring,
			wantMessage: "The token does not expire.",
		},
		"expiry after the warning window": {
			status:      &newTestProject(withVerifiedStatus(timePtr(testNow.Add(warning + time.Second)))).Status,
			wantStatus:  metav1.ConditionFalse,
			wantReason:  keboolav1.ReasonTokenNotExpiring,
			wantMessage: "The token expires at 2026-03-02T12:00:01Z, more than 24h0m0s from now.",
		},
		"expiry at the start of the warning window": {
			status:      &newTestProject(withVerifiedStatus(timePtr(testNow.Add(warning)))).Status,
			wantStatus:  metav1.ConditionTrue,
			wantReason:  keboolav1.ReasonTokenExpiringSoon,
			wantMessage: "The token expires at 2026-03-02T12:00:00Z. Store a new token in the Secret before then.",
		},
		"expiry passed": {
			status:      &newTestProject(withVerifiedStatus(timePtr(testNow))).Status,
			wantStatus:  metav1.ConditionTrue,
			wantReason:  keboolav1.ReasonTokenExpired,
			wantMessage: "The token expired at 2026-03-01T12:00:00Z.",
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tokenExpiryCondition(tc.status, 2, testNow, warning)
			if got == nil {
				t.Fatal("tokenExpiryCondition() = nil, want a condition")
			}
			want := metav1.Condition{
				Type:               keboolav1.ConditionTokenExpiringSoon,
				Status:             tc.wantStatus,
				Reason:             tc.wantReason,
				Message:            tc.wantMessage,
				ObservedGeneration: 2,
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("condition mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("no token details", func(t *testing.T) {
		if got := tokenExpiryCondition(&keboolav1.KeboolaProjectStatus{}, 2, testNow, warning); got != nil {
			t.Errorf("tokenExpiryCondition() = %+v, want nil", got)
		}
	})
}

func TestNextVerification(t *testing.T) {
	const (
		resync  = 10 * time.Minute
		warning = 24 * time.Hour
	)
	cases := map[string]struct {
		expires *time.Time
		want    time.Duration
	}{
		"no expiry": {expires: nil, want: resync},
		"warning window starts before the resync":  {expires: timePtr(testNow.Add(warning + time.Minute)), want: time.Minute},
		"warning window starts after the resync":   {expires: timePtr(testNow.Add(warning + time.Hour)), want: resync},
		"inside the window, expiry before resync":  {expires: timePtr(testNow.Add(2 * time.Minute)), want: 2 * time.Minute},
		"inside the window, expiry after resync":   {expires: timePtr(testNow.Add(time.Hour)), want: resync},
		"expired, nothing left to wait for but it": {expires: timePtr(testNow.Add(-time.Minute)), want: resync},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			status := &newTestProject(withVerifiedStatus(tc.expires)).Status
			if got := nextVerification(status, testNow, resync, warning); got != tc.want {
				t.Errorf("nextVerification() = %s, want %s", got, tc.want)
			}
		})
	}

	t.Run("resync off, no expiry", func(t *testing.T) {
		status := &newTestProject(withVerifiedStatus(nil)).Status
		if got := nextVerification(status, testNow, 0, warning); got != 0 {
			t.Errorf("nextVerification() = %s, want 0", got)
		}
	})

	t.Run("resync off, expiry ahead", func(t *testing.T) {
		status := &newTestProject(withVerifiedStatus(timePtr(testNow.Add(warning + time.Hour)))).Status
		if got := nextVerification(status, testNow, 0, warning); got != time.Hour {
			t.Errorf("nextVerification() = %s, want %s", got, time.Hour)
		}
	})
}

func TestTransitionEvents(t *testing.T) {
	verified := newTestProject(withVerifiedStatus(nil)).Status
	unauthorized := newTestProject(withStalledStatus(keboolav1.ReasonUnauthorized)).Status
	expiringSoon := withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{
			Type: keboolav1.ConditionTokenExpiringSoon, Status: metav1.ConditionTrue,
			Reason: keboolav1.ReasonTokenExpiringSoon, Message: "The token expires at 2026-03-02T00:00:00Z.",
		})
	})

	cases := map[string]struct {
		before, after keboolav1.KeboolaProjectStatus
		want          []projectEvent
	}{
		"unchanged": {before: verified, after: verified, want: nil},
		"became Ready": {
			before: keboolav1.KeboolaProjectStatus{},
			after:  verified,
			want: []projectEvent{{corev1.EventTypeNormal, keboolav1.ReasonVerified, actionVerifyToken,
				"Token 321 is valid for project 1001 \"Analytics\"."}},
		},
		"new project while Ready": {
			before: verified,
			after:  withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) { s.ProjectID = 2002 }),
			want: []projectEvent{{corev1.EventTypeNormal, keboolav1.ReasonVerified, actionVerifyToken,
				"Token 321 is valid for project 1001 \"Analytics\"."}},
		},
		"became Stalled": {
			before: verified,
			after:  unauthorized,
			want:   []projectEvent{{corev1.EventTypeWarning, keboolav1.ReasonUnauthorized, actionVerifyToken, "recorded message"}},
		},
		"still Stalled": {before: unauthorized, after: unauthorized, want: nil},
		"token expiring soon": {
			before: verified,
			after:  expiringSoon,
			want: []projectEvent{{corev1.EventTypeWarning, keboolav1.ReasonTokenExpiringSoon, actionVerifyToken,
				"The token expires at 2026-03-02T00:00:00Z."}},
		},
		"still expiring soon": {before: expiringSoon, after: expiringSoon, want: nil},
		"deletion waits": {
			before: verified,
			after: withChanges(verified, func(s *keboolav1.KeboolaProjectStatus) {
				setReadiness(&s.Conditions, 2, webhooksRemainReadiness(1))
			}),
			want: []projectEvent{{corev1.EventTypeNormal, keboolav1.ReasonWebhooksRemain, actionDelete,
				webhooksRemainReadiness(1).message}},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := transitionEvents(&tc.before, &tc.after)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(projectEvent{})); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebhooksRemainReadiness(t *testing.T) {
	cases := map[int]string{
		1: "Deletion waits because 1 KeboolaWebhook refers to this project.",
		3: "Deletion waits because 3 KeboolaWebhooks refer to this project.",
	}
	for count, wantPrefix := range cases {
		got := webhooksRemainReadiness(count)
		if got.state != stateWaiting || got.reason != keboolav1.ReasonWebhooksRemain {
			t.Errorf("webhooksRemainReadiness(%d) = state %d reason %q, want waiting with reason %q",
				count, got.state, got.reason, keboolav1.ReasonWebhooksRemain)
		}
		if !strings.HasPrefix(got.message, wantPrefix) {
			t.Errorf("webhooksRemainReadiness(%d) message = %q, want prefix %q", count, got.message, wantPrefix)
		}
		if !strings.Contains(got.message, "Orphan") {
			t.Errorf("webhooksRemainReadiness(%d) message = %q, want a mention of the Orphan deletion policy", count, got.message)
		}
	}
}
