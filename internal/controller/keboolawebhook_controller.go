package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// KeboolaWebhookReconciler reconciles KeboolaWebhook objects.
type KeboolaWebhookReconciler struct {
	client.Client
	// APIReader reads from the API server without the cache.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clients   ClientFactory
	Options   Options
}

// Reconcile is a placeholder until the controller is implemented.
func (r *KeboolaWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with mgr.
func (r *KeboolaWebhookReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&keboolav1.KeboolaWebhook{}).Named("keboolawebhook").Complete(r)
}
