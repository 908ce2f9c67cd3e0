package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;patch

// rollOutTargets restarts the workloads of spec.rolloutTargets when the
// signing secret changed since they were last restarted: it sets the
// annotation keboola.dev/signing-secret-fingerprint on their pod template to
// status.secretFingerprint, which makes their controllers replace the pods.
// It runs after the Secret was verified to hold that secret, and records the
// fingerprint in status.rolloutFingerprint, so that later passes restart
// nothing until the secret changes again.
//
// A target that does not exist gets a Warning Event and is skipped, because
// it may be created later, with the current secret. Any other failure gets a
// Warning Event and is retried with backoff. The webhook stays Ready in both
// cases, because it works for every receiver that mounts the Secret.
func (r *KeboolaWebhookReconciler) rollOutTargets(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	want := status.SecretFingerprint
	if want == "" || status.RolloutFingerprint == want {
		return nil
	}
	logger := log.FromContext(ctx)

	var restarted []string
	for _, target := range p.wh.Spec.RolloutTargets {
		err := r.patchPodTemplate(ctx, p.wh.Namespace, target, want)
		switch {
		case apierrors.IsNotFound(err):
			logger.Info("Rollout target not found", "kind", target.Kind, "name", target.Name)
			r.Recorder.Eventf(p.wh, nil, corev1.EventTypeWarning, eventReasonRolloutTargetNotFound, "RollOut",
				"%s %q in spec.rolloutTargets not found, so it was not restarted for the new signing secret",
				target.Kind, target.Name)
		case err != nil:
			logger.Error(err, "Failed to restart rollout target", "kind", target.Kind, "name", target.Name)
			r.Recorder.Eventf(p.wh, nil, corev1.EventTypeWarning, eventReasonRolloutFailed, "RollOut",
				"Failed to restart %s %q for the new signing secret: %v", target.Kind, target.Name, err)
			return &outcome{readiness: syncedReadiness(status.WebhookID, status.SecretName), err: err}
		default:
			logger.Info("Restarted rollout target", "kind", target.Kind, "name", target.Name, "fingerprint", want)
			restarted = append(restarted, fmt.Sprintf("%s %q", target.Kind, target.Name))
		}
	}
	if len(restarted) > 0 {
		r.Recorder.Eventf(p.wh, nil, corev1.EventTypeNormal, eventReasonRolledOut, "RollOut",
			"Set %s=%s on the pod template of %s to restart their pods with the new signing secret",
			keboolav1.AnnotationSigningSecretFingerprint, want, strings.Join(restarted, ", "))
	}
	status.RolloutFingerprint = want
	return nil
}

// patchPodTemplate sets the fingerprint annotation on the pod template of
// target with a JSON merge patch, which fails with NotFound instead of
// creating a missing target. A patch that changes nothing is not written by
// the API server, so the pods are replaced only when the value changes.
func (r *KeboolaWebhookReconciler) patchPodTemplate(ctx context.Context, namespace string, target keboolav1.RolloutTarget, secretFingerprint string) error {
	var obj client.Object
	switch target.Kind {
	case keboolav1.RolloutTargetDeployment:
		obj = &appsv1.Deployment{}
	case keboolav1.RolloutTargetStatefulSet:
		obj = &appsv1.StatefulSet{}
	default:
		// The CRD's enum admits only the kinds above.
		return fmt.Errorf("unsupported rollout target kind %q", target.Kind)
	}
	obj.SetNamespace(namespace)
	obj.SetName(target.Name)

	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{
					"annotations": map[string]string{keboolav1.AnnotationSigningSecretFingerprint: secretFingerprint},
				},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("failed to encode the patch of %s %q: %w", target.Kind, target.Name, err)
	}
	if err := r.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("failed to patch %s %q: %w", target.Kind, target.Name, err)
	}
	return nil
}
