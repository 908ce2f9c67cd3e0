package controller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// These specs feed hostile input to the API server and the controllers.
// Each input must end in an admission error or a condition that names the
// problem, never in a crash, a loop of requests or a leaked credential. The
// decoders of Storage API responses are fuzzed in internal/keboola
// (decode_test.go), and here whole servers respond with garbage.
var _ = Describe("Hostile input", func() {
	const (
		hostileWait = 20 * time.Second
		hostilePoll = 200 * time.Millisecond
	)
	dryRun := &client.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	var namespace string
	BeforeEach(func() {
		namespace = newNamespace()
	})

	hostileWebhook := func(mutate func(*keboolav1.KeboolaWebhook)) *keboolav1.KeboolaWebhook {
		wh := &keboolav1.KeboolaWebhook{
			ObjectMeta: metav1.ObjectMeta{Name: "hostile", Namespace: namespace},
			Spec: keboolav1.KeboolaWebhookSpec{
				ProjectRef: keboolav1.ProjectReference{Name: "project"},
				URL:        "https://127.0.0.1:9443/hooks",
				Events:     []string{"storage.jobFailed"},
			},
		}
		mutate(wh)
		return wh
	}

	DescribeTable("KeboolaWebhook rejected at admission",
		func(mutate func(*keboolav1.KeboolaWebhook), wantMessage string) {
			err := k8sClient.Create(testCtx, hostileWebhook(mutate), dryRun)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("10,000 events", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = nil
			for i := range 10_000 {
				w.Spec.Events = append(w.Spec.Events, fmt.Sprintf("storage.event%d", i))
			}
		}, "spec.events: Too many: 10000: must have at most 50 items"),
		Entry("an event name of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Events = []string{"storage." + strings.Repeat("x", 10_000)}
		}, "spec.events[0]: Too long"),
		Entry("a URL with user and password", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://alice:s3cret@receiver.example.com/hook"
		}, "url must not contain user info"),
		Entry("a URL with a user only", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://alice@receiver.example.com/hook"
		}, "url must not contain user info"),
		Entry("a URL with an empty user and a password", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://:s3cret@receiver.example.com/hook"
		}, "url must not contain user info"),
		Entry("a URL with percent-encoded credentials", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://alice%40corp:s%3Acret@receiver.example.com/hook"
		}, "url must not contain user info"),
		Entry("a URL with credentials and an upper-case scheme", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "HTTPS://ALICE:S3CRET@RECEIVER.EXAMPLE.COM/"
		}, "url must not contain user info"),
		Entry("a URL with a NUL byte", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://receiver.example.com/\x00hook"
		}, "url must be an absolute http or https URL with a host"),
		Entry("a URL with a line break", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://receiver.example.com/hook\r\nX-Injected: 1"
		}, "url must be an absolute http or https URL with a host"),
		Entry("a URL of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.URL = "https://receiver.example.com/" + strings.Repeat("a", 10_000)
		}, "spec.url: Too long"),
		Entry("a name with a NUL byte", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To("jobs\x00")
		}, "name must not contain control characters"),
		Entry("a name with DEL", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To("jobs\x7f")
		}, "name must not contain control characters"),
		Entry("a name with an escape sequence", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To("\x1b[31mred\x1b[0m")
		}, "name must not contain control characters"),
		Entry("a name of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To(strings.Repeat("n", 10_000))
		}, "spec.name: Too long"),
		Entry("a metadata.name of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Name = strings.Repeat("n", 10_000)
		}, "metadata.name: Invalid value"),
		Entry("a secretName of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.SecretName = ptr.To(strings.Repeat("s", 10_000))
		}, "spec.secretName: Too long"),
		Entry("a rotationToken of 10 KB", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.RotationToken = strings.Repeat("r", 10_000)
		}, "spec.rotationToken: Too long"),
	)

	hostileProject := func(mutate func(*keboolav1.KeboolaProject)) *keboolav1.KeboolaProject {
		project := &keboolav1.KeboolaProject{
			ObjectMeta: metav1.ObjectMeta{Name: "project", Namespace: namespace},
			Spec: keboolav1.KeboolaProjectSpec{
				StackURL:       "connection.keboola.com",
				TokenSecretRef: keboolav1.SecretKeyReference{Name: "token"},
			},
		}
		mutate(project)
		return project
	}

	DescribeTable("KeboolaProject rejected at admission",
		func(mutate func(*keboolav1.KeboolaProject), wantMessage string) {
			err := k8sClient.Create(testCtx, hostileProject(mutate), dryRun)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("a stack URL with a line break", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "https://connection.keboola.com\n"
		}, "stackURL must be a host name or an https URL"),
		Entry("a stack URL with a non-ASCII host", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "https://connéction.keboola.com"
		}, "stackURL must be a host name or an https URL"),
		Entry("a stack URL with user and password", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = "https://alice:s3cret@connection.keboola.com"
		}, "stackURL must be a host name or an https URL"),
		Entry("a stack URL of 10 KB", func(p *keboolav1.KeboolaProject) {
			p.Spec.StackURL = strings.Repeat("a", 10_000) + ".keboola.com"
		}, "spec.stackURL: Too long"),
	)

	It("rejects a token Secret larger than 1 MiB at admission", func() {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: namespace},
			Data:       map[string][]byte{"token": []byte(strings.Repeat("t", 1<<20+1))},
		}
		err := k8sClient.Create(testCtx, secret, dryRun)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("data: Too long: may not be more than 1048576 bytes"))
	})

	// readyCondition returns the Ready condition of the KeboolaProject key
	// for its current generation, or nil.
	readyCondition := func(g Gomega, key types.NamespacedName) *metav1.Condition {
		project := &keboolav1.KeboolaProject{}
		g.Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
		ready := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady)
		if ready == nil || ready.ObservedGeneration != project.Generation {
			return nil
		}
		return ready
	}

	// createHostileProject creates a token Secret with token and a
	// KeboolaProject on stackURL, and deletes the project after the spec.
	createHostileProject := func(stackURL string, token []byte) types.NamespacedName {
		Expect(k8sClient.Create(testCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: namespace},
			Data:       map[string][]byte{"token": token},
		})).To(Succeed())
		project := hostileProject(func(p *keboolav1.KeboolaProject) { p.Spec.StackURL = stackURL })
		Expect(k8sClient.Create(testCtx, project)).To(Succeed())
		key := client.ObjectKeyFromObject(project)
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, project))).To(Succeed())
		})
		return key
	}

	// htmlStack returns the URL of a loopback server that counts requests
	// and responds to each with status and an HTML page of about size bytes.
	// A proxy or a login page in front of a wrong host responds like that.
	htmlStack := func(status, size int) (string, *atomic.Int32) {
		var requests atomic.Int32
		page := "<!DOCTYPE html><html><head><title>Sign in</title></head><body>" +
			strings.Repeat("<p>Please sign in.</p>", max(1, size/20)) + "</body></html>"
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			requests.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(page))
		}))
		DeferCleanup(server.Close)
		return server.URL, &requests
	}

	DescribeTable("KeboolaProject reports a clear condition for a stack that answers HTML",
		func(status, size int, wantReason, wantMessage string) {
			stackURL, requests := htmlStack(status, size)
			token := "html-stack-token-" + fmt.Sprint(time.Now().UnixNano())
			key := createHostileProject(stackURL, []byte(token))

			Eventually(func(g Gomega) {
				ready := readyCondition(g, key)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(ready.Reason).To(Equal(wantReason))
				g.Expect(ready.Message).To(ContainSubstring(wantMessage))
				g.Expect(ready.Message).NotTo(ContainSubstring("<html"), "the condition quotes the page")
			}).WithTimeout(hostileWait).WithPolling(hostilePoll).Should(Succeed())
			Expect(requests.Load()).To(BeNumerically(">", 0))
			expectTokensHidden(namespace, []string{token})
		},
		Entry("with status 200", http.StatusOK, 1_000, keboolav1.ReasonAPIUnavailable, "HTTP 200 with an invalid response body"),
		Entry("with status 200 and 5 MB", http.StatusOK, 5<<20, keboolav1.ReasonAPIUnavailable, "HTTP 200 with an invalid response body"),
		Entry("with status 404", http.StatusNotFound, 1_000, keboolav1.ReasonInvalidSpec, "Check that spec.stackURL names a Keboola stack"),
		Entry("with status 502", http.StatusBadGateway, 1_000, keboolav1.ReasonAPIUnavailable, "HTTP 502"),
	)

	It("does not follow a stack's redirect, so the token stays with the stack", func() {
		var elsewhere atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			elsewhere.Add(1)
			w.WriteHeader(http.StatusOK)
		}))
		DeferCleanup(target.Close)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
		}))
		DeferCleanup(redirector.Close)

		token := "redirect-token-" + fmt.Sprint(time.Now().UnixNano())
		key := createHostileProject(redirector.URL, []byte(token))
		Eventually(func(g Gomega) {
			ready := readyCondition(g, key)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(keboolav1.ReasonAPIUnavailable))
			g.Expect(ready.Message).To(ContainSubstring("HTTP 302"))
		}).WithTimeout(hostileWait).WithPolling(hostilePoll).Should(Succeed())
		Expect(elsewhere.Load()).To(BeZero(), "the client followed the redirect to another server")
		expectTokensHidden(namespace, []string{token})
	})

	DescribeTable("KeboolaProject stalls on a token that cannot be one",
		func(token []byte, wantMessage string) {
			stackURL, requests := htmlStack(http.StatusOK, 100)
			key := createHostileProject(stackURL, token)
			Eventually(func(g Gomega) {
				ready := readyCondition(g, key)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Reason).To(Equal(keboolav1.ReasonUnauthorized))
				g.Expect(ready.Message).To(ContainSubstring(wantMessage))
				g.Expect(len(ready.Message)).To(BeNumerically("<", 1000))
			}).WithTimeout(hostileWait).WithPolling(hostilePoll).Should(Succeed())
			Consistently(requests.Load).WithTimeout(2*time.Second).Should(BeZero(), "the token was sent to the stack")
			expectTokensHidden(namespace, []string{string(token)})
		},
		Entry("a token of 1 MB", []byte(strings.Repeat("t", 1_000_000)), "more than the maximum of 4096"),
		Entry("a token with a line break inside", []byte("1234-abc\r\nX-Injected: 1"), "printable ASCII"),
		Entry("a token of non-ASCII characters", []byte("токен-🔑"), "printable ASCII"),
	)

	It("handles a non-ASCII name and a URL with a query credential without echoing them", func() {
		env := newWebhookEnv()
		// A check mark, an em dash, a zero-width space, a right-to-left
		// override and an emoji, then 210 bytes of euro signs: 249 bytes.
		name := "Zahlungen \u2713 \u2014 \u200b\u202egnirts\u202c \U0001F514 " + strings.Repeat("\u20ac", 70)
		queryValue := fmt.Sprintf("query-credential-%d", time.Now().UnixNano())
		env.newWebhook("unicode", func(w *keboolav1.KeboolaWebhook) {
			w.Spec.Name = ptr.To(name)
			w.Spec.URL = "https://127.0.0.1:9443/hooks/orders?token=" + queryValue
			w.Spec.RotationToken = "tab\there"
		})
		env.waitSynced("unicode")

		webhooks := env.emulatorWebhooks()
		Expect(webhooks).To(HaveLen(1))
		Expect(webhooks[0].Name).To(Equal(name))
		Expect(webhooks[0].URL).To(HaveSuffix(queryValue))

		var events eventsv1.EventList
		Expect(k8sClient.List(testCtx, &events, client.InNamespace(env.namespace))).To(Succeed())
		for _, e := range events.Items {
			Expect(e.Note).NotTo(ContainSubstring(queryValue), "Event %s quotes the URL", e.Reason)
		}
		Expect(logSink.String()).NotTo(ContainSubstring(queryValue), "the manager logged the URL")
	})
})
