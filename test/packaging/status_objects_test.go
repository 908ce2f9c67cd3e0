package packaging

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// readinessState mirrors the outcomes that the reconcilers write: Ready
// always, Reconciling only while work is in progress, Stalled only when only
// a change to the spec or a Secret can help. A condition that is not True is
// removed, not set to False.
type readinessState int

const (
	stateReady readinessState = iota
	stateProgressing
	stateStalled
	// stateWaiting is Ready=False without Reconciling or Stalled, as while a
	// KeboolaWebhook is paused.
	stateWaiting
)

// statusFixture is the status an operator pass wrote, and the generation of
// the object at the time a health check reads it.
type statusFixture struct {
	// generation is metadata.generation.
	generation int64
	// observedGeneration is the generation the operator last wrote status
	// for. Zero means the operator has not written any status yet.
	observedGeneration int64
	state              readinessState
	reason             string
	message            string
	// deleting sets metadata.deletionTimestamp.
	deleting bool
}

var transitionTime = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// conditions returns the conditions that the operator writes for f.
func (f statusFixture) conditions() []metav1.Condition {
	var conditions []metav1.Condition
	set := func(conditionType string, status metav1.ConditionStatus) {
		meta.SetStatusCondition(&conditions, metav1.Condition{
			Type:               conditionType,
			Status:             status,
			Reason:             f.reason,
			Message:            f.message,
			ObservedGeneration: f.observedGeneration,
			LastTransitionTime: transitionTime,
		})
	}

	if f.state == stateReady {
		set(keboolav1.ConditionReady, metav1.ConditionTrue)
	} else {
		set(keboolav1.ConditionReady, metav1.ConditionFalse)
	}
	switch f.state {
	case stateProgressing:
		set(keboolav1.ConditionReconciling, metav1.ConditionTrue)
	case stateStalled:
		set(keboolav1.ConditionStalled, metav1.ConditionTrue)
	}
	return conditions
}

func (f statusFixture) objectMeta(name string) metav1.ObjectMeta {
	objectMeta := metav1.ObjectMeta{
		Name:       name,
		Namespace:  "team-a",
		Generation: f.generation,
	}
	if f.deleting {
		deletionTime := metav1.NewTime(transitionTime.Add(time.Hour))
		objectMeta.DeletionTimestamp = &deletionTime
		objectMeta.Finalizers = []string{"keboola.dev/finalizer"}
	}
	return objectMeta
}

// project returns a KeboolaProject with the status of f, as the API server
// would return it.
func (f statusFixture) project(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	project := &keboolav1.KeboolaProject{
		TypeMeta:   metav1.TypeMeta{APIVersion: keboolav1.GroupVersion.String(), Kind: "KeboolaProject"},
		ObjectMeta: f.objectMeta("analytics"),
		Spec: keboolav1.KeboolaProjectSpec{
			StackURL:       "connection.keboola.com",
			TokenSecretRef: keboolav1.SecretKeyReference{Name: "keboola-token"},
		},
	}
	if f.observedGeneration > 0 {
		project.Status.ObservedGeneration = f.observedGeneration
		project.Status.Conditions = f.conditions()
	}
	return toUnstructured(t, project)
}

// webhook returns a KeboolaWebhook with the status of f, as the API server
// would return it.
func (f statusFixture) webhook(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	webhook := &keboolav1.KeboolaWebhook{
		TypeMeta:   metav1.TypeMeta{APIVersion: keboolav1.GroupVersion.String(), Kind: "KeboolaWebhook"},
		ObjectMeta: f.objectMeta("job-failures"),
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: "analytics"},
			URL:        "https://alerts.example.com/keboola",
			Events:     []string{"storage.jobFailed"},
		},
	}
	if f.observedGeneration > 0 {
		webhook.Status.ObservedGeneration = f.observedGeneration
		webhook.Status.Conditions = f.conditions()
	}
	return toUnstructured(t, webhook)
}

// toUnstructured converts obj and drops an empty status, because the API
// server does not store one for an object that no controller wrote status
// for.
func toUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("failed to convert %T to unstructured: %v", obj, err)
	}
	if status, ok := content["status"].(map[string]any); ok && len(status) == 0 {
		delete(content, "status")
	}
	return &unstructured.Unstructured{Object: content}
}

// kindFixture builds one kind's object from a statusFixture.
type kindFixture struct {
	kind  string
	build func(statusFixture, *testing.T) *unstructured.Unstructured
	// readyReason, progressingReason and stalledReason are Ready reasons
	// that the operator uses for this kind in each state.
	readyReason       string
	progressingReason string
	stalledReason     string
	// deletingState and deletingReason are what the operator reports
	// while it waits to remove its finalizer.
	deletingState  readinessState
	deletingReason string
}

var bothKinds = []kindFixture{
	{
		kind:              "KeboolaProject",
		build:             statusFixture.project,
		readyReason:       keboolav1.ReasonVerified,
		progressingReason: keboolav1.ReasonVerifying,
		stalledReason:     keboolav1.ReasonUnauthorized,
		deletingState:     stateWaiting,
		deletingReason:    keboolav1.ReasonWebhooksRemain,
	},
	{
		kind:              "KeboolaWebhook",
		build:             statusFixture.webhook,
		readyReason:       keboolav1.ReasonSynced,
		progressingReason: keboolav1.ReasonCreating,
		stalledReason:     keboolav1.ReasonInvalidSpec,
		deletingState:     stateProgressing,
		deletingReason:    keboolav1.ReasonDeleting,
	},
}
