package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// subscriptionEnv is a webhookEnv whose project lives on a stack, by
// default notificationEmu, whose webhook API is the Notification service.
type subscriptionEnv struct {
	*webhookEnv
	stack *emulator.Server
}

// newSubscriptionEnv creates a namespace, a project with a token on stack,
// and a KeboolaProject with spec.webhookAPI set to api (empty detects),
// and waits until the project is Ready.
func newSubscriptionEnv(stack *emulator.Server, api keboolav1.WebhookAPI) *subscriptionEnv {
	env := &subscriptionEnv{webhookEnv: &webhookEnv{namespace: newNamespace(), project: "main"}, stack: stack}
	env.projectID = 1000 + projectIDs.Add(1)
	env.token = fmt.Sprintf("%d-notification-token-%d", env.projectID, time.Now().UnixNano())
	stack.AddProject(emulator.Project{ID: env.projectID, Name: fmt.Sprintf("Project %d", env.projectID), Region: "eu-central-1"})
	stack.AddToken(env.token, emulator.Token{
		ID:                fmt.Sprint(env.projectID * 10),
		Description:       "operator test token",
		ProjectID:         env.projectID,
		CanManageWebhooks: true,
	})
	subscriptionCredentials.add(env.token)
	DeferCleanup(env.cleanup)

	Expect(k8sClient.Create(testCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "keboola-token", Namespace: env.namespace},
		Data:       map[string][]byte{"token": []byte(env.token)},
	})).To(Succeed())
	Expect(k8sClient.Create(testCtx, &keboolav1.KeboolaProject{
		ObjectMeta: metav1.ObjectMeta{Name: env.project, Namespace: env.namespace},
		Spec: keboolav1.KeboolaProjectSpec{
			StackURL:       stack.URL(),
			TokenSecretRef: keboolav1.SecretKeyReference{Name: "keboola-token"},
			WebhookAPI:     api,
		},
	})).To(Succeed())
	return env
}

// waitProject waits until the KeboolaProject has a Ready condition with
// reason, and returns it.
func (env *subscriptionEnv) waitProject(reason string) *keboolav1.KeboolaProject {
	project := &keboolav1.KeboolaProject{}
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, project)).To(Succeed())
		ready := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(reason), "Ready message: %s", ready.Message)
		g.Expect(ready.ObservedGeneration).To(Equal(project.Generation))
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	return project
}

// newSubscriptionWebhook creates a KeboolaWebhook for three Notification
// service events, changed by mutate.
func (env *subscriptionEnv) newSubscriptionWebhook(name string, mutate ...func(*keboolav1.KeboolaWebhook)) {
	env.newWebhook(name, append([]func(*keboolav1.KeboolaWebhook){func(wh *keboolav1.KeboolaWebhook) {
		wh.Spec.Events = []string{"job-failed", "job-succeeded", "job-processing-long"}
	}}, mutate...)...)
}

// waitSubscriptionsSynced waits until the KeboolaWebhook is Ready with no
// replaced subscription left, and returns it.
func (env *subscriptionEnv) waitSubscriptionsSynced(name string) *keboolav1.KeboolaWebhook {
	wh := env.waitSynced(name)
	Eventually(func(g Gomega) {
		wh = env.get(name)
		g.Expect(wh.Status.RetiredSubscriptionIDs).To(BeEmpty())
		g.Expect(wh.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPINotificationSubscriptions))
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	return wh
}

// expectConsistentSubscriptions checks that the project has exactly one
// subscription per event of the KeboolaWebhook, that the status records
// them, and that each carries the secret of the Secret in its URL. It
// returns the secret.
func (env *subscriptionEnv) expectConsistentSubscriptions(name string) string {
	var secret string
	Eventually(func(g Gomega) {
		wh := env.get(name)
		s := &corev1.Secret{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: wh.Status.SecretName}, s)).To(Succeed())
		secret = string(s.Data[keboolav1.SecretKeySigningSecret])
		g.Expect(secret).To(MatchRegexp("^[0-9a-f]{64}$"))
		g.Expect(fingerprint([]byte(secret))).To(Equal(wh.Status.SecretFingerprint))

		live := env.stack.Subscriptions(env.projectID)
		g.Expect(live).To(HaveLen(len(wh.Spec.Events)))
		g.Expect(wh.Status.Subscriptions).To(HaveLen(len(wh.Spec.Events)))
		for _, sub := range live {
			g.Expect(wh.Spec.Events).To(ContainElement(sub.Event))
			g.Expect(wh.Status.Subscriptions).To(ContainElement(keboolav1.SubscriptionStatus{Event: sub.Event, ID: sub.ID}))
			g.Expect(sub.Recipient.URL).To(Equal(wh.Spec.URL + "?" + webhook.SecretQueryParameter + "=" + secret))
		}
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	subscriptionCredentials.add(secret)
	return secret
}

// subscriptionIDs returns the ids of the project's subscriptions by event.
func (env *subscriptionEnv) subscriptionIDs() map[string]string {
	ids := map[string]string{}
	for _, s := range env.stack.Subscriptions(env.projectID) {
		ids[s.Event] = s.ID
	}
	return ids
}

// subscriptionRequests returns the create and delete requests of the
// project's subscriptions, in the order the emulator received them.
func (env *subscriptionEnv) subscriptionRequests() []emulator.Request {
	var requests []emulator.Request
	for _, r := range env.stack.Requests() {
		if r.TokenID == fmt.Sprint(env.projectID*10) && (r.Method == http.MethodPost || r.Method == http.MethodDelete) &&
			strings.HasPrefix(r.Endpoint, emulator.EndpointSubscriptions) {
			requests = append(requests, r)
		}
	}
	return requests
}

// countRequests returns how many requests with method the project sent to
// the subscription endpoint.
func (env *subscriptionEnv) countRequests(method string) int {
	n := 0
	for _, r := range env.subscriptionRequests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

// subscriptionCredentials collects the tokens and minted secrets of the
// Notification service stories, for the last story's leak check.
var subscriptionCredentials = credentialSet{}

type credentialSet struct {
	mu     sync.Mutex
	values []string
}

func (c *credentialSet) add(value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if value != "" && !slices.Contains(c.values, value) {
		c.values = append(c.values, value)
	}
}

func (c *credentialSet) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.values)
}

var _ = Describe("KeboolaWebhook on the Notification service", Ordered, func() {
	It("detects the webhook API of each stack and honours spec.webhookAPI", func() {
		storage := newSubscriptionEnv(emu, "")
		project := storage.waitProject(keboolav1.ReasonVerified)
		Expect(project.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPIStorageWebhooks))
		Expect(project.Status.WebhookAPIMessage).NotTo(BeEmpty())

		notification := newSubscriptionEnv(notificationEmu, "")
		project = notification.waitProject(keboolav1.ReasonVerified)
		Expect(project.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPINotificationSubscriptions))
		Expect(project.Status.NotificationServiceURL).To(Equal(notificationEmu.URL() + emulator.NotificationPath))
		Expect(project.Status.WebhookAPIMessage).NotTo(BeEmpty())

		chosen := newSubscriptionEnv(emu, keboolav1.WebhookAPINotificationSubscriptions)
		project = chosen.waitProject(keboolav1.ReasonVerified)
		Expect(project.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPINotificationSubscriptions))
		Expect(project.Status.NotificationServiceURL).To(Equal(emu.URL() + emulator.NotificationPath))

		webhooksOnly := emulator.New(emulator.Options{AllowHTTPLoopback: true, Backends: emulator.BackendsWebhooks})
		Expect(webhooksOnly.Start()).To(Succeed())
		DeferCleanup(webhooksOnly.Close)
		missing := newSubscriptionEnv(webhooksOnly, keboolav1.WebhookAPINotificationSubscriptions)
		missing.waitProject(keboolav1.ReasonNoWebhookAPI)
	})

	It("creates one subscription per event with the minted secret in the URL", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Filters = []keboolav1.EventFilter{{Field: "job.component.id", Value: "keboola.orchestrator"}}
		})
		wh := env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		Expect(wh.Status.WebhookID).To(BeEmpty())
		for _, sub := range env.stack.Subscriptions(env.projectID) {
			Expect(sub.Filters).To(HaveLen(1))
			Expect(sub.Filters[0].Field).To(Equal("job.component.id"))
			Expect(sub.Filters[0].Value).To(Equal("keboola.orchestrator"))
		}
		Expect(env.countRequests(http.MethodPost)).To(Equal(3))
		env.expectEvent("jobs", eventReasonCreated)
	})

	It("changes events make-before-break", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		before := env.subscriptionIDs()
		requestsBefore := len(env.subscriptionRequests())

		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = []string{"job-failed", "job-succeeded", "phase-job-failed"}
		})
		Eventually(func(g Gomega) {
			g.Expect(env.get("jobs").Status.ObservedGeneration).To(Equal(env.get("jobs").Generation))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")

		after := env.subscriptionIDs()
		Expect(after["job-failed"]).To(Equal(before["job-failed"]))
		Expect(after["job-succeeded"]).To(Equal(before["job-succeeded"]))
		Expect(after).NotTo(HaveKey("job-processing-long"))
		Expect(after).To(HaveKey("phase-job-failed"))

		changes := env.subscriptionRequests()[requestsBefore:]
		Expect(changes).To(HaveLen(2))
		Expect(changes[0].Method).To(Equal(http.MethodPost), "the new subscription is created before the old one is deleted")
		Expect(changes[1].Method).To(Equal(http.MethodDelete))
		env.expectEvent("jobs", eventReasonUpdated)

		// A new URL replaces every subscription, again creating first.
		requestsBefore = len(env.subscriptionRequests())
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.URL = "https://127.0.0.1:9443/hooks/jobs" })
		Eventually(func(g Gomega) {
			g.Expect(env.stack.Subscriptions(env.projectID)).To(HaveLen(3))
			for _, s := range env.stack.Subscriptions(env.projectID) {
				g.Expect(s.Recipient.URL).To(HavePrefix("https://127.0.0.1:9443/hooks/jobs?"))
			}
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSubscriptionsSynced("jobs")
		changes = env.subscriptionRequests()[requestsBefore:]
		Expect(changes).To(HaveLen(6))
		for i, r := range changes {
			want := http.MethodPost
			if i >= 3 {
				want = http.MethodDelete
			}
			Expect(r.Method).To(Equal(want), "request %d", i)
		}
	})

	It("adopts a subscription whose id was not recorded, without a duplicate", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		reached := interruptCreateOnce(env.namespace, createStepSubscriptionCreated, nil)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		Expect(reached.Load()).To(BeNumerically(">=", 1))
		env.expectConsistentSubscriptions("jobs")
		Expect(env.countRequests(http.MethodPost)).To(Equal(3))
		Expect(env.countRequests(http.MethodDelete)).To(Equal(0))
	})

	It("adopts a subscription whose create response was lost", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		// The stories of this container run one after another, and the
		// projects of earlier ones are idle, so the fault hits this one.
		env.stack.InjectFault(emulator.Fault{
			Method:       http.MethodPost,
			Endpoint:     emulator.EndpointSubscriptions,
			LoseResponse: true,
			Times:        1,
		})
		env.newSubscriptionWebhook("lost-response")
		env.waitSubscriptionsSynced("lost-response")
		env.expectConsistentSubscriptions("lost-response")
		Expect(env.countRequests(http.MethodPost)).To(Equal(3))
	})

	It("recreates a subscription that vanished or expired", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		ids := env.subscriptionIDs()

		Expect(env.stack.DeleteSubscriptionOutOfBand(env.projectID, ids["job-failed"])).To(BeTrue())
		past := time.Now().Add(-time.Minute)
		_, ok := env.stack.SetSubscriptionExpiry(env.projectID, ids["job-succeeded"], &past)
		Expect(ok).To(BeTrue())

		Eventually(func(g Gomega) {
			now := env.subscriptionIDs()
			g.Expect(now).To(HaveLen(3))
			g.Expect(now["job-failed"]).NotTo(Equal(ids["job-failed"]))
			g.Expect(now["job-succeeded"]).NotTo(Equal(ids["job-succeeded"]))
			g.Expect(now["job-processing-long"]).To(Equal(ids["job-processing-long"]))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSubscriptionsSynced("jobs")
		env.expectConsistentSubscriptions("jobs")
		env.expectEvent("jobs", eventReasonRecreated)
	})

	It("delivers events that the receiver package verifies by the URL secret", func() {
		var mu sync.Mutex
		var accepted []string
		var secret []byte
		receiver := httptest.NewServer((&webhook.Middleware{Secrets: secretFunc(func() [][]byte {
			mu.Lock()
			defer mu.Unlock()
			return [][]byte{secret}
		})}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			delivery, _ := webhook.DeliveryFromContext(r.Context())
			Expect(r.URL.RawQuery).NotTo(ContainSubstring(webhook.SecretQueryParameter))
			body, _ := io.ReadAll(r.Body)
			var payload map[string]any
			Expect(json.Unmarshal(body, &payload)).To(Succeed())
			mu.Lock()
			accepted = append(accepted, delivery.Event.Event)
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		})))
		DeferCleanup(receiver.Close)

		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.URL = receiver.URL + "/hooks"
		})
		env.waitSubscriptionsSynced("jobs")
		value := env.expectConsistentSubscriptions("jobs")
		mu.Lock()
		secret = []byte(value)
		mu.Unlock()

		deliveries := env.stack.FireNotification(context.Background(), env.projectID, "job-failed", map[string]any{"id": "job-1"})
		Expect(deliveries).To(HaveLen(1))
		Expect(deliveries[0].Status).To(Equal(http.StatusNoContent))
		mu.Lock()
		Expect(accepted).To(Equal([]string{"job-failed"}))
		secret = []byte(strings.Repeat("0", 64))
		mu.Unlock()

		// Each rejected attempt is retried, and every one is rejected.
		deliveries = env.stack.FireNotification(context.Background(), env.projectID, "job-failed", map[string]any{"id": "job-2"})
		Expect(deliveries).NotTo(BeEmpty())
		for _, d := range deliveries {
			Expect(d.Status).To(Equal(http.StatusUnauthorized), "a receiver with another secret rejects the delivery")
		}
	})

	It("reports events and filters that the project's webhook API lacks", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newWebhook("storage-events")
		wh := env.waitReason("storage-events", keboolav1.ReasonInvalidSpec, webhookWait)
		ready := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring(`"storage.jobFailed"`))
		Expect(ready.Message).To(ContainSubstring(`"job-failed"`))

		storage := newSubscriptionEnv(emu, "")
		storage.waitProject(keboolav1.ReasonVerified)
		storage.newWebhook("filtered", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Filters = []keboolav1.EventFilter{{Field: "branch.id", Value: "1", Operator: "!="}}
		})
		wh = storage.waitReason("filtered", keboolav1.ReasonInvalidSpec, webhookWait)
		ready = meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring("spec.filters"))
		Expect(storage.stack.Webhooks(storage.projectID)).To(BeEmpty())
	})

	It("rotates the secret with an overlap and deletes everything on deletion", func() {
		env := newSubscriptionEnv(notificationEmu, "")
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		oldSecret := env.expectConsistentSubscriptions("jobs")

		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "second" })
		Eventually(func(g Gomega) {
			wh := env.get("jobs")
			g.Expect(wh.Status.Rotation).NotTo(BeNil())
			g.Expect(wh.Status.Rotation.Phase).To(Equal(keboolav1.RotationPhaseOverlapping))
			g.Expect(env.stack.Subscriptions(env.projectID)).To(HaveLen(6))
			s := env.secret(wh.Status.SecretName)
			g.Expect(string(s.Data[keboolav1.SecretKeyPreviousSigningSecret])).To(Equal(oldSecret))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSubscriptionsSynced("jobs")
		newSecret := env.expectConsistentSubscriptions("jobs")
		Expect(newSecret).NotTo(Equal(oldSecret))
		Expect(env.secret(env.get("jobs").Status.SecretName).Data).NotTo(HaveKey(keboolav1.SecretKeyPreviousSigningSecret))
		env.expectEvent("jobs", eventReasonRotationCompleted)

		Expect(k8sClient.Delete(testCtx, env.get("jobs"))).To(Succeed())
		env.expectGone("jobs", webhookWait)
		Expect(env.stack.Subscriptions(env.projectID)).To(BeEmpty())
	})

	It("rejects a webhook API that the stack lacks", func() {
		env := newSubscriptionEnv(notificationEmu, keboolav1.WebhookAPIStorageWebhooks)
		project := env.waitProject(keboolav1.ReasonNoWebhookAPI)
		ready := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring("spec.webhookAPI"))
	})

	It("moves a webhook between the two APIs with an overlap", func() {
		env := newSubscriptionEnv(emu, keboolav1.WebhookAPINotificationSubscriptions)
		env.waitProject(keboolav1.ReasonVerified)
		env.newSubscriptionWebhook("jobs")
		env.waitSubscriptionsSynced("jobs")
		minted := env.expectConsistentSubscriptions("jobs")

		Eventually(func() error {
			project := &keboolav1.KeboolaProject{}
			if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, project); err != nil {
				return err
			}
			project.Spec.WebhookAPI = keboolav1.WebhookAPIStorageWebhooks
			return k8sClient.Update(testCtx, project)
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.update("jobs", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = []string{"storage.jobFailed", "storage.jobSucceeded"}
		})

		// While the grace period lasts, the subscriptions still deliver and
		// the Secret keeps their secret next to the webhook's.
		Eventually(func(g Gomega) {
			wh := env.get("jobs")
			g.Expect(wh.Status.WebhookID).NotTo(BeEmpty())
			g.Expect(wh.Status.Rotation).NotTo(BeNil())
			s := env.secret(wh.Status.SecretName)
			g.Expect(string(s.Data[keboolav1.SecretKeyPreviousSigningSecret])).To(Equal(minted))
			g.Expect(env.stack.Subscriptions(env.projectID)).To(HaveLen(3))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())

		wh := env.waitSynced("jobs")
		Expect(wh.Status.WebhookAPI).To(Equal(keboolav1.WebhookAPIStorageWebhooks))
		Expect(wh.Status.Subscriptions).To(BeEmpty())
		Expect(wh.Status.RetiredSubscriptionIDs).To(BeEmpty())
		Expect(env.stack.Subscriptions(env.projectID)).To(BeEmpty())
		Expect(env.stack.Webhooks(env.projectID)).To(HaveLen(1))
		secret := env.secret(wh.Status.SecretName)
		Expect(secret.Data).NotTo(HaveKey(keboolav1.SecretKeyPreviousSigningSecret))
		Expect(string(secret.Data[keboolav1.SecretKeySigningSecret])).To(Equal(env.stack.Webhooks(env.projectID)[0].Secret))
		subscriptionCredentials.add(env.stack.Webhooks(env.projectID)[0].Secret)
	})

	// This story runs last in this container and checks the credentials of
	// every story before it too.
	It("never shows a token or a minted secret in logs, Events or status", func() {
		credentials := subscriptionCredentials.all()
		Expect(len(credentials)).To(BeNumerically(">", 4))

		var eventList eventsv1.EventList
		Expect(k8sClient.List(testCtx, &eventList)).To(Succeed())
		eventJSON, err := json.Marshal(eventList.Items)
		Expect(err).NotTo(HaveOccurred())
		var webhooks keboolav1.KeboolaWebhookList
		Expect(k8sClient.List(testCtx, &webhooks)).To(Succeed())
		var projects keboolav1.KeboolaProjectList
		Expect(k8sClient.List(testCtx, &projects)).To(Succeed())
		statusJSON, err := json.Marshal([]any{webhooks.Items, projects.Items})
		Expect(err).NotTo(HaveOccurred())

		logs := logSink.String()
		for _, credential := range credentials {
			Expect(strings.Contains(logs, credential)).To(BeFalse(), "a credential appears in the manager's log")
			Expect(strings.Contains(string(eventJSON), credential)).To(BeFalse(), "a credential appears in an Event")
			Expect(strings.Contains(string(statusJSON), credential)).To(BeFalse(), "a credential appears in an object")
		}
		Expect(logs).NotTo(MatchRegexp(webhook.SecretQueryParameter+"=[0-9a-f]{8}"), "a receiver URL with its secret appears in the manager's log")
	})
})

// secretFunc adapts a function to webhook.SecretSource.
type secretFunc func() [][]byte

func (f secretFunc) Secrets() ([][]byte, error) { return f(), nil }
