package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// readiness is the outcome of one reconcile, expressed as the three kstatus
// conditions. Each reconciler computes one from the facts it recorded and
// applies it with setReadiness, so that Ready, Reconciling and Stalled never
// contradict each other.
type readiness struct {
	// state is one of stateReady, stateProgressing or stateStalled.
	state   readinessState
	reason  string
	message string
}

type readinessState int

const (
	// stateReady: Ready=True, Reconciling=False, Stalled=False.
	stateReady readinessState = iota
	// stateProgressing: Ready=False, Reconciling=True, Stalled=False. Used
	// for work in progress and for transient failures that are retried.
	stateProgressing
	// stateStalled: Ready=False, Reconciling=False, Stalled=True. Used when
	// only a change to the spec or to a referenced object can help.
	stateStalled
	// stateWaiting: Ready=False, Reconciling=False, Stalled=False. Used when
	// the object deliberately does nothing, for example while paused.
	stateWaiting
)

func ready(reason, message string) readiness {
	return readiness{state: stateReady, reason: reason, message: message}
}

func progressing(reason, message string) readiness {
	return readiness{state: stateProgressing, reason: reason, message: message}
}

func stalled(reason, message string) readiness {
	return readiness{state: stateStalled, reason: reason, message: message}
}

func waiting(reason, message string) readiness {
	return readiness{state: stateWaiting, reason: reason, message: message}
}

// setReadiness sets Ready, Reconciling and Stalled in conditions for the
// given generation. meta.SetStatusCondition keeps lastTransitionTime when a
// status does not change, so setting the same readiness twice changes
// nothing and causes no status write.
func setReadiness(conditions *[]metav1.Condition, generation int64, r readiness) {
	readyStatus := metav1.ConditionFalse
	if r.state == stateReady {
		readyStatus = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type:               keboolav1.ConditionReady,
		Status:             readyStatus,
		Reason:             r.reason,
		Message:            r.message,
		ObservedGeneration: generation,
	})

	if r.state == stateProgressing {
		meta.SetStatusCondition(conditions, metav1.Condition{
			Type:               keboolav1.ConditionReconciling,
			Status:             metav1.ConditionTrue,
			Reason:             r.reason,
			Message:            r.message,
			ObservedGeneration: generation,
		})
	} else {
		meta.RemoveStatusCondition(conditions, keboolav1.ConditionReconciling)
	}

	if r.state == stateStalled {
		meta.SetStatusCondition(conditions, metav1.Condition{
			Type:               keboolav1.ConditionStalled,
			Status:             metav1.ConditionTrue,
			Reason:             r.reason,
			Message:            r.message,
			ObservedGeneration: generation,
		})
	} else {
		meta.RemoveStatusCondition(conditions, keboolav1.ConditionStalled)
	}
}

// isReady reports whether conditions contain Ready=True for generation.
func isReady(conditions []metav1.Condition, generation int64) bool {
	c := meta.FindStatusCondition(conditions, keboolav1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
}
