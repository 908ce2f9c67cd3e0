package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
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
// with one project and token at the emulator.
type project struct {
	namespace string
	id        int64
	// token is the Storage API token. It is a credential: the soak never
	// prints it and scans every output for it.
	token string
}

// setupProject adds project number index to the emulator and creates its
// namespace, token Secret and KeboolaProject.
func setupProject(ctx context.Context, c client.Client, emu *emulator.Server, index int) (*project, error) {
	p := &project{
		namespace: fmt.Sprintf("chaos-%d", index),
		id:        int64(7001 + index),
		token:     fmt.Sprintf("%d-%d-%s", 7001+index, 9000+index, randomHex(20)),
	}
	emu.AddProject(emulator.Project{ID: p.id, Name: fmt.Sprintf("Chaos project %d", index), Region: "eu-central-1"})
	emu.AddToken(p.token, emulator.Token{
		ID:                fmt.Sprintf("%d", 9000+index),
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

// Float64 returns a number in [0, 1).
func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// webhookObject returns KeboolaWebhook number index of project p. It
// subscribes to firedEvent and up to three other event types, and its URL
// points at the receiver, with a path that names the object.
func webhookObject(p *project, index int, receiverURL string, random *lockedRand) *keboolav1.KeboolaWebhook {
	name := fmt.Sprintf("hook-%03d", index)
	return &keboolav1.KeboolaWebhook{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace},
		Spec: keboolav1.KeboolaWebhookSpec{
			ProjectRef: keboolav1.ProjectReference{Name: projectName},
			URL:        receiverURL + "/hook/" + p.namespace + "/" + name,
			Events:     randomEvents(random),
		},
	}
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
	// mutateEvents replaces spec.events, which the operator applies with
	// an update at Keboola.
	mutateEvents mutation = "events"
	// mutateRotation changes spec.rotationToken, which makes the operator
	// create a new webhook, publish its secret and delete the old one.
	mutateRotation mutation = "rotation"
)

// mutate applies m to the KeboolaWebhook key, retrying on conflicts with
// the operator's own writes.
func mutate(ctx context.Context, c client.Client, key types.NamespacedName, m mutation, random *lockedRand) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var wh keboolav1.KeboolaWebhook
		if err := c.Get(ctx, key, &wh); err != nil {
			return err
		}
		switch m {
		case mutateEvents:
			events := randomEvents(random)
			for slices.Equal(events, wh.Spec.Events) {
				events = randomEvents(random)
			}
			wh.Spec.Events = events
		case mutateRotation:
			wh.Spec.RotationToken = "rotation-" + randomHex(4)
		}
		return c.Update(ctx, &wh)
	})
}

// receiver is a webhook receiver on loopback. It verifies each delivery to
// /hook/<namespace>/<name> with the signing secret in the Secret of that
// KeboolaWebhook, read from the API server at delivery time, and responds
// 200 or 401, as a receiver Pod that mounts the Secret would.
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
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "failed to read the body", http.StatusBadRequest)
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
	if !webhook.Verify(secret.Data[keboolav1.SecretKeySigningSecret], body, req.Header.Get(webhook.SignatureHeader)) {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) close() {
	r.server.Close()
}
