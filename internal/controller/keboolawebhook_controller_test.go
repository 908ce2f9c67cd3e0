package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// Timeouts of the KeboolaWebhook stories. testOptions.ResyncPeriod is 3s, so
// a drift at Keboola is seen within two resyncs.
const (
	webhookWait = 30 * time.Second
	webhookPoll = 200 * time.Millisecond
)

// webhookTestCredentials collects every token and signing secret that the
// KeboolaWebhook stories create, so that the last story can check that none
// of them leaked into logs, Events or status.
var webhookTestCredentials = struct {
	mu         sync.Mutex
	tokens     []string
	secrets    []string
	projectIDs []int64
}{}

func rememberCredential(token, secret string, projectID int64) {
	webhookTestCredentials.mu.Lock()
	defer webhookTestCredentials.mu.Unlock()
	if token != "" {
		webhookTestCredentials.tokens = append(webhookTestCredentials.tokens, token)
	}
	if secret != "" && !slices.Contains(webhookTestCredentials.secrets, secret) {
		webhookTestCredentials.secrets = append(webhookTestCredentials.secrets, secret)
	}
	if projectID != 0 {
		webhookTestCredentials.projectIDs = append(webhookTestCredentials.projectIDs, projectID)
	}
}

// webhookEnv is the namespace, emulator project and KeboolaProject of one
// KeboolaWebhook story.
type webhookEnv struct {
	namespace string
	projectID int64
	token     string
	tokenID   string
	project   string
}

// newWebhookEnv creates a namespace, an emulator project, a token Secret and
// a KeboolaProject, waits until the project is Ready, and deletes the
// story's KeboolaWebhooks when the story ends.
func newWebhookEnv() *webhookEnv {
	env := &webhookEnv{namespace: newNamespace(), project: "main"}
	env.projectID, env.token = newEmulatorProject()
	env.tokenID = fmt.Sprint(env.projectID * 10)
	rememberCredential(env.token, "", env.projectID)
	DeferCleanup(env.cleanup)

	Expect(k8sClient.Create(testCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "keboola-token", Namespace: env.namespace},
		Data:       map[string][]byte{"token": []byte(env.token)},
	})).To(Succeed())
	env.createProject()
	return env
}

func (env *webhookEnv) createProject() {
	Expect(k8sClient.Create(testCtx, &keboolav1.KeboolaProject{
		ObjectMeta: metav1.ObjectMeta{Name: env.project, Namespace: env.namespace},
		Spec: keboolav1.KeboolaProjectSpec{
			StackURL:       emu.URL(),
			TokenSecretRef: keboolav1.SecretKeyReference{Name: "keboola-token"},
		},
	})).To(Succeed())
	Eventually(func(g Gomega) {
		project := &keboolav1.KeboolaProject{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: env.project}, project)).To(Succeed())
		g.Expect(isReady(project.Status.Conditions, project.Generation)).To(BeTrue())
		g.Expect(project.Status.ProjectID).To(Equal(env.projectID))
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
}

// cleanup deletes the story's KeboolaWebhooks and waits until they are gone.
func (env *webhookEnv) cleanup() {
	createStepHook.Store(nil)
	var list keboolav1.KeboolaWebhookList
	Expect(k8sClient.List(testCtx, &list, client.InNamespace(env.namespace))).To(Succeed())
	for i := range list.Items {
		Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, &list.Items[i]))).To(Succeed())
	}
	Eventually(func(g Gomega) {
		var remaining keboolav1.KeboolaWebhookList
		g.Expect(k8sClient.List(testCtx, &remaining, client.InNamespace(env.namespace))).To(Succeed())
		g.Expect(remaining.Items).To(BeEmpty())
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	project := &keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Name: env.project, Namespace: env.namespace}}
	Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, project))).To(Succeed())
}

// newWebhook creates a KeboolaWebhook with two events and an https URL on
// loopback, changed by mutate.
func (env *webhookEnv) newWebhook(name string, mutate ...func(*keboolav1.KeboolaWebhook)) {
	wh := &keboolav1.KeboolaWebhook{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.namespace},
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: env.project},
			URL:        "https://127.0.0.1:9443/hooks/orders",
			Events:     []string{"storage.jobFailed", "storage.jobSucceeded"},
		},
	}
	for _, m := range mutate {
		m(wh)
	}
	Expect(k8sClient.Create(testCtx, wh)).To(Succeed())
}

func (env *webhookEnv) get(name string) *keboolav1.KeboolaWebhook {
	wh := &keboolav1.KeboolaWebhook{}
	Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh)).To(Succeed())
	return wh
}

// update changes a KeboolaWebhook, retrying on conflicts with the
// controller's own writes.
func (env *webhookEnv) update(name string, mutate func(*keboolav1.KeboolaWebhook)) {
	Eventually(func() error {
		wh := &keboolav1.KeboolaWebhook{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh); err != nil {
			return err
		}
		mutate(wh)
		return k8sClient.Update(testCtx, wh)
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
}

// waitSynced waits until the KeboolaWebhook is Ready for its current
// generation with no create or deletion left to do, and returns it.
func (env *webhookEnv) waitSynced(name string) *keboolav1.KeboolaWebhook {
	var wh *keboolav1.KeboolaWebhook
	Eventually(func(g Gomega) {
		wh = &keboolav1.KeboolaWebhook{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh)).To(Succeed())
		ready := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready message: %s", ready.Message)
		g.Expect(ready.Reason).To(Equal(keboolav1.ReasonSynced))
		g.Expect(ready.ObservedGeneration).To(Equal(wh.Generation))
		g.Expect(wh.Status.ObservedGeneration).To(Equal(wh.Generation))
		g.Expect(wh.Status.PendingCreate).To(BeNil())
		g.Expect(wh.Status.RetiredWebhookIDs).To(BeEmpty())
		g.Expect(wh.Status.Rotation).To(BeNil())
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	return wh
}

// waitReason waits until the Ready condition of the KeboolaWebhook has
// reason and returns the object.
func (env *webhookEnv) waitReason(name, reason string, timeout time.Duration) *keboolav1.KeboolaWebhook {
	var wh *keboolav1.KeboolaWebhook
	Eventually(func(g Gomega) {
		wh = &keboolav1.KeboolaWebhook{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh)).To(Succeed())
		ready := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(reason), "Ready message: %s", ready.Message)
	}).WithTimeout(timeout).WithPolling(100 * time.Millisecond).Should(Succeed())
	return wh
}

// emulatorWebhooks returns the webhooks of the story's project at the
// emulator, secrets included.
func (env *webhookEnv) emulatorWebhooks() []emulator.StoredWebhook {
	webhooks := emu.Webhooks(env.projectID)
	for _, w := range webhooks {
		rememberCredential("", w.Secret, 0)
	}
	return webhooks
}

// expectOneConsistentWebhook waits until the project has exactly one
// webhook, status.webhookID names it, and the Secret contains its signing
// secret, id and fingerprint. It returns the webhook.
func (env *webhookEnv) expectOneConsistentWebhook(name string) emulator.StoredWebhook {
	var hook emulator.StoredWebhook
	Eventually(func(g Gomega) {
		webhooks := env.emulatorWebhooks()
		g.Expect(webhooks).To(HaveLen(1))
		hook = webhooks[0]

		wh := &keboolav1.KeboolaWebhook{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh)).To(Succeed())
		g.Expect(wh.Status.WebhookID).To(Equal(hook.ID))
		g.Expect(wh.Status.PendingCreate).To(BeNil())
		g.Expect(wh.Status.SecretFingerprint).To(Equal(fingerprint([]byte(hook.Secret))))
		g.Expect(hook.Name).To(Equal(wh.Status.Name))

		secret := &corev1.Secret{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: wh.Status.SecretName}, secret)).To(Succeed())
		g.Expect(string(secret.Data[keboolav1.SecretKeySigningSecret])).To(Equal(hook.Secret))
		g.Expect(string(secret.Data[keboolav1.SecretKeyWebhookID])).To(Equal(hook.ID))
		g.Expect(secret.Annotations).To(HaveKeyWithValue(keboolav1.AnnotationSecretFingerprint, wh.Status.SecretFingerprint))
		g.Expect(isReady(wh.Status.Conditions, wh.Generation)).To(BeTrue())
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	return hook
}

func (env *webhookEnv) secret(name string) *corev1.Secret {
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, secret)).To(Succeed())
	return secret
}

// requests returns the emulator's requests with the story's token to
// endpoint, with method when it is not empty.
func (env *webhookEnv) requests(method, endpoint string) []emulator.Request {
	var matching []emulator.Request
	for _, r := range emu.Requests() {
		if r.TokenID == env.tokenID && r.Endpoint == endpoint && (method == "" || r.Method == method) {
			matching = append(matching, r)
		}
	}
	return matching
}

func (env *webhookEnv) count(method, endpoint string) int {
	return len(env.requests(method, endpoint))
}

// webhookCalls counts every webhook request of the story's token.
func (env *webhookEnv) webhookCalls() int {
	return env.count("", emulator.EndpointWebhooks) + env.count("", emulator.EndpointWebhook)
}

// events returns the Events about the named KeboolaWebhook with reason.
func (env *webhookEnv) events(g Gomega, name, reason string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8sClient.List(testCtx, &list, client.InNamespace(env.namespace))).To(Succeed())
	var matching []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "KeboolaWebhook" && e.Regarding.Name == name && e.Reason == reason {
			matching = append(matching, e)
		}
	}
	return matching
}

// expectEvent waits for an Event about the named KeboolaWebhook with reason
// and returns its note.
func (env *webhookEnv) expectEvent(name, reason string) string {
	var note string
	Eventually(func(g Gomega) {
		found := env.events(g, name, reason)
		g.Expect(found).NotTo(BeEmpty(), "no Event with reason %s", reason)
		note = found[0].Note
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	return note
}

// waitOverlap waits until the named KeboolaWebhook overlaps a rotation from
// the webhook previousID, and checks in the same moment that the previous
// webhook still exists at the emulator, that status records it as retired,
// and that the object is Ready. It returns the object.
func (env *webhookEnv) waitOverlap(name, previousID string) *keboolav1.KeboolaWebhook {
	var wh *keboolav1.KeboolaWebhook
	Eventually(func(g Gomega) {
		wh = &keboolav1.KeboolaWebhook{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, wh)).To(Succeed())
		g.Expect(wh.Status.Rotation).NotTo(BeNil())
		g.Expect(wh.Status.Rotation.Phase).To(Equal(keboolav1.RotationPhaseOverlapping))
		g.Expect(wh.Status.Rotation.PreviousWebhookID).To(Equal(previousID))
		g.Expect(wh.Status.Rotation.OverlapUntil).NotTo(BeNil())
		// The pass that commits the new webhook marks it Ready right after.
		ready := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready message: %s", ready.Message)
		_, exists := emu.Webhook(env.projectID, previousID)
		g.Expect(exists).To(BeTrue(), "the previous webhook was deleted during the overlap")
	}).WithTimeout(webhookWait).WithPolling(100 * time.Millisecond).Should(Succeed())

	Expect(wh.Status.WebhookID).NotTo(Equal(previousID))
	Expect(wh.Status.RetiredWebhookIDs).To(ContainElement(previousID))
	Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady).Message).To(ContainSubstring(previousID))
	return wh
}

// deletionTime returns when the emulator received the successful DELETE of
// webhook id with the story's token, and fails when there was none.
func (env *webhookEnv) deletionTime(id string) time.Time {
	for _, r := range env.requests(http.MethodDelete, emulator.EndpointWebhook) {
		if strings.HasSuffix(r.Path, "/"+id) && r.Status < 300 {
			return r.Time
		}
	}
	Fail(fmt.Sprintf("the emulator received no successful DELETE of webhook %s", id))
	return time.Time{}
}

// expectGone waits until the named KeboolaWebhook no longer exists.
func (env *webhookEnv) expectGone(name string, timeout time.Duration) {
	Eventually(func() bool {
		err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: name}, &keboolav1.KeboolaWebhook{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(timeout).WithPolling(100 * time.Millisecond).Should(BeTrue())
}

// interruptCreateOnce makes the create protocol of the KeboolaWebhooks in
// namespace stop once at step, as a crash there would. action runs in place
// of the failure when it is not nil, and its error ends the pass. The
// returned counter counts how often the step was reached.
func interruptCreateOnce(namespace string, step createStep, action func(*keboolav1.KeboolaWebhook) error) *atomic.Int32 {
	var reached atomic.Int32
	hook := createStepHookFunc(func(_ context.Context, wh *keboolav1.KeboolaWebhook, current createStep) error {
		if wh.Namespace != namespace || current != step || reached.Add(1) > 1 {
			return nil
		}
		if action != nil {
			return action(wh)
		}
		return fmt.Errorf("injected interruption at step %s", step)
	})
	createStepHook.Store(&hook)
	DeferCleanup(func() { createStepHook.Store(nil) })
	return &reached
}

// newDetachedReconciler returns a KeboolaWebhook reconciler that is not
// part of the suite's manager and reads without a cache, like a second
// operator instance.
func newDetachedReconciler() *KeboolaWebhookReconciler {
	factory := keboola.NewFactory(keboola.Options{
		Timeout:    5 * time.Second,
		QPS:        1000,
		Burst:      1000,
		MaxRetries: 2,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		UserAgent:  "keboola-operator/test-second-instance",
	})
	return &KeboolaWebhookReconciler{
		Client:    k8sClient,
		APIReader: k8sClient,
		Recorder:  &events.FakeRecorder{},
		Clients:   NewClientFactory(factory),
		Options:   testOptions,
	}
}

var _ = Describe("KeboolaWebhook controller", func() {
	It("creates the webhook and publishes its signing secret", func() {
		env := newWebhookEnv()
		env.newWebhook("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Labels = map[string]string{"app.kubernetes.io/part-of": "shop", "team": "data"}
			wh.Spec.SecretTemplate = &keboolav1.SecretTemplate{
				Labels:      map[string]string{"reloader.example.com/watch": "true"},
				Annotations: map[string]string{"backup.example.com/schedule": "daily"},
			}
		})

		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		By("checking the webhook at Keboola")
		Expect(hook.Name).To(Equal(env.namespace + "/orders"))
		Expect(hook.URL).To(Equal("https://127.0.0.1:9443/hooks/orders"))
		Expect(hook.Events).To(ConsistOf("storage.jobFailed", "storage.jobSucceeded"))
		Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(1))

		By("checking the status")
		Expect(wh.Status.WebhookID).To(Equal(hook.ID))
		Expect(wh.Status.ProjectID).To(Equal(env.projectID))
		Expect(wh.Status.Name).To(Equal(env.namespace + "/orders"))
		Expect(wh.Status.SecretName).To(Equal("orders-webhook-secret"))
		Expect(wh.Status.SecretFingerprint).To(Equal(fingerprint([]byte(hook.Secret))))
		Expect(wh.Status.LastSyncedTime).NotTo(BeNil())
		Expect(wh.Status.ObservedGeneration).To(Equal(wh.Generation))
		Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReconciling)).To(BeNil())
		Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionStalled)).To(BeNil())
		Expect(wh.Finalizers).To(ContainElement(webhookFinalizer))

		By("checking the Secret")
		secret := env.secret("orders-webhook-secret")
		Expect(string(secret.Data[keboolav1.SecretKeySigningSecret])).To(Equal(hook.Secret))
		Expect(string(secret.Data[keboolav1.SecretKeyWebhookID])).To(Equal(hook.ID))
		Expect(secret.Annotations).To(HaveKeyWithValue(keboolav1.AnnotationSecretFingerprint, wh.Status.SecretFingerprint))
		Expect(secret.Annotations).To(HaveKeyWithValue("backup.example.com/schedule", "daily"))
		Expect(secret.Labels).To(HaveKeyWithValue(keboolav1.LabelManagedBy, keboolav1.ManagedByValue))
		Expect(secret.Labels).To(HaveKeyWithValue("reloader.example.com/watch", "true"))
		Expect(secret.Labels).To(HaveKeyWithValue(labelWebhook, "orders"))
		Expect(secret.Labels).NotTo(HaveKey("team"))
		Expect(secret.Labels).NotTo(HaveKey("app.kubernetes.io/part-of"))

		owner := metav1.GetControllerOf(secret)
		Expect(owner).NotTo(BeNil())
		Expect(owner.Kind).To(Equal("KeboolaWebhook"))
		Expect(owner.Name).To(Equal("orders"))
		Expect(owner.UID).To(Equal(wh.UID))

		By("checking the Event")
		Expect(env.expectEvent("orders", eventReasonCreated)).To(ContainSubstring(hook.ID))
	})

	It("waits for the project and starts when it becomes Ready", func() {
		env := &webhookEnv{namespace: newNamespace(), project: "late"}
		env.projectID, env.token = newEmulatorProject()
		env.tokenID = fmt.Sprint(env.projectID * 10)
		rememberCredential(env.token, "", env.projectID)
		DeferCleanup(env.cleanup)

		env.newWebhook("early")
		wh := env.waitReason("early", keboolav1.ReasonProjectNotReady, webhookWait)
		Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady).Message).To(ContainSubstring(`"late"`))
		Expect(env.emulatorWebhooks()).To(BeEmpty())

		Expect(k8sClient.Create(testCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "keboola-token", Namespace: env.namespace},
			Data:       map[string][]byte{"token": []byte(env.token)},
		})).To(Succeed())
		env.createProject()

		env.waitSynced("early")
		env.expectOneConsistentWebhook("early")
	})

	It("makes no update and no status write when Keboola normalises the webhook", func() {
		env := newWebhookEnv()
		env.newWebhook("normalised", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.URL = "https://127.0.0.1:9443"
			wh.Spec.Events = []string{"storage.jobSucceeded", "orchestration.jobFailed", "storage.jobFailed"}
		})
		wh := env.waitSynced("normalised")
		hook := env.expectOneConsistentWebhook("normalised")
		Expect(hook.URL).To(Equal("https://127.0.0.1:9443/"), "the emulator must normalise the URL for this story")
		Expect(hook.Events).To(Equal([]string{"orchestration.jobFailed", "storage.jobFailed", "storage.jobSucceeded"}))

		// The only update is the rename that commits the webhook.
		puts := env.count(http.MethodPut, emulator.EndpointWebhook)
		Expect(puts).To(Equal(1))
		lists := env.count(http.MethodGet, emulator.EndpointWebhooks)
		secretVersion := env.secret(wh.Status.SecretName).ResourceVersion

		Consistently(func(g Gomega) {
			current := &keboolav1.KeboolaWebhook{}
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(wh), current)).To(Succeed())
			g.Expect(current.ResourceVersion).To(Equal(wh.ResourceVersion))
			g.Expect(env.count(http.MethodPut, emulator.EndpointWebhook)).To(Equal(puts))
		}).WithTimeout(8 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())

		Expect(env.count(http.MethodGet, emulator.EndpointWebhooks)).To(BeNumerically(">", lists),
			"the resyncs must have looked at Keboola")
		Expect(env.secret(wh.Status.SecretName).ResourceVersion).To(Equal(secretVersion))
	})

	It("reports SecretConflict for a Secret it does not own", func() {
		env := newWebhookEnv()
		foreign := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "orders-webhook-secret", Namespace: env.namespace},
			Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("hunter2")},
		}
		Expect(k8sClient.Create(testCtx, foreign)).To(Succeed())

		env.newWebhook("orders")
		wh := env.waitReason("orders", keboolav1.ReasonSecretConflict, webhookWait)
		Expect(meta.IsStatusConditionTrue(wh.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReconciling)).To(BeNil())
		Expect(wh.Status.ObservedGeneration).To(Equal(wh.Generation))
		Expect(meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady).Message).To(ContainSubstring("orders-webhook-secret"))

		Consistently(func(g Gomega) {
			current := &corev1.Secret{}
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(foreign), current)).To(Succeed())
			g.Expect(current.Data).To(Equal(foreign.Data))
			g.Expect(current.OwnerReferences).To(BeEmpty())
			g.Expect(current.Labels).To(BeEmpty())
		}).WithTimeout(3 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(BeZero())
		Expect(env.emulatorWebhooks()).To(BeEmpty())
		env.expectEvent("orders", keboolav1.ReasonSecretConflict)
	})

	It("gives a Secret named by two KeboolaWebhooks to the older one", func() {
		env := newWebhookEnv()
		env.newWebhook("first", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.SecretName = ptrTo("shared") })
		env.waitSynced("first")
		hook := env.expectOneConsistentWebhook("first")

		env.newWebhook("second", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.SecretName = ptrTo("shared") })
		second := env.waitReason("second", keboolav1.ReasonSecretConflict, webhookWait)
		Expect(meta.FindStatusCondition(second.Status.Conditions, keboolav1.ConditionReady).Message).To(ContainSubstring(`"first"`))

		Consistently(func(g Gomega) {
			g.Expect(env.emulatorWebhooks()).To(HaveLen(1))
			secret := &corev1.Secret{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: env.namespace, Name: "shared"}, secret)).To(Succeed())
			g.Expect(string(secret.Data[keboolav1.SecretKeySigningSecret])).To(Equal(hook.Secret))
		}).WithTimeout(3 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	})

	It("recreates a webhook deleted at Keboola", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		env.waitSynced("orders")
		old := env.expectOneConsistentWebhook("orders")

		Expect(emu.DeleteWebhookOutOfBand(env.projectID, old.ID)).To(BeTrue())

		Eventually(func(g Gomega) {
			g.Expect(env.get("orders").Status.WebhookID).NotTo(Equal(old.ID))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")
		Expect(hook.ID).NotTo(Equal(old.ID))
		Expect(hook.Secret).NotTo(Equal(old.Secret))
		Expect(env.count(http.MethodGet, emulator.EndpointWebhook)).To(BeNumerically(">=", 1),
			"the deletion must be confirmed with a direct read")
		Expect(env.expectEvent("orders", eventReasonRecreated)).To(ContainSubstring(old.ID))
	})

	It("removes the finalizer when DELETE returns 404", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		env.expectOneConsistentWebhook("orders")

		faultID := emu.InjectFault(emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointWebhook, Status: http.StatusNotFound, Times: 1})
		DeferCleanup(emu.RemoveFault, faultID)
		deletes := env.count(http.MethodDelete, emulator.EndpointWebhook)

		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())
		env.expectGone("orders", 10*time.Second)
		Expect(env.count(http.MethodDelete, emulator.EndpointWebhook)).To(Equal(deletes + 1))
	})

	It("deletes the webhook and keeps the Secret on its owner reference", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())
		env.expectGone("orders", webhookWait)
		Expect(env.emulatorWebhooks()).To(BeEmpty())
		_, exists := emu.Webhook(env.projectID, hook.ID)
		Expect(exists).To(BeFalse())

		// envtest runs no garbage collector, so the owner reference is what
		// removes the Secret in a cluster.
		secret := env.secret("orders-webhook-secret")
		Expect(metav1.GetControllerOf(secret).UID).To(Equal(wh.UID))
		env.expectEvent("orders", eventReasonDeleted)
	})

	It("stalls with InvalidSpec when Keboola rejects the webhook", func() {
		env := newWebhookEnv()
		faultID := emu.InjectFault(emulator.Fault{
			Method:   http.MethodPost,
			Endpoint: emulator.EndpointWebhooks,
			Status:   http.StatusUnprocessableEntity,
			Body:     `{"error":"Webhook URL host is not allowed for this project","code":"storage.webhooks.validation","exceptionId":"exception-422"}`,
		})
		DeferCleanup(emu.RemoveFault, faultID)

		env.newWebhook("rejected")
		wh := env.waitReason("rejected", keboolav1.ReasonInvalidSpec, webhookWait)
		ready := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		Expect(ready.Message).To(ContainSubstring("Webhook URL host is not allowed for this project"))
		Expect(ready.ObservedGeneration).To(Equal(wh.Generation))
		Expect(wh.Status.ObservedGeneration).To(Equal(wh.Generation))
		Expect(meta.IsStatusConditionTrue(wh.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		Expect(wh.Status.PendingCreate).To(BeNil())

		Consistently(func() int {
			return env.count(http.MethodPost, emulator.EndpointWebhooks)
		}).WithTimeout(4 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(1))
		Expect(env.emulatorWebhooks()).To(BeEmpty())
		env.expectEvent("rejected", keboolav1.ReasonInvalidSpec)

		By("fixing the spec")
		emu.RemoveFault(faultID)
		env.update("rejected", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.URL = "https://127.0.0.1:9443/hooks/fixed" })
		env.waitSynced("rejected")
		env.expectOneConsistentWebhook("rejected")
	})

	It("derives valid names from a 100-character name and a non-ASCII spec.name", func() {
		env := newWebhookEnv()
		name := strings.Repeat("webhook-", 12) + "name"
		Expect(name).To(HaveLen(100))
		displayName := "Objednávky – Příliš žluťoučký kůň úpěl ďábelské ódy 🚀"

		env.newWebhook(name, func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Name = &displayName })
		wh := env.waitSynced(name)
		hook := env.expectOneConsistentWebhook(name)

		Expect(hook.Name).To(Equal(displayName))
		Expect(wh.Status.Name).To(Equal(displayName))
		Expect(wh.Status.SecretName).To(Equal(name + "-webhook-secret"))
		Expect(validation.IsDNS1123Subdomain(wh.Status.SecretName)).To(BeEmpty())

		secret := env.secret(wh.Status.SecretName)
		for key, value := range secret.Labels {
			Expect(validation.IsQualifiedName(key)).To(BeEmpty(), "label key %q", key)
			Expect(validation.IsValidLabelValue(value)).To(BeEmpty(), "label %q=%q", key, value)
		}
		Expect(secret.Labels).To(HaveKeyWithValue(labelWebhook, labelValue(name)))
	})

	It("puts back a URL edited at Keboola with one update", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")
		puts := env.count(http.MethodPut, emulator.EndpointWebhook)

		emu.PutWebhook(env.projectID, emulator.StoredWebhook{
			ID: hook.ID, Name: hook.Name, URL: "https://127.0.0.1:9443/elsewhere", Events: hook.Events,
		})

		Eventually(func(g Gomega) {
			current, ok := emu.Webhook(env.projectID, hook.ID)
			g.Expect(ok).To(BeTrue())
			g.Expect(current.URL).To(Equal(wh.Spec.URL))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Consistently(func() int {
			return env.count(http.MethodPut, emulator.EndpointWebhook)
		}).WithTimeout(4 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(puts + 1))

		note := env.expectEvent("orders", eventReasonDriftCorrected)
		Expect(note).To(ContainSubstring("url"))
		Expect(note).NotTo(ContainSubstring("elsewhere"))
		Expect(env.expectOneConsistentWebhook("orders").Secret).To(Equal(hook.Secret))
	})

	It("updates the webhook once when the spec changes", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")
		puts := env.count(http.MethodPut, emulator.EndpointWebhook)

		env.update("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = append(wh.Spec.Events, "orchestration.jobFailed")
		})
		wh := env.waitSynced("orders")
		Expect(wh.Generation).To(BeNumerically(">", 1))

		Eventually(func(g Gomega) {
			current, ok := emu.Webhook(env.projectID, hook.ID)
			g.Expect(ok).To(BeTrue())
			g.Expect(current.Events).To(ConsistOf("storage.jobFailed", "storage.jobSucceeded", "orchestration.jobFailed"))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Consistently(func() int {
			return env.count(http.MethodPut, emulator.EndpointWebhook)
		}).WithTimeout(4 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(puts + 1))

		Expect(env.expectOneConsistentWebhook("orders").ID).To(Equal(hook.ID))
		Expect(env.expectEvent("orders", eventReasonUpdated)).To(ContainSubstring("events"))
	})

	It("rotates to a new webhook when rotationToken changes", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		env.waitSynced("orders")
		old := env.expectOneConsistentWebhook("orders")

		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "2026-03" })

		By("overlapping: both webhooks exist and the Secret holds both signing secrets")
		overlap := env.waitOverlap("orders", old.ID)
		Expect(overlap.Status.RotationToken).To(Equal("2026-03"))
		Expect(overlap.Status.Rotation.PreviousSecretFingerprint).To(Equal(fingerprint([]byte(old.Secret))))
		Expect(overlap.Status.Rotation.OverlapUntil.Time).To(BeTemporally("~",
			overlap.Status.Rotation.StartedTime.Add(testOptions.RotationGracePeriod), 2*time.Second))
		secret := env.secret(overlap.Status.SecretName)
		Expect(string(secret.Data[keboolav1.SecretKeyPreviousSigningSecret])).To(Equal(old.Secret))
		Expect(string(secret.Data[keboolav1.SecretKeyPreviousWebhookID])).To(Equal(old.ID))

		By("retiring the previous webhook after the grace period")
		env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")
		Expect(hook.Secret).NotTo(Equal(old.Secret))
		_, oldExists := emu.Webhook(env.projectID, old.ID)
		Expect(oldExists).To(BeFalse())
		secret = env.secret(overlap.Status.SecretName)
		Expect(secret.Data).NotTo(HaveKey(keboolav1.SecretKeyPreviousSigningSecret))
		Expect(secret.Data).NotTo(HaveKey(keboolav1.SecretKeyPreviousWebhookID))
		deleted := env.deletionTime(old.ID)
		Expect(deleted).To(BeTemporally(">=", overlap.Status.Rotation.OverlapUntil.Time),
			"the previous webhook was deleted before the grace period ended")
		Expect(env.expectEvent("orders", eventReasonRotated)).To(ContainSubstring(hook.ID))
		Expect(env.expectEvent("orders", eventReasonRotationCompleted)).To(ContainSubstring(old.ID))
	})

	It("resumes a rotation interrupted between the Secret write and the status write", func() {
		env := newWebhookEnv()
		env.newWebhook("invoices")
		env.waitSynced("invoices")
		old := env.expectOneConsistentWebhook("invoices")

		reached := interruptCreateOnce(env.namespace, createStepSecretStored, nil)
		env.update("invoices", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "interrupted" })

		// Recovery adopts the new webhook, whose secret the Secret holds, and
		// starts the grace period of the rotation it belongs to.
		overlap := env.waitOverlap("invoices", old.ID)
		Expect(reached.Load()).To(BeNumerically(">=", 1))
		Expect(overlap.Status.Rotation.PreviousSecretFingerprint).To(Equal(fingerprint([]byte(old.Secret))))
		Expect(string(env.secret(overlap.Status.SecretName).Data[keboolav1.SecretKeyPreviousSigningSecret])).To(Equal(old.Secret))

		env.waitSynced("invoices")
		env.expectOneConsistentWebhook("invoices")
		Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(2))
		env.expectEvent("invoices", eventReasonRecovered)
		Expect(env.deletionTime(old.ID)).To(BeTemporally(">=", overlap.Status.Rotation.OverlapUntil.Time))
	})

	It("rotates to a new webhook when the Secret is deleted by hand", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		old := env.expectOneConsistentWebhook("orders")

		Expect(k8sClient.Delete(testCtx, env.secret(wh.Status.SecretName))).To(Succeed())

		// The previous secret is gone with the Secret, so the Secret cannot
		// keep it, but the previous webhook still delivers for the grace
		// period, to receivers that kept the secret.
		overlap := env.waitOverlap("orders", old.ID)
		Expect(overlap.Status.Rotation.PreviousSecretFingerprint).To(BeEmpty())
		Expect(env.secret(wh.Status.SecretName).Data).NotTo(HaveKey(keboolav1.SecretKeyPreviousSigningSecret))
		hook := env.expectOneConsistentWebhook("orders")
		Expect(hook.Secret).NotTo(Equal(old.Secret))
		_, oldExists := emu.Webhook(env.projectID, old.ID)
		Expect(oldExists).To(BeFalse())
		env.expectEvent("orders", eventReasonSecretReplaced)
	})

	It("rotates to a new webhook when the signing secret is edited by hand", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		old := env.expectOneConsistentWebhook("orders")

		secret := env.secret(wh.Status.SecretName)
		secret.Data[keboolav1.SecretKeySigningSecret] = []byte("typed-by-hand")
		Expect(k8sClient.Update(testCtx, secret)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(env.get("orders").Status.WebhookID).NotTo(Equal(old.ID))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		hook := env.expectOneConsistentWebhook("orders")
		Expect(hook.Secret).NotTo(Equal(old.Secret))
		env.expectEvent("orders", eventReasonSecretReplaced)
	})

	It("makes no call to Keboola while paused", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		env.update("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Annotations = map[string]string{keboolav1.AnnotationPaused: "true"}
		})
		paused := env.waitReason("orders", keboolav1.ReasonPaused, webhookWait)
		Expect(meta.FindStatusCondition(paused.Status.Conditions, keboolav1.ConditionReady).Message).To(ContainSubstring("Remove the annotation"))
		Expect(meta.FindStatusCondition(paused.Status.Conditions, keboolav1.ConditionReconciling)).To(BeNil())
		Expect(meta.FindStatusCondition(paused.Status.Conditions, keboolav1.ConditionStalled)).To(BeNil())

		calls := env.webhookCalls()
		emu.PutWebhook(env.projectID, emulator.StoredWebhook{
			ID: hook.ID, Name: hook.Name, URL: "https://127.0.0.1:9443/elsewhere", Events: hook.Events,
		})
		Consistently(env.webhookCalls).WithTimeout(8 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(calls))

		By("resuming")
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { delete(wh.Annotations, keboolav1.AnnotationPaused) })
		Eventually(func(g Gomega) {
			current, ok := emu.Webhook(env.projectID, hook.ID)
			g.Expect(ok).To(BeTrue())
			g.Expect(current.URL).To(Equal(wh.Spec.URL))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.waitSynced("orders")
	})

	It("blocks deletion while paused and finishes it after resuming", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		env.update("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Annotations = map[string]string{keboolav1.AnnotationPaused: "true"}
		})
		env.waitReason("orders", keboolav1.ReasonPaused, webhookWait)
		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())

		blocked := env.waitReason("orders", keboolav1.ReasonDeletionBlocked, webhookWait)
		Expect(meta.IsStatusConditionTrue(blocked.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		Expect(meta.FindStatusCondition(blocked.Status.Conditions, keboolav1.ConditionReady).Message).To(
			And(ContainSubstring(keboolav1.AnnotationPaused), ContainSubstring("Orphan")))
		_, exists := emu.Webhook(env.projectID, hook.ID)
		Expect(exists).To(BeTrue())

		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { delete(wh.Annotations, keboolav1.AnnotationPaused) })
		env.expectGone("orders", webhookWait)
		Expect(env.emulatorWebhooks()).To(BeEmpty())
	})

	It("leaves the webhook at Keboola when deletionPolicy is Orphan", func() {
		env := newWebhookEnv()
		env.newWebhook("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.DeletionPolicy = keboolav1.DeletionPolicyOrphan })
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())
		env.expectGone("orders", webhookWait)
		_, exists := emu.Webhook(env.projectID, hook.ID)
		Expect(exists).To(BeTrue())
		Expect(env.count(http.MethodDelete, emulator.EndpointWebhook)).To(BeZero())
		Expect(env.expectEvent("orders", eventReasonOrphaned)).To(ContainSubstring(hook.ID))
	})

	It("blocks deletion when Keboola rejects the token", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		wh := env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")

		emu.RemoveToken(env.token)
		Expect(k8sClient.Delete(testCtx, wh)).To(Succeed())

		blocked := env.waitReason("orders", keboolav1.ReasonDeletionBlocked, webhookWait)
		message := meta.FindStatusCondition(blocked.Status.Conditions, keboolav1.ConditionReady).Message
		Expect(message).To(ContainSubstring("401"))
		Expect(message).To(ContainSubstring("Restore the KeboolaProject and its token Secret"))
		Expect(message).To(ContainSubstring("spec.deletionPolicy to Orphan"))
		Expect(meta.IsStatusConditionTrue(blocked.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		Expect(blocked.Finalizers).To(ContainElement(webhookFinalizer))
		env.expectEvent("orders", keboolav1.ReasonDeletionBlocked)

		By("choosing the Orphan way out")
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.DeletionPolicy = keboolav1.DeletionPolicyOrphan })
		env.expectGone("orders", webhookWait)
		_, exists := emu.Webhook(env.projectID, hook.ID)
		Expect(exists).To(BeTrue())
	})

	It("blocks deletion when the KeboolaProject does not exist", func() {
		env := newWebhookEnv()
		env.newWebhook("ghost", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.ProjectRef.Name = "missing" })
		env.waitReason("ghost", keboolav1.ReasonProjectNotReady, webhookWait)

		// A webhook recorded earlier, when the project still existed.
		Eventually(func() error {
			wh := env.get("ghost")
			wh.Status.WebhookID = "999999"
			return k8sClient.Status().Update(testCtx, wh)
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Expect(k8sClient.Delete(testCtx, env.get("ghost"))).To(Succeed())

		blocked := env.waitReason("ghost", keboolav1.ReasonDeletionBlocked, webhookWait)
		Expect(meta.FindStatusCondition(blocked.Status.Conditions, keboolav1.ConditionReady).Message).To(
			And(ContainSubstring(`KeboolaProject "missing" not found`), ContainSubstring("999999"), ContainSubstring("Orphan")))

		env.update("ghost", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.DeletionPolicy = keboolav1.DeletionPolicyOrphan })
		env.expectGone("ghost", webhookWait)
	})

	It("waits at least Retry-After when Keboola rate limits the create", func() {
		env := newWebhookEnv()
		faultID := emu.InjectFault(emulator.Fault{
			Method: http.MethodPost, Endpoint: emulator.EndpointWebhooks,
			Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second, Times: 1,
		})
		DeferCleanup(emu.RemoveFault, faultID)

		env.newWebhook("throttled")
		env.waitReason("throttled", keboolav1.ReasonRateLimited, 10*time.Second)
		env.waitSynced("throttled")
		env.expectOneConsistentWebhook("throttled")

		posts := env.requests(http.MethodPost, emulator.EndpointWebhooks)
		Expect(posts).To(HaveLen(2))
		Expect(posts[0].Status).To(Equal(http.StatusTooManyRequests))
		Expect(posts[1].Time.Sub(posts[0].Time)).To(BeNumerically(">=", 2900*time.Millisecond))
		for _, endpoint := range []string{emulator.EndpointWebhooks, emulator.EndpointWebhook} {
			for _, r := range env.requests("", endpoint) {
				if r.Time.After(posts[0].Time) && r.Time.Before(posts[1].Time) {
					Fail(fmt.Sprintf("%s %s sent %s after the 429, before Retry-After passed", r.Method, r.Path, r.Time.Sub(posts[0].Time)))
				}
			}
		}
		env.expectEvent("throttled", keboolav1.ReasonRateLimited)
	})

	Context("crash safety", func() {
		It("recovers from an interruption before the create request", func() {
			env := newWebhookEnv()
			reached := interruptCreateOnce(env.namespace, createStepIntentRecorded, nil)
			env.newWebhook("orders")

			env.waitSynced("orders")
			env.expectOneConsistentWebhook("orders")
			Expect(reached.Load()).To(BeNumerically(">=", 1))
			Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(1))
		})

		It("recovers from an interruption between the create and the Secret write", func() {
			env := newWebhookEnv()
			reached := interruptCreateOnce(env.namespace, createStepWebhookCreated, nil)
			env.newWebhook("orders")

			env.waitSynced("orders")
			env.expectOneConsistentWebhook("orders")
			Expect(reached.Load()).To(BeNumerically(">=", 1))
			// The first webhook's secret was never stored, so it is deleted
			// and a second one is created.
			Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(2))
			Expect(env.count(http.MethodDelete, emulator.EndpointWebhook)).To(Equal(1))
		})

		It("recovers from an interruption between the Secret write and the status write", func() {
			env := newWebhookEnv()
			reached := interruptCreateOnce(env.namespace, createStepSecretStored, nil)
			env.newWebhook("orders")

			env.waitSynced("orders")
			env.expectOneConsistentWebhook("orders")
			Expect(reached.Load()).To(BeNumerically(">=", 1))
			// The Secret contains the first webhook's secret, so it is adopted.
			Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(1))
			Expect(env.count(http.MethodDelete, emulator.EndpointWebhook)).To(BeZero())
			env.expectEvent("orders", eventReasonRecovered)
		})

		It("recovers from a conflict on the status write", func() {
			env := newWebhookEnv()
			touch := func(wh *keboolav1.KeboolaWebhook) error {
				// Another writer changes the object, so the status update
				// that commits the webhook carries a stale resourceVersion.
				current := &keboolav1.KeboolaWebhook{}
				if err := k8sClient.Get(testCtx, client.ObjectKeyFromObject(wh), current); err != nil {
					return err
				}
				if current.Annotations == nil {
					current.Annotations = map[string]string{}
				}
				current.Annotations["example.com/touched"] = "true"
				return k8sClient.Update(testCtx, current)
			}
			reached := interruptCreateOnce(env.namespace, createStepSecretStored, touch)
			env.newWebhook("orders")

			env.waitSynced("orders")
			env.expectOneConsistentWebhook("orders")
			Expect(reached.Load()).To(BeNumerically(">=", 1))
			Expect(env.get("orders").Annotations).To(HaveKey("example.com/touched"))
			Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(1))
		})

		It("recovers from a lost create response", func() {
			env := newWebhookEnv()
			faultID := emu.InjectFault(emulator.Fault{
				Method: http.MethodPost, Endpoint: emulator.EndpointWebhooks, LoseResponse: true, Times: 1,
			})
			DeferCleanup(emu.RemoveFault, faultID)
			env.newWebhook("orders")

			env.waitSynced("orders")
			env.expectOneConsistentWebhook("orders")
			posts := env.requests(http.MethodPost, emulator.EndpointWebhooks)
			Expect(posts).To(HaveLen(2))
			Expect(posts[0].Fault).To(HaveSuffix("lose-response"))
			Expect(env.count(http.MethodDelete, emulator.EndpointWebhook)).To(Equal(1))
		})

		DescribeTable("converges when a second instance runs a whole pass during a create",
			func(step createStep, wantPosts int) {
				env := newWebhookEnv()
				second := newDetachedReconciler()
				request := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: env.namespace, Name: "orders"}}
				reached := interruptCreateOnce(env.namespace, step, func(*keboolav1.KeboolaWebhook) error {
					ctx := logf.IntoContext(testCtx, logf.Log.WithName("second-instance"))
					_, err := second.Reconcile(ctx, request)
					return err
				})
				env.newWebhook("orders")

				env.waitSynced("orders")
				env.expectOneConsistentWebhook("orders")
				Expect(reached.Load()).To(BeNumerically(">=", 1))
				Expect(env.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(wantPosts))
			},
			// The second instance recovers the pending create and creates its
			// own webhook. The first one's create then fails on the fences, so
			// its webhook is deleted as uncommitted.
			Entry("before the create request", createStepIntentRecorded, 2),
			// The second instance deletes the webhook whose secret was never
			// stored and creates its own.
			Entry("between the create and the Secret write", createStepWebhookCreated, 2),
			// The second instance adopts the webhook whose secret is stored.
			Entry("between the Secret write and the status write", createStepSecretStored, 1),
		)

		It("converges when two reconcilers race on one object", func() {
			env := newWebhookEnv()
			instances := []*KeboolaWebhookReconciler{newDetachedReconciler(), newDetachedReconciler()}
			request := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: env.namespace, Name: "raced"}}
			race := func() {
				for range 4 {
					var wg sync.WaitGroup
					for i, r := range instances {
						wg.Add(1)
						go func() {
							defer GinkgoRecover()
							defer wg.Done()
							ctx := logf.IntoContext(testCtx, logf.Log.WithName("second-instance").WithValues("instance", i))
							_, _ = r.Reconcile(ctx, request)
						}()
					}
					wg.Wait()
				}
			}

			env.newWebhook("raced")
			race()
			env.waitSynced("raced")
			first := env.expectOneConsistentWebhook("raced")

			By("racing a rotation")
			env.update("raced", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "raced-rotation" })
			race()
			Eventually(func(g Gomega) {
				g.Expect(env.get("raced").Status.RotationToken).To(Equal("raced-rotation"))
			}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
			env.waitSynced("raced")
			hook := env.expectOneConsistentWebhook("raced")
			Expect(hook.ID).NotTo(Equal(first.ID))

			Consistently(func(g Gomega) {
				g.Expect(env.emulatorWebhooks()).To(HaveLen(1))
			}).WithTimeout(3 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
			env.expectOneConsistentWebhook("raced")
		})
	})

	// This story runs last in this container and checks the credentials of
	// every story before it too.
	It("never shows a token or a signing secret in logs, Events or status", func() {
		env := newWebhookEnv()
		env.newWebhook("orders")
		env.waitSynced("orders")
		env.expectOneConsistentWebhook("orders")
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "leak-check" })
		Eventually(func(g Gomega) {
			g.Expect(env.get("orders").Status.RotationToken).To(Equal("leak-check"))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		env.expectOneConsistentWebhook("orders")

		webhookTestCredentials.mu.Lock()
		for _, projectID := range webhookTestCredentials.projectIDs {
			for _, w := range emu.Webhooks(projectID) {
				if !slices.Contains(webhookTestCredentials.secrets, w.Secret) {
					webhookTestCredentials.secrets = append(webhookTestCredentials.secrets, w.Secret)
				}
			}
		}
		credentials := append(slices.Clone(webhookTestCredentials.tokens), webhookTestCredentials.secrets...)
		webhookTestCredentials.mu.Unlock()
		Expect(len(credentials)).To(BeNumerically(">", 2))

		var eventList eventsv1.EventList
		Expect(k8sClient.List(testCtx, &eventList)).To(Succeed())
		eventJSON, err := json.Marshal(eventList.Items)
		Expect(err).NotTo(HaveOccurred())

		var webhookList keboolav1.KeboolaWebhookList
		Expect(k8sClient.List(testCtx, &webhookList)).To(Succeed())
		statuses := make([]keboolav1.KeboolaWebhookStatus, 0, len(webhookList.Items))
		for _, item := range webhookList.Items {
			statuses = append(statuses, item.Status)
		}
		statusJSON, err := json.Marshal(statuses)
		Expect(err).NotTo(HaveOccurred())

		logs := logSink.String()
		for _, credential := range credentials {
			Expect(strings.Contains(logs, credential)).To(BeFalse(), "a credential appears in the manager's log")
			Expect(strings.Contains(string(eventJSON), credential)).To(BeFalse(), "a credential appears in an Event")
			Expect(strings.Contains(string(statusJSON), credential)).To(BeFalse(), "a credential appears in a status")
		}
	})
})
