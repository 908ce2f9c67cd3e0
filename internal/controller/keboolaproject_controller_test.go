package controller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
)

var _ = Describe("KeboolaProject controller", func() {
	const (
		timeout  = 20 * time.Second
		interval = 200 * time.Millisecond
		// testHoldFinalizer keeps a KeboolaWebhook in place until a test
		// lets it go, whatever the KeboolaWebhook controller does.
		testHoldFinalizer = "test.keboola.dev/hold"
	)

	var (
		namespace string
		// tokens are the tokens a spec used. After the spec, none of them
		// may appear in the manager's log, in an Event or in a status.
		tokens []string
	)

	BeforeEach(func() {
		namespace = newNamespace()
		tokens = nil
	})

	AfterEach(func() {
		expectTokensHidden(namespace, tokens)
	})

	// createTokenSecret creates the Secret name with token under key.
	createTokenSecret := func(name, key, token string) *corev1.Secret {
		tokens = append(tokens, token)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Data:       map[string][]byte{key: []byte(token)},
		}
		Expect(k8sClient.Create(testCtx, secret)).To(Succeed())
		return secret
	}

	// createProject creates a KeboolaProject on the emulator's stack with
	// the token in Secret secretName, and deletes it after the spec, so
	// that it stops calling the emulator.
	createProject := func(name, secretName string, options ...func(*keboolav1.KeboolaProject)) types.NamespacedName {
		project := &keboolav1.KeboolaProject{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: keboolav1.KeboolaProjectSpec{
				StackURL:       emu.URL(),
				TokenSecretRef: keboolav1.SecretKeyReference{Name: secretName},
			},
		}
		for _, option := range options {
			option(project)
		}
		Expect(k8sClient.Create(testCtx, project)).To(Succeed())
		key := client.ObjectKeyFromObject(project)
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, &keboolav1.KeboolaProject{
				ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			}))).To(Succeed())
		})
		return key
	}

	getProject := func(key types.NamespacedName) *keboolav1.KeboolaProject {
		project := &keboolav1.KeboolaProject{}
		Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
		return project
	}

	// readyReason returns the reason of the Ready condition of the current
	// generation, or "" when there is none.
	readyReason := func(key types.NamespacedName) func(Gomega) string {
		return func(g Gomega) string {
			project := &keboolav1.KeboolaProject{}
			g.Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
			ready := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady)
			if ready == nil || ready.ObservedGeneration != project.Generation {
				return ""
			}
			return ready.Reason
		}
	}

	// verifyRequests returns the number of token verifications that the
	// emulator received for the token with id tokenID. An unknown token has
	// the id "".
	verifyRequests := func(tokenID string) int {
		count := 0
		for _, request := range emu.Requests() {
			if request.Endpoint == emulator.EndpointVerify && request.TokenID == tokenID {
				count++
			}
		}
		return count
	}

	conditionStatus := func(project *keboolav1.KeboolaProject, conditionType string) metav1.ConditionStatus {
		condition := meta.FindStatusCondition(project.Status.Conditions, conditionType)
		if condition == nil {
			return ""
		}
		return condition.Status
	}

	It("records a verified token in status", func() {
		projectID, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

		project := getProject(key)
		Expect(project.Status.ObservedGeneration).To(Equal(project.Generation))
		Expect(project.Status.StackURL).To(Equal(emu.URL()))
		Expect(project.Status.ProjectID).To(Equal(projectID))
		Expect(project.Status.ProjectName).To(Equal(fmt.Sprintf("Project %d", projectID)))
		Expect(project.Status.Region).To(Equal("eu-central-1"))
		Expect(project.Status.TokenID).To(Equal(fmt.Sprintf("%d", projectID*10)))
		Expect(project.Status.TokenDescription).To(Equal("operator test token"))
		Expect(project.Status.TokenExpiresAt).To(BeNil())
		Expect(project.Status.TokenFingerprint).To(Equal(fingerprint([]byte(token))))
		Expect(project.Status.LastVerifiedTime).NotTo(BeNil())
		Expect(project.Status.TokenSecretName).To(BeEmpty())
		Expect(conditionStatus(project, keboolav1.ConditionReady)).To(Equal(metav1.ConditionTrue))
		Expect(conditionStatus(project, keboolav1.ConditionReconciling)).To(BeEmpty())
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(BeEmpty())
		Expect(conditionStatus(project, keboolav1.ConditionTokenExpiringSoon)).To(Equal(metav1.ConditionFalse))
		Expect(project.Finalizers).To(BeEmpty())

		Eventually(func(g Gomega) []string {
			return eventReasons(g, namespace, key.Name)
		}).WithTimeout(timeout).WithPolling(interval).Should(ContainElement(keboolav1.ReasonVerified))
	})

	It("verifies a missing Secret once created", func() {
		_, token := newEmulatorProject()
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonSecretNotFound))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady).Message).
			To(ContainSubstring(`"keboola-token"`))

		// A Secret without the token Secret label is not watched, so the
		// project finds it by polling, once per resync period here.
		createTokenSecret("keboola-token", "token", token)
		poll := missingTokenSecretPollInterval(testOptions.ResyncPeriod)
		Eventually(readyReason(key)).WithTimeout(poll + poll/10 + 2*time.Second).WithPolling(100 * time.Millisecond).
			Should(Equal(keboolav1.ReasonVerified))
	})

	It("verifies a labeled missing Secret at once", func() {
		_, token := newEmulatorProject()
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(50 * time.Millisecond).Should(Equal(keboolav1.ReasonSecretNotFound))
		// The project's next poll is one resync period after its last
		// pass. Once the passes that its creation triggered are over, only
		// the watch of labeled Secrets can make it Ready sooner.
		time.Sleep(500 * time.Millisecond)

		tokens = append(tokens, token)
		Expect(k8sClient.Create(testCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace,
				Name:      "keboola-token",
				Labels:    map[string]string{keboolav1.LabelTokenSecret: "yes"},
			},
			Data: map[string][]byte{"token": []byte(token)},
		})).To(Succeed())
		Eventually(readyReason(key)).WithTimeout(testOptions.ResyncPeriod / 2).WithPolling(50 * time.Millisecond).
			Should(Equal(keboolav1.ReasonVerified))
	})

	It("verifies a token replaced in place", func() {
		firstID, firstToken := newEmulatorProject()
		secret := createTokenSecret("keboola-token", "token", firstToken)
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
		Expect(getProject(key).Status.ProjectID).To(Equal(firstID))

		secondID, secondToken := newEmulatorProject()
		tokens = append(tokens, secondToken)
		// The operator has labeled the Secret since it was created.
		Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		secret.Data["token"] = []byte(secondToken)
		Expect(k8sClient.Update(testCtx, secret)).To(Succeed())

		Eventually(func(g Gomega) {
			project := &keboolav1.KeboolaProject{}
			g.Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
			g.Expect(project.Status.TokenFingerprint).To(Equal(fingerprint([]byte(secondToken))))
			g.Expect(project.Status.ProjectID).To(Equal(secondID))
			g.Expect(project.Status.TokenID).To(Equal(fmt.Sprintf("%d", secondID*10)))
			g.Expect(isReady(project.Status.Conditions, project.Generation)).To(BeTrue())
		}).WithTimeout(testOptions.ResyncPeriod).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	It("stalls on a token of another project", func() {
		projectID, _ := newEmulatorProject()
		otherID, otherToken := newEmulatorProject()
		createTokenSecret("keboola-token", "token", otherToken)
		key := createProject("analytics", "keboola-token", func(p *keboolav1.KeboolaProject) {
			p.Spec.ExpectedProjectID = &projectID
		})

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonProjectMismatch))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(conditionStatus(project, keboolav1.ConditionReconciling)).To(BeEmpty())
		message := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady).Message
		Expect(message).To(ContainSubstring(fmt.Sprint(projectID)))
		Expect(message).To(ContainSubstring(fmt.Sprint(otherID)))
		Expect(project.Status.ProjectID).To(Equal(otherID))
		Expect(project.Status.LastVerifiedTime).To(BeNil())

		Eventually(func(g Gomega) []string {
			return eventReasons(g, namespace, key.Name)
		}).WithTimeout(timeout).WithPolling(interval).Should(ContainElement(keboolav1.ReasonProjectMismatch))
	})

	It("stalls on a rejected token without retrying", func() {
		token := fmt.Sprintf("unknown-token-%d", time.Now().UnixNano())
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonUnauthorized))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(conditionStatus(project, keboolav1.ConditionReconciling)).To(BeEmpty())
		Expect(project.Status.ProjectID).To(BeZero())
		Expect(project.Status.TokenFingerprint).To(Equal(fingerprint([]byte(token))))

		// Only this spec sends an unknown token, so the requests without a
		// token id are its own. Over more than a resync period, not one
		// more verification may follow.
		before := verifyRequests("")
		Consistently(func() int {
			return verifyRequests("")
		}).WithTimeout(testOptions.ResyncPeriod + time.Second).WithPolling(250 * time.Millisecond).Should(Equal(before))
		Expect(readyReason(key)(Default)).To(Equal(keboolav1.ReasonUnauthorized))
	})

	It("stalls when the Secret lacks the token key", func() {
		_, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token", func(p *keboolav1.KeboolaProject) {
			p.Spec.TokenSecretRef.Key = "storage-token"
		})

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonSecretKeyMissing))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		message := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady).Message
		Expect(message).To(ContainSubstring(`"keboola-token"`))
		Expect(message).To(ContainSubstring(`"storage-token"`))
	})

	It("warns about an expiring token and stalls once it expired", func() {
		projectID := 1000 + projectIDs.Add(1)
		emu.AddProject(emulator.Project{ID: projectID, Name: fmt.Sprintf("Project %d", projectID), Region: "eu-central-1"})
		// The Storage API sends times in whole seconds.
		expires := time.Now().Truncate(time.Second).Add(5 * time.Second)
		token := fmt.Sprintf("%d-expiring-token-%d", projectID, time.Now().UnixNano())
		emu.AddToken(token, emulator.Token{ID: fmt.Sprint(projectID * 10), ProjectID: projectID, Expires: &expires})
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
		project := getProject(key)
		Expect(project.Status.TokenExpiresAt).NotTo(BeNil())
		Expect(project.Status.TokenExpiresAt.Time.Equal(expires)).To(BeTrue())
		expiring := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionTokenExpiringSoon)
		Expect(expiring).NotTo(BeNil())
		Expect(expiring.Status).To(Equal(metav1.ConditionTrue))
		Expect(expiring.Reason).To(Equal(keboolav1.ReasonTokenExpiringSoon))
		Expect(expiring.Message).To(ContainSubstring(expires.UTC().Format(time.RFC3339)))
		Eventually(func(g Gomega) []string {
			return eventReasons(g, namespace, key.Name)
		}).WithTimeout(timeout).WithPolling(interval).Should(ContainElement(keboolav1.ReasonTokenExpiringSoon))

		// The controller schedules a reconcile for the moment of expiry.
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonTokenExpired))
		project = getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionTokenExpiringSoon).Reason).
			To(Equal(keboolav1.ReasonTokenExpired))
	})

	It("stalls on an expired token", func() {
		projectID := 1000 + projectIDs.Add(1)
		emu.AddProject(emulator.Project{ID: projectID, Name: fmt.Sprintf("Project %d", projectID)})
		expired := time.Now().Add(-time.Hour)
		token := fmt.Sprintf("%d-expired-token-%d", projectID, time.Now().UnixNano())
		emu.AddToken(token, emulator.Token{ID: fmt.Sprint(projectID * 10), ProjectID: projectID, Expires: &expired})
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonTokenExpired))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(conditionStatus(project, keboolav1.ConditionReconciling)).To(BeEmpty())
		Expect(project.Status.LastVerifiedTime).To(BeNil())
	})

	It("keeps the project details while the Storage API fails, then recovers", func() {
		projectID, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

		DeferCleanup(emu.ClearFaults)
		for _, tc := range []struct {
			fault  emulator.Fault
			reason string
		}{
			{emulator.Fault{Endpoint: emulator.EndpointVerify, Status: http.StatusInternalServerError}, keboolav1.ReasonAPIUnavailable},
			{emulator.Fault{Endpoint: emulator.EndpointVerify, Status: http.StatusServiceUnavailable, RetryAfter: time.Second}, keboolav1.ReasonRateLimited},
		} {
			By(fmt.Sprintf("failing verifications with HTTP %d", tc.fault.Status))
			emu.InjectFault(tc.fault)

			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(tc.reason))
			project := getProject(key)
			Expect(conditionStatus(project, keboolav1.ConditionReady)).To(Equal(metav1.ConditionFalse))
			Expect(conditionStatus(project, keboolav1.ConditionReconciling)).To(Equal(metav1.ConditionTrue))
			Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(BeEmpty())
			Expect(project.Status.ProjectID).To(Equal(projectID))
			Expect(project.Status.TokenFingerprint).To(Equal(fingerprint([]byte(token))))

			emu.ClearFaults()
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
		}
	})

	It("makes no status writes while idle", func() {
		projectID, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

		// Let the write that made the project Ready settle.
		time.Sleep(time.Second)
		resourceVersion := getProject(key).ResourceVersion
		tokenID := fmt.Sprint(projectID * 10)
		before := verifyRequests(tokenID)

		window := 2*testOptions.ResyncPeriod + time.Second
		Consistently(func() string {
			return getProject(key).ResourceVersion
		}).WithTimeout(window).WithPolling(250 * time.Millisecond).Should(Equal(resourceVersion))

		// Each resync verifies once: at least one resync fell into the
		// window, and at most one per started resync period.
		verifications := verifyRequests(tokenID) - before
		Expect(verifications).To(BeNumerically(">=", 1))
		Expect(verifications).To(BeNumerically("<=", 3))
	})

	It("keeps the Secret and the project until their KeboolaWebhooks are gone", func() {
		_, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

		webhook := &keboolav1.KeboolaWebhook{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:  namespace,
				Name:       "job-failures",
				Finalizers: []string{testHoldFinalizer},
			},
			Spec: keboolav1.KeboolaWebhookSpec{
				ProjectRef: keboolav1.ProjectReference{Name: key.Name},
				URL:        "http://127.0.0.1:9/hooks/keboola",
				Events:     []string{"storage.jobFailed"},
			},
		}
		Expect(k8sClient.Create(testCtx, webhook)).To(Succeed())
		secretKey := types.NamespacedName{Namespace: namespace, Name: "keboola-token"}

		By("protecting the project and its token Secret")
		Eventually(func(g Gomega) {
			project := &keboolav1.KeboolaProject{}
			g.Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
			g.Expect(project.Finalizers).To(ContainElement(webhooksProtectionFinalizer))
			g.Expect(project.Status.TokenSecretName).To(Equal("keboola-token"))
			secret := &corev1.Secret{}
			g.Expect(k8sClient.Get(testCtx, secretKey, secret)).To(Succeed())
			g.Expect(secret.Finalizers).To(ContainElement(credentialsProtectionFinalizer))
		}).WithTimeout(timeout).WithPolling(interval).Should(Succeed())

		By("deleting the Secret first, as a namespace deletion may")
		Expect(k8sClient.Delete(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: "keboola-token",
		}})).To(Succeed())
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(testCtx, secretKey, secret)).To(Succeed())
		Expect(secret.DeletionTimestamp).NotTo(BeNil())
		Expect(string(secret.Data["token"])).To(Equal(token))

		By("deleting the project")
		Expect(k8sClient.Delete(testCtx, getProject(key))).To(Succeed())
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonWebhooksRemain))
		project := getProject(key)
		Expect(project.DeletionTimestamp).NotTo(BeNil())
		Expect(meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady).Message).
			To(ContainSubstring("1 KeboolaWebhook refers"))
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(testCtx, key, &keboolav1.KeboolaProject{})).To(Succeed())
			current := &corev1.Secret{}
			g.Expect(k8sClient.Get(testCtx, secretKey, current)).To(Succeed())
			g.Expect(string(current.Data["token"])).To(Equal(token))
		}).WithTimeout(time.Second).WithPolling(interval).Should(Succeed())

		By("deleting the KeboolaWebhook")
		Expect(k8sClient.Delete(testCtx, webhook)).To(Succeed())
		Eventually(func(g Gomega) {
			current := &keboolav1.KeboolaWebhook{}
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(webhook), current)).To(Succeed())
			base := current.DeepCopy()
			controllerutil.RemoveFinalizer(current, testHoldFinalizer)
			g.Expect(k8sClient.Patch(testCtx, current, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))).To(Succeed())
		}).WithTimeout(timeout).WithPolling(interval).Should(Succeed())

		Eventually(func() bool {
			err := k8sClient.Get(testCtx, client.ObjectKeyFromObject(webhook), &keboolav1.KeboolaWebhook{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(timeout).WithPolling(interval).Should(BeTrue(), "the KeboolaWebhook is not gone")
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(testCtx, key, &keboolav1.KeboolaProject{}))
		}).WithTimeout(timeout).WithPolling(interval).Should(BeTrue(), "the KeboolaProject is not gone")
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(testCtx, secretKey, &corev1.Secret{}))
		}).WithTimeout(timeout).WithPolling(interval).Should(BeTrue(), "the token Secret is not gone")
	})

	It("batches webhook counts during a burst", func() {
		_, token := newEmulatorProject()
		createTokenSecret("keboola-token", "token", token)
		key := createProject("analytics", "keboola-token")
		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

		// Paused webhooks make no call to Keboola, so only the project's
		// work is measured.
		newPausedWebhook := func(name string) *keboolav1.KeboolaWebhook {
			return &keboolav1.KeboolaWebhook{
				ObjectMeta: metav1.ObjectMeta{
					Namespace:   namespace,
					Name:        name,
					Annotations: map[string]string{keboolav1.AnnotationPaused: "true"},
				},
				Spec: keboolav1.KeboolaWebhookSpec{
					ProjectRef: keboolav1.ProjectReference{Name: key.Name},
					URL:        "http://127.0.0.1:9/hooks/keboola",
					Events:     []string{"storage.jobFailed"},
				},
			}
		}
		webhookCount := func(g Gomega) int32 {
			project := &keboolav1.KeboolaProject{}
			g.Expect(k8sClient.Get(testCtx, key, project)).To(Succeed())
			if project.Status.Webhooks == nil {
				return 0
			}
			return project.Status.Webhooks.Count
		}

		DeferCleanup(func() {
			Expect(k8sClient.DeleteAllOf(testCtx, &keboolav1.KeboolaWebhook{}, client.InNamespace(namespace))).To(Succeed())
		})

		By("letting the first webhook protect the project")
		Expect(k8sClient.Create(testCtx, newPausedWebhook("hook-00"))).To(Succeed())
		Eventually(webhookCount).WithTimeout(timeout).WithPolling(interval).Should(BeEquivalentTo(1))
		Eventually(func(g Gomega) []string {
			return getProject(key).Finalizers
		}).WithTimeout(timeout).WithPolling(interval).Should(ContainElement(webhooksProtectionFinalizer))

		By("creating more webhooks in a burst while watching the project")
		watcher, err := client.NewWithWatch(cfg, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		projectWatch, err := watcher.Watch(testCtx, &keboolav1.KeboolaProjectList{},
			client.InNamespace(namespace), client.MatchingFields{"metadata.name": key.Name})
		Expect(err).NotTo(HaveOccurred())
		defer projectWatch.Stop()

		// The burst lasts about three delays, so that passes of the project
		// fall inside it.
		const burst = 40
		const gap = 75 * time.Millisecond
		start := time.Now()
		for i := 1; i <= burst; i++ {
			Expect(k8sClient.Create(testCtx, newPausedWebhook(fmt.Sprintf("hook-%02d", i)))).To(Succeed())
			time.Sleep(gap)
		}
		elapsed := time.Since(start)
		Eventually(webhookCount).WithTimeout(timeout).WithPolling(interval).Should(BeEquivalentTo(burst + 1))

		// Count the project's updates until it is quiet. The watch starts
		// with an ADDED event for the project as it is.
		updates := 0
		for quiet := false; !quiet; {
			select {
			case e := <-projectWatch.ResultChan():
				if e.Type == watch.Modified {
					updates++
				}
			case <-time.After(2 * webhookCountDelay):
				quiet = true
			}
		}
		// One pass per delay while the burst lasts, one right after it, and
		// one more in case the first pass came just before the burst.
		maxUpdates := int(elapsed/webhookCountDelay) + 3
		Expect(updates).To(BeNumerically("<=", maxUpdates),
			"%d webhooks created in %s caused %d updates of the project", burst, elapsed, updates)
		Expect(updates).To(BeNumerically(">=", 1))
	})

	Context("token Secret label", func() {
		secretKey := func(name string) types.NamespacedName {
			return types.NamespacedName{Namespace: namespace, Name: name}
		}

		secretLabels := func(name string) func(Gomega) map[string]string {
			return func(g Gomega) map[string]string {
				secret := &corev1.Secret{}
				g.Expect(k8sClient.Get(testCtx, secretKey(name), secret)).To(Succeed())
				return secret.Labels
			}
		}
		hasLabel := func(name string) func(Gomega) bool {
			return func(g Gomega) bool {
				_, ok := secretLabels(name)(g)[keboolav1.LabelTokenSecret]
				return ok
			}
		}

		// cachedSecretNames returns the names of the Secrets of the
		// namespace in the KeboolaProject controller's token Secret cache.
		cachedSecretNames := func(g Gomega) []string {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
			g.Expect(projectReconciler.tokenSecrets.List(testCtx, list, client.InNamespace(namespace))).To(Succeed())
			names := []string{}
			for _, item := range list.Items {
				names = append(names, item.Name)
			}
			return names
		}

		// awaitPeriodicVerification waits until the token with id tokenID
		// is verified once more. The next periodic verification of its
		// project is then at least one resync period away.
		awaitPeriodicVerification := func(tokenID string) {
			before := verifyRequests(tokenID)
			Eventually(func() int {
				return verifyRequests(tokenID)
			}).WithTimeout(2 * testOptions.ResyncPeriod).WithPolling(20 * time.Millisecond).Should(BeNumerically(">", before))
		}

		deleteProject := func(key types.NamespacedName) {
			Expect(k8sClient.Delete(testCtx, getProject(key))).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(testCtx, key, &keboolav1.KeboolaProject{}))
			}).WithTimeout(timeout).WithPolling(interval).Should(BeTrue(), "the KeboolaProject is not gone")
		}

		It("labels the token Secret without idle writes", func() {
			_, token := newEmulatorProject()
			createTokenSecret("keboola-token", "token", token)
			key := createProject("analytics", "keboola-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

			Eventually(secretLabels("keboola-token")).WithTimeout(timeout).WithPolling(interval).
				Should(HaveKeyWithValue(keboolav1.LabelTokenSecret, keboolav1.TokenSecretValue))
			secret := &corev1.Secret{}
			Expect(k8sClient.Get(testCtx, secretKey("keboola-token"), secret)).To(Succeed())
			Expect(secret.Finalizers).NotTo(ContainElement(credentialsProtectionFinalizer),
				"no KeboolaWebhook needs the token yet")

			// Let the label's watch event and its pass settle.
			time.Sleep(time.Second)
			Expect(k8sClient.Get(testCtx, secretKey("keboola-token"), secret)).To(Succeed())
			resourceVersion := secret.ResourceVersion
			Consistently(func(g Gomega) string {
				current := &corev1.Secret{}
				g.Expect(k8sClient.Get(testCtx, secretKey("keboola-token"), current)).To(Succeed())
				return current.ResourceVersion
			}).WithTimeout(2*testOptions.ResyncPeriod + time.Second).WithPolling(250 * time.Millisecond).Should(Equal(resourceVersion))
		})

		It("verifies a changed labeled token at once", func() {
			firstID, firstToken := newEmulatorProject()
			secret := createTokenSecret("keboola-token", "token", firstToken)
			key := createProject("analytics", "keboola-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Eventually(hasLabel("keboola-token")).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())

			awaitPeriodicVerification(fmt.Sprint(firstID * 10))

			secondID, secondToken := newEmulatorProject()
			tokens = append(tokens, secondToken)
			Expect(k8sClient.Get(testCtx, secretKey("keboola-token"), secret)).To(Succeed())
			secret.Data["token"] = []byte(secondToken)
			Expect(k8sClient.Update(testCtx, secret)).To(Succeed())

			// Half a resync period is well before the next periodic
			// verification, so only the watch can explain the new status.
			Eventually(func(g Gomega) {
				project := getProject(key)
				g.Expect(project.Status.TokenFingerprint).To(Equal(fingerprint([]byte(secondToken))))
				g.Expect(project.Status.ProjectID).To(Equal(secondID))
			}).WithTimeout(testOptions.ResyncPeriod / 2).WithPolling(50 * time.Millisecond).Should(Succeed())
		})

		It("puts a removed label back at once", func() {
			projectID, token := newEmulatorProject()
			createTokenSecret("keboola-token", "token", token)
			key := createProject("analytics", "keboola-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Eventually(hasLabel("keboola-token")).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())

			awaitPeriodicVerification(fmt.Sprint(projectID * 10))

			// The Secret leaves the selection of the label-selected watch,
			// which reports that as a deletion.
			secret := &corev1.Secret{}
			Expect(k8sClient.Get(testCtx, secretKey("keboola-token"), secret)).To(Succeed())
			delete(secret.Labels, keboolav1.LabelTokenSecret)
			Expect(k8sClient.Update(testCtx, secret)).To(Succeed())

			Eventually(hasLabel("keboola-token")).WithTimeout(testOptions.ResyncPeriod / 2).WithPolling(50 * time.Millisecond).
				Should(BeTrue())
		})

		It("removes the label with the last project", func() {
			_, token := newEmulatorProject()
			createTokenSecret("keboola-token", "token", token)
			first := createProject("analytics", "keboola-token")
			second := createProject("reporting", "keboola-token")
			Eventually(readyReason(first)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Eventually(readyReason(second)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Eventually(hasLabel("keboola-token")).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())

			By("deleting one of the two projects that use the Secret")
			deleteProject(first)
			Consistently(hasLabel("keboola-token")).WithTimeout(time.Second).WithPolling(interval).Should(BeTrue())

			By("deleting the other one")
			deleteProject(second)
			Eventually(hasLabel("keboola-token")).WithTimeout(timeout).WithPolling(interval).Should(BeFalse())
			Eventually(cachedSecretNames).WithTimeout(timeout).WithPolling(interval).Should(BeEmpty())
		})

		It("keeps a label set by others", func() {
			_, token := newEmulatorProject()
			tokens = append(tokens, token)
			Expect(k8sClient.Create(testCtx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: namespace,
					Name:      "keboola-token",
					Labels:    map[string]string{keboolav1.LabelTokenSecret: "gitops"},
				},
				Data: map[string][]byte{"token": []byte(token)},
			})).To(Succeed())
			key := createProject("analytics", "keboola-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Expect(secretLabels("keboola-token")(Default)).To(HaveKeyWithValue(keboolav1.LabelTokenSecret, "gitops"))

			deleteProject(key)
			Consistently(secretLabels("keboola-token")).WithTimeout(2 * time.Second).WithPolling(interval).
				Should(HaveKeyWithValue(keboolav1.LabelTokenSecret, "gitops"))
		})

		It("moves the label to a new Secret", func() {
			_, token := newEmulatorProject()
			createTokenSecret("old-token", "token", token)
			createTokenSecret("new-token", "token", token)
			key := createProject("analytics", "old-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))
			Eventually(hasLabel("old-token")).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())

			project := getProject(key)
			project.Spec.TokenSecretRef.Name = "new-token"
			Expect(k8sClient.Update(testCtx, project)).To(Succeed())

			Eventually(hasLabel("new-token")).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())
			Eventually(hasLabel("old-token")).WithTimeout(timeout).WithPolling(interval).Should(BeFalse())
		})

		It("caches no unrelated Secret", func() {
			_, token := newEmulatorProject()
			createTokenSecret("keboola-token", "token", token)
			Expect(k8sClient.Create(testCtx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "unrelated"},
				Data:       map[string][]byte{"password": []byte("not a token")},
			})).To(Succeed())
			key := createProject("analytics", "keboola-token")
			Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonVerified))

			Eventually(cachedSecretNames).WithTimeout(timeout).WithPolling(interval).Should(Equal([]string{"keboola-token"}))
			// Give a watch event of the unrelated Secret, if one came, time
			// to reach the cache.
			Consistently(cachedSecretNames).WithTimeout(time.Second).WithPolling(interval).Should(Equal([]string{"keboola-token"}))

			err := projectReconciler.tokenSecrets.Get(testCtx, secretKey("unrelated"), newSecretMetadata())
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the unrelated Secret is in the token Secret cache: %v", err)
		})
	})
})

// eventReasons returns the reasons of the Events about the KeboolaProject
// name in namespace.
func eventReasons(g Gomega, namespace, name string) []string {
	var events eventsv1.EventList
	g.Expect(k8sClient.List(testCtx, &events, client.InNamespace(namespace))).To(Succeed())
	var reasons []string
	for _, event := range events.Items {
		if event.Regarding.Kind == "KeboolaProject" && event.Regarding.Name == name {
			reasons = append(reasons, event.Reason)
		}
	}
	return reasons
}

// expectTokensHidden fails when one of tokens appears in the manager's log,
// in an Event in namespace, or in the status of a KeboolaProject in
// namespace.
func expectTokensHidden(namespace string, tokens []string) {
	GinkgoHelper()
	if len(tokens) == 0 {
		return
	}

	var events eventsv1.EventList
	Expect(k8sClient.List(testCtx, &events, client.InNamespace(namespace))).To(Succeed())
	eventsJSON, err := json.Marshal(events.Items)
	Expect(err).NotTo(HaveOccurred())

	var projects keboolav1.KeboolaProjectList
	Expect(k8sClient.List(testCtx, &projects, client.InNamespace(namespace))).To(Succeed())
	var statuses []keboolav1.KeboolaProjectStatus
	for _, project := range projects.Items {
		statuses = append(statuses, project.Status)
	}
	statusJSON, err := json.Marshal(statuses)
	Expect(err).NotTo(HaveOccurred())

	logs := logSink.String()
	for _, token := range tokens {
		Expect(strings.Contains(logs, token)).To(BeFalse(), "the manager logged a token")
		Expect(strings.Contains(string(eventsJSON), token)).To(BeFalse(), "an Event contains a token")
		Expect(strings.Contains(string(statusJSON), token)).To(BeFalse(), "a KeboolaProject status contains a token")
	}
}
