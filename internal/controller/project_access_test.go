package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

func TestProjectRefKey(t *testing.T) {
	tests := map[string]struct {
		ref         keboolav1.ProjectReference
		want        types.NamespacedName
		wantDisplay string
	}{
		"absent namespace means the webhook's namespace": {
			ref:         keboolav1.ProjectReference{Name: "shared"},
			want:        types.NamespacedName{Namespace: "team-a", Name: "shared"},
			wantDisplay: "shared",
		},
		"own namespace given explicitly": {
			ref:         keboolav1.ProjectReference{Name: "shared", Namespace: "team-a"},
			want:        types.NamespacedName{Namespace: "team-a", Name: "shared"},
			wantDisplay: "shared",
		},
		"other namespace": {
			ref:         keboolav1.ProjectReference{Name: "shared", Namespace: "platform"},
			want:        types.NamespacedName{Namespace: "platform", Name: "shared"},
			wantDisplay: "platform/shared",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wh := &keboolav1.KeboolaWebhook{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "hook"},
				Spec:       keboolav1.KeboolaWebhookSpec{ProjectRef: tc.ref},
			}
			if got := projectRefKey(wh); got != tc.want {
				t.Errorf("projectRefKey() = %v, want %v", got, tc.want)
			}
			if got := projectDisplayName(wh); got != tc.wantDisplay {
				t.Errorf("projectDisplayName() = %q, want %q", got, tc.wantDisplay)
			}
		})
	}
}

func TestNamespaceAllowed(t *testing.T) {
	teamLabels := map[string]string{"keboola.dev/access": "granted", "team": "a"}
	selector := func(s *metav1.LabelSelector) *keboolav1.AllowedNamespaces {
		return &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSelector, Selector: s}
	}
	tests := map[string]struct {
		allowed   *keboolav1.AllowedNamespaces
		namespace string
		labels    map[string]string
		want      bool
		wantErr   bool
	}{
		"absent allows the own namespace":  {namespace: "platform", want: true},
		"absent rejects another namespace": {namespace: "team-a", labels: teamLabels},
		"absent from means Same": {
			allowed: &keboolav1.AllowedNamespaces{}, namespace: "team-a", labels: teamLabels,
		},
		"Same rejects another namespace": {
			allowed: &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSame}, namespace: "team-a",
		},
		"All allows another namespace": {
			allowed: &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}, namespace: "team-b", want: true,
		},
		"matching labels": {
			allowed:   selector(&metav1.LabelSelector{MatchLabels: map[string]string{"keboola.dev/access": "granted"}}),
			namespace: "team-a", labels: teamLabels, want: true,
		},
		"labels that do not match": {
			allowed:   selector(&metav1.LabelSelector{MatchLabels: map[string]string{"keboola.dev/access": "granted"}}),
			namespace: "team-b", labels: map[string]string{"team": "b"},
		},
		"matching expression": {
			allowed: selector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "c"}},
			}}),
			namespace: "team-a", labels: teamLabels, want: true,
		},
		"empty selector matches every namespace": {
			allowed: selector(&metav1.LabelSelector{}), namespace: "team-b", want: true,
		},
		"selector does not apply to the own namespace": {
			allowed:   selector(&metav1.LabelSelector{MatchLabels: map[string]string{"keboola.dev/access": "granted"}}),
			namespace: "platform", want: true,
		},
		"invalid selector rejects with an error": {
			allowed: selector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "team", Operator: "Matches", Values: []string{"a"}},
			}}),
			namespace: "team-a", labels: teamLabels, wantErr: true,
		},
		"Selector without selector rejects": {
			allowed: &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSelector}, namespace: "team-a", labels: teamLabels,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			project := &keboolav1.KeboolaProject{
				ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "shared"},
				Spec:       keboolav1.KeboolaProjectSpec{AllowedNamespaces: tc.allowed},
			}
			got, err := namespaceAllowed(project, tc.namespace, tc.labels)
			if got != tc.want {
				t.Errorf("namespaceAllowed() = %v, want %v", got, tc.want)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("namespaceAllowed() error = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestDisallowedEvents(t *testing.T) {
	tests := map[string]struct {
		allowed []string
		events  []string
		want    []string
	}{
		"absent list allows everything": {events: []string{"storage.jobFailed"}},
		"all allowed": {
			allowed: []string{"storage.jobFailed", "storage.jobSucceeded"},
			events:  []string{"storage.jobSucceeded"},
		},
		"sorted and without duplicates": {
			allowed: []string{"storage.jobFailed"},
			events:  []string{"storage.tableCreated", "storage.jobFailed", "orchestration.jobFailed", "storage.tableCreated"},
			want:    []string{"orchestration.jobFailed", "storage.tableCreated"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, disallowedEvents(tc.allowed, tc.events)); diff != "" {
				t.Errorf("disallowedEvents() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRanksBefore(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	webhook := func(namespace, name string, created time.Time) *keboolav1.KeboolaWebhook {
		return &keboolav1.KeboolaWebhook{ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, CreationTimestamp: metav1.NewTime(created),
		}}
	}
	tests := map[string]struct {
		a, b *keboolav1.KeboolaWebhook
		want bool
	}{
		"older first":                      {a: webhook("z", "z", base), b: webhook("a", "a", base.Add(time.Second)), want: true},
		"newer second":                     {a: webhook("a", "a", base.Add(time.Second)), b: webhook("z", "z", base)},
		"same second, namespace decides":   {a: webhook("team-a", "z", base), b: webhook("team-b", "a", base), want: true},
		"same second, name decides":        {a: webhook("team-a", "a", base), b: webhook("team-a", "b", base), want: true},
		"same object is not before itself": {a: webhook("team-a", "a", base), b: webhook("team-a", "a", base)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ranksBefore(tc.a, tc.b); got != tc.want {
				t.Errorf("ranksBefore() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProjectAccessMessages(t *testing.T) {
	project := types.NamespacedName{Namespace: "platform", Name: "shared"}

	t.Run("namespace not allowed", func(t *testing.T) {
		got := projectNotAllowedReadiness(project, "team-b", nil)
		if got.state != stateStalled || got.reason != keboolav1.ReasonProjectNotAllowed {
			t.Errorf("readiness = %+v, want stalled with reason ProjectNotAllowed", got)
		}
		for _, want := range []string{`"platform/shared"`, `namespace "team-b"`, "spec.allowedNamespaces"} {
			if !strings.Contains(got.message, want) {
				t.Errorf("message %q does not contain %q", got.message, want)
			}
		}
	})

	t.Run("invalid selector", func(t *testing.T) {
		got := projectNotAllowedReadiness(project, "team-b", errors.New(`"Matches" is not a valid label selector operator`))
		for _, want := range []string{`"platform/shared"`, `namespace "team-b"`, "selector is invalid", "Matches"} {
			if !strings.Contains(got.message, want) {
				t.Errorf("message %q does not contain %q", got.message, want)
			}
		}
	})

	t.Run("quota exceeded", func(t *testing.T) {
		got := quotaExceededReadiness(project, 2, 3)
		if got.state != stateStalled || got.reason != keboolav1.ReasonQuotaExceeded {
			t.Errorf("readiness = %+v, want stalled with reason QuotaExceeded", got)
		}
		for _, want := range []string{`"platform/shared"`, "at most 2", "3 older ones", "spec.maxWebhooks"} {
			if !strings.Contains(got.message, want) {
				t.Errorf("message %q does not contain %q", got.message, want)
			}
		}
	})

	t.Run("events not allowed", func(t *testing.T) {
		got := eventsNotAllowedReadiness(project, []string{"storage.jobSucceeded"}, []string{"storage.jobFailed"})
		if got.state != stateStalled || got.reason != keboolav1.ReasonInvalidSpec {
			t.Errorf("readiness = %+v, want stalled with reason InvalidSpec", got)
		}
		if !strings.HasPrefix(got.message, eventsNotAllowedPrefix) {
			t.Errorf("message %q does not start with %q", got.message, eventsNotAllowedPrefix)
		}
		for _, want := range []string{`"platform/shared"`, `does not allow: "storage.jobSucceeded"`, `allows "storage.jobFailed"`} {
			if !strings.Contains(got.message, want) {
				t.Errorf("message %q does not contain %q", got.message, want)
			}
		}
	})

	t.Run("long allowed list is cut", func(t *testing.T) {
		var allowed []string
		for _, letter := range "abcdefghijklmnopqrst" {
			allowed = append(allowed, "storage.event"+strings.ToUpper(string(letter)))
		}
		got := eventsNotAllowedReadiness(project, []string{"storage.jobFailed"}, allowed)
		if !strings.Contains(got.message, "and 10 more") {
			t.Errorf("message %q does not contain %q", got.message, "and 10 more")
		}
		if strings.Contains(got.message, "storage.eventT") {
			t.Errorf("message %q lists more than %d allowed event types", got.message, maxListedEvents)
		}
	})
}

func TestStalledOnInvalidSpecSkipsAllowedEvents(t *testing.T) {
	message := eventsNotAllowedReadiness(types.NamespacedName{Namespace: "platform", Name: "shared"},
		[]string{"storage.jobSucceeded"}, []string{"storage.jobFailed"}).message
	conditions := []metav1.Condition{{
		Type: keboolav1.ConditionStalled, Status: metav1.ConditionTrue, Reason: keboolav1.ReasonInvalidSpec,
		Message: message, ObservedGeneration: 3,
	}}
	if stalledOnInvalidSpec(conditions, 3) {
		t.Error("stalledOnInvalidSpec() = true for a stall caused by spec.allowedEvents, want false")
	}
}
