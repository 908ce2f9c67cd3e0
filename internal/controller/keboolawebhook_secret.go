package controller

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// claimSecret makes sure that the target Secret exists, is controlled by
// p.wh and carries the operator's labels, and stores it in p.secret. It runs
// before any call to Keboola, so that a signing secret is never created
// without a place to store it.
//
// A Secret that no KeboolaWebhook controls is never changed: the outcome is
// Stalled with reason SecretConflict. When two KeboolaWebhooks name one
// Secret, the older one (by creationTimestamp, then name) gets it, and takes
// it over from the younger one if that one claimed it first.
func (r *KeboolaWebhookReconciler) claimSecret(ctx context.Context, p *webhookPass) *outcome {
	wh := p.wh
	name := wh.Status.SecretName
	secret, err := r.readSecret(ctx, types.NamespacedName{Namespace: wh.Namespace, Name: name})

	if apierrors.IsNotFound(err) {
		if o := r.checkSecretCompetitors(ctx, p); o != nil {
			return o
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: wh.Namespace},
			Type:       corev1.SecretTypeOpaque,
		}
		applySecretMetadata(secret, wh)
		if err := controllerutil.SetControllerReference(wh, secret, r.Scheme()); err != nil {
			return kubeFailure(fmt.Errorf("failed to set the owner of Secret %q: %w", name, err))
		}
		if err := r.Create(ctx, secret); err != nil {
			return kubeFailure(fmt.Errorf("failed to create Secret %q: %w", name, err))
		}
		log.FromContext(ctx).V(1).Info("Created Secret", "secret", name)
		p.secret = secret
		return nil
	}
	if err != nil {
		return kubeFailure(fmt.Errorf("failed to read Secret %q: %w", name, err))
	}

	changed := false
	owner := metav1.GetControllerOf(secret)
	switch {
	case owner != nil && owner.UID == wh.UID:
	case owner != nil && isKeboolaWebhookRef(owner):
		if o := r.checkSecretCompetitors(ctx, p); o != nil {
			return o
		}
		if err := takeOverSecret(secret, wh, r.Client); err != nil {
			return kubeFailure(err)
		}
		log.FromContext(ctx).Info("Took over Secret from a younger or deleted KeboolaWebhook",
			"secret", name, "previousOwner", owner.Name)
		changed = true
	default:
		return &outcome{
			readiness: stalled(keboolav1.ReasonSecretConflict, fmt.Sprintf(
				"Secret %q already exists and is not controlled by this KeboolaWebhook, so the operator does not change it. "+
					"Delete that Secret, or recreate this KeboolaWebhook with another spec.secretName.", name)),
			// The foreign Secret is outside the operator's cache, so no
			// event reports its deletion: check again once per resync,
			// without calling Keboola.
			result: jitteredResult(r.Options.ResyncPeriod),
		}
	}

	if applySecretMetadata(secret, wh) {
		changed = true
	}
	if changed {
		if err := r.Update(ctx, secret); err != nil {
			return kubeFailure(fmt.Errorf("failed to update Secret %q: %w", name, err))
		}
	}
	p.secret = secret
	return nil
}

// readSecret reads a Secret from the cache, which contains only Secrets with
// the managed-by label, and from the API server when the cache has none, so
// that a Secret without the label is found too.
func (r *KeboolaWebhookReconciler) readSecret(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, secret)
	}
	return secret, err
}

// checkSecretCompetitors returns a SecretConflict outcome when an older
// KeboolaWebhook in the namespace targets the same Secret as p.wh.
func (r *KeboolaWebhookReconciler) checkSecretCompetitors(ctx context.Context, p *webhookPass) *outcome {
	wh := p.wh
	var list keboolav1.KeboolaWebhookList
	err := r.List(ctx, &list, client.InNamespace(wh.Namespace),
		client.MatchingFields{indexWebhookSecret: wh.Status.SecretName})
	if err != nil {
		return kubeFailure(fmt.Errorf("failed to list KeboolaWebhooks: %w", err))
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == wh.UID || !other.DeletionTimestamp.IsZero() ||
			effectiveSecretName(other) != wh.Status.SecretName || !isOlder(other, wh) {
			continue
		}
		return &outcome{
			readiness: stalled(keboolav1.ReasonSecretConflict, fmt.Sprintf(
				"Secret %q is also the target of KeboolaWebhook %q, which is older and keeps it. "+
					"Recreate this KeboolaWebhook with another spec.secretName.", wh.Status.SecretName, other.Name)),
			result: jitteredResult(r.Options.ResyncPeriod),
		}
	}
	return nil
}

// isOlder reports whether a was created before b, comparing names when both
// were created in the same second.
func isOlder(a, b *keboolav1.KeboolaWebhook) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// isKeboolaWebhookRef reports whether ref points to a KeboolaWebhook.
func isKeboolaWebhookRef(ref *metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == keboolav1.GroupVersion.Group && ref.Kind == "KeboolaWebhook"
}

// takeOverSecret makes wh the controller of secret in place of another
// KeboolaWebhook, and removes that webhook's signing secret.
func takeOverSecret(secret *corev1.Secret, wh *keboolav1.KeboolaWebhook, c client.Client) error {
	refs := secret.OwnerReferences[:0]
	for _, ref := range secret.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			refs = append(refs, ref)
		}
	}
	secret.OwnerReferences = refs
	if err := controllerutil.SetControllerReference(wh, secret, c.Scheme()); err != nil {
		return fmt.Errorf("failed to set the owner of Secret %q: %w", secret.Name, err)
	}
	delete(secret.Data, keboolav1.SecretKeySigningSecret)
	delete(secret.Data, keboolav1.SecretKeyWebhookID)
	delete(secret.Data, keboolav1.SecretKeyPreviousSigningSecret)
	delete(secret.Data, keboolav1.SecretKeyPreviousWebhookID)
	delete(secret.Annotations, keboolav1.AnnotationSecretFingerprint)
	return nil
}

// applySecretMetadata sets the labels and annotations that the operator
// manages on secret and reports whether it changed anything: the labels and
// annotations of spec.secretTemplate, the managed-by label, and the name of
// the owning KeboolaWebhook. The KeboolaWebhook's own labels are never
// copied, because GitOps tools would then treat the Secret as theirs.
//
// NOTE: a key removed from spec.secretTemplate stays on the Secret, because
// the operator does not record which keys it added earlier.
func applySecretMetadata(secret *corev1.Secret, wh *keboolav1.KeboolaWebhook) bool {
	labels := map[string]string{}
	annotations := map[string]string{}
	if t := wh.Spec.SecretTemplate; t != nil {
		maps.Copy(labels, t.Labels)
		maps.Copy(annotations, t.Annotations)
	}
	labels[keboolav1.LabelManagedBy] = keboolav1.ManagedByValue
	labels[labelWebhook] = labelValue(wh.Name)

	changed := false
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	for k, v := range labels {
		if current, ok := secret.Labels[k]; !ok || current != v {
			secret.Labels[k] = v
			changed = true
		}
	}
	if len(annotations) > 0 && secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	for k, v := range annotations {
		if current, ok := secret.Annotations[k]; !ok || current != v {
			secret.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

// storeSigningSecret writes the signing secret and the id of created into
// p.secret, and previous under previousSigningSecret and previousWebhookID,
// or removes those keys when previous is nil. The update carries the
// resourceVersion of the last read before the create started, so it fails
// with a conflict when anyone changed the Secret since.
func (r *KeboolaWebhookReconciler) storeSigningSecret(ctx context.Context, p *webhookPass, created *keboola.CreatedWebhook, previous *previousSecret) error {
	if created.Secret == "" {
		return fmt.Errorf("the create response of webhook %q has no signing secret", created.ID)
	}
	secret := p.secret.DeepCopy()
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Data[keboolav1.SecretKeySigningSecret] = []byte(created.Secret)
	secret.Data[keboolav1.SecretKeyWebhookID] = []byte(created.ID)
	if previous != nil {
		secret.Data[keboolav1.SecretKeyPreviousSigningSecret] = previous.value
		secret.Data[keboolav1.SecretKeyPreviousWebhookID] = []byte(previous.webhookID)
	} else {
		delete(secret.Data, keboolav1.SecretKeyPreviousSigningSecret)
		delete(secret.Data, keboolav1.SecretKeyPreviousWebhookID)
	}
	secret.Annotations[keboolav1.AnnotationSecretFingerprint] = fingerprint([]byte(created.Secret))
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("failed to write the signing secret of webhook %q to Secret %q: %w", created.ID, secret.Name, err)
	}
	p.secret = secret
	return nil
}

// secretHolds reports whether secret contains the signing secret that status
// records: the webhook id matches and the fingerprint of the signing secret
// equals status.secretFingerprint.
func secretHolds(secret *corev1.Secret, status *keboolav1.KeboolaWebhookStatus) bool {
	if secret == nil || status.WebhookID == "" {
		return false
	}
	signingSecret := secret.Data[keboolav1.SecretKeySigningSecret]
	return len(signingSecret) > 0 &&
		string(secret.Data[keboolav1.SecretKeyWebhookID]) == status.WebhookID &&
		fingerprint(signingSecret) == status.SecretFingerprint
}

// verifySecret checks that the Secret still contains the signing secret of the
// current webhook. The operator cannot read a signing secret back from
// Keboola, so when the Secret was deleted or edited by hand it replaces the
// webhook with a new one rather than vouch for a Secret it cannot verify.
// A mismatch in the cache is confirmed on the API server first, because the
// cache may not have seen the operator's own latest write yet.
func (r *KeboolaWebhookReconciler) verifySecret(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	if secretHolds(p.secret, status) {
		return nil
	}
	fresh := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(p.secret), fresh); err != nil {
		return kubeFailure(fmt.Errorf("failed to read Secret %q: %w", p.secret.Name, err))
	}
	p.secret = fresh
	if secretHolds(fresh, status) {
		return nil
	}

	log.FromContext(ctx).Info("Replacing webhook because the Secret does not contain its signing secret",
		"secret", fresh.Name, "webhookID", status.WebhookID, "fingerprint", status.SecretFingerprint)
	r.Recorder.Eventf(p.wh, fresh, corev1.EventTypeWarning, eventReasonSecretReplaced, "Rotate",
		"Secret %q no longer contains the signing secret of webhook %q, so the operator replaces the webhook with a new one",
		fresh.Name, status.WebhookID)
	return r.createWebhook(ctx, p, pendingReasonRotate)
}
