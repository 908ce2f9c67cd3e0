package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
)

// markerNamePrefix starts the name of a webhook that the operator created
// but has not committed yet. A converged project has none.
const markerNamePrefix = "keboola-operator:pending:"

// violations collects the invariant violations of the soak. Each one is
// also a test error.
type violations struct {
	t    *testing.T
	mu   sync.Mutex
	list []string
}

func (v *violations) add(format string, args ...any) {
	v.t.Helper()
	message := fmt.Sprintf(format, args...)
	v.mu.Lock()
	v.list = append(v.list, message)
	v.mu.Unlock()
	v.t.Error("invariant violated: " + message)
}

// isReady reports whether conditions contain Ready=True for generation, with
// neither Reconciling nor Stalled set.
func isReady(conditions []metav1.Condition, generation int64) bool {
	ready := meta.FindStatusCondition(conditions, keboolav1.ConditionReady)
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == generation &&
		!meta.IsStatusConditionTrue(conditions, keboolav1.ConditionReconciling) &&
		!meta.IsStatusConditionTrue(conditions, keboolav1.ConditionStalled)
}

// notReady returns one line for each KeboolaProject and KeboolaWebhook of
// the soak that is not Ready for its generation, with its Ready reason and
// message, or that is in the middle of a rotation, and how many
// KeboolaWebhooks there are.
func notReady(ctx context.Context, c client.Client, projects []*project) ([]string, int, error) {
	var lines []string
	webhooks := 0
	for _, p := range projects {
		var kbp keboolav1.KeboolaProject
		if err := c.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: projectName}, &kbp); err != nil {
			return nil, 0, err
		}
		if !isReady(kbp.Status.Conditions, kbp.Generation) {
			lines = append(lines, describeReadiness("KeboolaProject", &kbp, kbp.Status.Conditions))
		}
		var list keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &list, client.InNamespace(p.namespace)); err != nil {
			return nil, 0, err
		}
		webhooks += len(list.Items)
		for i := range list.Items {
			wh := &list.Items[i]
			switch {
			case !isReady(wh.Status.Conditions, wh.Generation) || wh.Status.ObservedGeneration != wh.Generation:
				lines = append(lines, describeReadiness("KeboolaWebhook", wh, wh.Status.Conditions))
			case wh.Status.Rotation != nil:
				// Ready during a rotation's grace period, but the
				// previous webhook still exists until it ends.
				lines = append(lines, fmt.Sprintf("KeboolaWebhook %s/%s: rotation in phase %s", wh.Namespace, wh.Name, wh.Status.Rotation.Phase))
			}
		}
	}
	return lines, webhooks, nil
}

func describeReadiness(kind string, o client.Object, conditions []metav1.Condition) string {
	ready := meta.FindStatusCondition(conditions, keboolav1.ConditionReady)
	if ready == nil {
		return fmt.Sprintf("%s %s/%s: no Ready condition", kind, o.GetNamespace(), o.GetName())
	}
	return fmt.Sprintf("%s %s/%s: Ready=%s reason %s: %s", kind, o.GetNamespace(), o.GetName(), ready.Status, ready.Reason, ready.Message)
}

// waitReady waits until every KeboolaProject and KeboolaWebhook of the soak
// is Ready, no rotation is in progress and want KeboolaWebhooks exist, or
// until timeout. It returns the
// objects that are still not Ready when it gives up.
func waitReady(ctx context.Context, c client.Client, projects []*project, want int, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		lines, count, err := notReady(ctx, c, projects)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 && count == want {
			return nil, nil
		}
		if count != want {
			lines = append(lines, fmt.Sprintf("%d KeboolaWebhooks exist, want %d", count, want))
		}
		if time.Now().After(deadline) {
			return lines, nil
		}
		select {
		case <-ctx.Done():
			return lines, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// checkConverged checks each project on the webhooks stack against that
// stack. Every KeboolaWebhook owns exactly one webhook, which matches its
// spec, and its Secret holds that webhook's id and signing secret. The
// stack holds no webhook that no KeboolaWebhook owns. checkSubscriptions
// checks the projects on the Notification service.
func checkConverged(ctx context.Context, c client.Client, projects []*project, v *violations) error {
	for _, p := range projects {
		if p.notification {
			continue
		}
		var list keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &list, client.InNamespace(p.namespace)); err != nil {
			return err
		}
		stored := map[string]emulator.StoredWebhook{}
		for _, w := range p.emu.Webhooks(p.id) {
			stored[w.ID] = w
			if strings.HasPrefix(w.Name, markerNamePrefix) {
				v.add("project %d holds webhook %s with the marker name %q of an uncommitted create", p.id, w.ID, w.Name)
			}
		}

		owned := map[string]string{}
		for i := range list.Items {
			wh := &list.Items[i]
			key := wh.Namespace + "/" + wh.Name
			id := wh.Status.WebhookID
			if id == "" {
				v.add("KeboolaWebhook %s has no status.webhookID", key)
				continue
			}
			if other, ok := owned[id]; ok {
				v.add("KeboolaWebhooks %s and %s both record webhook %s", other, key, id)
			}
			owned[id] = key
			if wh.Status.Rotation != nil {
				v.add("KeboolaWebhook %s still records a rotation in phase %s", key, wh.Status.Rotation.Phase)
			}
			if wh.Status.PendingCreate != nil {
				v.add("KeboolaWebhook %s still records a pending create", key)
			}
			if len(wh.Status.RetiredWebhookIDs) > 0 {
				v.add("KeboolaWebhook %s still records retired webhooks %v", key, wh.Status.RetiredWebhookIDs)
			}
			if wh.Status.RotationToken != wh.Spec.RotationToken {
				v.add("KeboolaWebhook %s has status.rotationToken %q, want spec.rotationToken %q", key, wh.Status.RotationToken, wh.Spec.RotationToken)
			}

			w, ok := stored[id]
			if !ok {
				v.add("KeboolaWebhook %s records webhook %s, which project %d does not hold", key, id, p.id)
				continue
			}
			checkWebhookMatches(wh, w, v)
			if err := checkSecret(ctx, c, wh, w, v); err != nil {
				return err
			}
		}

		if len(stored) != len(list.Items) {
			v.add("project %d holds %d webhooks for %d KeboolaWebhooks", p.id, len(stored), len(list.Items))
		}
		for id, w := range stored {
			if _, ok := owned[id]; !ok {
				v.add("project %d holds webhook %s named %q, which no KeboolaWebhook records", p.id, id, w.Name)
			}
		}
	}
	return nil
}

// checkWebhookMatches checks that the emulator's webhook w has the name,
// URL and events of the spec of wh.
func checkWebhookMatches(wh *keboolav1.KeboolaWebhook, w emulator.StoredWebhook, v *violations) {
	key := wh.Namespace + "/" + wh.Name
	if w.Name != wh.Status.Name {
		v.add("webhook %s of KeboolaWebhook %s is named %q, want %q", w.ID, key, w.Name, wh.Status.Name)
	}
	if w.URL != wh.Spec.URL {
		v.add("webhook %s of KeboolaWebhook %s has URL %q, want %q", w.ID, key, w.URL, wh.Spec.URL)
	}
	want := slices.Sorted(slices.Values(wh.Spec.Events))
	got := slices.Sorted(slices.Values(w.Events))
	if !slices.Equal(got, want) {
		v.add("webhook %s of KeboolaWebhook %s has events %v, want %v", w.ID, key, got, want)
	}
}

// checkSecret checks that the Secret of wh holds the id and the signing
// secret of the emulator's webhook w, and the fingerprint of that secret.
// Messages name secrets by fingerprint only.
func checkSecret(ctx context.Context, c client.Client, wh *keboolav1.KeboolaWebhook, w emulator.StoredWebhook, v *violations) error {
	key := wh.Namespace + "/" + wh.Name
	var secret corev1.Secret
	err := c.Get(ctx, types.NamespacedName{Namespace: wh.Namespace, Name: wh.Status.SecretName}, &secret)
	if err != nil {
		v.add("the Secret %q of KeboolaWebhook %s cannot be read: %v", wh.Status.SecretName, key, err)
		return nil
	}
	if got := string(secret.Data[keboolav1.SecretKeyWebhookID]); got != w.ID {
		v.add("the Secret of KeboolaWebhook %s holds webhook id %q, want %q", key, got, w.ID)
	}
	signing := string(secret.Data[keboolav1.SecretKeySigningSecret])
	if signing != w.Secret {
		v.add("the Secret of KeboolaWebhook %s holds the signing secret %s, but webhook %s signs with %s",
			key, fingerprint(signing), w.ID, fingerprint(w.Secret))
	}
	for _, dataKey := range []string{keboolav1.SecretKeyPreviousSigningSecret, keboolav1.SecretKeyPreviousWebhookID} {
		if _, ok := secret.Data[dataKey]; ok {
			v.add("the Secret of KeboolaWebhook %s still has the key %s after its rotation ended", key, dataKey)
		}
	}
	if got := secret.Annotations[keboolav1.AnnotationSecretFingerprint]; got != fingerprint(w.Secret) {
		v.add("the Secret of KeboolaWebhook %s has fingerprint annotation %q, want %q", key, got, fingerprint(w.Secret))
	}
	if wh.Status.SecretFingerprint != fingerprint(w.Secret) {
		v.add("KeboolaWebhook %s has status.secretFingerprint %q, want %q", key, wh.Status.SecretFingerprint, fingerprint(w.Secret))
	}
	return nil
}

// checkDeliveries fires firedEvent in every project on the webhooks
// stack.
// Each KeboolaWebhook subscribes to it, so each must get exactly one
// delivery, and the receiver, which verifies the signature with the Secret
// in the cluster, must accept it.
func checkDeliveries(ctx context.Context, c client.Client, projects []*project, v *violations) (int, error) {
	total := 0
	for i, p := range projects {
		if p.notification {
			continue
		}
		var list keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &list, client.InNamespace(p.namespace)); err != nil {
			return total, err
		}
		deliveries := p.emu.Fire(ctx, p.id, firedEvent, map[string]any{"id": fmt.Sprintf("chaos-%d", i)})
		total += len(deliveries)
		if len(deliveries) != len(list.Items) {
			v.add("an event in project %d made %d delivery attempts, want one for each of its %d KeboolaWebhooks", p.id, len(deliveries), len(list.Items))
		}
		for _, d := range deliveries {
			if d.Status != http.StatusOK {
				v.add("the delivery of webhook %s to %s got status %d (error %q), want 200 from a receiver that verifies with the Secret",
					d.WebhookID, d.URL, d.Status, d.Err)
			}
		}
	}
	return total, nil
}

// writeCount returns the number of requests to any of stacks that change
// webhooks or subscriptions.
func writeCount(stacks []*emulator.Server) int {
	writes := 0
	for _, emu := range stacks {
		writes += emu.Count(http.MethodPost, "") + emu.Count(http.MethodPut, "") + emu.Count(http.MethodDelete, "")
	}
	return writes
}

// deleteEverything deletes every KeboolaWebhook, then every KeboolaProject
// and token Secret, and checks that each project at its stack holds
// neither webhooks nor subscriptions and that every object is gone within
// timeout.
func deleteEverything(ctx context.Context, c client.Client, projects []*project, timeout time.Duration, v *violations) error {
	for _, p := range projects {
		if err := c.DeleteAllOf(ctx, &keboolav1.KeboolaWebhook{}, client.InNamespace(p.namespace)); err != nil {
			return fmt.Errorf("failed to delete the KeboolaWebhooks of %s: %w", p.namespace, err)
		}
	}
	deadline := time.Now().Add(timeout)
	remaining, err := waitGone(ctx, c, projects, &keboolav1.KeboolaWebhookList{}, deadline)
	if err != nil {
		return err
	}
	if remaining > 0 {
		v.add("%d KeboolaWebhooks still exist %s after their deletion", remaining, timeout)
	}
	for _, p := range projects {
		if n := len(p.emu.Webhooks(p.id)); n > 0 {
			v.add("project %d holds %d webhooks after every KeboolaWebhook was deleted", p.id, n)
		}
		if n := len(p.emu.Subscriptions(p.id)); n > 0 {
			v.add("project %d holds %d Notification service subscriptions after every KeboolaWebhook was deleted", p.id, n)
		}
	}

	for _, p := range projects {
		for _, o := range []client.Object{
			&keboolav1.KeboolaProject{ObjectMeta: metav1.ObjectMeta{Name: projectName, Namespace: p.namespace}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tokenSecretName, Namespace: p.namespace}},
		} {
			if err := c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("failed to delete %s/%s: %w", p.namespace, o.GetName(), err)
			}
		}
	}
	remaining, err = waitGone(ctx, c, projects, &keboolav1.KeboolaProjectList{}, deadline)
	if err != nil {
		return err
	}
	if remaining > 0 {
		v.add("%d KeboolaProjects still exist %s after their deletion", remaining, timeout)
	}
	for _, p := range projects {
		var secret corev1.Secret
		err := c.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: tokenSecretName}, &secret)
		if err == nil {
			v.add("the token Secret of %s still exists after its KeboolaProject was deleted, with finalizers %v", p.namespace, secret.Finalizers)
		}
	}
	return nil
}

// waitGone waits until no object of the list type remains in the soak's
// namespaces, or until deadline, and returns how many remain.
func waitGone(ctx context.Context, c client.Client, projects []*project, list client.ObjectList, deadline time.Time) (int, error) {
	for {
		remaining := 0
		for _, p := range projects {
			if err := c.List(ctx, list, client.InNamespace(p.namespace)); err != nil {
				return 0, err
			}
			remaining += meta.LenList(list)
		}
		if remaining == 0 || time.Now().After(deadline) {
			return remaining, nil
		}
		select {
		case <-ctx.Done():
			return remaining, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
