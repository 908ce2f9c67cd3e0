package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// ensureWebhook makes the webhook at Keboola exist, match the spec and sign
// with the secret in the Secret. It creates the webhook when there is none,
// replaces it when spec.rotationToken changed or the Secret no longer contains
// its signing secret, and otherwise corrects any drift.
func (r *KeboolaWebhookReconciler) ensureWebhook(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	switch {
	case status.WebhookID == "" && status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions:
		// The Notification service subscriptions that the webhook replaces
		// keep delivering for a grace period, like the previous webhook of
		// a rotation.
		return r.createWebhook(ctx, p, pendingReasonRotate)
	case status.WebhookID == "":
		return r.createWebhook(ctx, p, pendingReasonCreate)
	case status.RotationToken != p.wh.Spec.RotationToken:
		return r.createWebhook(ctx, p, pendingReasonRotate)
	}
	if o := r.verifySecret(ctx, p); o != nil {
		return o
	}
	return r.syncWebhook(ctx, p)
}

// createWebhook creates a webhook with a new signing secret, in steps that
// let the next pass finish or undo the work after a crash or a failed write
// at any point:
//
//  1. The Secret was claimed before (claimSecret), and its resourceVersion
//     is kept to fence the write in step 4.
//  2. status.pendingCreate records the attempt. The status update carries
//     the resourceVersion, so a pass that read a stale object, or a second
//     operator instance, gets a conflict instead of creating a second
//     webhook.
//  3. The webhook is created under a marker name that contains the object's
//     UID and the attempt id, so that recoverCreates can find it.
//  4. The signing secret and the webhook id are written to the Secret.
//  5. The status update that records the webhook id and clears
//     pendingCreate commits the webhook. The previous webhook, if any, moves
//     to status.retiredWebhookIDs in the same update.
//  6. The webhook is renamed to its real name, like any other drift.
//
// A webhook carries its real name only after step 5, so every webhook with a
// real name is recorded in the status, and every other webhook of the object
// carries a marker name.
//
// For a rotation, step 2 also records status.rotation, step 4 keeps the
// current signing secret under previousSigningSecret, and step 5 starts the
// grace period in which the previous webhook keeps delivering (see
// retireRotation).
func (r *KeboolaWebhookReconciler) createWebhook(ctx context.Context, p *webhookPass, reason string) *outcome {
	wh := p.wh
	logger := log.FromContext(ctx)

	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}

	attemptID := newAttemptID()
	wh.Status.PendingCreate = &keboolav1.PendingCreate{
		AttemptID:     attemptID,
		StartedTime:   metav1.Now(),
		Reason:        reason,
		RotationToken: wh.Spec.RotationToken,
	}
	keep := secretToKeep(p, reason)
	switch reason {
	case pendingReasonRotate:
		beginRotation(&wh.Status, keep, time.Now())
	case pendingReasonCreate:
		wh.Status.Rotation = nil
	}
	wh.Status.ObservedGeneration = wh.Generation
	setReadiness(&wh.Status.Conditions, wh.Generation, creatingReadiness(reason))
	if err := r.writeStatus(ctx, p); err != nil {
		return kubeFailure(err)
	}

	if err := runCreateStepHook(ctx, wh, createStepIntentRecorded); err != nil {
		return kubeFailure(err)
	}

	logger.Info("Creating webhook", "reason", reason, "attemptID", attemptID)
	created, err := api.CreateWebhook(ctx, keboola.WebhookSpec{
		Name:   markerName(wh.UID, attemptID),
		URL:    wh.Spec.URL,
		Events: wh.Spec.Events,
	})
	r.webhookObserver().invalidate(p.key)
	if err != nil {
		// Only an unknown outcome may have left a webhook behind, and the
		// pending create stays for recoverCreates to find it.
		if !errors.Is(err, keboola.ErrOutcomeUnknown) {
			wh.Status.PendingCreate = nil
			abandonPublishing(&wh.Status)
		}
		return apiOutcome("create the webhook", err)
	}
	if err := runCreateStepHook(ctx, wh, createStepWebhookCreated); err != nil {
		return kubeFailure(err)
	}

	if err := r.storeSigningSecret(ctx, p, created, keep); err != nil {
		return kubeFailure(err)
	}
	if err := runCreateStepHook(ctx, wh, createStepSecretStored); err != nil {
		return kubeFailure(err)
	}

	previousID := wh.Status.WebhookID
	commitWebhook(&wh.Status, created.ID, fingerprint([]byte(created.Secret)), wh.Status.PendingCreate.RotationToken)
	startOverlap(&wh.Status, time.Now(), r.Options.RotationGracePeriod)
	if err := r.writeStatus(ctx, p); err != nil {
		return kubeFailure(err)
	}
	logger.Info("Created webhook", "webhookID", created.ID, "fingerprint", wh.Status.SecretFingerprint,
		"previousWebhookID", previousID)
	r.emitCreatedEvent(p, reason, created.ID, previousID)

	return r.updateWebhook(ctx, p, created.Webhook, true)
}

// commitWebhook records id as the current webhook of status and clears the
// pending create. A previous webhook moves to retiredWebhookIDs, to be
// deleted once the Secret no longer refers to it.
func commitWebhook(status *keboolav1.KeboolaWebhookStatus, id, secretFingerprint, rotationToken string) {
	if previous := status.WebhookID; previous != "" && previous != id &&
		!slices.Contains(status.RetiredWebhookIDs, previous) {
		status.RetiredWebhookIDs = append(status.RetiredWebhookIDs, previous)
	}
	status.RetiredWebhookIDs = slices.DeleteFunc(status.RetiredWebhookIDs, func(retired string) bool { return retired == id })
	if len(status.RetiredWebhookIDs) == 0 {
		status.RetiredWebhookIDs = nil
	}
	status.WebhookID = id
	status.SecretFingerprint = secretFingerprint
	status.RotationToken = rotationToken
	status.PendingCreate = nil
	synced := metav1.Now()
	status.LastSyncedTime = &synced
}

// emitCreatedEvent reports a committed webhook with the Event reason that
// matches why it was created.
func (r *KeboolaWebhookReconciler) emitCreatedEvent(p *webhookPass, reason, id, previousID string) {
	switch reason {
	case pendingReasonRecreate:
		r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRecreated, "Create",
			"Created webhook %q because webhook %q was deleted at Keboola, and wrote its signing secret to Secret %q",
			id, previousID, p.secret.Name)
	case pendingReasonRotate:
		if previousID == "" {
			r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRotated, "Create",
				"Created webhook %q with a new signing secret in Secret %q; the Notification service subscriptions it replaces keep delivering for the grace period of %s and are deleted then",
				id, p.secret.Name, r.Options.RotationGracePeriod)
			return
		}
		r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRotated, "Create",
			"Created webhook %q with a new signing secret in Secret %q; webhook %q keeps delivering for the grace period of %s and is deleted then",
			id, p.secret.Name, previousID, r.Options.RotationGracePeriod)
	default:
		r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonCreated, "Create",
			"Created webhook %q and wrote its signing secret to Secret %q", id, p.secret.Name)
	}
}

// syncWebhook compares the current webhook with the spec, using the shared
// list of the project's webhooks, and updates or recreates it.
func (r *KeboolaWebhookReconciler) syncWebhook(ctx context.Context, p *webhookPass) *outcome {
	// A list that another webhook of the project fetched recently costs no
	// request, and not even the read of the token.
	webhooks, cached := r.webhookObserver().cached(p.key)
	if !cached {
		api, o := r.storageAPI(ctx, p)
		if o != nil {
			return o
		}
		var err error
		if webhooks, _, err = r.webhookObserver().list(ctx, p.key, api.ListWebhooks); err != nil {
			return apiOutcome("list the webhooks of the project", err)
		}
	}

	if !p.recovered && hasStrayMarker(webhooks, p.wh) {
		if o := r.recoverCreates(ctx, p); o != nil {
			return o
		}
		return r.ensureWebhook(ctx, p)
	}

	id := p.wh.Status.WebhookID
	index := slices.IndexFunc(webhooks, func(w keboola.Webhook) bool { return w.ID == id })
	if index >= 0 {
		return r.updateWebhook(ctx, p, webhooks[index], false)
	}

	// A shared list may predate a change, so only a 404 from a direct read
	// proves that the webhook is gone.
	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}
	live, err := api.GetWebhook(ctx, id)
	switch {
	case errors.Is(err, keboola.ErrNotFound):
		log.FromContext(ctx).Info("Webhook was deleted at Keboola, creating a new one", "webhookID", id)
		return r.createWebhook(ctx, p, pendingReasonRecreate)
	case err != nil:
		return apiOutcome("read the webhook", err)
	}
	return r.updateWebhook(ctx, p, *live, false)
}

// hasStrayMarker reports whether webhooks contain a webhook with a marker
// name of wh other than its current webhook: a create that was interrupted,
// or one that a second operator instance started.
func hasStrayMarker(webhooks []keboola.Webhook, wh *keboolav1.KeboolaWebhook) bool {
	return slices.ContainsFunc(webhooks, func(w keboola.Webhook) bool {
		return w.ID != wh.Status.WebhookID && isMarkerOf(w.Name, wh.UID)
	})
}

// updateWebhook sends one update with the fields of live that differ from
// the spec, and nothing when none differ. isNew is true right after a
// create, whose rename is part of the create and gets no Event of its own.
func (r *KeboolaWebhookReconciler) updateWebhook(ctx context.Context, p *webhookPass, live keboola.Webhook, isNew bool) *outcome {
	wh := p.wh
	desired := desiredWebhook{Name: wh.Status.Name, URL: wh.Spec.URL, Events: wh.Spec.Events}
	update, changed := webhookUpdate(desired, live)
	if !changed {
		// lastSyncedTime moves only when the webhook starts to match, so
		// that an idle resync writes nothing.
		if !isReady(p.written.Conditions, wh.Generation) || wh.Status.LastSyncedTime == nil {
			synced := metav1.Now()
			wh.Status.LastSyncedTime = &synced
		}
		return nil
	}

	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}
	fields := updatedFields(update)
	if !isNew {
		setReadiness(&wh.Status.Conditions, wh.Generation,
			progressing(keboolav1.ReasonUpdating, "Updating "+fields+" of the webhook at Keboola"))
	}
	_, err := api.UpdateWebhook(ctx, live.ID, update)
	r.webhookObserver().invalidate(p.key)
	if err != nil {
		return apiOutcome("update the webhook", err)
	}
	synced := metav1.Now()
	wh.Status.LastSyncedTime = &synced
	log.FromContext(ctx).Info("Updated webhook", "webhookID", live.ID, "fields", fields)
	if isNew {
		return nil
	}

	// The difference comes from a spec change when the generation moved
	// since the last pass, and from an edit at Keboola otherwise.
	if wh.Generation != p.initialGeneration {
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonUpdated, "Update",
			"Updated %s of webhook %q to match the spec", fields, live.ID)
	} else {
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonDriftCorrected, "Update",
			"Webhook %q was changed at Keboola; set %s back to the spec", live.ID, fields)
	}
	return nil
}

// updatedFields returns the names of the fields that update sets, such as
// "url and events". It never returns their values, because a URL may carry
// a credential of the receiver.
func updatedFields(update keboola.WebhookUpdate) string {
	var fields []string
	if update.Name != nil {
		fields = append(fields, "name")
	}
	if update.URL != nil {
		fields = append(fields, "url")
	}
	if update.Events != nil {
		fields = append(fields, "events")
	}
	switch len(fields) {
	case 0:
		return ""
	case 1:
		return fields[0]
	}
	return strings.Join(fields[:len(fields)-1], ", ") + " and " + fields[len(fields)-1]
}

// deleteRetiredWebhooks deletes the webhooks that newer ones replaced. It
// runs only after the Secret was verified to contain the current webhook's
// signing secret, so no retired webhook is still in use. The exception is
// the previous webhook of a rotation, which it keeps for retireRotation to
// delete after the grace period.
func (r *KeboolaWebhookReconciler) deleteRetiredWebhooks(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	if !slices.ContainsFunc(status.RetiredWebhookIDs, func(id string) bool { return !overlapProtects(status, id) }) {
		return nil
	}
	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}
	defer r.webhookObserver().invalidate(p.key)

	var protected []string
	for len(status.RetiredWebhookIDs) > 0 {
		id := status.RetiredWebhookIDs[0]
		switch {
		case overlapProtects(status, id):
			protected = append(protected, id)
		case id != status.WebhookID:
			if err := api.DeleteWebhook(ctx, id); err != nil {
				status.RetiredWebhookIDs = append(protected, status.RetiredWebhookIDs...)
				return replacedDeletionOutcome("delete the replaced webhook "+id, err)
			}
			log.FromContext(ctx).Info("Deleted replaced webhook", "webhookID", id)
		}
		status.RetiredWebhookIDs = status.RetiredWebhookIDs[1:]
	}
	status.RetiredWebhookIDs = protected
	return nil
}

// apiOutcome turns the failure of action into the end of a pass: terminal
// failures stop without a requeue, rate limits wait at least as long as the
// API requested, and other failures return an error for the controller's
// backoff.
func apiOutcome(action string, err error) *outcome {
	failure := classifyAPIError(action, err)
	switch {
	case failure.terminal:
		return &outcome{readiness: failure.readiness}
	case failure.retryAfter > 0:
		return &outcome{readiness: failure.readiness, result: jitteredResult(failure.retryAfter)}
	}
	return &outcome{readiness: failure.readiness, err: err}
}

// jitteredResult returns a result that requeues after d plus jitter.
func jitteredResult(d time.Duration) ctrl.Result {
	return ctrl.Result{RequeueAfter: jittered(d)}
}

// newAttemptID returns a random id for one create attempt.
func newAttemptID() string {
	b := make([]byte, 8)
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createStep is a point of the create protocol between two writes.
type createStep string

const (
	// createStepIntentRecorded is after the status update that records the
	// pending create and before the create request.
	createStepIntentRecorded createStep = "IntentRecorded"
	// createStepWebhookCreated is after the create request succeeded and
	// before the signing secret is written to the Secret.
	createStepWebhookCreated createStep = "WebhookCreated"
	// createStepSecretStored is after the Secret write and before the
	// status update that commits the webhook.
	createStepSecretStored createStep = "SecretStored"
	// createStepSubscriptionCreated is after the create request of a
	// Notification service subscription succeeded and before the status
	// update that records its id.
	createStepSubscriptionCreated createStep = "SubscriptionCreated"
)

// createStepHookFunc is called at each createStep. A non-nil error ends the
// pass there, as a crash of the operator at that point would.
type createStepHookFunc func(ctx context.Context, wh *keboolav1.KeboolaWebhook, step createStep) error

// createStepHook is a test seam: tests set it to interrupt the create
// protocol of one object at one step and check that the next pass recovers.
// The operator itself never sets it.
var createStepHook atomic.Pointer[createStepHookFunc]

func runCreateStepHook(ctx context.Context, wh *keboolav1.KeboolaWebhook, step createStep) error {
	hook := createStepHook.Load()
	if hook == nil {
		return nil
	}
	return (*hook)(ctx, wh, step)
}
