package controller

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// indexWebhookSecret indexes KeboolaWebhooks by the name of the Secret they
// write, spec.secretName or the name derived from the object's name. It
// lets claimSecret find the KeboolaWebhooks that compete for one Secret
// without listing, and copying, every KeboolaWebhook of the namespace, a
// cost that grew with the number of objects on every create.
const indexWebhookSecret = "effectiveSecretName"

// indexWebhookSecretName registers indexWebhookSecret with mgr.
func indexWebhookSecretName(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &keboolav1.KeboolaWebhook{}, indexWebhookSecret, webhookSecretIndexValues)
	if err != nil {
		return fmt.Errorf("failed to index KeboolaWebhooks by Secret: %w", err)
	}
	return nil
}

// webhookSecretIndexValues returns the index values of a KeboolaWebhook
// under indexWebhookSecret.
func webhookSecretIndexValues(o client.Object) []string {
	wh, ok := o.(*keboolav1.KeboolaWebhook)
	if !ok {
		return nil
	}
	return []string{effectiveSecretName(wh)}
}
