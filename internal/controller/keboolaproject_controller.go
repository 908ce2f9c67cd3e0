package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// Finalizers that protect the credentials of KeboolaWebhooks.
const (
	// credentialsProtectionFinalizer keeps a token Secret while
	// KeboolaWebhooks refer to a project that uses it. When a namespace is
	// deleted, its Secrets could otherwise go first, and the webhooks could
	// then no longer be deleted at Keboola.
	credentialsProtectionFinalizer = "keboola.dev/credentials-protection"

	// webhooksProtectionFinalizer keeps a KeboolaProject while
	// KeboolaWebhooks refer to it, for the same reason.
	webhooksProtectionFinalizer = "keboola.dev/webhooks-protection"
)

// KeboolaProjectReconciler reconciles KeboolaProject objects. It verifies
// each project's Storage API token, reports the project the token belongs to
// and the token's expiry, and keeps the token Secret and the project while
// KeboolaWebhooks need them.
type KeboolaProjectReconciler struct {
	client.Client
	// APIReader reads from the API server without the cache. Token Secrets
	// are read with it, because the manager's cache holds only the Secrets
	// the operator writes.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clients   ClientFactory
	Options   Options

	// secretMetadata is the metadata-only cache of Secrets that
	// SetupWithManager creates.
	secretMetadata client.Reader

	// verifications stores the last successful verification of each
	// project, so that a pass soon after it does not call the Storage API.
	verifications verificationRecords
}

// +kubebuilder:rbac:groups=keboola.dev,resources=keboolaprojects,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=keboola.dev,resources=keboolaprojects/status,verbs=patch
// +kubebuilder:rbac:groups=keboola.dev,resources=keboolawebhooks,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler with mgr. It watches
// KeboolaProjects, the KeboolaWebhooks that refer to them, and the metadata
// of all Secrets, to notice changes of token Secrets.
func (r *KeboolaProjectReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Token Secrets belong to users and carry no label to select them by,
	// and the manager's cache holds only the Secrets the operator writes.
	// Caching every Secret in the cluster would keep all their data in
	// memory, and clusters often hold thousands of unrelated Secrets. The
	// metadata of a Secret is enough to trigger a reconcile, because every
	// change of a Secret is a watch event, and the reconciler reads the
	// content directly, once per pass. The transform drops labels,
	// annotations (among them kubectl's last-applied-configuration, which
	// holds a copy of the data) and managed fields, so a cached Secret
	// keeps little more than its name, resourceVersion and finalizers.
	secretMetadata, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: stripSecretMetadata,
	})
	if err != nil {
		return fmt.Errorf("failed to create the Secret metadata cache: %w", err)
	}
	if err := mgr.Add(secretMetadata); err != nil {
		return fmt.Errorf("failed to add the Secret metadata cache to the manager: %w", err)
	}
	r.secretMetadata = secretMetadata

	return ctrl.NewControllerManagedBy(mgr).
		For(&keboolav1.KeboolaProject{}).
		Watches(&keboolav1.KeboolaWebhook{},
			handler.EnqueueRequestsFromMapFunc(projectOfWebhook),
			builder.WithPredicates(webhookReferenceChanged())).
		WatchesRawSource(source.Kind(secretMetadata, newSecretMetadata(),
			handler.TypedEnqueueRequestsFromMapFunc(r.projectsOfSecret))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Named("keboolaproject").
		Complete(r)
}

// Reconcile verifies the token of one KeboolaProject and protects its
// credentials while KeboolaWebhooks use them.
func (r *KeboolaProjectReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	project := &keboolav1.KeboolaProject{}
	if err := r.Get(ctx, req.NamespacedName, project); err != nil {
		if apierrors.IsNotFound(err) {
			r.verifications.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	usage, err := r.countWebhooks(ctx, client.ObjectKeyFromObject(project))
	if err != nil {
		return ctrl.Result{}, err
	}
	webhooks := int(usage.Count)

	if !project.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, project, usage)
	}

	if err := r.reconcileProjectFinalizer(ctx, project, webhooks > 0); err != nil {
		return ctrl.Result{}, err
	}

	original := project.DeepCopy()
	project.Status.Webhooks = &usage
	if err := r.releaseStaleTokenSecret(ctx, project, webhooks); err != nil {
		return ctrl.Result{}, err
	}

	now := time.Now()
	check, err := r.checkToken(ctx, project, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	verdict := r.recordStatus(project, check, now)

	if err := r.patchStatus(ctx, original, project); err != nil {
		return ctrl.Result{}, err
	}
	r.emitEvents(ctx, original, project)

	// The finalizer goes on the Secret only after the status names it, so
	// that every Secret carrying it is one that a later pass releases.
	if err := r.protectTokenSecret(ctx, project); err != nil {
		return ctrl.Result{}, err
	}

	return r.nextReconcile(ctx, project, check, verdict, now)
}

// reconcileDelete lets a KeboolaProject go once no KeboolaWebhook, in any
// namespace, refers to it. Until then the token Secret stays protected,
// because the KeboolaWebhook controller needs the token to delete the
// webhooks at Keboola.
func (r *KeboolaProjectReconciler) reconcileDelete(ctx context.Context, project *keboolav1.KeboolaProject, usage keboolav1.WebhookUsage) (ctrl.Result, error) {
	webhooks := int(usage.Count)
	if webhooks == 0 {
		if err := r.releaseTokenSecret(ctx, project, project.Status.TokenSecretName); err != nil {
			return ctrl.Result{}, err
		}
		r.verifications.forget(client.ObjectKeyFromObject(project))
		return ctrl.Result{}, r.reconcileProjectFinalizer(ctx, project, false)
	}

	original := project.DeepCopy()
	project.Status.Webhooks = &usage
	if err := r.releaseStaleTokenSecret(ctx, project, webhooks); err != nil {
		return ctrl.Result{}, err
	}
	project.Status.ObservedGeneration = project.Generation
	setReadiness(&project.Status.Conditions, project.Generation, webhooksRemainReadiness(webhooks))

	if err := r.patchStatus(ctx, original, project); err != nil {
		return ctrl.Result{}, err
	}
	r.emitEvents(ctx, original, project)

	// No requeue: the deletion of each KeboolaWebhook triggers a reconcile.
	return ctrl.Result{}, r.protectTokenSecret(ctx, project)
}

// nextReconcile returns when project is to be reconciled again after a pass
// that ended with verdict.
func (r *KeboolaProjectReconciler) nextReconcile(ctx context.Context, project *keboolav1.KeboolaProject, check tokenCheck, verdict readiness, now time.Time) (ctrl.Result, error) {
	switch verdict.state {
	case stateReady:
		wait := nextVerification(&project.Status, now, jittered(r.Options.ResyncPeriod), r.Options.TokenExpiryWarning)
		return ctrl.Result{RequeueAfter: wait}, nil

	case stateProgressing:
		if retryAfter, ok := keboola.RetryAfter(check.err); ok && errors.Is(check.err, keboola.ErrRateLimited) {
			ctrl.LoggerFrom(ctx).Info("Storage API asked to wait before the next verification",
				"retryAfter", retryAfter.String(), "error", check.err.Error())
			return ctrl.Result{RequeueAfter: jittered(retryAfter)}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to verify the Storage API token: %w", check.err)
	}

	// A stalled project waits for a change of its spec or its token
	// Secret, and both are watched.
	return ctrl.Result{}, nil
}

// projectOfWebhook maps a KeboolaWebhook to the KeboolaProject it refers to,
// which may be in another namespace.
func projectOfWebhook(_ context.Context, obj client.Object) []reconcile.Request {
	webhook, ok := obj.(*keboolav1.KeboolaWebhook)
	if !ok || webhook.Spec.ProjectRef.Name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: projectRefKey(webhook)}}
}

// webhookReferenceChanged passes the KeboolaWebhook events that can change
// how many webhooks refer to a project: creates, deletes, and updates that
// change spec.projectRef. Other updates, such as the webhook controller's
// status writes, do not concern the project.
func webhookReferenceChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldWebhook, oldOK := e.ObjectOld.(*keboolav1.KeboolaWebhook)
			newWebhook, newOK := e.ObjectNew.(*keboolav1.KeboolaWebhook)
			if !oldOK || !newOK {
				return true
			}
			return projectRefKey(oldWebhook) != projectRefKey(newWebhook)
		},
	}
}

// projectsOfSecret maps a Secret to the KeboolaProjects in its namespace
// whose spec.tokenSecretRef names it.
func (r *KeboolaProjectReconciler) projectsOfSecret(ctx context.Context, secret *metav1.PartialObjectMetadata) []reconcile.Request {
	var projects keboolav1.KeboolaProjectList
	err := r.List(ctx, &projects,
		client.InNamespace(secret.Namespace),
		client.MatchingFields{indexProjectTokenSecret: secret.Name})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list the KeboolaProjects of a token Secret",
			"secret", client.ObjectKeyFromObject(secret))
		return nil
	}

	requests := make([]reconcile.Request, 0, len(projects.Items))
	for _, project := range projects.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&project)})
	}
	return requests
}

// newSecretMetadata returns an empty PartialObjectMetadata of a Secret.
func newSecretMetadata() *metav1.PartialObjectMetadata {
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return secret
}

// stripSecretMetadata removes from a cached Secret the metadata that the
// controller does not read: labels, annotations and managed fields.
// An object without metadata, such as the tombstone of a deleted object, is
// stored as it is.
func stripSecretMetadata(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetLabels(nil)
		accessor.SetAnnotations(nil)
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}
