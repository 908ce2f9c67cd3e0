package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// This file manages the label and the finalizer that the KeboolaProject
// controller puts on token Secrets. The label keboolav1.LabelTokenSecret lets the controller
// watch token Secrets while no other Secret enters any of its caches. The
// credentials-protection finalizer keeps a token Secret while KeboolaWebhooks
// need its token.
//
// A token Secret without the label, because it was created after its
// KeboolaProject or because someone removed the label, is not watched. The
// next pass of the project reads the token anyway and puts the label back:
// the periodic verification of a Ready project, the periodic check of a
// Stalled one, or the poll for a missing Secret (see nextReconcile).

// newTokenSecretCache returns a metadata-only cache that holds only the
// Secrets with keboolav1.LabelTokenSecret. The API server filters by the
// label, so other Secrets cost the operator no memory and no watch event.
// The transform drops annotations (among them kubectl's
// last-applied-configuration, which contains a copy of the token), the
// other labels and managed fields, so a cached Secret keeps little more than
// its name, resourceVersion, finalizers and the token Secret label.
func newTokenSecretCache(mgr ctrl.Manager) (cache.Cache, error) {
	labeled, err := labels.NewRequirement(keboolav1.LabelTokenSecret, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid token Secret label %q: %w", keboolav1.LabelTokenSecret, err)
	}
	return cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.NewSelector().Add(*labeled),
		DefaultTransform:     stripSecretMetadata,
	})
}

// newSecretMetadata returns an empty PartialObjectMetadata of a Secret.
func newSecretMetadata() *metav1.PartialObjectMetadata {
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return secret
}

// stripSecretMetadata removes from a cached Secret the metadata that the
// controller does not read: annotations, managed fields and every label but
// keboolav1.LabelTokenSecret. An object without metadata, such as the
// tombstone of a deleted object, is stored as it is.
func stripSecretMetadata(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		var labelsToKeep map[string]string
		if value, ok := accessor.GetLabels()[keboolav1.LabelTokenSecret]; ok {
			labelsToKeep = map[string]string{keboolav1.LabelTokenSecret: value}
		}
		accessor.SetLabels(labelsToKeep)
		accessor.SetAnnotations(nil)
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

// protectTokenSecret puts the token Secret label on the Secret that
// spec.tokenSecretRef names, and the credentials-protection finalizer too
// when status.tokenSecretName names that Secret. A pass whose Secret already
// carries what it needs makes no request, because the token Secret cache
// shows it. A missing Secret is left alone.
func (r *KeboolaProjectReconciler) protectTokenSecret(ctx context.Context, project *keboolav1.KeboolaProject) error {
	name := project.Spec.TokenSecretRef.Name
	if name == "" {
		return nil
	}
	key := types.NamespacedName{Namespace: project.Namespace, Name: name}
	needsFinalizer := project.Status.TokenSecretName == name

	// The cache holds only labeled Secrets, so a Secret found there has
	// the label.
	cached := newSecretMetadata()
	if err := r.tokenSecrets.Get(ctx, key, cached); err == nil &&
		(!needsFinalizer || controllerutil.ContainsFinalizer(cached, credentialsProtectionFinalizer)) {
		return nil
	}

	return r.editTokenSecret(ctx, key, func(secret *metav1.PartialObjectMetadata) []metadataChange {
		var changes []metadataChange
		if _, ok := secret.GetLabels()[keboolav1.LabelTokenSecret]; !ok {
			secretLabels := secret.GetLabels()
			if secretLabels == nil {
				secretLabels = map[string]string{}
			}
			secretLabels[keboolav1.LabelTokenSecret] = keboolav1.TokenSecretValue
			secret.SetLabels(secretLabels)
			changes = append(changes, labelAdded)
		}
		if !needsFinalizer || controllerutil.ContainsFinalizer(secret, credentialsProtectionFinalizer) {
			return changes
		}
		if !secret.DeletionTimestamp.IsZero() {
			// The API server rejects a new finalizer on an object that is
			// being deleted.
			ctrl.LoggerFrom(ctx).Info("Cannot protect token Secret because it is being deleted", "secret", key)
			return changes
		}
		controllerutil.AddFinalizer(secret, credentialsProtectionFinalizer)
		return append(changes, finalizerAdded)
	})
}

// releaseTokenSecret removes the credentials-protection finalizer from the
// Secret name unless another KeboolaProject with KeboolaWebhooks uses it as
// its token Secret.
func (r *KeboolaProjectReconciler) releaseTokenSecret(ctx context.Context, project *keboolav1.KeboolaProject, name string) error {
	if name == "" {
		return nil
	}
	needed, err := r.tokenSecretNeededElsewhere(ctx, project, name)
	if err != nil || needed {
		return err
	}
	key := types.NamespacedName{Namespace: project.Namespace, Name: name}
	return r.editTokenSecret(ctx, key, func(secret *metav1.PartialObjectMetadata) []metadataChange {
		if !controllerutil.RemoveFinalizer(secret, credentialsProtectionFinalizer) {
			return nil
		}
		return []metadataChange{finalizerRemoved}
	})
}

// tokenSecretNeededElsewhere reports whether a KeboolaProject other than
// project uses the Secret name as its token Secret and has KeboolaWebhooks.
func (r *KeboolaProjectReconciler) tokenSecretNeededElsewhere(ctx context.Context, project *keboolav1.KeboolaProject, name string) (bool, error) {
	var projects keboolav1.KeboolaProjectList
	err := r.List(ctx, &projects,
		client.InNamespace(project.Namespace),
		client.MatchingFields{indexProjectTokenSecret: name})
	if err != nil {
		return false, fmt.Errorf("failed to list the KeboolaProjects of token Secret %q: %w", name, err)
	}

	for _, other := range projects.Items {
		if other.UID == project.UID {
			continue
		}
		usage, err := r.countWebhooks(ctx, client.ObjectKeyFromObject(&other))
		if err != nil {
			return false, err
		}
		if usage.Count > 0 {
			return true, nil
		}
	}
	return false, nil
}

// releaseTokenSecretLabels removes the token Secret label that the
// controller set from every Secret in namespace that no KeboolaProject uses
// any more (see tokenSecretInUse). That covers a project deleted or pointed
// at another Secret. The label with a value other than
// keboolav1.TokenSecretValue was set by someone else, for example in a
// GitOps manifest, and stays, so that the two do not undo each other's
// writes. The labeled Secrets come from the token Secret cache, so a
// namespace whose labels are all in use costs no request.
func (r *KeboolaProjectReconciler) releaseTokenSecretLabels(ctx context.Context, namespace string) error {
	labeled := &metav1.PartialObjectMetadataList{}
	labeled.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.tokenSecrets.List(ctx, labeled, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("failed to list the token Secrets of namespace %q: %w", namespace, err)
	}

	for i := range labeled.Items {
		if labeled.Items[i].GetLabels()[keboolav1.LabelTokenSecret] != keboolav1.TokenSecretValue {
			continue
		}
		key := client.ObjectKeyFromObject(&labeled.Items[i])
		inUse, err := r.tokenSecretInUse(ctx, key)
		if err != nil {
			return err
		}
		if inUse {
			continue
		}
		err = r.editTokenSecret(ctx, key, func(secret *metav1.PartialObjectMetadata) []metadataChange {
			secretLabels := secret.GetLabels()
			if secretLabels[keboolav1.LabelTokenSecret] != keboolav1.TokenSecretValue {
				return nil
			}
			delete(secretLabels, keboolav1.LabelTokenSecret)
			secret.SetLabels(secretLabels)
			return []metadataChange{labelRemoved}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tokenSecretInUse reports whether a KeboolaProject in the namespace of the
// Secret key names it in spec.tokenSecretRef and still needs it. A project
// needs its token Secret until it is being deleted and no KeboolaWebhook
// refers to it any more.
func (r *KeboolaProjectReconciler) tokenSecretInUse(ctx context.Context, key types.NamespacedName) (bool, error) {
	var projects keboolav1.KeboolaProjectList
	err := r.List(ctx, &projects,
		client.InNamespace(key.Namespace),
		client.MatchingFields{indexProjectTokenSecret: key.Name})
	if err != nil {
		return false, fmt.Errorf("failed to list the KeboolaProjects of token Secret %q: %w", key.Name, err)
	}

	for i := range projects.Items {
		project := &projects.Items[i]
		if project.DeletionTimestamp.IsZero() {
			return true, nil
		}
		usage, err := r.countWebhooks(ctx, client.ObjectKeyFromObject(project))
		if err != nil {
			return false, err
		}
		if usage.Count > 0 {
			return true, nil
		}
	}
	return false, nil
}

// metadataChange is one change that editTokenSecret logs after the patch.
type metadataChange struct {
	message string
	// kind is "label" or "finalizer", and name is its key.
	kind, name string
}

var (
	labelAdded = metadataChange{
		"Added label to token Secret so that changes of the token are watched", "label", keboolav1.LabelTokenSecret}
	labelRemoved = metadataChange{
		"Removed label from token Secret because no KeboolaProject uses it", "label", keboolav1.LabelTokenSecret}
	finalizerAdded = metadataChange{
		"Added finalizer to token Secret because KeboolaWebhooks need its token", "finalizer", credentialsProtectionFinalizer}
	finalizerRemoved = metadataChange{
		"Removed finalizer from token Secret because no KeboolaWebhook needs its token", "finalizer", credentialsProtectionFinalizer}
)

// editTokenSecret reads a fresh, uncached copy of the metadata of the Secret
// key, lets edit change it, and patches the Secret when edit returns a
// change. It never reads the token. The patch carries the resourceVersion,
// because a merge patch replaces the whole list of finalizers and would
// otherwise drop a finalizer that someone else added meanwhile. A missing
// Secret is not an error.
func (r *KeboolaProjectReconciler) editTokenSecret(ctx context.Context, key types.NamespacedName,
	edit func(secret *metav1.PartialObjectMetadata) []metadataChange) error {
	secret := newSecretMetadata()
	if err := r.APIReader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to read token Secret %q: %w", key.Name, err)
	}

	base := secret.DeepCopy()
	changes := edit(secret)
	if len(changes) == 0 {
		return nil
	}
	err := r.Patch(ctx, secret, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to update the labels or finalizers of token Secret %q: %w", key.Name, err)
	}

	log := ctrl.LoggerFrom(ctx).WithValues("secret", key)
	for _, change := range changes {
		log.Info(change.message, change.kind, change.name)
	}
	return nil
}
