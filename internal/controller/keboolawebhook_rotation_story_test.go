package controller

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// kubeletSyncPeriod is how often the simulated kubelet of the rotation
// story copies the Secret into the receiver's volume. A real kubelet takes
// up to a minute; the story's grace period is scaled down to match.
const kubeletSyncPeriod = 300 * time.Millisecond

var _ = Describe("KeboolaWebhook rotation", func() {
	It("loses no event during a rotation at a receiver that mounts the Secret", func() {
		env := newWebhookEnv()
		volume := &secretVolume{dir: GinkgoT().TempDir()}
		receiver := newRecordingReceiver(volume.dir)
		DeferCleanup(receiver.server.Close)

		env.newWebhook("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.URL = receiver.server.URL + "/webhook"
			wh.Spec.Events = []string{"storage.jobSucceeded"}
		})
		wh := env.waitSynced("orders")
		old := env.expectOneConsistentWebhook("orders")

		kubelet := startKubelet(types.NamespacedName{Namespace: env.namespace, Name: wh.Status.SecretName}, volume)
		DeferCleanup(kubelet.stop)
		Eventually(func() bool { return kubelet.loaded(old.Secret) }).
			WithTimeout(webhookWait).WithPolling(webhookPoll).Should(BeTrue())

		firing := startFiring(env.projectID)
		DeferCleanup(firing.stop)
		Eventually(firing.succeededEvents).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(BeNumerically(">=", 3))

		By("rotating while events are delivered")
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "story" })
		env.waitOverlap("orders", old.ID)
		env.waitSynced("orders")
		hook := env.expectOneConsistentWebhook("orders")
		Eventually(func() bool { return kubelet.loadedOnly(hook.Secret) }).
			WithTimeout(webhookWait).WithPolling(webhookPoll).Should(BeTrue())
		fired := firing.firedEvents()
		Eventually(firing.firedEvents).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(BeNumerically(">=", fired+3))
		firing.stop()
		kubelet.stop()

		deliveries, events := firing.results()
		requests := receiver.requests()
		oldDeleted := env.deletionTime(old.ID)
		newLoaded := kubelet.firstLoaded(hook.Secret)
		GinkgoWriter.Printf("Fired %d events: %d delivery attempts, %d requests at the receiver\n",
			len(events), len(deliveries), len(requests))

		By("checking that the receiver verified every event once")
		for id, attempts := range events {
			Expect(slices.ContainsFunc(attempts, emulator.Delivery.Succeeded)).To(BeTrue(),
				"no delivery of event %s was accepted: %+v", id, attempts)
		}
		Expect(receiver.processedEvents()).To(ConsistOf(slices.Collect(maps.Keys(events))),
			"each event must be processed exactly once, although both webhooks deliver it during the overlap")

		By("checking that no delivery of the previous webhook was rejected")
		oldAttempts := 0
		for _, d := range deliveries {
			if d.WebhookID == old.ID {
				oldAttempts++
				Expect(d.Succeeded()).To(BeTrue(), "a delivery of the previous webhook got %d %s at %s", d.Status, d.Err, d.Time)
			}
		}
		Expect(oldAttempts).To(BeNumerically(">", 0))

		By("checking that both webhooks delivered verified events during the overlap")
		Expect(slices.ContainsFunc(deliveries, func(d emulator.Delivery) bool {
			return d.WebhookID == old.ID && d.Succeeded() && d.Time.After(newLoaded)
		})).To(BeTrue(), "the previous webhook delivered nothing after the receiver loaded the new secret")
		Expect(slices.ContainsFunc(deliveries, func(d emulator.Delivery) bool {
			return d.WebhookID == hook.ID && d.Succeeded() && d.Time.Before(oldDeleted)
		})).To(BeTrue(), "the new webhook delivered nothing before the previous one was deleted")

		By("checking that only the new webhook's first deliveries were rejected, before the receiver had its secret")
		signers := map[string]string{}
		for _, d := range deliveries {
			signers[d.Signature] = d.WebhookID
		}
		rejected := 0
		for _, r := range requests {
			if r.status == http.StatusOK {
				continue
			}
			rejected++
			Expect(r.status).To(Equal(http.StatusUnauthorized))
			Expect(signers[r.signature]).To(Equal(hook.ID), "a request signed by webhook %q was rejected", signers[r.signature])
			Expect(r.started).To(BeTemporally("<", newLoaded),
				"a delivery of the new webhook was rejected after the receiver loaded its secret")
		}
		GinkgoWriter.Printf("%d attempts of the new webhook were rejected before the receiver loaded its secret\n", rejected)

		By("checking the versions of the Secret that the receiver saw")
		Expect(kubelet.versions()).To(ContainElement(SatisfyAll(
			HaveKeyWithValue(keboolav1.SecretKeySigningSecret, hook.Secret),
			HaveKeyWithValue(keboolav1.SecretKeyPreviousSigningSecret, old.Secret),
			HaveKeyWithValue(keboolav1.SecretKeyPreviousWebhookID, old.ID),
		)), "the Secret never held both signing secrets")
		last := kubelet.versions()[len(kubelet.versions())-1]
		Expect(last).To(HaveKeyWithValue(keboolav1.SecretKeySigningSecret, hook.Secret))
		Expect(last).NotTo(HaveKey(keboolav1.SecretKeyPreviousSigningSecret))
		Expect(last).NotTo(HaveKey(keboolav1.SecretKeyPreviousWebhookID))
	})

	It("restarts the rollout targets only when the signing secret changes", func() {
		env := newWebhookEnv()
		deployment := newDeployment(env.namespace, "consumer")
		statefulSet := newStatefulSet(env.namespace, "archiver")
		env.newWebhook("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.RolloutTargets = []keboolav1.RolloutTarget{
				{Kind: keboolav1.RolloutTargetDeployment, Name: "consumer"},
				{Kind: keboolav1.RolloutTargetStatefulSet, Name: "archiver"},
				{Kind: keboolav1.RolloutTargetDeployment, Name: "missing"},
			}
		})

		By("restarting every target that exists when the secret is first published")
		wh := env.waitSynced("orders")
		env.expectOneConsistentWebhook("orders")
		Eventually(func(g Gomega) {
			g.Expect(env.get("orders").Status.RolloutFingerprint).To(Equal(wh.Status.SecretFingerprint))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Expect(podTemplateFingerprint(deployment)).To(Equal(wh.Status.SecretFingerprint))
		Expect(podTemplateFingerprint(statefulSet)).To(Equal(wh.Status.SecretFingerprint))
		Expect(env.expectEvent("orders", eventReasonRolloutTargetNotFound)).To(ContainSubstring(`"missing"`))
		Expect(env.expectEvent("orders", eventReasonRolledOut)).To(
			And(ContainSubstring(`Deployment "consumer"`), ContainSubstring(`StatefulSet "archiver"`)))
		Expect(isReady(env.get("orders").Status.Conditions, wh.Generation)).To(BeTrue(),
			"a missing rollout target must not keep the webhook from being Ready")

		By("leaving the targets alone on reconciles that do not change the secret")
		deploymentVersion := resourceVersion(deployment)
		statefulSetVersion := resourceVersion(statefulSet)
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = append(wh.Spec.Events, "orchestration.jobFailed")
		})
		env.waitSynced("orders")
		Consistently(func(g Gomega) {
			g.Expect(resourceVersion(deployment)).To(Equal(deploymentVersion))
			g.Expect(resourceVersion(statefulSet)).To(Equal(statefulSetVersion))
		}).WithTimeout(2 * testOptions.ResyncPeriod).WithPolling(250 * time.Millisecond).Should(Succeed())
		Expect(env.events(Default, "orders", eventReasonRolledOut)).To(HaveLen(1))

		By("restarting them again after a rotation")
		env.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.RotationToken = "rollout" })
		var rotated *keboolav1.KeboolaWebhook
		Eventually(func(g Gomega) {
			rotated = env.get("orders")
			g.Expect(rotated.Status.RotationToken).To(Equal("rollout"))
			g.Expect(rotated.Status.RolloutFingerprint).To(Equal(rotated.Status.SecretFingerprint))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Expect(rotated.Status.SecretFingerprint).NotTo(Equal(wh.Status.SecretFingerprint))
		Expect(podTemplateFingerprint(deployment)).To(Equal(rotated.Status.SecretFingerprint))
		Expect(podTemplateFingerprint(statefulSet)).To(Equal(rotated.Status.SecretFingerprint))
		env.waitSynced("orders")
	})
})

// secretVolume is a directory laid out the way the kubelet's atomic writer
// lays out a Secret volume: every key is a link "<key> -> ..data/<key>", and
// "..data" links to a hidden directory with the files of one version.
type secretVolume struct {
	dir     string
	version int
	keys    []string
}

// publish writes data as a new version, swaps "..data" to it atomically,
// updates the key links and removes the previous version.
func (v *secretVolume) publish(data map[string][]byte) error {
	v.version++
	name := fmt.Sprintf("..2024_01_15_10_35_01.%d", v.version)
	if err := os.Mkdir(filepath.Join(v.dir, name), 0o700); err != nil {
		return err
	}
	for key, value := range data {
		if err := os.WriteFile(filepath.Join(v.dir, name, key), value, 0o600); err != nil {
			return err
		}
	}

	previous, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmpLink := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(name, tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}

	for key := range data {
		if !slices.Contains(v.keys, key) {
			if err := os.Symlink(filepath.Join("..data", key), filepath.Join(v.dir, key)); err != nil {
				return err
			}
			v.keys = append(v.keys, key)
		}
	}
	for _, key := range v.keys {
		if _, ok := data[key]; !ok {
			if err := os.Remove(filepath.Join(v.dir, key)); err != nil {
				return err
			}
		}
	}
	v.keys = slices.DeleteFunc(v.keys, func(key string) bool { _, ok := data[key]; return !ok })
	if previous != "" {
		return os.RemoveAll(filepath.Join(v.dir, previous))
	}
	return nil
}

// kubelet copies a Secret into a secretVolume every kubeletSyncPeriod, as
// the kubelet does for a Pod that mounts the Secret.
type kubelet struct {
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu        sync.Mutex
	published []map[string]string
	times     []time.Time
}

func startKubelet(key types.NamespacedName, volume *secretVolume) *kubelet {
	k := &kubelet{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(k.stopped)
		var last map[string][]byte
		ticker := time.NewTicker(kubeletSyncPeriod)
		defer ticker.Stop()
		for {
			secret := &corev1.Secret{}
			if err := k8sClient.Get(testCtx, key, secret); err == nil && !maps.EqualFunc(last, secret.Data, bytes.Equal) {
				Expect(volume.publish(secret.Data)).To(Succeed())
				last = secret.Data
				k.record(secret.Data)
			}
			select {
			case <-k.done:
				return
			case <-ticker.C:
			}
		}
	}()
	return k
}

func (k *kubelet) record(data map[string][]byte) {
	version := make(map[string]string, len(data))
	for key, value := range data {
		version[key] = string(value)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.published = append(k.published, version)
	k.times = append(k.times, time.Now())
}

func (k *kubelet) stop() {
	k.once.Do(func() { close(k.done) })
	<-k.stopped
}

// versions returns the Secret's data of every version published, in order.
func (k *kubelet) versions() []map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.published)
}

// loaded reports whether the volume holds signingSecret.
func (k *kubelet) loaded(signingSecret string) bool {
	versions := k.versions()
	return len(versions) > 0 && versions[len(versions)-1][keboolav1.SecretKeySigningSecret] == signingSecret
}

// loadedOnly reports whether the volume holds signingSecret and no
// previous signing secret.
func (k *kubelet) loadedOnly(signingSecret string) bool {
	versions := k.versions()
	if len(versions) == 0 {
		return false
	}
	_, hasPrevious := versions[len(versions)-1][keboolav1.SecretKeyPreviousSigningSecret]
	return k.loaded(signingSecret) && !hasPrevious
}

// firstLoaded returns when the volume first held signingSecret under either
// key.
func (k *kubelet) firstLoaded(signingSecret string) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, version := range k.published {
		if version[keboolav1.SecretKeySigningSecret] == signingSecret ||
			version[keboolav1.SecretKeyPreviousSigningSecret] == signingSecret {
			return k.times[i]
		}
	}
	Fail("the volume never held the signing secret")
	return time.Time{}
}

// receivedRequest is one request at a recordingReceiver.
type receivedRequest struct {
	started   time.Time
	signature string
	status    int
}

// recordingReceiver verifies deliveries with the webhook package, reading
// the secrets from a mounted Secret volume, processes each event once, and
// records every request.
type recordingReceiver struct {
	server *httptest.Server

	mu        sync.Mutex
	received  []receivedRequest
	processed []string
}

func newRecordingReceiver(dir string) *recordingReceiver {
	receiver := &recordingReceiver{}
	process := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivery, _ := webhook.DeliveryFromContext(r.Context())
		receiver.mu.Lock()
		receiver.processed = append(receiver.processed, string(delivery.Event.Data.ID))
		receiver.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	dedupe := &webhook.Deduplicator{Seen: webhook.NewMemorySeenSet(10_000, time.Hour)}
	verified := webhook.Handler(webhook.NewSecretDir(dir), dedupe.Wrap(process))

	receiver.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		request := receivedRequest{started: time.Now(), signature: r.Header.Get(webhook.SignatureHeader)}
		recorder := httptest.NewRecorder()
		verified.ServeHTTP(recorder, r)
		request.status = recorder.Code
		receiver.mu.Lock()
		receiver.received = append(receiver.received, request)
		receiver.mu.Unlock()
		w.WriteHeader(recorder.Code)
	}))
	return receiver
}

func (r *recordingReceiver) requests() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// processedEvents returns the data.id of every event that reached the
// processing handler, once per time it did.
func (r *recordingReceiver) processedEvents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.processed)
}

// firing fires a storage.jobSucceeded event with a new data.id at the
// emulator project every 50ms, one after the other, until stopped.
type firing struct {
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu         sync.Mutex
	deliveries []emulator.Delivery
	events     map[string][]emulator.Delivery
}

func startFiring(projectID int64) *firing {
	f := &firing{done: make(chan struct{}), stopped: make(chan struct{}), events: map[string][]emulator.Delivery{}}
	go func() {
		defer GinkgoRecover()
		defer close(f.stopped)
		for n := 1; ; n++ {
			id := fmt.Sprintf("rotation-story-%d", n)
			attempts := emu.Fire(testCtx, projectID, "storage.jobSucceeded", map[string]any{"id": id})
			f.mu.Lock()
			f.deliveries = append(f.deliveries, attempts...)
			f.events[id] = attempts
			f.mu.Unlock()
			select {
			case <-f.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return f
}

func (f *firing) stop() {
	f.once.Do(func() { close(f.done) })
	<-f.stopped
}

func (f *firing) firedEvents() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// succeededEvents counts the events with at least one accepted delivery.
func (f *firing) succeededEvents() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, attempts := range f.events {
		if slices.ContainsFunc(attempts, emulator.Delivery.Succeeded) {
			n++
		}
	}
	return n
}

// results returns every delivery attempt, and the attempts per data.id.
func (f *firing) results() ([]emulator.Delivery, map[string][]emulator.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deliveries), maps.Clone(f.events)
}

// newDeployment creates a minimal Deployment, which envtest stores but never
// runs.
func newDeployment(namespace, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels),
		},
	}
	Expect(k8sClient.Create(testCtx, deployment)).To(Succeed())
	return deployment
}

// newStatefulSet creates a minimal StatefulSet, which envtest stores but
// never runs.
func newStatefulSet(namespace, name string) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	statefulSet := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template:    podTemplate(labels),
		},
	}
	Expect(k8sClient.Create(testCtx, statefulSet)).To(Succeed())
	return statefulSet
}

// podTemplate returns the template of a consumer that reads the signing
// secret from an environment variable.
func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "consumer",
			Image: "registry.example.com/consumer:v1",
			Env: []corev1.EnvVar{{
				Name: "KEBOOLA_SIGNING_SECRET",
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "orders-webhook-secret"},
					Key:                  keboolav1.SecretKeySigningSecret,
				}},
			}},
		}}},
	}
}

// podTemplateFingerprint reads obj again and returns the fingerprint
// annotation of its pod template.
func podTemplateFingerprint(obj client.Object) string {
	switch current := reread(obj).(type) {
	case *appsv1.Deployment:
		return current.Spec.Template.Annotations[keboolav1.AnnotationSigningSecretFingerprint]
	case *appsv1.StatefulSet:
		return current.Spec.Template.Annotations[keboolav1.AnnotationSigningSecretFingerprint]
	}
	Fail(fmt.Sprintf("unsupported workload %T", obj))
	return ""
}

// resourceVersion reads obj again and returns its resourceVersion.
func resourceVersion(obj client.Object) string {
	return reread(obj).GetResourceVersion()
}

// reread returns the current state of obj from the API server.
func reread(obj client.Object) client.Object {
	current := obj.DeepCopyObject().(client.Object)
	Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(obj), current)).To(Succeed())
	return current
}
