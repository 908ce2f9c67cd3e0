package controller

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
)

// accessLabel is the namespace label that the shared projects of these
// stories select. Each story matches it against a value of its own, the name
// of its platform namespace, so that namespaces of other stories never match.
const accessLabel = "keboola.dev/test-access"

// teamUser is the user whose permissions the RBAC story checks.
const teamUser = "team-developer"

var _ = Describe("KeboolaProject shared across namespaces", func() {
	It("serves an allowed namespace and rejects another", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = selectAccessLabel(p.Namespace)
		})
		allowed := shared.newTeam(map[string]string{accessLabel: shared.namespace})
		rejected := shared.newTeam(map[string]string{accessLabel: "other"})

		By("serving the allowed namespace")
		allowed.newWebhook("orders")
		allowed.waitSynced("orders")
		hook := allowed.expectOneConsistentWebhook("orders")

		By("rejecting the other namespace without a call to Keboola")
		rejected.newWebhook("orders")
		wh := rejected.waitReason("orders", keboolav1.ReasonProjectNotAllowed, webhookWait)
		stalledCondition := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionStalled)
		Expect(stalledCondition).NotTo(BeNil())
		Expect(stalledCondition.Status).To(Equal(metav1.ConditionTrue))
		Expect(stalledCondition.Message).To(ContainSubstring(fmt.Sprintf("KeboolaProject %q", shared.key().String())))
		Expect(stalledCondition.Message).To(ContainSubstring(fmt.Sprintf("namespace %q", rejected.namespace)))
		Expect(wh.Status.WebhookID).To(BeEmpty())
		rejected.expectEvent("orders", keboolav1.ReasonProjectNotAllowed)

		Consistently(func(g Gomega) {
			webhooks := shared.emulatorWebhooks()
			g.Expect(webhooks).To(HaveLen(1))
			g.Expect(webhooks[0].ID).To(Equal(hook.ID))
			g.Expect(shared.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(1))
		}).WithTimeout(testOptions.ResyncPeriod).WithPolling(webhookPoll).Should(Succeed())
		err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: rejected.namespace, Name: wh.Status.SecretName}, &corev1.Secret{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a rejected KeboolaWebhook got a Secret: %v", err)

		By("keeping the token in the platform namespace")
		for _, namespace := range []string{allowed.namespace, rejected.namespace} {
			var secrets corev1.SecretList
			Expect(k8sClient.List(testCtx, &secrets, client.InNamespace(namespace))).To(Succeed())
			for _, secret := range secrets.Items {
				for key, value := range secret.Data {
					Expect(string(value)).NotTo(ContainSubstring(shared.token),
						"Secret %s/%s contains the token under key %q", namespace, secret.Name, key)
				}
			}
		}

		By("counting the KeboolaWebhooks of the project and protecting it")
		shared.expectUsage(2, 2)
		project := shared.keboolaProject()
		Expect(project.Finalizers).To(ContainElement(webhooksProtectionFinalizer))
		Expect(project.Status.TokenSecretName).To(Equal("keboola-token"))
		tokenSecret := &corev1.Secret{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: shared.namespace, Name: "keboola-token"}, tokenSecret)).To(Succeed())
		Expect(tokenSecret.Finalizers).To(ContainElement(credentialsProtectionFinalizer))
	})

	It("freezes a webhook whose access is revoked and still deletes it", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}
		})
		team := shared.newTeam(nil)
		team.newWebhook("orders")
		team.waitSynced("orders")
		hook := team.expectOneConsistentWebhook("orders")

		By("revoking the access")
		shared.change(func(p *keboolav1.KeboolaProject) { p.Spec.AllowedNamespaces = nil })
		team.waitReason("orders", keboolav1.ReasonProjectNotAllowed, webhookWait)

		By("changing the URL, which the operator no longer applies")
		puts := shared.count(http.MethodPut, emulator.EndpointWebhook)
		team.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.URL = "https://127.0.0.1:9443/hooks/changed" })
		Eventually(func(g Gomega) {
			wh := team.get("orders")
			g.Expect(wh.Status.ObservedGeneration).To(Equal(wh.Generation))
			g.Expect(readyReason(wh.Status.Conditions)).To(Equal(keboolav1.ReasonProjectNotAllowed))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
		Consistently(func(g Gomega) {
			stored, exists := emu.Webhook(shared.projectID, hook.ID)
			g.Expect(exists).To(BeTrue())
			g.Expect(stored.URL).To(Equal(hook.URL))
			g.Expect(shared.count(http.MethodPut, emulator.EndpointWebhook)).To(Equal(puts))
		}).WithTimeout(2 * testOptions.ResyncPeriod).WithPolling(webhookPoll).Should(Succeed())

		By("deleting the KeboolaWebhook, which deletes its webhook at Keboola")
		Expect(k8sClient.Delete(testCtx, team.get("orders"))).To(Succeed())
		team.expectGone("orders", webhookWait)
		_, exists := emu.Webhook(shared.projectID, hook.ID)
		Expect(exists).To(BeFalse(), "webhook %s is still at the emulator", hook.ID)
		Expect(shared.emulatorWebhooks()).To(BeEmpty())

		By("releasing the project")
		shared.expectUsage(0, 0)
		Eventually(func(g Gomega) {
			g.Expect(shared.keboolaProject().Finalizers).NotTo(ContainElement(webhooksProtectionFinalizer))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
	})

	It("grants access when a namespace label changes", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = selectAccessLabel(p.Namespace)
		})
		team := shared.newTeam(map[string]string{"team": "reporting"})
		team.newWebhook("orders")
		team.waitReason("orders", keboolav1.ReasonProjectNotAllowed, webhookWait)
		Expect(shared.emulatorWebhooks()).To(BeEmpty())

		By("labelling the namespace")
		setNamespaceLabels(team.namespace, map[string]string{"team": "reporting", accessLabel: shared.namespace})
		team.waitSynced("orders")
		team.expectOneConsistentWebhook("orders")

		By("removing the label again")
		setNamespaceLabels(team.namespace, map[string]string{"team": "reporting"})
		team.waitReason("orders", keboolav1.ReasonProjectNotAllowed, webhookWait)
	})

	It("serves the oldest KeboolaWebhooks up to maxWebhooks", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}
			p.Spec.MaxWebhooks = ptr.To[int32](2)
		})
		team := shared.newTeam(nil)
		views := map[string]*webhookEnv{shared.namespace: shared.webhookEnv, team.namespace: team.webhookEnv}

		shared.newWebhook("first")
		shared.waitSynced("first")
		team.newWebhook("second")
		team.waitSynced("second")
		// creationTimestamp has a resolution of one second, and the third
		// KeboolaWebhook must be the youngest whatever its name.
		time.Sleep(1100 * time.Millisecond)
		team.newWebhook("third")

		By("rejecting the third without a call to Keboola")
		third := team.waitReason("third", keboolav1.ReasonQuotaExceeded, webhookWait)
		Expect(meta.FindStatusCondition(third.Status.Conditions, keboolav1.ConditionReady).Message).
			To(And(ContainSubstring("at most 2"), ContainSubstring(shared.key().String())))
		Expect(meta.IsStatusConditionTrue(third.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		team.expectEvent("third", keboolav1.ReasonQuotaExceeded)
		Consistently(func(g Gomega) {
			g.Expect(shared.emulatorWebhooks()).To(HaveLen(2))
			g.Expect(shared.count(http.MethodPost, emulator.EndpointWebhooks)).To(Equal(2))
			g.Expect(team.get("third").Status.WebhookID).To(BeEmpty())
		}).WithTimeout(testOptions.ResyncPeriod).WithPolling(webhookPoll).Should(Succeed())
		err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: team.namespace, Name: third.Status.SecretName}, &corev1.Secret{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a KeboolaWebhook beyond the limit got a Secret: %v", err)

		By("lowering the limit to one, which the older of the first two keeps")
		first, second := shared.get("first"), team.get("second")
		older, newer := first, second
		if ranksBefore(second, first) {
			older, newer = second, first
		}
		shared.change(func(p *keboolav1.KeboolaProject) { p.Spec.MaxWebhooks = ptr.To[int32](1) })
		views[newer.Namespace].waitReason(newer.Name, keboolav1.ReasonQuotaExceeded, webhookWait)
		views[older.Namespace].waitSynced(older.Name)
		_, exists := emu.Webhook(shared.projectID, newer.Status.WebhookID)
		Expect(exists).To(BeTrue(), "the webhook beyond the limit was deleted at Keboola")

		By("raising the limit to three")
		shared.change(func(p *keboolav1.KeboolaProject) { p.Spec.MaxWebhooks = ptr.To[int32](3) })
		shared.waitSynced("first")
		team.waitSynced("second")
		team.waitSynced("third")
		Expect(shared.emulatorWebhooks()).To(HaveLen(3))
		shared.expectUsage(3, 2)
	})

	It("rejects events that the project does not allow", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}
			p.Spec.AllowedEvents = []string{"storage.jobFailed"}
		})
		team := shared.newTeam(nil)

		By("rejecting a webhook that requests another event type")
		team.newWebhook("orders", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = []string{"storage.jobFailed", "storage.jobSucceeded"}
		})
		wh := team.waitReason("orders", keboolav1.ReasonInvalidSpec, webhookWait)
		message := meta.FindStatusCondition(wh.Status.Conditions, keboolav1.ConditionReady).Message
		Expect(message).To(ContainSubstring(`does not allow: "storage.jobSucceeded"`))
		Expect(message).To(ContainSubstring(shared.key().String()))
		Expect(meta.IsStatusConditionTrue(wh.Status.Conditions, keboolav1.ConditionStalled)).To(BeTrue())
		Expect(shared.count(http.MethodPost, emulator.EndpointWebhooks)).To(BeZero())

		By("serving it once the webhook requests only allowed event types")
		team.update("orders", func(wh *keboolav1.KeboolaWebhook) { wh.Spec.Events = []string{"storage.jobFailed"} })
		team.waitSynced("orders")

		By("serving a second webhook once the project allows its event type")
		team.newWebhook("audit", func(wh *keboolav1.KeboolaWebhook) {
			wh.Spec.Events = []string{"storage.tableCreated"}
		})
		team.waitReason("audit", keboolav1.ReasonInvalidSpec, webhookWait)
		shared.change(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedEvents = []string{"storage.jobFailed", "storage.tableCreated"}
		})
		team.waitSynced("audit")
		Expect(shared.emulatorWebhooks()).To(HaveLen(2))
	})

	It("gives a team's roles no access to the token Secret", func() {
		shared := newSharedProject(func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}
		})
		team := shared.newTeam(nil)

		// envtest runs no kube-controller-manager, so the aggregated
		// "edit" and "view" ClusterRoles do not exist. The operator's
		// ClusterRoles that aggregate into them are bound directly.
		for _, file := range []string{
			"keboolaproject_editor_role.yaml", "keboolaproject_viewer_role.yaml",
			"keboolawebhook_editor_role.yaml", "keboolawebhook_viewer_role.yaml",
		} {
			role := applyClusterRole(filepath.Join("..", "..", "config", "rbac", file))
			Expect(k8sClient.Create(testCtx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: team.namespace, Name: role.Name},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: teamUser}},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			})).To(Succeed())
		}

		By("letting the team manage KeboolaWebhooks in its namespace")
		webhooks := authorizationv1.ResourceAttributes{Namespace: team.namespace, Group: keboolav1.GroupVersion.Group, Resource: "keboolawebhooks"}
		Eventually(func() bool {
			return teamAccessAllowed(withVerb(webhooks, "create"))
		}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(BeTrue(), "the team cannot create KeboolaWebhooks")
		Expect(teamAccessAllowed(withVerb(webhooks, "delete"))).To(BeTrue())

		By("denying the token Secret and the project's namespace")
		tokenSecret := authorizationv1.ResourceAttributes{Namespace: shared.namespace, Resource: "secrets", Name: "keboola-token"}
		Expect(teamAccessAllowed(withVerb(tokenSecret, "get"))).To(BeFalse(), "the team can read the token Secret")
		Expect(teamAccessAllowed(authorizationv1.ResourceAttributes{
			Namespace: shared.namespace, Resource: "secrets", Verb: "list",
		})).To(BeFalse(), "the team can list the Secrets of the platform namespace")
		Expect(teamAccessAllowed(authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "list"})).
			To(BeFalse(), "the team can list Secrets in every namespace")
		Expect(teamAccessAllowed(authorizationv1.ResourceAttributes{
			Namespace: shared.namespace, Group: keboolav1.GroupVersion.Group, Resource: "keboolaprojects", Verb: "update",
		})).To(BeFalse(), "the team can change the shared KeboolaProject")

		By("denying writes to the status, which names the webhooks that a deletion removes")
		status := withVerb(webhooks, "update")
		status.Subresource = "status"
		Expect(teamAccessAllowed(status)).To(BeFalse(), "the team can write the status of a KeboolaWebhook")
	})
})

var _ = Describe("Schema validation of cross-namespace fields", func() {
	var namespace string
	dryRun := &client.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	BeforeEach(func() {
		namespace = newNamespace()
	})

	project := func(mutate func(*keboolav1.KeboolaProject)) *keboolav1.KeboolaProject {
		p := &keboolav1.KeboolaProject{
			ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: namespace},
			Spec: keboolav1.KeboolaProjectSpec{
				StackURL:       "connection.keboola.com",
				TokenSecretRef: keboolav1.SecretKeyReference{Name: "token"},
			},
		}
		mutate(p)
		return p
	}

	DescribeTable("KeboolaProject accepts",
		func(mutate func(*keboolav1.KeboolaProject)) {
			Expect(k8sClient.Create(testCtx, project(mutate), dryRun)).To(Succeed())
		},
		Entry("from All", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll}
		}),
		Entry("from Selector with a selector", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = selectAccessLabel("platform")
		}),
		Entry("from absent", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{}
		}),
		Entry("a limit of zero and allowed events", func(p *keboolav1.KeboolaProject) {
			p.Spec.MaxWebhooks = ptr.To[int32](0)
			p.Spec.AllowedEvents = []string{"storage.jobFailed"}
		}),
	)

	DescribeTable("KeboolaProject rejects",
		func(mutate func(*keboolav1.KeboolaProject), wantMessage string) {
			err := k8sClient.Create(testCtx, project(mutate), dryRun)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("Selector without a selector", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSelector}
		}, "selector must be set when from is Selector, and only then"),
		Entry("a selector with All", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromAll, Selector: &metav1.LabelSelector{}}
		}, "selector must be set when from is Selector, and only then"),
		Entry("an unknown from", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: "Others"}
		}, `spec.allowedNamespaces.from: Unsupported value: "Others"`),
		Entry("an unknown selector operator", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSelector, Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Matches", Values: []string{"a"}}},
			}}
		}, "operator must be In, NotIn, Exists or DoesNotExist"),
		Entry("In without values", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedNamespaces = &keboolav1.AllowedNamespaces{From: keboolav1.NamespacesFromSelector, Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}},
			}}
		}, "values must be non-empty for the operators In and NotIn"),
		Entry("a negative limit", func(p *keboolav1.KeboolaProject) {
			p.Spec.MaxWebhooks = ptr.To[int32](-1)
		}, "spec.maxWebhooks: Invalid value"),
		Entry("a malformed allowed event", func(p *keboolav1.KeboolaProject) {
			p.Spec.AllowedEvents = []string{"job failed"}
		}, "spec.allowedEvents[0]: Invalid value"),
	)

	It("rejects an empty list of allowed events", func() {
		// The typed client drops an empty list, so the object is sent as
		// kubectl would send "allowedEvents: []".
		project := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": keboolav1.GroupVersion.String(),
			"kind":       "KeboolaProject",
			"metadata":   map[string]any{"name": "shared", "namespace": namespace},
			"spec": map[string]any{
				"stackURL":       "connection.keboola.com",
				"tokenSecretRef": map[string]any{"name": "token"},
				"allowedEvents":  []any{},
			},
		}}
		err := k8sClient.Create(testCtx, project, dryRun)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.allowedEvents: Invalid value"))
	})

	It("rejects an invalid projectRef namespace", func() {
		webhook := &keboolav1.KeboolaWebhook{
			ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: namespace},
			Spec: keboolav1.KeboolaWebhookSpec{
				ProjectRef: keboolav1.ProjectReference{Name: "shared", Namespace: "Platform_Team"},
				URL:        "https://receiver.example.com/keboola",
				Events:     []string{"storage.jobFailed"},
			},
		}
		err := k8sClient.Create(testCtx, webhook, dryRun)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.projectRef.namespace: Invalid value"))
	})
})

// sharedProject is a Ready KeboolaProject in a platform namespace of its
// own, with the token Secret beside it, that KeboolaWebhooks in team
// namespaces use.
type sharedProject struct {
	*webhookEnv
}

// newSharedProject creates a platform namespace, a token Secret and a
// KeboolaProject, waits until the project is Ready, then applies mutate to
// its spec.
func newSharedProject(mutate func(*keboolav1.KeboolaProject)) *sharedProject {
	shared := &sharedProject{webhookEnv: newWebhookEnv()}
	shared.change(mutate)
	return shared
}

func (s *sharedProject) key() types.NamespacedName {
	return types.NamespacedName{Namespace: s.namespace, Name: s.project}
}

func (s *sharedProject) keboolaProject() *keboolav1.KeboolaProject {
	project := &keboolav1.KeboolaProject{}
	Expect(k8sClient.Get(testCtx, s.key(), project)).To(Succeed())
	return project
}

// change updates the spec of the KeboolaProject, retrying on conflicts with
// the controller's own writes.
func (s *sharedProject) change(mutate func(*keboolav1.KeboolaProject)) {
	Eventually(func() error {
		project := &keboolav1.KeboolaProject{}
		if err := k8sClient.Get(testCtx, s.key(), project); err != nil {
			return err
		}
		mutate(project)
		return k8sClient.Update(testCtx, project)
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
}

// expectUsage waits until status.webhooks of the project reports count
// KeboolaWebhooks in namespaces namespaces.
func (s *sharedProject) expectUsage(count, namespaces int32) {
	Eventually(func(g Gomega) {
		project := &keboolav1.KeboolaProject{}
		g.Expect(k8sClient.Get(testCtx, s.key(), project)).To(Succeed())
		g.Expect(project.Status.Webhooks).To(Equal(&keboolav1.WebhookUsage{Count: count, Namespaces: namespaces}))
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
}

// newTeam creates a team namespace with labels and returns a view of the
// shared project from it. Its KeboolaWebhooks are deleted when the story
// ends, before the project.
func (s *sharedProject) newTeam(labels map[string]string) *teamNamespace {
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "team-", Labels: labels}}
	Expect(k8sClient.Create(testCtx, namespace)).To(Succeed())

	view := *s.webhookEnv
	view.namespace = namespace.Name
	DeferCleanup(view.cleanup)
	return &teamNamespace{webhookEnv: &view, projectNamespace: s.namespace}
}

// teamNamespace is a namespace whose KeboolaWebhooks refer to a
// sharedProject. The embedded webhookEnv works in the team namespace and
// counts the requests with the shared project's token.
type teamNamespace struct {
	*webhookEnv
	projectNamespace string
}

// newWebhook creates a KeboolaWebhook in the team namespace that refers to
// the shared project.
func (t *teamNamespace) newWebhook(name string, mutate ...func(*keboolav1.KeboolaWebhook)) {
	refer := func(wh *keboolav1.KeboolaWebhook) { wh.Spec.ProjectRef.Namespace = t.projectNamespace }
	t.webhookEnv.newWebhook(name, append([]func(*keboolav1.KeboolaWebhook){refer}, mutate...)...)
}

// selectAccessLabel allows the namespaces labelled accessLabel=value.
func selectAccessLabel(value string) *keboolav1.AllowedNamespaces {
	return &keboolav1.AllowedNamespaces{
		From:     keboolav1.NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{accessLabel: value}},
	}
}

// setNamespaceLabels replaces the labels of namespace, keeping those that
// the API server sets.
func setNamespaceLabels(namespace string, labels map[string]string) {
	Eventually(func() error {
		ns := &corev1.Namespace{}
		if err := k8sClient.Get(testCtx, types.NamespacedName{Name: namespace}, ns); err != nil {
			return err
		}
		newLabels := map[string]string{}
		for key, value := range ns.Labels {
			if strings.HasPrefix(key, "kubernetes.io/") {
				newLabels[key] = value
			}
		}
		for key, value := range labels {
			newLabels[key] = value
		}
		ns.Labels = newLabels
		return k8sClient.Update(testCtx, ns)
	}).WithTimeout(webhookWait).WithPolling(webhookPoll).Should(Succeed())
}

// applyClusterRole creates the ClusterRole in the YAML file path, unless it
// exists, and returns it. A ClusterRole it created is deleted when the story
// ends.
func applyClusterRole(path string) *rbacv1.ClusterRole {
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.Unmarshal(data, role)).To(Succeed())
	Expect(role.Name).NotTo(BeEmpty(), "%s holds no ClusterRole", path)

	err = k8sClient.Create(testCtx, role)
	if apierrors.IsAlreadyExists(err) {
		return role
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, role))).To(Succeed())
	})
	return role
}

// withVerb returns attributes with verb set.
func withVerb(attributes authorizationv1.ResourceAttributes, verb string) authorizationv1.ResourceAttributes {
	attributes.Verb = verb
	return attributes
}

// teamAccessAllowed sends a SubjectAccessReview to the API server and
// returns whether teamUser may act as attributes describe.
func teamAccessAllowed(attributes authorizationv1.ResourceAttributes) bool {
	GinkgoHelper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               teamUser,
		Groups:             []string{"system:authenticated"},
		ResourceAttributes: &attributes,
	}}
	Expect(k8sClient.Create(testCtx, review)).To(Succeed())
	return review.Status.Allowed
}
