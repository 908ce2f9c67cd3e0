package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// webhookFinalizer keeps a KeboolaWebhook until its webhooks are deleted at
// Keboola, or until spec.deletionPolicy is Orphan.
const webhookFinalizer = "keboola.dev/webhook-cleanup"

// KeboolaWebhookReconciler reconciles KeboolaWebhook objects: it creates,
// updates, rotates and deletes one webhook at Keboola per object and
// publishes its signing secret in a Secret.
type KeboolaWebhookReconciler struct {
	client.Client
	// APIReader reads from the API server without the cache. Decisions that
	// a stale cache could turn into a duplicate or a lost webhook use it.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clients   ClientFactory
	Options   Options

	observerOnce sync.Once
	observer     *webhookObserver
	subscribers  *subscriptionObserver
}

// +kubebuilder:rbac:groups=keboola.dev,resources=keboolawebhooks,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=keboola.dev,resources=keboolawebhooks/status,verbs=update
// +kubebuilder:rbac:groups=keboola.dev,resources=keboolawebhooks/finalizers,verbs=update
// +kubebuilder:rbac:groups=keboola.dev,resources=keboolaprojects,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// conflictRetryDelay is the wait before a pass that failed on a conflict
// runs again with a fresh read.
const conflictRetryDelay = 250 * time.Millisecond

// Reconcile brings one KeboolaWebhook and its webhook at Keboola in line.
// The steps are ordered so that a crash or a failed write at any point
// leaves a state the next pass can finish without a human step.
//
// Every write carries the resourceVersion it was based on. A conflict means
// the pass read an object that has changed since, often the cache catching
// up with the pass before, so it is retried quietly after a short wait.
func (r *KeboolaWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	result, err := r.reconcile(ctx, req)
	if apierrors.IsConflict(err) {
		log.FromContext(ctx).V(1).Info("Object changed during the pass, retrying with a fresh read", "error", err.Error())
		return ctrl.Result{RequeueAfter: jittered(conflictRetryDelay)}, nil
	}
	return result, err
}

// reconcile runs the steps of one pass.
func (r *KeboolaWebhookReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	wh := &keboolav1.KeboolaWebhook{}
	if err := r.Get(ctx, req.NamespacedName, wh); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if !wh.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, newWebhookPass(wh))
	}

	if err := r.ensureFinalizer(ctx, wh); err != nil {
		return ctrl.Result{}, err
	}
	p := newWebhookPass(wh)

	if isPaused(wh) {
		return r.finish(ctx, p, outcome{readiness: pausedReadiness()})
	}

	if o := r.resolveProject(ctx, p); o != nil {
		return r.finish(ctx, p, *o)
	}

	// Keboola already rejected this generation, and only a spec change helps.
	if stalledOnInvalidSpec(wh.Status.Conditions, wh.Generation) {
		return r.finish(ctx, p, keepStalledOutcome(wh))
	}

	if o := checkWebhookAPISpec(p); o != nil {
		return r.finish(ctx, p, *o)
	}

	if o := r.claimSecret(ctx, p); o != nil {
		return r.finish(ctx, p, *o)
	}

	synced := rotationAwareSyncedReadiness
	if usesSubscriptions(p) {
		synced = subscriptionsSyncedReadiness
		if o := r.ensureSubscriptions(ctx, p); o != nil {
			return r.finish(ctx, p, *o)
		}
	} else if o := r.reconcileStorageWebhook(ctx, p); o != nil {
		return r.finish(ctx, p, *o)
	}

	if o := r.rollOutTargets(ctx, p); o != nil {
		return r.finish(ctx, p, *o)
	}

	return r.finish(ctx, p, outcome{
		readiness: synced(&wh.Status),
		result:    nextPassResult(&wh.Status, r.Options.ResyncPeriod, time.Now()),
	})
}

// reconcileStorageWebhook runs the steps for a project that uses the
// webhooks endpoint of the Storage API: recover an interrupted create, make
// the webhook match the spec, delete the webhooks it replaced, and end a
// rotation whose grace period is over.
func (r *KeboolaWebhookReconciler) reconcileStorageWebhook(ctx context.Context, p *webhookPass) *outcome {
	if p.wh.Status.PendingCreate != nil {
		if o := r.recoverCreates(ctx, p); o != nil {
			return o
		}
	}
	if o := r.ensureWebhook(ctx, p); o != nil {
		return o
	}
	p.wh.Status.WebhookAPI = keboolav1.WebhookAPIStorageWebhooks
	if o := r.deleteReplacedSubscriptions(ctx, p); o != nil {
		return o
	}
	if o := r.deleteRetiredWebhooks(ctx, p); o != nil {
		return o
	}
	return r.retireRotation(ctx, p)
}

// SetupWithManager registers the reconciler with mgr. KeboolaWebhooks are
// reconciled when their spec, annotations or deletion change, when a Secret
// they own changes or goes away, and when their KeboolaProject changes its
// spec, readiness, project, stack or token. They are also reconciled when
// the labels of their namespace change, and, under a project's
// spec.maxWebhooks, when another KeboolaWebhook of the project comes or goes.
func (r *KeboolaWebhookReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&keboolav1.KeboolaWebhook{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			deletionStartedPredicate(),
		))).
		Owns(&corev1.Secret{}, builder.WithPredicates(ignoreCreatePredicate())).
		Watches(&keboolav1.KeboolaProject{},
			handler.EnqueueRequestsFromMapFunc(r.webhooksOfProject),
			builder.WithPredicates(projectChangedPredicate())).
		Watches(&keboolav1.KeboolaWebhook{},
			handler.EnqueueRequestsFromMapFunc(r.webhooksSharingQuota),
			builder.WithPredicates(webhookReferenceChanged())).
		// Only the labels of a namespace matter, so the metadata-only
		// informer suffices.
		Watches(&corev1.Namespace{},
			handler.EnqueueRequestsFromMapFunc(r.webhooksOfNamespace),
			builder.OnlyMetadata,
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Options.MaxConcurrentReconciles)}).
		Named("keboolawebhook").
		Complete(r)
}

// webhookObserver returns the shared webhook list cache of the reconciler.
// A list is reused for one resync period.
func (r *KeboolaWebhookReconciler) webhookObserver() *webhookObserver {
	r.initObservers()
	return r.observer
}

// subscriptionObserver returns the shared subscription list cache of the
// reconciler. A list is reused for one resync period.
func (r *KeboolaWebhookReconciler) subscriptionObserver() *subscriptionObserver {
	r.initObservers()
	return r.subscribers
}

func (r *KeboolaWebhookReconciler) initObservers() {
	r.observerOnce.Do(func() {
		r.observer = newListObserver[keboola.Webhook](r.Options.ResyncPeriod)
		r.subscribers = newListObserver[keboola.Subscription](r.Options.ResyncPeriod)
	})
}

// webhookPass is the state of one reconcile of one KeboolaWebhook.
type webhookPass struct {
	wh *keboolav1.KeboolaWebhook
	// written is the status as last read or written, to skip writes that
	// would change nothing.
	written keboolav1.KeboolaWebhookStatus
	// initialReadyReason and initialGeneration are the Ready reason and
	// observedGeneration when the pass started, to detect transitions.
	initialReadyReason string
	initialGeneration  int64

	// project and key are set once the project is resolved, api on first
	// use.
	project       *keboolav1.KeboolaProject
	key           projectKey
	api           keboola.API
	notifications keboola.NotificationAPI

	// secret is the claimed Secret. Its resourceVersion predates every
	// create of the pass, so that writing the signing secret fails with a
	// conflict when someone else changed the Secret in the meantime.
	secret *corev1.Secret

	// recovered is set once recoverCreates ran in this pass.
	recovered bool
}

func newWebhookPass(wh *keboolav1.KeboolaWebhook) *webhookPass {
	p := &webhookPass{
		wh:                 wh,
		written:            *wh.Status.DeepCopy(),
		initialReadyReason: readyReason(wh.Status.Conditions),
		initialGeneration:  wh.Status.ObservedGeneration,
	}
	wh.Status.Name = effectiveWebhookName(wh)
	wh.Status.SecretName = effectiveSecretName(wh)
	return p
}

// outcome ends a reconcile pass.
type outcome struct {
	readiness readiness
	result    ctrl.Result
	err       error
	// skipStatus is set when a Kubernetes request failed, so finish does
	// not write a status that would fail the same way or rest on a stale
	// read.
	skipStatus bool
}

// kubeFailure is the outcome of a failed Kubernetes request.
func kubeFailure(err error) *outcome {
	return &outcome{err: err, skipStatus: true}
}

// writeStatus writes the status of p.wh when it differs from the status last
// read or written. The update carries the resourceVersion, so it fails with
// a conflict when the object changed since it was read.
func (r *KeboolaWebhookReconciler) writeStatus(ctx context.Context, p *webhookPass) error {
	if equality.Semantic.DeepEqual(p.written, p.wh.Status) {
		return nil
	}
	if err := r.Status().Update(ctx, p.wh); err != nil {
		return fmt.Errorf("failed to update the status of KeboolaWebhook %q: %w", p.wh.Name, err)
	}
	p.written = *p.wh.Status.DeepCopy()
	return nil
}

// finish records the outcome in the conditions, writes the status when it
// changed and emits a Warning Event when the Ready condition takes a
// failure reason.
func (r *KeboolaWebhookReconciler) finish(ctx context.Context, p *webhookPass, o outcome) (ctrl.Result, error) {
	if o.skipStatus {
		return resultOrError(o.result, o.err)
	}
	wh := p.wh
	wh.Status.ObservedGeneration = wh.Generation
	setReadiness(&wh.Status.Conditions, wh.Generation, o.readiness)
	if err := r.writeStatus(ctx, p); err != nil {
		if o.err == nil {
			o.err = err
		}
		return resultOrError(o.result, o.err)
	}

	reason := o.readiness.reason
	if reason != p.initialReadyReason && isWarningReason(reason) {
		r.Recorder.Eventf(wh, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", o.readiness.message)
	}
	if o.readiness.state == stateStalled && reason != p.initialReadyReason {
		log.FromContext(ctx).Info("Webhook stalled", "reason", reason, "message", o.readiness.message)
	}
	return resultOrError(o.result, o.err)
}

// resultOrError drops result when err is set, because controller-runtime
// ignores the result of a failed pass and retries with backoff.
func resultOrError(result ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// keepStalledOutcome repeats the Stalled condition of wh, for a generation
// that Keboola already rejected.
func keepStalledOutcome(wh *keboolav1.KeboolaWebhook) outcome {
	message := ""
	for _, c := range wh.Status.Conditions {
		if c.Type == keboolav1.ConditionStalled {
			message = c.Message
		}
	}
	return outcome{readiness: stalled(keboolav1.ReasonInvalidSpec, message)}
}

// ensureFinalizer adds the cleanup finalizer before any call to Keboola.
func (r *KeboolaWebhookReconciler) ensureFinalizer(ctx context.Context, wh *keboolav1.KeboolaWebhook) error {
	if controllerutil.ContainsFinalizer(wh, webhookFinalizer) {
		return nil
	}
	controllerutil.AddFinalizer(wh, webhookFinalizer)
	if err := r.Update(ctx, wh); err != nil {
		return fmt.Errorf("failed to add finalizer to KeboolaWebhook %q: %w", wh.Name, err)
	}
	return nil
}

// isPaused reports whether the paused annotation stops calls to Keboola.
func isPaused(wh *keboolav1.KeboolaWebhook) bool {
	return wh.Annotations[keboolav1.AnnotationPaused] == "true"
}

// resolveProject reads the KeboolaProject of p.wh and returns an outcome
// when it cannot be used yet, or does not serve p.wh.
func (r *KeboolaWebhookReconciler) resolveProject(ctx context.Context, p *webhookPass) *outcome {
	key := projectRefKey(p.wh)
	name := projectDisplayName(p.wh)
	project := &keboolav1.KeboolaProject{}
	err := r.Get(ctx, key, project)
	if client.IgnoreNotFound(err) != nil {
		return kubeFailure(fmt.Errorf("failed to read KeboolaProject %q: %w", key.String(), err))
	}
	if err != nil {
		project = nil
	}

	// Access is checked before readiness, so that a namespace that is not
	// allowed learns nothing about the state of the project.
	if project != nil {
		if o := r.checkProjectAccess(ctx, p, project); o != nil {
			return o
		}
	}
	if rd, ok := projectReadiness(name, project); !ok {
		return &outcome{readiness: rd}
	}

	// NOTE: a KeboolaProject may start to point at another Keboola project,
	// through a new stack or a token of another project. The current webhook
	// is then not found, so a new one is created. The old one stays in the
	// old project, which the operator can no longer reach.
	stackURL := project.Status.StackURL
	if stackURL == "" {
		stackURL, _ = keboola.NormalizeStackURL(project.Spec.StackURL)
	}
	p.project = project
	p.key = projectKey{stackURL: stackURL, projectID: project.Status.ProjectID}
	p.wh.Status.ProjectID = project.Status.ProjectID
	return nil
}

// storageAPI returns the Storage API client of the pass, built on first use
// so that a pass that needs no request does not read the token.
func (r *KeboolaWebhookReconciler) storageAPI(ctx context.Context, p *webhookPass) (keboola.API, *outcome) {
	if p.api != nil {
		return p.api, nil
	}
	api, err := projectAPI(ctx, r.APIReader, r.Clients, p.project)
	if err != nil {
		return nil, &outcome{readiness: progressing(keboolav1.ReasonProjectNotReady,
			fmt.Sprintf("Cannot use KeboolaProject %q: %v", p.project.Name, err))}
	}
	p.api = api
	return api, nil
}

// webhooksOfProject maps a KeboolaProject to the KeboolaWebhooks, in every
// namespace, that refer to it.
func (r *KeboolaWebhookReconciler) webhooksOfProject(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.webhookRequests(ctx, client.ObjectKeyFromObject(obj))
}

// deletionStartedPredicate passes updates that set deletionTimestamp.
func deletionStartedPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}

// ignoreCreatePredicate drops create events. The controller creates the
// Secrets it owns itself, so their creation needs no reconcile. Updates and
// deletions by others still trigger one.
func ignoreCreatePredicate() predicate.Predicate {
	return predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }}
}

// projectChangedPredicate passes KeboolaProject updates that can change what
// its webhooks do: spec, readiness, project id, stack, token, or deletion.
// Routine verifications that only move lastVerifiedTime are dropped.
func projectChangedPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldProject, okOld := e.ObjectOld.(*keboolav1.KeboolaProject)
			newProject, okNew := e.ObjectNew.(*keboolav1.KeboolaProject)
			if !okOld || !okNew {
				return true
			}
			return isReady(oldProject.Status.Conditions, oldProject.Generation) !=
				isReady(newProject.Status.Conditions, newProject.Generation) ||
				oldProject.Status.ProjectID != newProject.Status.ProjectID ||
				oldProject.Status.StackURL != newProject.Status.StackURL ||
				oldProject.Status.TokenFingerprint != newProject.Status.TokenFingerprint ||
				oldProject.Status.WebhookAPI != newProject.Status.WebhookAPI ||
				oldProject.Status.NotificationServiceURL != newProject.Status.NotificationServiceURL ||
				oldProject.DeletionTimestamp.IsZero() != newProject.DeletionTimestamp.IsZero() ||
				oldProject.Generation != newProject.Generation
		},
	}
}
