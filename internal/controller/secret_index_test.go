package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

func TestWebhookSecretIndexValues(t *testing.T) {
	tests := map[string]struct {
		object client.Object
		want   []string
	}{
		"derived name": {
			object: &keboolav1.KeboolaWebhook{ObjectMeta: metav1.ObjectMeta{Name: "orders"}},
			want:   []string{"orders-webhook-secret"},
		},
		"spec.secretName": {
			object: &keboolav1.KeboolaWebhook{
				ObjectMeta: metav1.ObjectMeta{Name: "orders"},
				Spec:       keboolav1.KeboolaWebhookSpec{SecretName: ptr.To("orders-signing")},
			},
			want: []string{"orders-signing"},
		},
		"empty spec.secretName falls back to the derived name": {
			object: &keboolav1.KeboolaWebhook{
				ObjectMeta: metav1.ObjectMeta{Name: "orders"},
				Spec:       keboolav1.KeboolaWebhookSpec{SecretName: ptr.To("")},
			},
			want: []string{"orders-webhook-secret"},
		},
		"other kind": {
			object: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "orders"}},
			want:   nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := webhookSecretIndexValues(tc.object); !slices.Equal(got, tc.want) {
				t.Errorf("webhookSecretIndexValues() = %q, want %q", got, tc.want)
			}
		})
	}
}
