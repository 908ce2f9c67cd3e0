package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// checkProjectAccess returns a Stalled outcome when project does not serve
// p.wh: when it does not allow the namespace of p.wh, when older
// KeboolaWebhooks use all of its spec.maxWebhooks slots, or when it does not
// allow an event type of spec.events. It reads only the manager's cache and
// never calls Keboola.
//
// The outcome requests no requeue. A change of the project, of a
// namespace's labels, or of the set of KeboolaWebhooks that share the
// project's limit triggers the next pass.
func (r *KeboolaWebhookReconciler) checkProjectAccess(ctx context.Context, p *webhookPass, project *keboolav1.KeboolaProject) *outcome {
	wh := p.wh
	key := client.ObjectKeyFromObject(project)
	namespaces := namespaceLabelCache{reader: r.Client}

	allowed, selectorErr, err := namespaces.allows(ctx, project, wh.Namespace)
	if err != nil {
		return kubeFailure(err)
	}
	if !allowed {
		return &outcome{readiness: projectNotAllowedReadiness(key, wh.Namespace, selectorErr)}
	}

	if maxWebhooks := project.Spec.MaxWebhooks; maxWebhooks != nil {
		older, err := r.countOlderWebhooks(ctx, project, wh, &namespaces)
		if err != nil {
			return kubeFailure(err)
		}
		if older >= int(*maxWebhooks) {
			return &outcome{readiness: quotaExceededReadiness(key, *maxWebhooks, older)}
		}
	}

	if denied := disallowedEvents(project.Spec.AllowedEvents, wh.Spec.Events); len(denied) > 0 {
		return &outcome{readiness: eventsNotAllowedReadiness(key, denied, project.Spec.AllowedEvents)}
	}
	return nil
}

// countOlderWebhooks returns how many KeboolaWebhooks that project allows
// rank before wh (see ranksBefore). Those being deleted count too, because
// their webhooks stay at Keboola until the deletion is done.
func (r *KeboolaWebhookReconciler) countOlderWebhooks(ctx context.Context, project *keboolav1.KeboolaProject, wh *keboolav1.KeboolaWebhook, namespaces *namespaceLabelCache) (int, error) {
	key := client.ObjectKeyFromObject(project)
	var list keboolav1.KeboolaWebhookList
	if err := r.List(ctx, &list, client.MatchingFields{indexWebhookProject: key.String()}); err != nil {
		return 0, fmt.Errorf("failed to list the KeboolaWebhooks of KeboolaProject %q: %w", key.String(), err)
	}

	older := 0
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == wh.UID || !ranksBefore(other, wh) {
			continue
		}
		// A project whose selector is invalid allows no other namespace,
		// so its error changes nothing here.
		allowed, _, err := namespaces.allows(ctx, project, other.Namespace)
		if err != nil {
			return 0, err
		}
		if allowed {
			older++
		}
	}
	return older, nil
}

// namespaceLabelCache reads the labels of namespaces from the manager's
// metadata cache, once per namespace and pass.
type namespaceLabelCache struct {
	reader client.Reader
	labels map[string]map[string]string
}

// allows reports whether project allows KeboolaWebhooks from namespace, and
// the parse error of the project's selector, if any. err is set when the
// namespace cannot be read.
func (c *namespaceLabelCache) allows(ctx context.Context, project *keboolav1.KeboolaProject, namespace string) (allowed bool, selectorErr, err error) {
	if namespace == project.Namespace {
		return true, nil, nil
	}
	namespaceLabels, err := c.get(ctx, namespace)
	if err != nil {
		return false, nil, err
	}
	allowed, selectorErr = namespaceAllowed(project, namespace, namespaceLabels)
	return allowed, selectorErr, nil
}

// get returns the labels of namespace. A namespace that does not exist has
// none.
func (c *namespaceLabelCache) get(ctx context.Context, namespace string) (map[string]string, error) {
	if namespaceLabels, ok := c.labels[namespace]; ok {
		return namespaceLabels, nil
	}
	object := newNamespaceMetadata()
	err := c.reader.Get(ctx, types.NamespacedName{Name: namespace}, object)
	if client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("failed to read namespace %q: %w", namespace, err)
	}
	if c.labels == nil {
		c.labels = make(map[string]map[string]string)
	}
	c.labels[namespace] = object.Labels
	return object.Labels, nil
}

// newNamespaceMetadata returns an empty PartialObjectMetadata of a
// Namespace. Reading it through the manager's client uses the metadata-only
// informer that the Namespace watch of SetupWithManager starts.
func newNamespaceMetadata() *metav1.PartialObjectMetadata {
	namespace := &metav1.PartialObjectMetadata{}
	namespace.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return namespace
}

// webhookRequests returns a reconcile request for every KeboolaWebhook, in
// any namespace, that refers to the KeboolaProject key.
func (r *KeboolaWebhookReconciler) webhookRequests(ctx context.Context, key types.NamespacedName) []reconcile.Request {
	var list keboolav1.KeboolaWebhookList
	err := r.List(ctx, &list, client.MatchingFields{indexWebhookProject: key.String()})
	if err != nil {
		log.FromContext(ctx).Error(err, "Failed to list the KeboolaWebhooks of a KeboolaProject", "keboolaProject", key)
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return requests
}

// webhooksUnderQuota returns a reconcile request for every KeboolaWebhook of
// the KeboolaProject key when the project sets spec.maxWebhooks, and none
// otherwise.
func (r *KeboolaWebhookReconciler) webhooksUnderQuota(ctx context.Context, key types.NamespacedName) []reconcile.Request {
	project := &keboolav1.KeboolaProject{}
	if err := r.Get(ctx, key, project); err != nil {
		if !apierrors.IsNotFound(err) {
			log.FromContext(ctx).Error(err, "Failed to read a KeboolaProject", "keboolaProject", key)
		}
		return nil
	}
	if project.Spec.MaxWebhooks == nil {
		return nil
	}
	return r.webhookRequests(ctx, key)
}

// webhooksSharingQuota maps a KeboolaWebhook that was created or deleted, or
// that changed spec.projectRef, to all KeboolaWebhooks of its project when
// the project sets spec.maxWebhooks: the set of webhooks that the project
// serves may have changed.
func (r *KeboolaWebhookReconciler) webhooksSharingQuota(ctx context.Context, obj client.Object) []reconcile.Request {
	wh, ok := obj.(*keboolav1.KeboolaWebhook)
	if !ok || wh.Spec.ProjectRef.Name == "" {
		return nil
	}
	return r.webhooksUnderQuota(ctx, projectRefKey(wh))
}

// webhooksOfNamespace maps a Namespace whose labels changed to the
// KeboolaWebhooks in it that refer to a KeboolaProject in another namespace.
// The selector of such a project may now match the namespace, or no longer
// match it. For a project that sets spec.maxWebhooks, all its
// KeboolaWebhooks are added, because the set that it serves may change too.
func (r *KeboolaWebhookReconciler) webhooksOfNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var list keboolav1.KeboolaWebhookList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetName())); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list the KeboolaWebhooks of a namespace", "namespace", obj.GetName())
		return nil
	}

	var requests []reconcile.Request
	projects := make(map[types.NamespacedName]bool)
	for i := range list.Items {
		wh := &list.Items[i]
		key := projectRefKey(wh)
		if key.Namespace == wh.Namespace {
			continue
		}
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(wh)})
		projects[key] = true
	}
	for key := range projects {
		requests = append(requests, r.webhooksUnderQuota(ctx, key)...)
	}
	return requests
}
