package controller

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// These specs check the CRD schema itself: bad input is rejected at
// admission with a message a user can act on, before any controller runs.
// Every object is created with a server-side dry run, so nothing reaches
// the controllers.
var _ = Describe("Schema validation", func() {
	var namespace string
	dryRun := &client.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	BeforeEach(func() {
		namespace = newNamespace()
	})

	validWebhook := func() *keboolav1.KeboolaWebhook {
		return &keboolav1.KeboolaWebhook{
			ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: namespace},
			Spec: keboolav1.KeboolaWebhookSpec{
				ProjectRef: keboolav1.ProjectReference{Name: "project"},
				URL:        "https://receiver.example.com/keboola",
				Events:     []string{"storage.jobFailed"},
			},
		}
	}

	validProject := func() *keboolav1.KeboolaProject {
		return &keboolav1.KeboolaProject{
			ObjectMeta: metav1.ObjectMeta{Name: "project", Namespace: namespace},
			Spec: keboolav1.KeboolaProjectSpec{
				StackURL:       "connection.keboola.com",
				TokenSecretRef: keboolav1.SecretKeyReference{Name: "token"},
			},
		}
	}

	It("accepts valid objects", func() {
		Expect(k8sClient.Create(testCtx, validWebhook(), dryRun)).To(Succeed())
		Expect(k8sClient.Create(testCtx, validProject(), dryRun)).To(Succeed())
	})

	DescribeTable("KeboolaWebhook rejects",
		func(mutate func(*keboolav1.KeboolaWebhook), wantMessage string) {
			webhook := validWebhook()
			mutate(webhook)
			err := k8sClient.Create(testCtx, webhook, dryRun)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("http URL of a public host", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "http://receiver.example.com/keboola"
		}, "url must use https; plain http is allowed only for localhost"),
		Entry("URL with user info", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://user:password@receiver.example.com/"
		}, "url must not contain user info"),
		Entry("relative URL", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "/keboola"
		}, "url must be an absolute http or https URL"),
		Entry("URL with a fragment", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://receiver.example.com/keboola#events"
		}, "url must not contain a fragment"),
		Entry("URL longer than 2048 bytes", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://receiver.example.com/" + strings.Repeat("a", 2048)
		}, "spec.url: Too long"),
		Entry("empty event list", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = []string{}
		}, "spec.events: Invalid value"),
		Entry("duplicated event", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = []string{"storage.jobFailed", "storage.jobFailed"}
		}, `spec.events[1]: Duplicate value: "storage.jobFailed"`),
		Entry("malformed event name", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = []string{"job failed"}
		}, "spec.events[0]: Invalid value"),
		Entry("more than 50 events", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = nil
			for i := range 51 {
				w.Spec.Events = append(w.Spec.Events, "storage.job"+strings.Repeat("x", i+1))
			}
		}, "spec.events: Too many"),
		Entry("name longer than 255 bytes", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To(strings.Repeat("n", 256))
		}, "spec.name: Too long"),
		Entry("name of 255 characters but more than 255 bytes", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To(strings.Repeat("é", 200))
		}, "name must be at most 255 bytes of UTF-8"),
		Entry("name with a control character", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To("line\nbreak")
		}, "name must not contain control characters"),
		Entry("unknown deletionPolicy", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.DeletionPolicy = "Retain"
		}, `spec.deletionPolicy: Unsupported value: "Retain"`),
		Entry("invalid secretName", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.SecretName = ptr.To("Not_A_Name")
		}, "spec.secretName: Invalid value"),
		Entry("reserved Secret label", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.SecretTemplate = &keboolav1.SecretTemplate{Labels: map[string]string{"keboola.dev/owner": "me"}}
		}, "labels under keboola.dev/ and app.kubernetes.io/managed-by are reserved"),
		Entry("missing projectRef name", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.ProjectRef.Name = ""
		}, "spec.projectRef.name"),
	)

	DescribeTable("KeboolaProject rejects",
		func(mutate func(*keboolav1.KeboolaProject), wantMessage string) {
			project := validProject()
			mutate(project)
			err := k8sClient.Create(testCtx, project, dryRun)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("http stack URL of a public host", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "http://connection.keboola.com"
		}, "stackURL must be a host name or an https URL"),
		Entry("stack URL with a path", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "https://connection.keboola.com/v2/storage"
		}, "stackURL must be a host name or an https URL"),
		Entry("stack URL with user info", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "https://user@connection.keboola.com"
		}, "stackURL must be a host name or an https URL"),
		Entry("project id below 1", func(p *keboolav1.KeboolaProject) {
			p.Spec.ExpectedProjectID = ptr.To[int64](0)
		}, "spec.expectedProjectID: Invalid value"),
		Entry("invalid Secret name", func(p *keboolav1.KeboolaProject) {
			p.Spec.TokenSecretRef.Name = "Bad Name"
		}, "spec.tokenSecretRef.name: Invalid value"),
	)

	DescribeTable("stackURL accepts",
		func(stackURL string) {
			project := validProject()
			project.Spec.StackURL = stackURL
			Expect(k8sClient.Create(testCtx, project, dryRun)).To(Succeed())
		},
		Entry("a bare host", "connection.keboola.com"),
		Entry("an https URL with a trailing slash", "https://connection.eu-central-1.keboola.com/"),
		Entry("upper case", "HTTPS://Connection.Keboola.com"),
		Entry("http on 127.0.0.1 with a port", "http://127.0.0.1:8765"),
		Entry("http on localhost", "http://localhost:8765/"),
	)

	It("rejects unknown fields under strict field validation", func() {
		webhook := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": keboolav1.GroupVersion.String(),
			"kind":       "KeboolaWebhook",
			"metadata":   map[string]any{"name": "hook", "namespace": namespace},
			"spec": map[string]any{
				"projectRef": map[string]any{"name": "project"},
				"url":        "https://receiver.example.com/",
				"events":     []any{"storage.jobFailed"},
				"secretname": "typo",
			},
		}}
		err := k8sClient.Create(testCtx, webhook, dryRun, client.FieldValidation("Strict"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`unknown field "spec.secretname"`))
	})

	It("rejects a change of secretName", func() {
		webhook := validWebhook()
		webhook.Spec.SecretName = ptr.To("first")
		Expect(k8sClient.Create(testCtx, webhook)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(testCtx, webhook) })

		// The webhook controller writes the object too, so read it again
		// until the update reaches admission instead of a conflict.
		var err error
		Eventually(func() bool {
			Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(webhook), webhook)).To(Succeed())
			webhook.Spec.SecretName = ptr.To("second")
			err = k8sClient.Update(testCtx, webhook, &client.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return apierrors.IsConflict(err)
		}).WithTimeout(10 * time.Second).Should(BeFalse())
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("secretName cannot be changed"))
	})
})
