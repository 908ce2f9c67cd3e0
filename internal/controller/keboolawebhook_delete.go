package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// reconcileDelete deletes the webhooks of a KeboolaWebhook being deleted at
// Keboola, then removes the finalizer. The Secret goes with it through its
// owner reference.
//
// With spec.deletionPolicy Orphan the webhooks stay and Keboola is not
// called. A paused object, a missing project or token, and a token that
// Keboola rejects block the deletion with reason DeletionBlocked and a
// message that names the ways out.
func (r *KeboolaWebhookReconciler) reconcileDelete(ctx context.Context, p *webhookPass) (ctrl.Result, error) {
	wh := p.wh
	if !controllerutil.ContainsFinalizer(wh, webhookFinalizer) {
		return ctrl.Result{}, nil
	}
	known := knownWebhookIDs(&wh.Status)
	knownSubscriptions := knownSubscriptionIDs(&wh.Status)
	// A subscription whose create was interrupted is found only through
	// the secret in its URL, so the list is read whenever subscriptions
	// may exist.
	mayHaveSubscriptions := len(knownSubscriptions) > 0 ||
		wh.Status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions ||
		replacesSubscriptions(&wh.Status)
	mayHaveWebhooks := len(known) > 0 || wh.Status.PendingCreate != nil
	everything := slices.Concat(known, knownSubscriptions)

	if wh.Spec.DeletionPolicy == keboolav1.DeletionPolicyOrphan {
		if len(everything) > 0 {
			r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonOrphaned, "Delete",
				"Left %s at Keboola because spec.deletionPolicy is Orphan", describeRemote(known, wh.Status.Subscriptions, wh.Status.RetiredSubscriptionIDs))
		}
		return ctrl.Result{}, r.removeFinalizer(ctx, wh)
	}
	if !mayHaveWebhooks && !mayHaveSubscriptions {
		return ctrl.Result{}, r.removeFinalizer(ctx, wh)
	}
	if isPaused(wh) {
		return r.finish(ctx, p, outcome{readiness: pausedDeletionReadiness(everything)})
	}

	api, o := r.deletionAPI(ctx, p, everything)
	if o != nil {
		return r.finish(ctx, p, *o)
	}

	var deleted, deletedSubscriptions []string
	if mayHaveWebhooks {
		if deleted, o = r.deleteAllWebhooks(ctx, p, api, known); o != nil {
			return r.finish(ctx, p, *o)
		}
	}
	if mayHaveSubscriptions {
		if deletedSubscriptions, o = r.deleteAllSubscriptions(ctx, p, knownSubscriptions); o != nil {
			return r.finish(ctx, p, *o)
		}
	}
	if len(deleted) > 0 || len(deletedSubscriptions) > 0 {
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonDeleted, "Delete",
			"Deleted %s at Keboola", describeDeleted(deleted, deletedSubscriptions))
	}
	return ctrl.Result{}, r.removeFinalizer(ctx, wh)
}

// describeRemote names the webhooks and subscriptions of a KeboolaWebhook
// for an Event.
func describeRemote(webhookIDs []string, subscriptions []keboolav1.SubscriptionStatus, retiredSubscriptions []string) string {
	var parts []string
	if len(webhookIDs) > 0 {
		parts = append(parts, describeWebhooks(webhookIDs))
	}
	if len(subscriptions) > 0 {
		parts = append(parts, "Notification service "+describeSubscriptions(subscriptions))
	}
	if len(retiredSubscriptions) > 0 {
		parts = append(parts, fmt.Sprintf("%d replaced Notification service subscriptions", len(retiredSubscriptions)))
	}
	return strings.Join(parts, " and ")
}

// describeDeleted names deleted webhooks and subscriptions for an Event.
func describeDeleted(webhookIDs, subscriptionIDs []string) string {
	var parts []string
	if len(webhookIDs) > 0 {
		parts = append(parts, describeWebhooks(webhookIDs))
	}
	switch len(subscriptionIDs) {
	case 0:
	case 1:
		parts = append(parts, fmt.Sprintf("Notification service subscription %q", subscriptionIDs[0]))
	default:
		parts = append(parts, "Notification service subscriptions "+quoteAll(subscriptionIDs))
	}
	return strings.Join(parts, " and ")
}

// knownWebhookIDs returns the current and the retired webhook ids of status.
func knownWebhookIDs(status *keboolav1.KeboolaWebhookStatus) []string {
	var ids []string
	if status.WebhookID != "" {
		ids = append(ids, status.WebhookID)
	}
	for _, id := range status.RetiredWebhookIDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// deletionAPI returns a Storage API client for deleting webhooks, or a
// DeletionBlocked outcome when the project or its token is gone. Unlike
// other passes it accepts a project that is not Ready, because its token may
// still work. It also accepts a project that no longer allows the namespace
// of p.wh, or whose spec.maxWebhooks p.wh exceeds, so that revoking access
// never leaves a webhook at Keboola that no KeboolaWebhook deletes.
func (r *KeboolaWebhookReconciler) deletionAPI(ctx context.Context, p *webhookPass, known []string) (keboola.API, *outcome) {
	key := projectRefKey(p.wh)
	name := projectDisplayName(p.wh)
	project := &keboolav1.KeboolaProject{}
	err := r.Get(ctx, key, project)
	if apierrors.IsNotFound(err) {
		return nil, &outcome{readiness: deletionBlockedReadiness(known, fmt.Sprintf("KeboolaProject %q not found", name))}
	}
	if err != nil {
		return nil, kubeFailure(fmt.Errorf("failed to read KeboolaProject %q: %w", key.String(), err))
	}

	api, err := projectAPI(ctx, r.APIReader, r.Clients, project)
	switch {
	case errors.Is(err, errTokenSecretNotFound), errors.Is(err, errTokenKeyMissing):
		return nil, &outcome{readiness: deletionBlockedReadiness(known, err.Error())}
	case err != nil:
		return nil, &outcome{readiness: progressing(keboolav1.ReasonDeleting, err.Error()), err: err}
	}

	stackURL := project.Status.StackURL
	if stackURL == "" {
		stackURL, _ = keboola.NormalizeStackURL(project.Spec.StackURL)
	}
	p.project = project
	p.key = projectKey{stackURL: stackURL, projectID: project.Status.ProjectID}
	p.api = api
	return api, nil
}

// deleteAllWebhooks deletes the known webhooks of p.wh and every webhook
// with a marker name of the object, which an interrupted create may have
// left. A webhook that is already gone counts as deleted. It returns the ids
// it deleted.
func (r *KeboolaWebhookReconciler) deleteAllWebhooks(ctx context.Context, p *webhookPass, api keboola.API, known []string) ([]string, *outcome) {
	webhooks, err := api.ListWebhooks(ctx)
	if err != nil {
		return nil, deletionFailure(known, "list the webhooks of the project", err)
	}
	ids := withMarkerWebhooks(known, webhooks, p.wh.UID)

	defer r.webhookObserver().invalidate(p.key)
	for _, id := range ids {
		if err := api.DeleteWebhook(ctx, id); err != nil {
			return nil, deletionFailure(known, "delete webhook "+id, err)
		}
		log.FromContext(ctx).Info("Deleted webhook", "webhookID", id)
	}
	return ids, nil
}

// withMarkerWebhooks returns known and the ids of the webhooks that carry a
// marker name of the object uid, which an interrupted create may have left.
func withMarkerWebhooks(known []string, webhooks []keboola.Webhook, uid types.UID) []string {
	ids := slices.Clone(known)
	for _, w := range webhooks {
		if isMarkerOf(w.Name, uid) && !slices.Contains(ids, w.ID) {
			ids = append(ids, w.ID)
		}
	}
	return ids
}

// deletionFailure is the outcome of a failed request during deletion: a
// rejected token blocks the deletion, anything else is retried.
func deletionFailure(known []string, action string, err error) *outcome {
	switch {
	case errors.Is(err, keboola.ErrUnauthorized):
		return &outcome{readiness: deletionBlockedReadiness(known, "Keboola rejected the Storage API token (HTTP 401)")}
	case errors.Is(err, keboola.ErrForbidden):
		return &outcome{readiness: deletionBlockedReadiness(known, "the Storage API token lacks the permission to manage webhooks (HTTP 403)")}
	}
	o := apiOutcome(action, err)
	if o.readiness.state == stateStalled {
		// A 400 or 422 on a delete is not a spec problem, so it is retried.
		o.err = err
		o.readiness = progressing(keboolav1.ReasonDeleting, o.readiness.message)
	}
	return o
}

// removeFinalizer lets the API server delete wh.
func (r *KeboolaWebhookReconciler) removeFinalizer(ctx context.Context, wh *keboolav1.KeboolaWebhook) error {
	controllerutil.RemoveFinalizer(wh, webhookFinalizer)
	if err := r.Update(ctx, wh); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to remove the finalizer of KeboolaWebhook %q: %w", wh.Name, err)
	}
	return nil
}
