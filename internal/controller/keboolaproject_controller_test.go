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

	It("verifies as soon as the missing Secret is created", func() {
		_, token := newEmulatorProject()
		key := createProject("analytics", "keboola-token")

		Eventually(readyReason(key)).WithTimeout(timeout).WithPolling(interval).Should(Equal(keboolav1.ReasonSecretNotFound))
		project := getProject(key)
		Expect(conditionStatus(project, keboolav1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
		Expect(meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady).Message).
			To(ContainSubstring(`"keboola-token"`))

		// A Stalled project is not requeued, so only the watch on the
		// Secret can make it Ready, and it does so well within a resync
		// period.
		createTokenSecret("keboola-token", "token", token)
		Eventually(readyReason(key)).WithTimeout(testOptions.ResyncPeriod).WithPolling(100 * time.Millisecond).
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
