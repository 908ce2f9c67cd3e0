package chaos

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// The KeboolaWebhooks of a project on the Notification stack become one
// subscription per event, each with the URL spec.url plus the query
// parameter kbc_secret, whose value is a secret that the operator minted
// and wrote to the KeboolaWebhook's Secret. The functions below generate
// the specs of such KeboolaWebhooks and check the subscriptions against
// them.

// mintedSecretPattern is the form of a secret that the operator mints: 32
// random bytes in lowercase hexadecimal.
var mintedSecretPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// randomNotificationEvents returns one to three distinct events of the
// Notification service.
func randomNotificationEvents(random *lockedRand) []string {
	all := emulator.NotificationEvents()
	var events []string
	for range 1 + random.IntN(3) {
		event := all[random.IntN(len(all))]
		if !slices.Contains(events, event) {
			events = append(events, event)
		}
	}
	return events
}

// randomReceiverURL returns a receiver URL for the KeboolaWebhook
// namespace/name that differs from current: without a query, with one
// parameter, or with two, so that the operator must add kbc_secret after
// "?" or after "&". The receiver routes by the path only.
func randomReceiverURL(receiverURL, namespace, name, current string, random *lockedRand) string {
	base := receiverPath(receiverURL, namespace, name)
	for {
		candidate := base
		switch random.IntN(3) {
		case 1:
			candidate += "?v=" + randomHex(2)
		case 2:
			candidate += "?tenant=chaos&v=" + randomHex(2)
		}
		if candidate != current {
			return candidate
		}
	}
}

// firedNotificationData is the event data of the deliveries that the soak
// fires on the Notification stack. filterOptions record which filters it
// meets.
var firedNotificationData = map[string]any{
	"job.component.id":     "keboola.ex-db-snowflake",
	"job.configuration.id": "1",
	"branch.id":            "1",
}

// filterOption is a filter that the soak may put into spec.filters, and
// whether firedNotificationData meets it.
type filterOption struct {
	filter  keboolav1.EventFilter
	matches bool
}

// filterOptions mix filters that the fired events meet with filters that
// they do not, with and without an explicit operator, so that the delivery
// check proves that each subscription carries the filters of its spec.
var filterOptions = []filterOption{
	{filter: keboolav1.EventFilter{Field: "job.component.id", Value: "keboola.ex-db-snowflake"}, matches: true},
	{filter: keboolav1.EventFilter{Field: "job.component.id", Value: "keboola.orchestrator"}, matches: false},
	{filter: keboolav1.EventFilter{Field: "job.component.id", Value: "keboola.orchestrator", Operator: "!="}, matches: true},
	{filter: keboolav1.EventFilter{Field: "branch.id", Value: "1", Operator: "=="}, matches: true},
	{filter: keboolav1.EventFilter{Field: "branch.id", Value: "5", Operator: "<="}, matches: true},
	{filter: keboolav1.EventFilter{Field: "job.configuration.id", Value: "2", Operator: ">="}, matches: false},
}

// randomFilters returns no filters half of the time, and otherwise one or
// two distinct entries of filterOptions.
func randomFilters(random *lockedRand) []keboolav1.EventFilter {
	if random.IntN(2) == 0 {
		return nil
	}
	var filters []keboolav1.EventFilter
	for range 1 + random.IntN(2) {
		option := filterOptions[random.IntN(len(filterOptions))]
		if !slices.Contains(filters, option.filter) {
			filters = append(filters, option.filter)
		}
	}
	return filters
}

// filtersMatchFired reports whether firedNotificationData meets every one
// of filters. A filter that is not in filterOptions never matches, because
// the soak does not know its outcome.
func filtersMatchFired(filters []keboolav1.EventFilter) bool {
	for _, f := range filters {
		index := slices.IndexFunc(filterOptions, func(o filterOption) bool { return o.filter == f })
		if index < 0 || !filterOptions[index].matches {
			return false
		}
	}
	return true
}

// expectedSubscriptionURL returns the URL with which the operator must
// register a subscription: base with kbc_secret=secret added as the last
// query parameter, after "&" when base has a query and after "?"
// otherwise. The soak's URLs never end with "?" or "&", and a minted
// secret is hexadecimal, so it needs no escaping.
func expectedSubscriptionURL(base, secret string) string {
	separator := "?"
	if strings.Contains(base, "?") {
		separator = "&"
	}
	return base + separator + webhook.SecretQueryParameter + "=" + secret
}

// urlSecretValue returns the value of the kbc_secret query parameter of
// rawURL, and false when rawURL has not exactly one.
func urlSecretValue(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	values := u.Query()[webhook.SecretQueryParameter]
	if len(values) != 1 {
		return "", false
	}
	return values[0], true
}

// redactURLSecret returns text with the value of the kbc_secret parameter
// of rawURL replaced by its fingerprint, so that a message can quote a
// subscription's URL, or an error that contains it, without the secret.
func redactURLSecret(text, rawURL string) string {
	value, ok := urlSecretValue(rawURL)
	if !ok || value == "" {
		return text
	}
	return strings.ReplaceAll(text, value, "<"+fingerprint(value)+">")
}

// redactedURL returns rawURL with the value of its kbc_secret parameter
// replaced by its fingerprint.
func redactedURL(rawURL string) string {
	return redactURLSecret(rawURL, rawURL)
}

// checkSubscriptions checks each project on the Notification stack
// against its stack. Every KeboolaWebhook records exactly one subscription
// per event of its spec, each of which exists with that event, the filters
// of the spec and the URL spec.url plus the secret of its Secret. The
// Secret holds one minted secret and no previous one. The project holds no
// other subscription. webhookAPIWatch checks that it holds no webhook of
// the Storage API.
func checkSubscriptions(ctx context.Context, c client.Client, projects []*project, v *violations) error {
	for _, p := range projects {
		if !p.notification {
			continue
		}
		var list keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &list, client.InNamespace(p.namespace)); err != nil {
			return err
		}
		checkProjectSubscriptions(ctx, c, p, list.Items, v)
	}
	return nil
}

// checkProjectSubscriptions checks the subscriptions of project p against
// webhooks, the KeboolaWebhooks in its namespace.
func checkProjectSubscriptions(ctx context.Context, c client.Client, p *project, webhooks []keboolav1.KeboolaWebhook, v *violations) {
	live := p.emu.Subscriptions(p.id)
	byID := map[string]emulator.StoredSubscription{}
	for _, s := range live {
		byID[s.ID] = s
	}

	recordedBy := map[string]string{}  // subscription id to KeboolaWebhook
	secretOwner := map[string]string{} // minted secret to KeboolaWebhook
	wantTotal := 0
	for i := range webhooks {
		wh := &webhooks[i]
		key := wh.Namespace + "/" + wh.Name
		wantTotal += len(wh.Spec.Events)
		checkSubscriptionStatus(wh, v)
		secret := checkMintedSecret(ctx, c, wh, v)
		if secret != "" {
			if other, ok := secretOwner[secret]; ok {
				v.add("the Secrets of KeboolaWebhooks %s and %s hold the same secret %s", other, key, fingerprint(secret))
			}
			secretOwner[secret] = key
		}

		var recordedEvents []string
		for _, recorded := range wh.Status.Subscriptions {
			recordedEvents = append(recordedEvents, recorded.Event)
			if other, ok := recordedBy[recorded.ID]; ok {
				v.add("KeboolaWebhooks %s and %s both record subscription %s", other, key, recorded.ID)
			}
			recordedBy[recorded.ID] = key
			s, ok := byID[recorded.ID]
			if !ok {
				v.add("KeboolaWebhook %s records subscription %s for event %q, which project %d does not hold", key, recorded.ID, recorded.Event, p.id)
				continue
			}
			checkSubscriptionMatches(wh, recorded.Event, s, secret, v)
		}
		want := slices.Sorted(slices.Values(wh.Spec.Events))
		if got := slices.Sorted(slices.Values(recordedEvents)); !slices.Equal(got, want) {
			v.add("KeboolaWebhook %s records subscriptions for events %v, want one for each of spec.events %v", key, got, want)
		}
	}

	carrying := checkSubscriptionOwners(p, live, recordedBy, secretOwner, v)
	for i := range webhooks {
		wh := &webhooks[i]
		key := wh.Namespace + "/" + wh.Name
		if n := carrying[key]; n != len(wh.Spec.Events) {
			v.add("%d subscriptions of project %d carry the secret of KeboolaWebhook %s, want one for each of its %d events", n, p.id, key, len(wh.Spec.Events))
		}
	}
	if len(live) != wantTotal {
		v.add("project %d holds %d subscriptions for the %d events of its %d KeboolaWebhooks", p.id, len(live), wantTotal, len(webhooks))
	}
}

// checkSubscriptionOwners checks that every live subscription of p is
// recorded by the KeboolaWebhook whose secret its URL carries. recordedBy
// maps subscription ids, and secretOwner minted secrets, to KeboolaWebhooks.
// It returns how many live subscriptions carry the secret of each
// KeboolaWebhook.
func checkSubscriptionOwners(p *project, live []emulator.StoredSubscription, recordedBy, secretOwner map[string]string, v *violations) map[string]int {
	carrying := map[string]int{}
	for _, s := range live {
		value, _ := urlSecretValue(s.Recipient.URL)
		carrier, carries := secretOwner[value]
		if carries {
			carrying[carrier]++
		}
		owner, recorded := recordedBy[s.ID]
		switch {
		case !recorded && carries:
			v.add("project %d holds subscription %s for event %q with the secret of KeboolaWebhook %s, which does not record it", p.id, s.ID, s.Event, carrier)
		case !recorded:
			v.add("project %d holds subscription %s for event %q with URL %q, which no KeboolaWebhook records and whose secret no Secret holds",
				p.id, s.ID, s.Event, redactedURL(s.Recipient.URL))
		case carries && carrier != owner:
			v.add("subscription %s, which KeboolaWebhook %s records, carries the secret of KeboolaWebhook %s", s.ID, owner, carrier)
		}
	}
	return carrying
}

// checkSubscriptionStatus checks the status fields of a converged
// KeboolaWebhook on the Notification stack that do not depend on the
// stack's state.
func checkSubscriptionStatus(wh *keboolav1.KeboolaWebhook, v *violations) {
	key := wh.Namespace + "/" + wh.Name
	status := &wh.Status
	if status.WebhookAPI != keboolav1.WebhookAPINotificationSubscriptions {
		v.add("KeboolaWebhook %s has status.webhookAPI %q, want %q", key, status.WebhookAPI, keboolav1.WebhookAPINotificationSubscriptions)
	}
	if status.WebhookID != "" {
		v.add("KeboolaWebhook %s on the Notification service records webhook %s of the Storage API", key, status.WebhookID)
	}
	if status.PendingCreate != nil {
		v.add("KeboolaWebhook %s still records a pending create", key)
	}
	if status.Rotation != nil {
		v.add("KeboolaWebhook %s still records a rotation in phase %s", key, status.Rotation.Phase)
	}
	if len(status.RetiredSubscriptionIDs) > 0 {
		v.add("KeboolaWebhook %s still records retired subscriptions %v", key, status.RetiredSubscriptionIDs)
	}
	if len(status.RetiredWebhookIDs) > 0 {
		v.add("KeboolaWebhook %s still records retired webhooks %v", key, status.RetiredWebhookIDs)
	}
	if status.RotationToken != wh.Spec.RotationToken {
		v.add("KeboolaWebhook %s has status.rotationToken %q, want spec.rotationToken %q", key, status.RotationToken, wh.Spec.RotationToken)
	}
}

// checkMintedSecret checks that the Secret of wh holds a minted secret
// under signingSecret, with its fingerprint in the annotation and in the
// status, and nothing that only a rotation or the Storage API uses. It
// returns the secret, or "" when the Secret cannot be read, which is a
// violation too. Messages name secrets by fingerprint only.
func checkMintedSecret(ctx context.Context, c client.Client, wh *keboolav1.KeboolaWebhook, v *violations) string {
	key := wh.Namespace + "/" + wh.Name
	var secret corev1.Secret
	err := c.Get(ctx, types.NamespacedName{Namespace: wh.Namespace, Name: wh.Status.SecretName}, &secret)
	if err != nil {
		v.add("the Secret %q of KeboolaWebhook %s cannot be read: %v", wh.Status.SecretName, key, err)
		return ""
	}
	signing := string(secret.Data[keboolav1.SecretKeySigningSecret])
	if !mintedSecretPattern.MatchString(signing) {
		v.add("the Secret of KeboolaWebhook %s holds under %s a value of %d bytes (fingerprint %s), want 64 lowercase hexadecimal digits",
			key, keboolav1.SecretKeySigningSecret, len(signing), fingerprint(signing))
	}
	for _, dataKey := range []string{keboolav1.SecretKeyPreviousSigningSecret, keboolav1.SecretKeyWebhookID, keboolav1.SecretKeyPreviousWebhookID} {
		if _, ok := secret.Data[dataKey]; ok {
			v.add("the Secret of KeboolaWebhook %s on the Notification service still has the key %s", key, dataKey)
		}
	}
	if got := secret.Annotations[keboolav1.AnnotationSecretFingerprint]; got != fingerprint(signing) {
		v.add("the Secret of KeboolaWebhook %s has fingerprint annotation %q, want %q", key, got, fingerprint(signing))
	}
	if wh.Status.SecretFingerprint != fingerprint(signing) {
		v.add("KeboolaWebhook %s has status.secretFingerprint %q, want %q", key, wh.Status.SecretFingerprint, fingerprint(signing))
	}
	return signing
}

// checkSubscriptionMatches checks that the live subscription s, which wh
// records for event, has that event, a webhook recipient with the URL of
// the spec plus secret, the filters of the spec, and no expiry.
func checkSubscriptionMatches(wh *keboolav1.KeboolaWebhook, event string, s emulator.StoredSubscription, secret string, v *violations) {
	key := wh.Namespace + "/" + wh.Name
	if s.Event != event {
		v.add("subscription %s, which KeboolaWebhook %s records for event %q, has event %q", s.ID, key, event, s.Event)
	}
	if s.Recipient.Channel != emulator.ChannelWebhook {
		v.add("subscription %s of KeboolaWebhook %s has recipient channel %q, want %q", s.ID, key, s.Recipient.Channel, emulator.ChannelWebhook)
	}
	if want := expectedSubscriptionURL(wh.Spec.URL, secret); secret != "" && s.Recipient.URL != want {
		v.add("subscription %s of KeboolaWebhook %s has URL %q, want %q",
			s.ID, key, redactedURL(s.Recipient.URL), redactedURL(want))
	}
	if s.ExpiresAt != nil {
		v.add("subscription %s of KeboolaWebhook %s expires at %s, want no expiry", s.ID, key, s.ExpiresAt)
	}
	if !filtersEqual(wh.Spec.Filters, s.Filters) {
		v.add("subscription %s of KeboolaWebhook %s has filters %s, want spec.filters %s", s.ID, key, describeStoredFilters(s.Filters), describeSpecFilters(wh.Spec.Filters))
	}
}

// filtersEqual reports whether stored are spec, in the same order, with
// each value sent as a string and an absent operator stored as "==".
func filtersEqual(spec []keboolav1.EventFilter, stored []emulator.SubscriptionFilter) bool {
	return slices.EqualFunc(spec, stored, func(want keboolav1.EventFilter, got emulator.SubscriptionFilter) bool {
		operator := string(want.Operator)
		if operator == "" {
			operator = "=="
		}
		value, isString := got.Value.(string)
		return got.Field == want.Field && isString && value == want.Value && got.Operator == operator
	})
}

func describeSpecFilters(filters []keboolav1.EventFilter) string {
	parts := make([]string, len(filters))
	for i, f := range filters {
		parts[i] = fmt.Sprintf("%s %s %q", f.Field, cmp.Or(string(f.Operator), "=="), f.Value)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeStoredFilters(filters []emulator.SubscriptionFilter) string {
	parts := make([]string, len(filters))
	for i, f := range filters {
		parts[i] = fmt.Sprintf("%s %s %#v", f.Field, f.Operator, f.Value)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// checkNotificationDeliveries fires every event of the Notification
// service in every project on the Notification stack, with
// firedNotificationData.
// Each KeboolaWebhook whose spec.events contains the event and whose
// spec.filters the data meets must get exactly one delivery, which the
// receiver accepts by the kbc_secret in its URL, and no other KeboolaWebhook
// may get one. It returns the number of delivery attempts.
func checkNotificationDeliveries(ctx context.Context, c client.Client, projects []*project, v *violations) (int, error) {
	total := 0
	for _, p := range projects {
		if !p.notification {
			continue
		}
		var list keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &list, client.InNamespace(p.namespace)); err != nil {
			return total, err
		}
		for _, event := range emulator.NotificationEvents() {
			want := map[string]bool{}
			for _, wh := range list.Items {
				if slices.Contains(wh.Spec.Events, event) && filtersMatchFired(wh.Spec.Filters) {
					want[wh.Namespace+"/"+wh.Name] = true
				}
			}

			deliveries := p.emu.FireNotification(ctx, p.id, event, firedNotificationData)
			total += len(deliveries)
			got := map[string]int{}
			for _, d := range deliveries {
				key := deliveryTarget(d.URL)
				got[key]++
				if d.Status != http.StatusOK {
					v.add("the delivery of event %q by subscription %s to KeboolaWebhook %s got status %d (error %q), want 200 from a receiver that verifies the kbc_secret of the URL with the Secret",
						event, d.SubscriptionID, key, d.Status, redactURLSecret(d.Err, d.URL))
				}
			}
			for _, key := range sortedKeys(want) {
				if got[key] != 1 {
					v.add("event %q in project %d made %d delivery attempts to KeboolaWebhook %s, want 1", event, p.id, got[key], key)
				}
			}
			for _, key := range sortedKeys(got) {
				if !want[key] {
					v.add("event %q in project %d made %d delivery attempts to %s, whose spec.events or spec.filters exclude the event", event, p.id, got[key], key)
				}
			}
		}
	}
	return total, nil
}

// deliveryTarget returns the "namespace/name" of the KeboolaWebhook that a
// delivery URL of the receiver names, or the URL's path when it names none.
func deliveryTarget(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "an unparsable URL"
	}
	if target, ok := strings.CutPrefix(u.Path, "/hook/"); ok {
		return target
	}
	return u.Path
}

// webhookAPIWatch checks, while the soak runs and once more at the end,
// that the operator keeps using the webhook API that each project's stack
// offers. Faults on the requests that detect it, GET /v2/storage/webhooks
// and GET /v2/storage, must delay the detection but never change its
// result: a project that switched APIs, even for a moment, would move its
// webhooks to the other API and back. It reports each kind of problem once
// per project.
type webhookAPIWatch struct {
	mu       sync.Mutex
	reported map[string]bool
}

func newWebhookAPIWatch() *webhookAPIWatch {
	return &webhookAPIWatch{reported: map[string]bool{}}
}

// check reads the status of each KeboolaProject and the registrations of
// each project at its stack. A failed read skips the project until the
// next check.
func (w *webhookAPIWatch) check(ctx context.Context, c client.Client, projects []*project, v *violations) {
	for _, p := range projects {
		want := keboolav1.WebhookAPIStorageWebhooks
		if p.notification {
			want = keboolav1.WebhookAPINotificationSubscriptions
		}
		var kbp keboolav1.KeboolaProject
		if err := c.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: projectName}, &kbp); err == nil {
			if got := kbp.Status.WebhookAPI; got != "" && got != want {
				w.report(v, p, "api", "KeboolaProject %s/%s has status.webhookAPI %q, but its stack offers %s", p.namespace, projectName, got, want)
			}
			if got := kbp.Status.NotificationServiceURL; p.notification && got != "" && got != p.emu.NotificationURL() {
				w.report(v, p, "url", "KeboolaProject %s/%s has status.notificationServiceURL %q, want %q", p.namespace, projectName, got, p.emu.NotificationURL())
			}
		}
		if n := len(p.emu.Webhooks(p.id)); p.notification && n > 0 {
			w.report(v, p, "webhooks", "project %d, whose stack offers only the Notification service, holds %d webhooks of the Storage API", p.id, n)
		}
		if n := len(p.emu.Subscriptions(p.id)); !p.notification && n > 0 {
			w.report(v, p, "subscriptions", "project %d, whose stack has the webhooks endpoint, holds %d Notification service subscriptions", p.id, n)
		}
	}
}

// report adds a violation unless the problem kind of p was reported before.
func (w *webhookAPIWatch) report(v *violations, p *project, kind, format string, args ...any) {
	w.mu.Lock()
	key := p.namespace + " " + kind
	seen := w.reported[key]
	w.reported[key] = true
	w.mu.Unlock()
	if !seen {
		v.add(format, args...)
	}
}
