package controller

// Stories of the Notification service backend under faults, awkward input
// and crashes. Each story uses a private emulator, so that its faults reach
// no other story.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// newPrivateStack starts an emulator that only the calling story uses.
func newPrivateStack(backends emulator.Backends) *emulator.Server {
	stack := emulator.New(emulator.Options{
		AllowHTTPLoopback: true,
		DeliveryBackoff:   10 * time.Millisecond,
		DeliveryTimeout:   5 * time.Second,
		Backends:          backends,
	})
	Expect(stack.Start()).To(Succeed())
	DeferCleanup(stack.Close)
	return stack
}

// secretReceiver is a receiver that reads the Secret of a KeboolaWebhook
// at every request, as a receiver with an instant kubelet would.
type secretReceiver struct {
	*httptest.Server
	accepted atomic.Int32
	rejected atomic.Int32
}

func newSecretReceiver(namespace, secretName string) *secretReceiver {
	r := &secretReceiver{}
	middleware := &webhook.Middleware{
		Secrets: secretFunc(func() [][]byte {
			s := &corev1.Secret{}
			if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: namespace, Name: secretName}, s); err != nil {
				return nil
			}
			return [][]byte{s.Data[keboolav1.SecretKeySigningSecret], s.Data[keboolav1.SecretKeyPreviousSigningSecret]}
		}),
		OnReject: func(*http.Request, webhook.Rejection) { r.rejected.Add(1) },
	}
	r.Server = httptest.NewServer(middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.accepted.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})))
	DeferCleanup(r.Close)
	return r
}

// invariantMonitor polls the Secret and the live subscriptions and
// webhooks of a project, and records every moment in which a live
// registration carries a secret that the Secret does not contain.
type invariantMonitor struct {
	mu         sync.Mutex
	violations []string
	count      int
	first      time.Time
	last       time.Time
	stop       chan struct{}
	done       chan struct{}
}

func startInvariantMonitor(env *subscriptionEnv, secretName string, webhooks *emulator.Server) *invariantMonitor {
	m := &invariantMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	readSecret := func() (string, string, bool) {
		s := &corev1.Secret{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: secretName}, s); err != nil {
			return "", "", false
		}
		return string(s.Data[keboolav1.SecretKeySigningSecret]), string(s.Data[keboolav1.SecretKeyPreviousSigningSecret]), true
	}
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			cur1, prev1, ok1 := readSecret()
			subs := env.stack.Subscriptions(env.projectID)
			var hooks []emulator.StoredWebhook
			if webhooks != nil {
				hooks = webhooks.Webhooks(env.projectID)
			}
			cur2, prev2, ok2 := readSecret()
			if !ok1 || !ok2 || cur1 != cur2 || prev1 != prev2 {
				continue
			}
			accepted := func(v string) bool { return v != "" && (v == cur1 || v == prev1) }
			for _, s := range subs {
				v, ok := urlSecret(s.Recipient.URL)
				if !ok || !accepted(v) {
					m.record(fmt.Sprintf("%s subscription %s (%s) carries secret %s; Secret has current %s previous %s",
						time.Now().Format("15:04:05.000"), s.ID, s.Event, fp(v), fp(cur1), fp(prev1)))
				}
			}
			for _, h := range hooks {
				if !accepted(h.Secret) {
					m.record(fmt.Sprintf("%s webhook %s signs with %s; Secret has current %s previous %s",
						time.Now().Format("15:04:05.000"), h.ID, fp(h.Secret), fp(cur1), fp(prev1)))
				}
			}
		}
	}()
	return m
}

func fp(v string) string {
	if v == "" {
		return "<none>"
	}
	return fingerprint([]byte(v))[7:15]
}

func (m *invariantMonitor) record(v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	if m.first.IsZero() {
		m.first = time.Now()
	}
	m.last = time.Now()
	if len(m.violations) < 5 {
		m.violations = append(m.violations, v)
	}
}

func (m *invariantMonitor) finish() []string {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count > 0 {
		GinkgoWriter.Printf("monitor: %d violating observations from %s to %s (%s)\n", m.count,
			m.first.Format("15:04:05.000"), m.last.Format("15:04:05.000"), m.last.Sub(m.first))
	}
	return m.violations
}

// setProjectAPI sets spec.webhookAPI of the story's KeboolaProject and
// waits until its status shows it.
func (env *subscriptionEnv) setProjectAPI(api keboolav1.WebhookAPI) {
	Eventually(func() error {
		p := &keboolav1.KeboolaProject{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, p); err != nil {
			return err
		}
		p.Spec.WebhookAPI = api
		return k8sClient.Update(testCtx, p)
	}).WithTimeout(webhookWait).Should(Succeed())
	Eventually(func(g Gomega) {
		p := &keboolav1.KeboolaProject{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, p)).To(Succeed())
		g.Expect(p.Status.WebhookAPI).To(Equal(api))
		g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
	}).WithTimeout(webhookWait).WithPolling(50 * time.Millisecond).Should(Succeed())
}

func readyMessage(wh *keboolav1.KeboolaWebhook) string {
	c := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
	if c == nil {
		return "<no Ready>"
	}
	return c.Reason + ": " + c.Message
}

// projectReasons polls the KeboolaProject of env for d and returns every
// distinct Ready reason and message it showed, and the last project.
func (env *subscriptionEnv) projectReasons(d time.Duration, until func(*keboolav1.KeboolaProject) bool) ([]string, *keboolav1.KeboolaProject) {
	var seen []string
	var last *keboolav1.KeboolaProject
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p := &keboolav1.KeboolaProject{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, p); err == nil {
			last = p
			if c := meta.FindStatusCondition(p.Status.Conditions, keboolav1.ConditionReady); c != nil {
				entry := c.Reason + " [" + string(p.Status.WebhookAPI) + "]: " + c.Message
				if len(seen) == 0 || seen[len(seen)-1] != entry {
					seen = append(seen, entry)
				}
			}
			if until != nil && until(p) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return seen, last
}

// webhookReasons polls a KeboolaWebhook for d and returns its distinct
// Ready reasons and messages.
func (env *subscriptionEnv) webhookReasons(name string, d time.Duration, until func(*keboolav1.KeboolaWebhook) bool) []string {
	var seen []string
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		wh := &keboolav1.KeboolaWebhook{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh); err == nil {
			entry := readyMessage(wh)
			if len(seen) == 0 || seen[len(seen)-1] != entry {
				seen = append(seen, entry)
			}
			if until != nil && until(wh) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	return seen
}

var _ = Describe("KeboolaWebhook on the Notification service under hostile conditions", func() {
	It("keeps the secret in the query of a URL that ends with &", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		receiver := newSecretReceiver(env.namespace, "jobs-webhook-secret")
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.URL = receiver.URL + "/hooks&"
		})
		wh := env.waitSubscriptionsSynced("jobs")
		GinkgoWriter.Println("Ready:", readyMessage(wh))
		for _, s := range stack.Subscriptions(env.projectID) {
			_, ok := urlSecret(s.Recipient.URL)
			Expect(ok).To(BeTrue(), "the registered URL %q has no kbc_secret query parameter", strings.Split(s.Recipient.URL, "kbc_secret=")[0]+"kbc_secret=...")
		}
		deliveries := stack.FireNotification(context.Background(), env.projectID, "job-failed", nil)
		Expect(deliveries).NotTo(BeEmpty())
		Expect(deliveries[len(deliveries)-1].Status).To(BeNumerically("<", 300), "the receiver rejected the delivery")
	})

	It("rejects a URL whose query already carries the secret after a semicolon", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.URL = "https://127.0.0.1:9443/hooks?a=1;kbc_secret=mine"
		})
		wh := env.waitReason("jobs", keboolav1.ReasonInvalidSpec, webhookWait)
		Expect(readyMessage(wh)).To(ContainSubstring(webhook.SecretQueryParameter))
		Expect(stack.Subscriptions(env.projectID)).To(BeEmpty())
	})

	It("deletes an unrecorded subscription after a move to the webhooks endpoint", func() {
		stack := newPrivateStack(emulator.BackendsBoth)
		env := newSubscriptionEnv(stack, keboolav1.WebhookAPINotificationSubscriptions)
		env.waitProject(keboolav1.ReasonVerified)
		var listFault atomic.Int32
		interruptCreateOnce(env.namespace, createStepSubscriptionCreated, func(*keboolav1.KeboolaWebhook) error {
			// The Notification service fails after the create, so the
			// next passes cannot adopt the subscription.
			listFault.Store(int32(stack.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointSubscriptions, Status: 500})))
			return fmt.Errorf("injected crash")
		})
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		Eventually(func() int32 { return listFault.Load() }).WithTimeout(webhookWait).ShouldNot(BeZero())
		Expect(stack.Subscriptions(env.projectID)).To(HaveLen(1))

		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"storage.jobFailed"} })
		env.setProjectAPI(keboolav1.WebhookAPIStorageWebhooks)
		stack.RemoveFault(int(listFault.Load()))
		wh := env.waitSynced("jobs")
		GinkgoWriter.Println("Ready:", readyMessage(wh), "status.subscriptions:", wh.Status.Subscriptions)
		time.Sleep(7 * time.Second)
		Expect(stack.Subscriptions(env.projectID)).To(BeEmpty(), "a subscription leaked after the switch")

		Expect(k8sClient.Delete(testCtx, env.get("jobs"))).To(Succeed())
		env.expectGone("jobs", webhookWait)
		Expect(stack.Subscriptions(env.projectID)).To(BeEmpty(), "a subscription leaked after the KeboolaWebhook was deleted")
	})

	It("deletes the webhook of an interrupted create after a move to the Notification service", func() {
		stack := newPrivateStack(emulator.BackendsBoth)
		env := newSubscriptionEnv(stack, keboolav1.WebhookAPIStorageWebhooks)
		env.waitProject(keboolav1.ReasonVerified)
		var listFault atomic.Int32
		interruptCreateOnce(env.namespace, createStepWebhookCreated, func(*keboolav1.KeboolaWebhook) error {
			listFault.Store(int32(stack.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 500})))
			return fmt.Errorf("injected crash")
		})
		env.newWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"storage.jobFailed"} })
		Eventually(func() int32 { return listFault.Load() }).WithTimeout(webhookWait).ShouldNot(BeZero())
		Expect(stack.Webhooks(env.projectID)).To(HaveLen(1))
		GinkgoWriter.Println("pendingCreate:", env.get("jobs").Status.PendingCreate != nil)
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		env.setProjectAPI(keboolav1.WebhookAPINotificationSubscriptions)
		stack.RemoveFault(int(listFault.Load()))
		Eventually(func() string { return readyReason(env.get("jobs").Status.Conditions) }).WithTimeout(webhookWait).Should(Equal(keboolav1.ReasonSynced))
		time.Sleep(7 * time.Second)
		GinkgoWriter.Println("Ready:", readyMessage(env.get("jobs")))
		for _, h := range stack.Webhooks(env.projectID) {
			GinkgoWriter.Println("  live webhook", h.ID, h.Name, h.URL)
		}
		GinkgoWriter.Println("webhooks left:", len(stack.Webhooks(env.projectID)), "status:", env.get("jobs").Status.PendingCreate, env.get("jobs").Status.WebhookID)
		Expect(stack.Webhooks(env.projectID)).To(BeEmpty(), "a webhook leaked after the switch")
	})

	It("deletes the webhooks of an interrupted rotation with the object after a move to the Notification service", func() {
		stack := newPrivateStack(emulator.BackendsBoth)
		env := newSubscriptionEnv(stack, keboolav1.WebhookAPIStorageWebhooks)
		env.waitProject(keboolav1.ReasonVerified)
		env.newWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"storage.jobFailed"} })
		env.waitSynced("jobs")
		var listFault atomic.Int32
		interruptCreateOnce(env.namespace, createStepWebhookCreated, func(*keboolav1.KeboolaWebhook) error {
			listFault.Store(int32(stack.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 500})))
			return fmt.Errorf("injected crash")
		})
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "r1" })
		Eventually(func() int32 { return listFault.Load() }).WithTimeout(webhookWait).ShouldNot(BeZero())
		Expect(stack.Webhooks(env.projectID)).To(HaveLen(2))
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		env.setProjectAPI(keboolav1.WebhookAPINotificationSubscriptions)
		stack.RemoveFault(int(listFault.Load()))
		env.waitSubscriptionsSynced("jobs")
		time.Sleep(6 * time.Second)
		wh := env.get("jobs")
		GinkgoWriter.Println("Ready:", readyMessage(wh), "pendingCreate:", wh.Status.PendingCreate)
		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())
		env.expectGone("jobs", webhookWait)
		for _, h := range stack.Webhooks(env.projectID) {
			GinkgoWriter.Println("  left webhook", h.ID, h.Name)
		}
		Expect(stack.Webhooks(env.projectID)).To(BeEmpty(), "a webhook leaked after the deletion")
	})

	It("keeps every live subscription verifiable when a rotation replaces an overlapping one", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		monitor := startInvariantMonitor(env, "jobs-webhook-secret", nil)

		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "one" })
		Eventually(func(g Gomega) {
			wh := env.get("jobs")
			g.Expect(wh.Status.Rotation).NotTo(BeNil())
			g.Expect(wh.Status.Rotation.Phase).To(Equal(keboolav1.RotationPhaseOverlapping))
		}).WithTimeout(webhookWait).WithPolling(50 * time.Millisecond).Should(Succeed())
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "two" })
		Eventually(func(g Gomega) {
			g.Expect(env.get("jobs").Status.RotationToken).To(Equal("two"))
		}).WithTimeout(webhookWait).WithPolling(50 * time.Millisecond).Should(Succeed())
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		violations := monitor.finish()
		for _, v := range violations {
			GinkgoWriter.Println("  ", v)
		}
		Expect(violations).To(BeEmpty(), "a live subscription carried a secret that the Secret lacked")
	})

	It("keeps the old subscription for the grace period when the Secret is deleted", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		old := env.subscriptionIDs()["job-failed"]

		deleted := time.Now()
		Expect(k8sClient.Delete(testCtx, env.secret("jobs-webhook-secret"))).To(Succeed())
		var newSeen, oldGone time.Time
		Eventually(func(g Gomega) {
			ids := map[string]bool{}
			for _, s := range stack.Subscriptions(env.projectID) {
				ids[s.ID] = true
				if s.ID != old && newSeen.IsZero() {
					newSeen = time.Now()
				}
			}
			if !ids[old] && oldGone.IsZero() {
				oldGone = time.Now()
			}
			g.Expect(oldGone.IsZero()).To(BeFalse())
			g.Expect(newSeen.IsZero()).To(BeFalse())
		}).WithTimeout(webhookWait).WithPolling(20 * time.Millisecond).Should(Succeed())
		wh := env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		GinkgoWriter.Println("new subscription after", newSeen.Sub(deleted), "old deleted after", oldGone.Sub(deleted),
			"rotation:", wh.Status.Rotation)
		env.expectEvent("jobs", eventReasonSecretReplaced)
		Expect(oldGone.Sub(newSeen)).To(BeNumerically(">=", testOptions.RotationGracePeriod),
			"the old subscription delivers until the grace period ends")
	})

	It("keeps the secret out of Events and logs when error bodies repeat the receiver URL", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		secret := env.expectConsistentSubscriptions("jobs")
		target := "https://127.0.0.1:9443/hooks/orders?kbc_secret=" + secret
		body := fmt.Sprintf(`{"error":"Subscription with recipient %s is locked","code":500,"status":"error"}`, target)
		fault := stack.InjectFault(emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: 500, Body: body})

		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"job-failed"} })
		Eventually(func() string { return readyReason(env.get("jobs").Status.Conditions) }).
			WithTimeout(webhookWait).Should(Equal(keboolav1.ReasonAPIUnavailable))
		GinkgoWriter.Println("Ready:", strings.ReplaceAll(readyMessage(env.get("jobs")), secret, "<SECRET>"))
		time.Sleep(2 * time.Second)
		stack.RemoveFault(fault)
		env.waitSubscriptionsSynced("jobs")

		statusJSON, _ := json.Marshal(env.get("jobs").Status)
		var events eventsv1.EventList
		Expect(k8sClient.List(testCtx, &events, client.InNamespace(env.namespace))).To(Succeed())
		eventJSON, _ := json.Marshal(events.Items)
		inLog := strings.Contains(logSink.String(), secret)
		GinkgoWriter.Println("secret in status:", strings.Contains(string(statusJSON), secret),
			"in Events:", strings.Contains(string(eventJSON), secret), "in log:", inLog)
		Expect(strings.Contains(string(eventJSON), secret)).To(BeFalse(), "the minted secret appears in an Event")
		Expect(inLog).To(BeFalse(), "the minted secret appears in the manager log")
	})
})

var _ = Describe("Webhook API detection under faults", func() {
	type detectionCase struct {
		name     string
		backends emulator.Backends
		fault    emulator.Fault
		want     keboolav1.WebhookAPI
	}
	cases := []detectionCase{
		{"index 404 once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: 404, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"index 400 once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: 400, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"index garbled {} once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Body: `{}`, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"index HTML once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Body: `<html><body>proxy</body></html>`, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"index 500 HTML x3", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: 502, Body: `<html>bad gateway</html>`, Times: 3}, keboolav1.WebhookAPINotificationSubscriptions},
		{"index other host once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex,
			Body: `{"services":[{"id":"notification","url":"https://notification.evil.example.com"}]}`, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"probe 400 once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 400, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"probe 429 retry-after once", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 429, RetryAfter: 2 * time.Second, Times: 1}, keboolav1.WebhookAPINotificationSubscriptions},
		{"probe drop x3", emulator.BackendsNotification, emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Drop: true, Times: 3}, keboolav1.WebhookAPINotificationSubscriptions},
	}
	for _, c := range cases {
		It("recovers from "+c.name, func() {
			stack := newPrivateStack(c.backends)
			stack.InjectFault(c.fault)
			env := newSubscriptionEnv(stack, "")
			seen, p := env.projectReasons(20*time.Second, func(p *keboolav1.KeboolaProject) bool {
				return isReady(p.Status.Conditions, p.Generation)
			})
			for _, s := range seen {
				GinkgoWriter.Println("  ", s)
			}
			Expect(isReady(p.Status.Conditions, p.Generation)).To(BeTrue(), "the project did not recover from a one-off fault")
			Expect(p.Status.WebhookAPI).To(Equal(c.want))
		})
	}
})

var _ = Describe("Webhook API detection after one-off faults", func() {
	It("stays Ready when a new token meets one 404 of the index", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")

		// A second token of the same project replaces the first.
		second := env.token + "-second"
		stack.AddToken(second, emulator.Token{ID: fmt.Sprint(env.projectID*10 + 1), Description: "second", ProjectID: env.projectID, CanManageWebhooks: true})
		subscriptionCredentials.add(second)
		stack.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Status: 404, Times: 1})
		s := &corev1.Secret{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: "keboola-token"}, s)).To(Succeed())
		s.Data["token"] = []byte(second)
		Expect(k8sClient.Update(testCtx, s)).To(Succeed())

		seen, p := env.projectReasons(15*time.Second, nil)
		for _, line := range seen {
			GinkgoWriter.Println("  project:", line)
		}
		// A subscription that vanishes meanwhile must be recreated.
		ids := env.subscriptionIDs()
		Expect(stack.DeleteSubscriptionOutOfBand(env.projectID, ids["job-failed"])).To(BeTrue())
		time.Sleep(7 * time.Second)
		wh := env.get("jobs")
		GinkgoWriter.Println("  webhook:", readyMessage(wh), "live:", len(stack.Subscriptions(env.projectID)))
		Expect(isReady(p.Status.Conditions, p.Generation)).To(BeTrue(), "one 404 of the index stalled the project")
		Expect(stack.Subscriptions(env.projectID)).To(HaveLen(3), "the vanished subscription was not recreated")
	})

	It("does not take a 400 of the webhooks endpoint for its presence", func() {
		stack := newPrivateStack(emulator.BackendsNotification)
		stack.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 400, Times: 1})
		env := newSubscriptionEnv(stack, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		time.Sleep(10 * time.Second)
		p := &keboolav1.KeboolaProject{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, p)).To(Succeed())
		wh := env.get("jobs")
		GinkgoWriter.Println("  project API:", p.Status.WebhookAPI, "message:", p.Status.WebhookAPIMessage)
		GinkgoWriter.Println("  webhook:", readyMessage(wh))
		Expect(p.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPINotificationSubscriptions))
	})
})

var _ = Describe("KeboolaWebhook on the Notification service under faults", func() {
	type faultCase struct {
		name  string
		fault emulator.Fault
	}
	faults := []faultCase{
		{"POST 500 x3", emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, Status: 500, Times: 3}},
		{"POST 201 garbled x2", emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, Status: 201, Body: `{"id":`, Times: 2}},
		{"POST lose response x3", emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, LoseResponse: true, Times: 3}},
		{"GET list garbled x2", emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointSubscriptions, Body: `[{"id":"1","event":"job-failed","recipient":{"channel":"webhook","url":5}}]`, Times: 2}},
		{"GET list empty x2", emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointSubscriptions, Body: `[]`, Times: 2}},
		{"DELETE 500 x3", emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: 500, Times: 3}},
		{"DELETE 403 x1", emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: 403, Times: 1}},
		{"DELETE 400 x1", emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: 400, Times: 1}},
	}
	for _, c := range faults {
		It("converges through "+c.name, func() {
			stack := newPrivateStack(emulator.BackendsNotification)
			env := newSubscriptionEnv(stack, "")
			env.waitProject(keboolav1.ReasonVerified)
			if c.fault.Method == http.MethodDelete {
				env.newSubscriptionWebhook("jobs")
				env.waitSubscriptionsSynced("jobs")
				stack.InjectFault(c.fault)
				env.update("jobs", func(wh *keboolav1.KeboolaWebhook) {
					wh.Spec.Events = []string{"job-failed", "phase-job-failed"}
				})
			} else {
				stack.InjectFault(c.fault)
				env.newSubscriptionWebhook("jobs")
			}
			seen := env.webhookReasons("jobs", 25*time.Second, func(wh *keboolav1.KeboolaWebhook) bool {
				return isReady(wh.Status.Conditions, wh.Generation) && len(wh.Status.RetiredSubscriptionIDs) == 0 && wh.Status.ObservedGeneration == wh.Generation
			})
			for _, s := range seen {
				GinkgoWriter.Println("  ", s)
			}
			env.waitSubscriptionsSynced("jobs")
			env.expectConsistentSubscriptions("jobs")
			time.Sleep(3500 * time.Millisecond)
			env.expectConsistentSubscriptions("jobs")
			Expect(k8sClient.Delete(testCtx, env.get("jobs"))).To(Succeed())
			env.expectGone("jobs", webhookWait)
			Expect(stack.Subscriptions(env.projectID)).To(BeEmpty())
		})
	}
})
