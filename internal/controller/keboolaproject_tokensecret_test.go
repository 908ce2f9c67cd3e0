package controller

import (
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

func TestProjectPassNeeded(t *testing.T) {
	base := func() *keboolav1.KeboolaProject {
		return &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{
			Name:       "analytics",
			Generation: 1,
			Finalizers: []string{webhooksProtectionFinalizer},
		}}
	}
	deleted := metav1.Now()

	tests := []struct {
		name   string
		change func(*keboolav1.KeboolaProject)
		want   bool
	}{
		{"status only", func(p *keboolav1.KeboolaProject) {
			p.Status.Webhooks = &keboolav1.WebhookUsage{Count: 3, Namespaces: 1}
		}, false},
		{"labels only", func(p *keboolav1.KeboolaProject) { p.Labels = map[string]string{"team": "data"} }, false},
		{"spec", func(p *keboolav1.KeboolaProject) { p.Generation = 2 }, true},
		{"deletion started", func(p *keboolav1.KeboolaProject) { p.DeletionTimestamp = &deleted }, true},
		{"finalizer removed", func(p *keboolav1.KeboolaProject) { p.Finalizers = nil }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldProject, newProject := base(), base()
			tc.change(newProject)
			got := projectPassNeeded().Update(event.UpdateEvent{ObjectOld: oldProject, ObjectNew: newProject})
			if got != tc.want {
				t.Errorf("projectPassNeeded().Update() = %v, want %v", got, tc.want)
			}
		})
	}

	if !projectPassNeeded().Create(event.CreateEvent{Object: base()}) {
		t.Error("projectPassNeeded().Create() = false, want true")
	}
	if !projectPassNeeded().Delete(event.DeleteEvent{Object: base()}) {
		t.Error("projectPassNeeded().Delete() = false, want true")
	}
}

func TestMissingTokenSecretPollInterval(t *testing.T) {
	tests := []struct {
		resync time.Duration
		want   time.Duration
	}{
		{0, time.Minute},
		{20 * time.Second, 20 * time.Second},
		{time.Minute, time.Minute},
		{10 * time.Minute, time.Minute},
	}
	for _, tc := range tests {
		if got := missingTokenSecretPollInterval(tc.resync); got != tc.want {
			t.Errorf("missingTokenSecretPollInterval(%s) = %s, want %s", tc.resync, got, tc.want)
		}
	}
}

func TestStripSecretMetadata(t *testing.T) {
	secret := newSecretMetadata()
	secret.Name = "keboola-token"
	secret.Finalizers = []string{credentialsProtectionFinalizer}
	secret.Labels = map[string]string{
		keboolav1.LabelTokenSecret:  "gitops",
		"app.kubernetes.io/part-of": "analytics",
	}
	secret.Annotations = map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"token":"c2VjcmV0"}}`,
	}
	secret.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}

	if _, err := stripSecretMetadata(secret); err != nil {
		t.Fatalf("stripSecretMetadata() failed: %v", err)
	}

	wantLabels := map[string]string{keboolav1.LabelTokenSecret: "gitops"}
	if !maps.Equal(secret.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", secret.Labels, wantLabels)
	}
	if secret.Annotations != nil {
		t.Errorf("annotations = %v, want none", secret.Annotations)
	}
	if secret.ManagedFields != nil {
		t.Errorf("managed fields = %v, want none", secret.ManagedFields)
	}
	if len(secret.Finalizers) != 1 || secret.Finalizers[0] != credentialsProtectionFinalizer {
		t.Errorf("finalizers = %v, want [%s]", secret.Finalizers, credentialsProtectionFinalizer)
	}
	if secret.Name != "keboola-token" {
		t.Errorf("name = %q, want keboola-token", secret.Name)
	}
}
