package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// Names of the objects of each project's namespace.
const (
	projectName     = "project"
	tokenSecretName = "keboola-token"
	// firedEvent is the event every webhook of the soak subscribes to, and
	// the one the delivery check fires.
	firedEvent = "storage.jobFailed"
)

// project is one KeboolaProject of the soak, in a namespace of its own,
// with one project and token at its stack.
type project struct {
	namespace string
	id        int64
	// token is the Storage API token. It is a credential: the soak never
	// prints it and scans every output for it.
	token string
	// emu is the stack of the project: the webhooks stack or the
	// Notification stack (see soak).
	emu *emulator.Server
	// notification is true for a project on the Notification stack, whose
	// KeboolaWebhooks become subscriptions.
	notification bool
}

// setupProject adds project number index to emu and creates its namespace,
// token Secret and KeboolaProject. A project on the Notification stack gets
// other ids and namespace names, so that messages tell the two kinds
// apart.
func setupProject(ctx context.Context, c client.Client, emu *emulator.Server, index int, notification bool) (*project, error) {
	namespace, projectID, tokenID := fmt.Sprintf("chaos-%d", index), int64(7001+index), 9000+index
	if notification {
		namespace, projectID, tokenID = fmt.Sprintf("chaos-notification-%d", index), int64(8001+index), 9500+index
	}
	p := &project{
		namespace:    namespace,
		id:           projectID,
		token:        fmt.Sprintf("%d-%d-%s", projectID, tokenID, randomHex(20)),
		emu:          emu,
		notification: notification,
	}
	emu.AddProject(emulator.Project{ID: p.id, Name: fmt.Sprintf("Chaos project %d", p.id), Region: "eu-central-1"})
	emu.AddToken(p.token, emulator.Token{
		ID:                fmt.Sprintf("%d", tokenID),
		Description:       "chaos soak token",
		ProjectID:         p.id,
		CanManageWebhooks: true,
	})

	objects := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.namespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: tokenSecretName, Namespace: p.namespace},
			StringData: map[string]string{keboolav1.DefaultTokenSecretKey: p.token},
		},
		&keboolav1.KeboolaProject{
			ObjectMeta: metav1.ObjectMeta{Name: projectName, Namespace: p.namespace},
			Spec: keboolav1.KeboolaProjectSpec{
				StackURL:          emu.URL(),
				TokenSecretRef:    keboolav1.SecretKeyReference{Name: tokenSecretName},
				ExpectedProjectID: &p.id,
			},
		},
	}
	for _, o := range objects {
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("failed to create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return p, nil
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockedRand is a random source that several goroutines share.
type lockedRand struct {
	mu sync.Mutex
	r  *mathrand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{r: mathrand.New(mathrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// IntN returns a number in [0, n).
func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Shuffle permutes n elements with swap, as math/rand/v2's Rand.Shuffle.
func (l *lockedRand) Shuffle(n int, swap func(i, j int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r.Shuffle(n, swap)
}

// Float64 returns a number in [0, 1).
func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// webhookRef is a KeboolaWebhook of the soak and its project.
type webhookRef struct {
	key     types.NamespacedName
	project *project
}

// webhookObject returns KeboolaWebhook number index of project p. Its URL
// points at the receiver, with a path that names the object. On the
// webhooks stack it subscribes to firedEvent and up to three other event
// types. On the Notification stack it subscribes to one to three events of
// the Notification service, and may have filters and a query in its URL.
func webhookObject(p *project, index int, receiverURL string, random *lockedRand) *keboolav1.KeboolaWebhook {
	name := fmt.Sprintf("hook-%03d", index)
	wh := &keboolav1.KeboolaWebhook{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace},
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: projectName},
			URL:        receiverPath(receiverURL, p.namespace, name),
			Events:     randomEventsFor(p, random),
		},
	}
	if p.notification {
		wh.Spec.URL = randomReceiverURL(receiverURL, p.namespace, name, "", random)
		wh.Spec.Filters = randomFilters(random)
	}
	return wh
}

// receiverPath returns the URL of the receiver for the KeboolaWebhook
// namespace/name, without a query.
func receiverPath(receiverURL, namespace, name string) string {
	return receiverURL + "/hook/" + namespace + "/" + name
}

// randomEventsFor returns a random spec.events for a KeboolaWebhook of p.
func randomEventsFor(p *project, random *lockedRand) []string {
	if p.notification {
		return randomNotificationEvents(random)
	}
	return randomEvents(random)
}

// randomEvents returns firedEvent and up to three other event types.
func randomEvents(random *lockedRand) []string {
	events := []string{firedEvent}
	others := slices.DeleteFunc(emulator.EventTypes(), func(e string) bool { return e == firedEvent })
	for range random.IntN(4) {
		event := others[random.IntN(len(others))]
		if !slices.Contains(events, event) {
			events = append(events, event)
		}
	}
	return events
}

// mutation is a spec change that the soak makes while faults are injected.
type mutation string

const (
	// mutateEvents replaces spec.events. The operator updates a webhook of
	// the Storage API, and on the Notification service creates the new
	// subscriptions before it deletes those of the removed events.
	mutateEvents mutation = "events"
	// mutateRotation changes spec.rotationToken, which makes the operator
	// publish a new secret next to the old one, and delete the old webhook
	// or subscriptions after the rotation grace period.
	mutateRotation mutation = "rotation"
	// mutateURL changes spec.url of a KeboolaWebhook on the Notification
	// service: the query it has, if any, or whether it has one. Every
	// subscription is replaced, because a subscription cannot change.
	mutateURL mutation = "url"
	// mutateFilters replaces spec.filters of a KeboolaWebhook on the
	// Notification service, which also replaces every subscription.
	mutateFilters mutation = "filters"
	// mutateWebhookAPI switches spec.webhookAPI of a KeboolaProject on the
	// Notification service between absent and NotificationSubscriptions.
	// Both select the same service, but each change makes the operator read
	// the Storage API index (GET /v2/storage) again, and an absent value
	// also makes it probe the webhooks endpoint, so the faults of those
	// requests hit a running project.
	mutateWebhookAPI mutation = "webhookAPI"
)

// mutate applies m to the KeboolaWebhook of ref, retrying on conflicts with
// the operator's own writes.
func mutate(ctx context.Context, c client.Client, ref webhookRef, m mutation, receiverURL string, random *lockedRand) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var wh keboolav1.KeboolaWebhook
		if err := c.Get(ctx, ref.key, &wh); err != nil {
			return err
		}
		switch m {
		case mutateEvents:
			events := randomEventsFor(ref.project, random)
			for slices.Equal(slices.Sorted(slices.Values(events)), slices.Sorted(slices.Values(wh.Spec.Events))) {
				events = randomEventsFor(ref.project, random)
			}
			wh.Spec.Events = events
		case mutateRotation:
			wh.Spec.RotationToken = "rotation-" + randomHex(4)
		case mutateURL:
			wh.Spec.URL = randomReceiverURL(receiverURL, wh.Namespace, wh.Name, wh.Spec.URL, random)
		case mutateFilters:
			filters := randomFilters(random)
			for slices.Equal(filters, wh.Spec.Filters) {
				filters = randomFilters(random)
			}
			wh.Spec.Filters = filters
		default:
			return fmt.Errorf("mutation %q does not apply to a KeboolaWebhook", m)
		}
		return c.Update(ctx, &wh)
	})
}

// switchWebhookAPI applies mutateWebhookAPI to the KeboolaProject of p.
func switchWebhookAPI(ctx context.Context, c client.Client, p *project) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var kbp keboolav1.KeboolaProject
		if err := c.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: projectName}, &kbp); err != nil {
			return err
		}
		if kbp.Spec.WebhookAPI == "" {
			kbp.Spec.WebhookAPI = keboolav1.WebhookAPINotificationSubscriptions
		} else {
			kbp.Spec.WebhookAPI = ""
		}
		return c.Update(ctx, &kbp)
	})
}

// receiver is a webhook receiver on loopback. It verifies each delivery to
// /hook/<namespace>/<name> with the Middleware of pkg/webhook, against the
// signing secret in the Secret of that KeboolaWebhook, read from the API
// server at delivery time, as a receiver Pod that mounts the Secret would.
// It accepts only the current secret, never previousSigningSecret, and only
// the proof that the KeboolaWebhook's webhook API sends: the signature
// header for the Storage API, the kbc_secret query parameter for the
// Notification service. It responds 200, 401 for a wrong or missing proof,
// 403 for a valid proof of the other kind, 500 when it cannot read the
// KeboolaWebhook or its Secret, and 503 when the Secret has no signing
// secret.
type receiver struct {
	server *httptest.Server
	admin  client.Client
}

func newReceiver(admin client.Client) *receiver {
	r := &receiver{admin: admin}
	r.server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/hook/"), "/")
	if len(parts) != 2 {
		http.Error(w, "unknown path", http.StatusNotFound)
		return
	}

	var wh keboolav1.KeboolaWebhook
	if err := r.admin.Get(req.Context(), types.NamespacedName{Namespace: parts[0], Name: parts[1]}, &wh); err != nil {
		http.Error(w, "KeboolaWebhook not found", http.StatusInternalServerError)
		return
	}
	var secret corev1.Secret
	if err := r.admin.Get(req.Context(), types.NamespacedName{Namespace: wh.Namespace, Name: wh.Status.SecretName}, &secret); err != nil {
		http.Error(w, "Secret not found", http.StatusInternalServerError)
		return
	}

	wantProof := webhook.ProofSignature
	if wh.Status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions {
		wantProof = webhook.ProofURLSecret
	}
	middleware := &webhook.Middleware{Secrets: webhook.StaticSecrets{secret.Data[keboolav1.SecretKeySigningSecret]}}
	middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		delivery, ok := webhook.DeliveryFromContext(req.Context())
		if !ok || delivery.Proof != wantProof {
			http.Error(w, "wrong kind of proof", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(w, req)
}

func (r *receiver) close() {
	r.server.Close()
}
