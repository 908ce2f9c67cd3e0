package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
)

// createLatency delays the first subscription create of
// TestRotationDuringSubscriptionCreate, so that the test can change the
// spec while the create is in flight. It is shorter than apiTimeout, so the
// create succeeds.
const createLatency = 4 * time.Second

// TestRotationDuringSubscriptionCreate changes spec.rotationToken while the
// operator creates the first subscription of a KeboolaWebhook on the
// Notification service. The create succeeds, but the status write that
// records its id fails with a conflict, because the spec changed. The next
// pass must then delete that subscription or adopt it for the rotation's
// grace period. A SIGKILL or a lost create response between the create and
// the status write leaves the same state.
func TestRotationDuringSubscriptionCreate(t *testing.T) {
	s := environment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v := &violations{t: t}

	stack := emulator.New(emulator.Options{Backends: emulator.BackendsNotification, AllowHTTPLoopback: true})
	if err := stack.Start(); err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	p, err := setupProject(ctx, s.admin, stack, 90, true)
	if err != nil {
		t.Fatal(err)
	}
	rep := newReplica(s, "operator-rotation", s.install.Manifests.ServiceAccount.Namespace)
	if err := rep.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rep.stop() }()
	if lines, err := waitReady(ctx, s.admin, []*project{p}, 0, 3*leaseDuration); err != nil || len(lines) > 0 {
		t.Fatalf("the KeboolaProject did not become Ready: %v %v", err, lines)
	}

	stack.InjectFault(emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, Latency: createLatency, Times: 1})
	wh := &keboolav1.KeboolaWebhook{
		ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: p.namespace},
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: projectName},
			// Nothing is fired, so no receiver listens here.
			URL:    "http://127.0.0.1:9/hook",
			Events: []string{"job-failed"},
		},
	}
	if err := s.admin.Create(ctx, wh); err != nil {
		t.Fatal(err)
	}

	// The operator records the fingerprint of the minted secret, then
	// lists the subscriptions and sends the delayed create.
	key := client.ObjectKeyFromObject(wh)
	for wh.Status.SecretFingerprint == "" {
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			t.Fatalf("the operator recorded no secret fingerprint: %v", err)
		}
		if err := s.admin.Get(ctx, key, wh); err != nil {
			t.Fatal(err)
		}
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := s.admin.Get(ctx, key, wh); err != nil {
			return err
		}
		wh.Spec.RotationToken = "rotation-1"
		return s.admin.Update(ctx, wh)
	})
	if err != nil {
		t.Fatal(err)
	}

	if lines, err := waitReady(ctx, s.admin, []*project{p}, 1, time.Minute); err != nil || len(lines) > 0 {
		t.Fatalf("the KeboolaWebhook did not become Ready: %v %v", err, lines)
	}
	if err := checkSubscriptions(ctx, s.admin, []*project{p}, v); err != nil {
		t.Fatal(err)
	}
	if err := deleteEverything(ctx, s.admin, []*project{p}, time.Minute, v); err != nil {
		t.Fatal(err)
	}
}
