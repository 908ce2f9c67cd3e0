package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// checkToken reads the token of project and verifies it with the Storage
// API, unless the status already describes this token and generation. It
// returns an error only for a failure to read the Secret that is neither a
// missing Secret nor a missing key, such as a denied or failed request to the
// Kubernetes API.
func (r *KeboolaProjectReconciler) checkToken(ctx context.Context, project *keboolav1.KeboolaProject, now time.Time) (tokenCheck, error) {
	log := ctrl.LoggerFrom(ctx)
	var check tokenCheck

	stackURL, err := keboola.NormalizeStackURL(project.Spec.StackURL)
	if err != nil {
		check.err = err
		return check, nil
	}
	check.stackURL = stackURL

	token, err := readToken(ctx, r.APIReader, project)
	switch {
	case errors.Is(err, errTokenSecretNotFound), errors.Is(err, errTokenKeyMissing):
		check.err = err
		return check, nil
	case err != nil:
		return check, err
	}
	check.fingerprint = fingerprint(token)

	last := r.verifications.get(client.ObjectKeyFromObject(project))
	if canSkipVerification(project, check.fingerprint, last, now, r.Options.ResyncPeriod) {
		check.skipped = true
		log.V(1).Info("Skipped token verification because the recorded result is current",
			"tokenFingerprint", check.fingerprint)
		return check, nil
	}

	api, err := r.Clients(stackURL, string(token))
	if err != nil {
		check.err = err
		return check, nil
	}
	info, err := api.VerifyToken(ctx)
	if err != nil {
		log.V(1).Info("Token verification failed", "tokenFingerprint", check.fingerprint, "error", err.Error())
		check.err = err
		return check, nil
	}
	log.V(1).Info("Verified token", "tokenFingerprint", check.fingerprint,
		"tokenID", info.ID, "projectID", info.Owner.ID)
	check.info = info

	// A token that cannot be used gets its own verdict, which a failed
	// detection would hide.
	usable := factsReadiness(project, factsFromResponse(info), now).state != stateStalled
	if usable && needsWebhookAPIDetection(project, check) {
		var err error
		check.detection, err = selectWebhookAPI(ctx, project.Spec.WebhookAPI, api)
		if err != nil {
			check.err = &detectionError{err: err}
			log.V(1).Info("Webhook API detection failed", "error", err.Error())
		} else {
			log.V(1).Info("Selected webhook API", "webhookAPI", check.detection.API)
		}
	}
	return check, nil
}

// detectionError is a failure to find out the webhook API of a stack whose
// token was verified.
type detectionError struct {
	err error
}

func (e *detectionError) Error() string { return e.err.Error() }
func (e *detectionError) Unwrap() error { return e.err }

// needsWebhookAPIDetection reports whether the webhook API recorded in the
// status of project may no longer apply: none is recorded, or the spec, the
// stack or the token changed since.
func needsWebhookAPIDetection(project *keboolav1.KeboolaProject, check tokenCheck) bool {
	status := &project.Status
	return status.WebhookAPI == "" ||
		status.ObservedGeneration != project.Generation ||
		status.TokenFingerprint != check.fingerprint ||
		status.StackURL != check.stackURL ||
		(status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions && status.NotificationServiceURL == "")
}

// selectWebhookAPI returns the webhook API that spec selects, or the one
// the stack offers when spec is empty. The Notification service is always
// located through the stack's Storage API index.
func selectWebhookAPI(ctx context.Context, spec keboolav1.WebhookAPI, api keboola.API) (*keboola.Detection, error) {
	const configured = "Set in spec.webhookAPI."
	switch spec {
	case keboolav1.WebhookAPIStorageWebhooks:
		detected, err := api.DetectWebhookAPI(ctx)
		if errors.Is(err, keboola.ErrNoWebhookAPI) || (err == nil && detected.API != keboola.WebhookAPIStorage) {
			return nil, fmt.Errorf("%w: the stack has no webhooks endpoint", keboola.ErrNoWebhookAPI)
		}
		if err != nil {
			return nil, err
		}
		return &keboola.Detection{API: keboola.WebhookAPIStorage, Reason: configured}, nil
	case keboolav1.WebhookAPINotificationSubscriptions:
		serviceURL, err := api.NotificationServiceURL(ctx)
		if err != nil {
			return nil, err
		}
		return &keboola.Detection{API: keboola.WebhookAPINotification, NotificationURL: serviceURL, Reason: configured}, nil
	}
	return api.DetectWebhookAPI(ctx)
}

// recordStatus records check in the status of project, sets its conditions
// and returns its readiness.
func (r *KeboolaProjectReconciler) recordStatus(project *keboolav1.KeboolaProject, check tokenCheck, now time.Time) readiness {
	status := &project.Status
	wasReady := isReady(status.Conditions, project.Generation)

	verdict := tokenReadiness(project, check, now)
	recordTokenCheck(status, check, verdict, wasReady, now)
	recordWebhookAPI(status, check)
	status.ObservedGeneration = project.Generation
	setReadiness(&status.Conditions, project.Generation, verdict)
	setTokenExpiryCondition(status, project.Generation, now, r.Options.TokenExpiryWarning)

	key := client.ObjectKeyFromObject(project)
	switch {
	case check.info != nil && verdict.state == stateReady:
		r.verifications.set(key, verificationRecord{
			uid:         string(project.UID),
			generation:  project.Generation,
			fingerprint: check.fingerprint,
			at:          now,
		})
	case verdict.state != stateReady:
		r.verifications.forget(key)
	}
	return verdict
}

// countWebhooks returns how many KeboolaWebhooks, in every namespace, refer
// to the KeboolaProject key, including those being deleted, and how many
// namespaces they are in.
func (r *KeboolaProjectReconciler) countWebhooks(ctx context.Context, key types.NamespacedName) (keboolav1.WebhookUsage, error) {
	var webhooks keboolav1.KeboolaWebhookList
	err := r.List(ctx, &webhooks, client.MatchingFields{indexWebhookProject: key.String()})
	if err != nil {
		return keboolav1.WebhookUsage{}, fmt.Errorf("failed to list the KeboolaWebhooks of KeboolaProject %q: %w", key.Name, err)
	}

	namespaces := make(map[string]bool)
	for _, webhook := range webhooks.Items {
		namespaces[webhook.Namespace] = true
	}
	return keboolav1.WebhookUsage{
		Count:      int32(len(webhooks.Items)),
		Namespaces: int32(len(namespaces)),
	}, nil
}

// reconcileProjectFinalizer adds the webhooks-protection finalizer to
// project when protect is true, and removes it otherwise.
func (r *KeboolaProjectReconciler) reconcileProjectFinalizer(ctx context.Context, project *keboolav1.KeboolaProject, protect bool) error {
	if controllerutil.ContainsFinalizer(project, webhooksProtectionFinalizer) == protect {
		return nil
	}

	base := project.DeepCopy()
	if protect {
		controllerutil.AddFinalizer(project, webhooksProtectionFinalizer)
	} else {
		controllerutil.RemoveFinalizer(project, webhooksProtectionFinalizer)
	}
	// The optimistic lock keeps a merge patch, which replaces the whole
	// list of finalizers, from dropping a finalizer that someone else
	// added meanwhile.
	err := r.Patch(ctx, project, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to update the finalizers of KeboolaProject %q: %w", project.Name, err)
	}

	log := ctrl.LoggerFrom(ctx)
	if protect {
		log.Info("Added finalizer because KeboolaWebhooks refer to the project", "finalizer", webhooksProtectionFinalizer)
	} else {
		log.Info("Removed finalizer because no KeboolaWebhook refers to the project", "finalizer", webhooksProtectionFinalizer)
	}
	return nil
}

// releaseStaleTokenSecret sets status.tokenSecretName to the Secret that
// needs the credentials-protection finalizer for project. It releases the
// Secret named there before when no webhook refers to the project any more
// or spec.tokenSecretRef names another Secret.
func (r *KeboolaProjectReconciler) releaseStaleTokenSecret(ctx context.Context, project *keboolav1.KeboolaProject, webhooks int) error {
	protected := project.Status.TokenSecretName
	required := ""
	if webhooks > 0 {
		required = project.Spec.TokenSecretRef.Name
	}

	if protected != "" && protected != required {
		if err := r.releaseTokenSecret(ctx, project, protected); err != nil {
			return err
		}
	}
	project.Status.TokenSecretName = required
	return nil
}

// patchStatus writes the status of project if it differs from the status of
// original.
func (r *KeboolaProjectReconciler) patchStatus(ctx context.Context, original, project *keboolav1.KeboolaProject) error {
	if equality.Semantic.DeepEqual(original.Status, project.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, project, client.MergeFrom(original)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to update the status of KeboolaProject %q: %w", project.Name, err)
	}
	return nil
}

// emitEvents records an Event for each transition from the status of before
// to the status of after, and logs it.
func (r *KeboolaProjectReconciler) emitEvents(ctx context.Context, before, after *keboolav1.KeboolaProject) {
	log := ctrl.LoggerFrom(ctx)
	for _, e := range transitionEvents(&before.Status, &after.Status) {
		r.Recorder.Eventf(after, nil, e.eventType, e.reason, e.action, "%s", e.note)
		log.Info("Status changed", "reason", e.reason, "message", e.note)
	}
}

// verificationRecords stores the last successful verification of each
// KeboolaProject. It is safe for concurrent use, and its zero value is
// empty and ready to use. After a restart it is empty, so every Ready
// project is verified once again.
type verificationRecords struct {
	mu      sync.Mutex
	records map[types.NamespacedName]verificationRecord
}

func (v *verificationRecords) get(key types.NamespacedName) verificationRecord {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.records[key]
}

func (v *verificationRecords) set(key types.NamespacedName, record verificationRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.records == nil {
		v.records = make(map[types.NamespacedName]verificationRecord)
	}
	v.records[key] = record
}

func (v *verificationRecords) forget(key types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.records, key)
}
