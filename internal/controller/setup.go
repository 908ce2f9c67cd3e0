package controller

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// Field indexes of the manager's cache.
const (
	// indexWebhookProject indexes KeboolaWebhooks by "<namespace>/<name>" of
	// the KeboolaProject they refer to (see projectRefKey). Look up a
	// project's KeboolaWebhooks in every namespace with
	// client.MatchingFields{indexWebhookProject: key.String()}.
	indexWebhookProject = "spec.projectRef"

	// indexProjectTokenSecret indexes KeboolaProjects by
	// spec.tokenSecretRef.name.
	indexProjectTokenSecret = "spec.tokenSecretRef.name"
)

// SetupWithManager registers the KeboolaProject and KeboolaWebhook
// controllers with mgr. clients builds the Storage API clients of both.
func SetupWithManager(mgr ctrl.Manager, clients ClientFactory, opts Options) error {
	_, err := setupControllers(mgr, clients, opts)
	return err
}

// setupControllers does the work of SetupWithManager and returns the
// KeboolaProject reconciler, so that tests can inspect its token Secret
// cache.
func setupControllers(mgr ctrl.Manager, clients ClientFactory, opts Options) (*KeboolaProjectReconciler, error) {
	if err := setupIndexes(mgr); err != nil {
		return nil, err
	}

	projects := &KeboolaProjectReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("keboolaproject-controller"),
		Clients:   clients,
		Options:   opts,
	}
	if err := projects.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the KeboolaProject controller: %w", err)
	}

	webhooks := &KeboolaWebhookReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("keboolawebhook-controller"),
		Clients:   clients,
		Options:   opts,
	}
	if err := webhooks.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the KeboolaWebhook controller: %w", err)
	}
	return projects, nil
}

func setupIndexes(mgr ctrl.Manager) error {
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()

	err := indexer.IndexField(ctx, &keboolav1.KeboolaWebhook{}, indexWebhookProject, func(o client.Object) []string {
		return []string{projectRefKey(o.(*keboolav1.KeboolaWebhook)).String()}
	})
	if err != nil {
		return fmt.Errorf("failed to index KeboolaWebhooks by project: %w", err)
	}

	err = indexer.IndexField(ctx, &keboolav1.KeboolaProject{}, indexProjectTokenSecret, func(o client.Object) []string {
		return []string{o.(*keboolav1.KeboolaProject).Spec.TokenSecretRef.Name}
	})
	if err != nil {
		return fmt.Errorf("failed to index KeboolaProjects by token Secret: %w", err)
	}
	return indexWebhookSecretName(mgr)
}
