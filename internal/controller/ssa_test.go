package controller

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// GitOps tools such as Flux, and Argo CD with server-side diff, apply
// manifests with server-side apply and report drift when a dry-run apply would
// change the live object.
// These specs apply a token Secret, a KeboolaProject and a KeboolaWebhook the
// way such a tool does, and check that the operator leaves every field of the
// manifests to the tool.
var _ = Describe("Server-side apply by a GitOps tool", func() {
	const (
		timeout  = 30 * time.Second
		interval = 200 * time.Millisecond
		// gitOpsManager is the field manager of the simulated GitOps tool.
		gitOpsManager = "gitops-test"
	)

	var namespace string

	BeforeEach(func() {
		namespace = newNamespace()
	})

	// manifests returns the three objects as a GitOps repository would
	// contain them. The webhook URL is on loopback and never receives a
	// delivery, because no spec fires an event.
	manifests := func(token string, projectID int64) []*unstructured.Unstructured {
		source := fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata:
  name: keboola-token
  namespace: %[1]s
  labels:
    app.kubernetes.io/part-of: gitops-test
type: Opaque
stringData:
  token: %[2]q
---
apiVersion: keboola.dev/v1alpha1
kind: KeboolaProject
metadata:
  name: analytics
  namespace: %[1]s
  labels:
    app.kubernetes.io/part-of: gitops-test
spec:
  stackURL: %[3]q
  tokenSecretRef:
    name: keboola-token
    key: token
  expectedProjectID: %[4]d
---
apiVersion: keboola.dev/v1alpha1
kind: KeboolaWebhook
metadata:
  name: job-failures
  namespace: %[1]s
  labels:
    app.kubernetes.io/part-of: gitops-test
  annotations:
    example.com/owner: data-team
spec:
  projectRef:
    name: analytics
  url: http://127.0.0.1:9/keboola
  events:
  - storage.jobFailed
  - orchestration.jobFailed
  name: Job failures
  secretTemplate:
    labels:
      app.kubernetes.io/part-of: alerting
  deletionPolicy: Delete
`, namespace, token, emu.URL(), projectID)

		var objects []*unstructured.Unstructured
		for _, document := range strings.Split(source, "\n---\n") {
			// Decoding through JSON gives int64 numbers, as the API
			// server's responses have.
			data, err := yaml.YAMLToJSON([]byte(document))
			Expect(err).NotTo(HaveOccurred())
			object := &unstructured.Unstructured{}
			Expect(object.UnmarshalJSON(data)).To(Succeed())
			objects = append(objects, object)
		}
		return objects
	}

	apply := func(object *unstructured.Unstructured, options ...client.ApplyOption) {
		GinkgoHelper()
		options = append([]client.ApplyOption{client.FieldOwner(gitOpsManager), client.ForceOwnership}, options...)
		Expect(k8sClient.Apply(testCtx, client.ApplyConfigurationFromUnstructured(object), options...)).To(Succeed())
	}

	getLive := func(object *unstructured.Unstructured) *unstructured.Unstructured {
		GinkgoHelper()
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(object.GroupVersionKind())
		Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(object), live)).To(Succeed())
		return live
	}

	// readyReason returns the reason of the Ready=True condition of the
	// current generation, or "" while there is none.
	readyReason := func(object *unstructured.Unstructured) func(Gomega) string {
		return func(g Gomega) string {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(object.GroupVersionKind())
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(object), live)).To(Succeed())

			var status struct {
				Conditions []metav1.Condition `json:"conditions"`
			}
			content, _, err := unstructured.NestedMap(live.Object, "status")
			g.Expect(err).NotTo(HaveOccurred())
			data, err := json.Marshal(content)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(json.Unmarshal(data, &status)).To(Succeed())

			ready := meta.FindStatusCondition(status.Conditions, keboolav1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != live.GetGeneration() {
				return ""
			}
			return ready.Reason
		}
	}

	It("leaves every applied field to the GitOps tool's field manager", func() {
		projectID, token := newEmulatorProject()
		objects := manifests(token, projectID)
		project, webhook := objects[1], objects[2]

		for _, object := range objects {
			apply(object.DeepCopy())
		}
		// Deleting the webhook first lets the project's deletion finish.
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, project.DeepCopy()))).To(Succeed())
		})
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, webhook.DeepCopy()))).To(Succeed())
		})

		Eventually(readyReason(project)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
		Eventually(readyReason(webhook)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonSynced))

		for _, object := range objects {
			live := getLive(object)
			description := fmt.Sprintf("%s %s", live.GetKind(), live.GetName())

			applied := fieldsOf(live, gitOpsManager)
			Expect(applied).NotTo(BeEmpty(), "%s has no fields of the manager %s", description, gitOpsManager)

			for _, entry := range live.GetManagedFields() {
				if entry.Manager == gitOpsManager && entry.Operation == metav1.ManagedFieldsOperationApply {
					continue
				}
				owned := fieldSetOf(entry)
				Expect(owned).NotTo(HaveKey("f:spec"),
					"%s: the manager %q (%s, subresource %q) owns fields under spec", description, entry.Manager, entry.Operation, entry.Subresource)
				for _, path := range sharedLeafPaths(applied, owned, "") {
					Fail(fmt.Sprintf("%s: the manager %q (%s) also owns the applied field %s", description, entry.Manager, entry.Operation, path))
				}
			}
		}

		// The operator wrote status and finalizers, not the spec. A dry-run
		// apply of the unchanged manifests, which is how these tools detect
		// drift, must therefore change nothing. Status writes bump the
		// resourceVersion, so the check repeats until the operator is idle.
		for _, object := range objects {
			Eventually(func(g Gomega) {
				live := getLive(object)

				dryRun := object.DeepCopy()
				g.Expect(k8sClient.Apply(testCtx, client.ApplyConfigurationFromUnstructured(dryRun),
					client.FieldOwner(gitOpsManager), client.ForceOwnership, client.DryRunAll)).To(Succeed())

				g.Expect(dryRun.GetResourceVersion()).To(Equal(live.GetResourceVersion()),
					"a dry-run apply of %s %s changes its resourceVersion", live.GetKind(), live.GetName())
				g.Expect(dryRun.GetGeneration()).To(Equal(live.GetGeneration()),
					"a dry-run apply of %s %s changes its generation", live.GetKind(), live.GetName())
				for _, field := range []string{"spec", "data", "type"} {
					want, ok := live.Object[field]
					if !ok {
						g.Expect(dryRun.Object).NotTo(HaveKey(field),
							"a dry-run apply of %s %s adds %s", live.GetKind(), live.GetName(), field)
						continue
					}
					g.Expect(dryRun.Object[field]).To(Equal(want),
						"a dry-run apply of %s %s changes its %s", live.GetKind(), live.GetName(), field)
				}
				if wantSpec, ok := object.Object["spec"]; ok {
					g.Expect(live.Object["spec"]).To(Equal(wantSpec),
						"the live spec of %s %s differs from the manifest", live.GetKind(), live.GetName())
				}
			}).WithTimeout(timeout).WithPolling(interval).Should(Succeed())
		}
	})
})

// fieldSetOf decodes the fieldsV1 set of a managedFields entry, in which
// each key such as "f:spec" names a field and maps to the set of its
// children.
func fieldSetOf(entry metav1.ManagedFieldsEntry) map[string]any {
	GinkgoHelper()
	fields := map[string]any{}
	if entry.FieldsV1 != nil {
		Expect(json.Unmarshal(entry.FieldsV1.GetRawBytes(), &fields)).To(Succeed())
	}
	return fields
}

// fieldsOf returns the union of the field sets that manager owns in live.
func fieldsOf(live *unstructured.Unstructured, manager string) map[string]any {
	GinkgoHelper()
	union := map[string]any{}
	for _, entry := range live.GetManagedFields() {
		if entry.Manager == manager {
			for key, value := range fieldSetOf(entry) {
				union[key] = value
			}
		}
	}
	return union
}

// sharedLeafPaths returns the fields, below prefix, that both field sets
// own. A field set owns a field when the field's key maps to an empty set.
// The key "." marks that a manager owns a map or list item itself, which two
// managers may share without either changing the other's values, so it is not
// compared.
func sharedLeafPaths(a, b map[string]any, prefix string) []string {
	var shared []string
	for key, aChildren := range a {
		bChildren, ok := b[key]
		if key == "." || !ok {
			continue
		}
		path := prefix + "/" + key
		aSet, _ := aChildren.(map[string]any)
		bSet, _ := bChildren.(map[string]any)
		if len(aSet) == 0 && len(bSet) == 0 {
			shared = append(shared, path)
			continue
		}
		shared = append(shared, sharedLeafPaths(aSet, bSet, path)...)
	}
	return shared
}
