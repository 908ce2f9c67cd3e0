package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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

	// tokenSecrets is the metadata-only cache of the Secrets with the token
	// Secret label (see newTokenSecretCache). SetupWithManager creates it.
	tokenSecrets client.Reader

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
// of the Secrets with the token Secret label, to notice changes of token
// Secrets.
func (r *KeboolaProjectReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Token Secrets belong to users, and the manager's cache holds only the
	// Secrets the operator writes. Watching every Secret in the cluster
	// would keep an entry per Secret in memory, and clusters often hold
	// thousands of unrelated Secrets. The reconciler therefore labels the
	// token Secrets it uses and watches only those. The metadata of a
	// Secret is enough to trigger a reconcile, because every change of a
	// Secret is a watch event, and the reconciler reads the content
	// directly, once per pass.
	tokenSecrets, err := newTokenSecretCache(mgr)
	if err != nil {
		return fmt.Errorf("failed to create the token Secret cache: %w", err)
	}
	if err := mgr.Add(tokenSecrets); err != nil {
		return fmt.Errorf("failed to add the token Secret cache to the manager: %w", err)
	}
	r.tokenSecrets = tokenSecrets

	return ctrl.NewControllerManagedBy(mgr).
		For(&keboolav1.KeboolaProject{}, builder.WithPredicates(projectPassNeeded())).
		Watches(&keboolav1.KeboolaWebhook{},
			r.webhookEventHandler(),
			builder.WithPredicates(webhookReferenceChanged())).
		WatchesRawSource(source.Kind(tokenSecrets, newSecretMetadata(),
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
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// The project is gone, and its token Secret may keep a label
		// that no other project needs.
		r.verifications.forget(req.NamespacedName)
		return ctrl.Result{}, r.releaseTokenSecretLabels(ctx, req.Namespace)
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
	// A change of spec.tokenSecretRef leaves the label on the Secret named
	// before.
	if err := r.releaseTokenSecretLabels(ctx, project.Namespace); err != nil {
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
		if err := r.releaseTokenSecretLabels(ctx, project.Namespace); err != nil {
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
	// Secret. Both are watched, the Secret only while it carries the token
	// Secret label. A missing Secret carries no label, so the controller
	// polls for it. Any other stalled project is checked once per resync
	// period in case its Secret lost the label, and canSkipVerification
	// keeps that check from sending an unchanged token to the Storage API.
	if errors.Is(check.err, errTokenSecretNotFound) {
		return ctrl.Result{RequeueAfter: jittered(missingTokenSecretPollInterval(r.Options.ResyncPeriod))}, nil
	}
	return ctrl.Result{RequeueAfter: jittered(r.Options.ResyncPeriod)}, nil
}

// maxMissingTokenSecretPoll is the longest wait before a KeboolaProject
// whose token Secret does not exist reads it again.
const maxMissingTokenSecretPoll = time.Minute

// missingTokenSecretPollInterval returns the wait before a KeboolaProject
// whose token Secret does not exist reads it again: the resync period, but
// at most maxMissingTokenSecretPoll. The creation of a Secret without the
// token Secret label is not watched, so this wait bounds how long the
// project takes to notice it.
func missingTokenSecretPollInterval(resync time.Duration) time.Duration {
	if resync <= 0 {
		return maxMissingTokenSecretPoll
	}
	return min(resync, maxMissingTokenSecretPoll)
}

// webhookCountDelay is how long the KeboolaProject controller waits after a
// KeboolaWebhook of a protected project comes or goes before it counts the
// project's webhooks again. During a burst of creates, a project then writes
// status.webhooks about once per delay instead of once per new webhook.
const webhookCountDelay = time.Second

// webhookEventHandler returns the handler of KeboolaWebhook events, which
// enqueues the KeboolaProject that the webhook refers to. A project that is
// not being deleted and already carries the webhooks-protection finalizer
// is enqueued after webhookCountDelay. For such a project, a webhook that
// comes or goes changes only status.webhooks, or the finalizers once the last
// webhook is gone, and neither needs to happen at once. Any other project is
// enqueued at once, so that its first webhook protects it and its token
// Secret without delay, and so that a project being deleted goes as soon as
// its last webhook is gone.
func (r *KeboolaProjectReconciler) webhookEventHandler() handler.EventHandler {
	enqueue := func(ctx context.Context, obj client.Object, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		webhook, ok := obj.(*keboolav1.KeboolaWebhook)
		if !ok || webhook.Spec.ProjectRef.Name == "" {
			return
		}
		request := reconcile.Request{NamespacedName: projectRefKey(webhook)}

		project := &keboolav1.KeboolaProject{}
		err := r.Get(ctx, request.NamespacedName, project)
		if err == nil && project.DeletionTimestamp.IsZero() &&
			controllerutil.ContainsFinalizer(project, webhooksProtectionFinalizer) {
			queue.AddAfter(request, webhookCountDelay)
			return
		}
		queue.Add(request)
	}

	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, queue)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectOld, queue)
			enqueue(ctx, e.ObjectNew, queue)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, queue)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, queue)
		},
	}
}

// projectPassNeeded passes the KeboolaProject events that the reconciler
// has to act on: creates, deletes, and updates that change the spec (and
// with it the generation), start the deletion or change the finalizers.
// Updates of the status alone are dropped. Most are the reconciler's own
// writes, and during a burst of KeboolaWebhook creates each of them would
// trigger another pass that counts the webhooks and writes the status again,
// defeating webhookCountDelay.
func projectPassNeeded() predicate.Predicate {
	return predicate.Or(
		predicate.GenerationChangedPredicate{},
		predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				deletionStarted := e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
				return deletionStarted || !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers())
			},
		},
	)
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
