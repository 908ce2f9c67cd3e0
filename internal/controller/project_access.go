package controller

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// This file holds the rules by which a KeboolaProject serves KeboolaWebhooks
// from other namespaces: spec.allowedNamespaces, spec.maxWebhooks and
// spec.allowedEvents. The functions do no I/O, so table tests cover them
// without a cluster.

// projectRefKey returns the namespace and name of the KeboolaProject that wh
// refers to. An absent spec.projectRef.namespace means the namespace of wh.
func projectRefKey(wh *keboolav1.KeboolaWebhook) types.NamespacedName {
	namespace := wh.Spec.ProjectRef.Namespace
	if namespace == "" {
		namespace = wh.Namespace
	}
	return types.NamespacedName{Namespace: namespace, Name: wh.Spec.ProjectRef.Name}
}

// projectDisplayName names the KeboolaProject of wh in a message: by name
// when it is in the namespace of wh, and as "<namespace>/<name>" otherwise.
func projectDisplayName(wh *keboolav1.KeboolaWebhook) string {
	key := projectRefKey(wh)
	if key.Namespace == wh.Namespace {
		return key.Name
	}
	return key.String()
}

// namespaceAllowed reports whether project allows KeboolaWebhooks from the
// namespace with the given labels. The project's own namespace is always
// allowed, and an absent spec.allowedNamespaces or from allows no other. It
// returns an error, and false, when spec.allowedNamespaces.selector cannot be
// turned into a selector.
func namespaceAllowed(project *keboolav1.KeboolaProject, namespace string, namespaceLabels map[string]string) (bool, error) {
	if namespace == project.Namespace {
		return true, nil
	}
	allowed := project.Spec.AllowedNamespaces
	if allowed == nil {
		return false, nil
	}

	switch allowed.From {
	case keboolav1.NamespacesFromAll:
		return true, nil
	case keboolav1.NamespacesFromSelector:
		// The CRD requires a selector with Selector, so a nil one is
		// only possible for an object that bypassed validation.
		if allowed.Selector == nil {
			return false, nil
		}
		selector, err := metav1.LabelSelectorAsSelector(allowed.Selector)
		if err != nil {
			return false, err
		}
		return selector.Matches(labels.Set(namespaceLabels)), nil
	}
	return false, nil
}

// disallowedEvents returns the event types of events that allowedEvents does
// not contain, sorted and without duplicates. An empty allowedEvents allows
// every event type.
func disallowedEvents(allowedEvents, events []string) []string {
	if len(allowedEvents) == 0 {
		return nil
	}
	var denied []string
	for _, event := range events {
		if !slices.Contains(allowedEvents, event) {
			denied = append(denied, event)
		}
	}
	slices.Sort(denied)
	return slices.Compact(denied)
}

// ranksBefore reports whether a comes before b in the order in which a
// KeboolaProject with spec.maxWebhooks serves its KeboolaWebhooks: older
// creationTimestamp first, then "<namespace>/<name>" in byte order.
// creationTimestamp has a resolution of one second, so objects created in
// the same second are ordered by name.
//
// NOTE: under a full spec.maxWebhooks, a KeboolaWebhook created later in the
// same second with a smaller name ranks first and displaces one that was
// already served. The displaced one keeps its webhook at Keboola but is no
// longer updated, until a slot is free.
func ranksBefore(a, b *keboolav1.KeboolaWebhook) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return client.ObjectKeyFromObject(a).String() < client.ObjectKeyFromObject(b).String()
}

// eventsNotAllowedPrefix starts the message of every InvalidSpec condition
// that spec.allowedEvents of the project causes. stalledOnInvalidSpec uses
// it to tell such a condition, which every pass checks again, from a
// rejection by Keboola, which only a new generation can lift.
const eventsNotAllowedPrefix = "spec.events contains event types that KeboolaProject "

// maxListedEvents is how many allowed event types a message lists, so that a
// long spec.allowedEvents cannot push a condition message beyond its limit
// of 32768 bytes.
const maxListedEvents = 10

// projectNotAllowedReadiness is the readiness of a KeboolaWebhook in
// namespace whose KeboolaProject project does not allow that namespace.
// selectorErr is the parse error of the project's selector, if any.
func projectNotAllowedReadiness(project types.NamespacedName, namespace string, selectorErr error) readiness {
	if selectorErr != nil {
		return stalled(keboolav1.ReasonProjectNotAllowed, fmt.Sprintf(
			"KeboolaProject %q does not allow KeboolaWebhooks from namespace %q, because its spec.allowedNamespaces.selector is invalid: %v. Ask the owners of the project to correct it.",
			project.String(), namespace, selectorErr))
	}
	return stalled(keboolav1.ReasonProjectNotAllowed, fmt.Sprintf(
		"KeboolaProject %q does not allow KeboolaWebhooks from namespace %q. Ask the owners of the project to allow this namespace in its spec.allowedNamespaces, or refer to another KeboolaProject.",
		project.String(), namespace))
}

// quotaExceededReadiness is the readiness of a KeboolaWebhook that comes
// after older KeboolaWebhooks which already use all maxWebhooks slots of
// the KeboolaProject project.
func quotaExceededReadiness(project types.NamespacedName, maxWebhooks int32, older int) readiness {
	return stalled(keboolav1.ReasonQuotaExceeded, fmt.Sprintf(
		"KeboolaProject %q serves at most %d KeboolaWebhooks (spec.maxWebhooks), and %d older ones use it. "+
			"This KeboolaWebhook is not created or updated at Keboola until an older one is deleted or the limit is raised.",
		project.String(), maxWebhooks, older))
}

// eventsNotAllowedReadiness is the readiness of a KeboolaWebhook whose
// spec.events contains the event types denied, which spec.allowedEvents of
// the KeboolaProject project does not contain.
func eventsNotAllowedReadiness(project types.NamespacedName, denied, allowed []string) readiness {
	listed := slices.Sorted(slices.Values(allowed))
	more := ""
	if len(listed) > maxListedEvents {
		more = fmt.Sprintf(" and %d more", len(listed)-maxListedEvents)
		listed = listed[:maxListedEvents]
	}
	return stalled(keboolav1.ReasonInvalidSpec, fmt.Sprintf(
		"%s%q does not allow: %s. It allows %s%s. Remove the others from spec.events, or ask the owners of the project to allow them.",
		eventsNotAllowedPrefix, project.String(), quoteAll(denied), quoteAll(listed), more))
}

// quoteAll returns values quoted and separated by commas.
func quoteAll(values []string) string {
	quoted := make([]string, len(values))
	for i, value := range values {
		quoted[i] = fmt.Sprintf("%q", value)
	}
	return strings.Join(quoted, ", ")
}
