package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// A project whose webhook API is the Notification service gets one
// subscription per event of a KeboolaWebhook. The service signs nothing and
// returns no secret, so the operator mints the secret itself and puts it
// into the receiver URL as the query parameter webhook.SecretQueryParameter.
// No subscription can change, so every change is make-before-break:
//
//  1. Mint: ensureMintedSecret writes a new secret when the Secret contains
//     no secret that status.secretFingerprint names, when
//     spec.rotationToken changed, or when the KeboolaProject points at
//     another Keboola project. It writes the Secret first, keeping the
//     secret that live subscriptions may carry under previousSigningSecret,
//     and then records the new fingerprint in the status. The subscriptions
//     of the old secret move to status.retiredSubscriptionIDs.
//  2. Make: syncSubscriptions creates a subscription for every event of
//     the spec that no live subscription matches, and records the ids.
//  3. Break: deleteRetiredSubscriptions deletes the subscriptions that no
//     longer match, once the new ones are recorded. During a rotation, those
//     that carry the previous secret stay until the grace period ends.
//
// A subscription whose URL carries the current or the previous secret, or
// a secret whose fingerprint the status records, belongs to this
// KeboolaWebhook even when the status does not record its id, because the
// secret is unique to it. That is how the next pass finds a
// subscription whose create was interrupted before its id was recorded: it
// adopts the subscription when it matches the spec, and deletes it
// otherwise. So a crash at any point leaves neither a duplicate nor a
// subscription that nobody deletes.

// mintedSecretBytes is the number of random bytes of a minted secret. The
// secret is their hexadecimal form, which needs no escaping in a URL.
const mintedSecretBytes = 32

// notificationEvents are the event types of the Notification service.
var notificationEvents = []string{
	"job-failed",
	"job-succeeded",
	"job-succeeded-with-warning",
	"job-processing-long",
	"phase-job-failed",
	"phase-job-succeeded",
	"phase-job-succeeded-with-warning",
	"phase-job-processing-long",
}

// webhookAPISpecPrefix starts the message of every InvalidSpec condition
// that the project's webhook API causes. Like a denial by
// spec.allowedEvents, every pass checks it again, because the project may
// change its webhook API.
const webhookAPISpecPrefix = "The webhook API of KeboolaProject "

// usesSubscriptions reports whether the project of p registers webhooks as
// Notification service subscriptions.
func usesSubscriptions(p *webhookPass) bool {
	return p.project.Status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions
}

// checkWebhookAPISpec returns an InvalidSpec outcome when the spec of p.wh
// requests something that the webhook API of its project lacks.
func checkWebhookAPISpec(p *webhookPass) *outcome {
	spec := &p.wh.Spec
	project := fmt.Sprintf("%q", projectDisplayName(p.wh))
	var problem string
	if usesSubscriptions(p) {
		if unknown := slices.DeleteFunc(slices.Clone(spec.Events), func(e string) bool {
			return slices.Contains(notificationEvents, e)
		}); len(unknown) > 0 {
			problem = fmt.Sprintf("is the Notification service, which has no event types %s. It has %s. Change spec.events",
				quoteAll(unknown), quoteAll(notificationEvents))
		} else if hasSecretParameter(spec.URL) {
			problem = fmt.Sprintf("is the Notification service, for which the operator adds the query parameter %s to spec.url. Remove that parameter from spec.url",
				webhook.SecretQueryParameter)
		}
	} else {
		if len(spec.Filters) > 0 {
			problem = "is the webhooks endpoint of the Storage API, which has no filters. Remove spec.filters"
		} else if unknown := slices.DeleteFunc(slices.Clone(spec.Events), func(e string) bool {
			return strings.Contains(e, ".")
		}); len(unknown) > 0 {
			problem = fmt.Sprintf("is the webhooks endpoint of the Storage API, which has no event types %s: they belong to the Notification service. "+
				"Use event types of the form \"<area>.<event>\" in spec.events", quoteAll(unknown))
		}
	}
	if problem == "" {
		return nil
	}
	return &outcome{readiness: stalled(keboolav1.ReasonInvalidSpec,
		webhookAPISpecPrefix+project+" "+problem+", or set spec.webhookAPI of the project to the other API.")}
}

// hasSecretParameter reports whether rawURL has the query parameter that
// carries the minted secret.
func hasSecretParameter(rawURL string) bool {
	return len(secretParameterValues(rawURL)) > 0
}

// secretParameterValues returns the values of the secret query parameter of
// rawURL. Pairs are split at "&" and ";", as receivers split them, so that
// no form of the parameter goes unnoticed.
func secretParameterValues(rawURL string) []string {
	_, query, found := strings.Cut(rawURL, "?")
	if !found {
		return nil
	}
	query, _, _ = strings.Cut(query, "#")
	var values []string
	for pair := range strings.FieldsFuncSeq(query, func(r rune) bool { return r == '&' || r == ';' }) {
		key, value, _ := strings.Cut(pair, "=")
		if unescaped, err := url.QueryUnescape(key); err == nil {
			key = unescaped
		}
		if key != webhook.SecretQueryParameter {
			continue
		}
		if unescaped, err := url.QueryUnescape(value); err == nil {
			value = unescaped
		}
		values = append(values, value)
	}
	return values
}

// ensureSubscriptions makes the Notification service subscriptions of p.wh
// match the spec and carry the secret in the Secret.
func (r *KeboolaWebhookReconciler) ensureSubscriptions(ctx context.Context, p *webhookPass) *outcome {
	api, o := r.notificationAPI(ctx, p)
	if o != nil {
		return o
	}
	if o := r.ensureMintedSecret(ctx, p, api); o != nil {
		return o
	}
	live, o := r.syncSubscriptions(ctx, p, api)
	if o != nil {
		return o
	}
	if o := r.deleteRetiredSubscriptions(ctx, p, api, live); o != nil {
		return o
	}
	if o := r.deleteReplacedWebhooks(ctx, p); o != nil {
		return o
	}
	return r.retireSubscriptionRotation(ctx, p)
}

// notificationAPI returns the Notification service client of the pass.
func (r *KeboolaWebhookReconciler) notificationAPI(ctx context.Context, p *webhookPass) (keboola.NotificationAPI, *outcome) {
	if p.notifications != nil {
		return p.notifications, nil
	}
	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return nil, o
	}
	notifications, err := api.Notifications(p.project.Status.NotificationServiceURL)
	if err != nil {
		return nil, &outcome{readiness: progressing(keboolav1.ReasonProjectNotReady,
			fmt.Sprintf("Cannot use the Notification service of KeboolaProject %q: %v", p.project.Name, err))}
	}
	p.notifications = notifications
	return notifications, nil
}

// mintedSecretOf returns the value in secret, under signingSecret or
// previousSigningSecret, whose fingerprint is fp, or nil.
func mintedSecretOf(secret *corev1.Secret, key, fp string) []byte {
	if secret == nil || fp == "" {
		return nil
	}
	value := secret.Data[key]
	if len(value) == 0 || fingerprint(value) != fp {
		return nil
	}
	return value
}

// ensureMintedSecret makes sure that the Secret contains the secret whose
// fingerprint status.secretFingerprint records, minting a new one when it
// does not or when spec.rotationToken requests one.
func (r *KeboolaWebhookReconciler) ensureMintedSecret(ctx context.Context, p *webhookPass, api keboola.NotificationAPI) *outcome {
	status := &p.wh.Status
	rotate := status.RotationToken != p.wh.Spec.RotationToken
	// A KeboolaProject that now points at another Keboola project leaves
	// the subscriptions in the old one out of reach.
	moved := p.written.ProjectID != 0 && p.written.ProjectID != status.ProjectID
	if !rotate && !moved && status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions &&
		mintedSecretOf(p.secret, keboolav1.SecretKeySigningSecret, status.SecretFingerprint) != nil {
		return nil
	}
	// The cache may not have seen the operator's own latest write yet.
	fresh := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(p.secret), fresh); err != nil {
		return kubeFailure(fmt.Errorf("failed to read Secret %q: %w", p.secret.Name, err))
	}
	p.secret = fresh
	current := mintedSecretOf(fresh, keboolav1.SecretKeySigningSecret, status.SecretFingerprint)
	if !rotate && !moved && status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions && current != nil {
		return nil
	}

	// A new secret replaces the one that status records, so the decision
	// must rest on the latest status: a stale read would orphan the
	// subscriptions of a secret recorded since.
	if o := r.confirmLatest(ctx, p); o != nil {
		return o
	}

	previous, o := r.secretInUse(ctx, p, api, fresh, current)
	if o != nil {
		return o
	}
	if moved {
		previous = nil
		r.forgetOtherProject(ctx, p)
	}
	// Retired subscriptions of an earlier rotation carry a secret that the
	// Secret is about to lose, so they go first.
	if o := r.deleteRetiredExcept(ctx, p, api, previous); o != nil {
		return o
	}

	value := mintSecret()
	if err := r.storeMintedSecret(ctx, p, value, previous); err != nil {
		return kubeFailure(err)
	}
	if !rotate && !moved && status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions && status.SecretFingerprint != "" {
		log.FromContext(ctx).Info("Replacing subscriptions because the Secret does not contain their secret",
			"secret", fresh.Name, "fingerprint", status.SecretFingerprint)
		r.Recorder.Eventf(p.wh, fresh, corev1.EventTypeWarning, eventReasonSecretReplaced, "Rotate",
			"Secret %q no longer contains the secret of the Notification service subscriptions, so the operator wrote a new one and replaces the subscriptions",
			fresh.Name)
	}

	for _, s := range status.Subscriptions {
		status.RetiredSubscriptionIDs = appendMissing(status.RetiredSubscriptionIDs, s.ID)
	}
	status.Subscriptions = nil
	status.SecretFingerprint = fingerprint(value)
	status.RotationToken = p.wh.Spec.RotationToken
	status.WebhookAPI = keboolav1.WebhookAPINotificationSubscriptions
	status.Rotation = nil
	reason := pendingReasonCreate
	if previous != nil {
		reason = pendingReasonRotate
		status.Rotation = &keboolav1.RotationStatus{
			Phase:                     keboolav1.RotationPhasePublishing,
			PreviousWebhookID:         status.WebhookID,
			PreviousSecretFingerprint: fingerprint(previous),
			StartedTime:               metav1.Now(),
		}
	}
	status.ObservedGeneration = p.wh.Generation
	setReadiness(&status.Conditions, p.wh.Generation, mintingReadiness(reason))
	if err := r.writeStatus(ctx, p); err != nil {
		return kubeFailure(err)
	}
	log.FromContext(ctx).Info("Wrote a new secret for the Notification service subscriptions",
		"fingerprint", status.SecretFingerprint, "rotation", previous != nil)
	return nil
}

// secretInUse returns the secret that the live subscriptions, or the
// webhook of the Storage API, of p.wh may carry, so that the Secret keeps it
// while they still deliver, or nil when nothing can deliver yet. current is
// the secret of the Secret whose fingerprint status records, if any. A
// subscription may carry it even when status records none, because its
// create was interrupted. After a crash between the Secret write and the
// status write of a rotation, that secret is already under
// previousSigningSecret. When the Secret lost it, the secret is read back
// from the URL of a live subscription.
func (r *KeboolaWebhookReconciler) secretInUse(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, secret *corev1.Secret, current []byte) ([]byte, *outcome) {
	status := &p.wh.Status
	if status.WebhookID == "" && status.WebhookAPI != keboolav1.WebhookAPINotificationSubscriptions {
		return nil, nil
	}
	if current != nil {
		return current, nil
	}
	if previous := mintedSecretOf(secret, keboolav1.SecretKeyPreviousSigningSecret, status.SecretFingerprint); previous != nil {
		return previous, nil
	}
	if status.WebhookAPI != keboolav1.WebhookAPINotificationSubscriptions {
		return nil, nil
	}
	live, o := r.listSubscriptions(ctx, p, api, false)
	if o != nil {
		return nil, o
	}
	for _, s := range live {
		if value, ok := urlSecret(s.URL); ok && value != "" && fingerprint([]byte(value)) == status.SecretFingerprint {
			return []byte(value), nil
		}
	}
	return nil, nil
}

// forgetOtherProject drops the subscriptions and webhooks of p.wh that
// status records in a Keboola project that its KeboolaProject no longer
// points at. The operator cannot reach them any more. The new secret makes
// receivers reject their deliveries.
func (r *KeboolaWebhookReconciler) forgetOtherProject(ctx context.Context, p *webhookPass) {
	status := &p.wh.Status
	known := slices.Concat(knownSubscriptionIDs(status), knownWebhookIDs(status))
	if len(known) == 0 {
		return
	}
	log.FromContext(ctx).Info("KeboolaProject points at another Keboola project; leaving the registrations in the old one",
		"previousProjectID", p.written.ProjectID, "projectID", status.ProjectID, "registrations", len(known))
	r.Recorder.Eventf(p.wh, nil, corev1.EventTypeWarning, eventReasonProjectChanged, "Rotate",
		"KeboolaProject %q now points at Keboola project %d. The operator cannot delete %d registrations in project %d, so it replaced the secret, which makes receivers reject their deliveries; delete them in Keboola",
		p.project.Name, status.ProjectID, len(known), p.written.ProjectID)
	status.Subscriptions = nil
	status.RetiredSubscriptionIDs = nil
	status.WebhookID = ""
	status.RetiredWebhookIDs = nil
	status.PendingCreate = nil
}

// confirmLatest returns a conflict when the API server has a newer version
// of p.wh than the pass read, so that the pass is retried with a fresh read.
func (r *KeboolaWebhookReconciler) confirmLatest(ctx context.Context, p *webhookPass) *outcome {
	latest := &keboolav1.KeboolaWebhook{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(p.wh), latest); err != nil {
		return kubeFailure(fmt.Errorf("failed to read KeboolaWebhook %q: %w", p.wh.Name, err))
	}
	if latest.ResourceVersion != p.wh.ResourceVersion {
		return kubeFailure(apierrors.NewConflict(keboolav1.GroupVersion.WithResource("keboolawebhooks").GroupResource(),
			p.wh.Name, errors.New("the pass read an older version")))
	}
	return nil
}

// mintingReadiness is the readiness while a new secret is published.
func mintingReadiness(reason string) readiness {
	if reason == pendingReasonRotate {
		return progressing(keboolav1.ReasonRotating,
			"Creating Notification service subscriptions with a new secret to replace the current ones")
	}
	return progressing(keboolav1.ReasonCreating, "Creating the Notification service subscriptions")
}

// mintSecret returns a new random secret.
func mintSecret() []byte {
	b := make([]byte, mintedSecretBytes)
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b)
	return []byte(hex.EncodeToString(b))
}

// storeMintedSecret writes value to p.secret under signingSecret, and
// previous under previousSigningSecret, or removes that key when previous
// is nil. Keys that only the webhooks endpoint of the Storage API uses are
// removed.
func (r *KeboolaWebhookReconciler) storeMintedSecret(ctx context.Context, p *webhookPass, value, previous []byte) error {
	secret := p.secret.DeepCopy()
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Data[keboolav1.SecretKeySigningSecret] = value
	delete(secret.Data, keboolav1.SecretKeyWebhookID)
	delete(secret.Data, keboolav1.SecretKeyPreviousWebhookID)
	if previous != nil {
		secret.Data[keboolav1.SecretKeyPreviousSigningSecret] = previous
	} else {
		delete(secret.Data, keboolav1.SecretKeyPreviousSigningSecret)
	}
	secret.Annotations[keboolav1.AnnotationSecretFingerprint] = fingerprint(value)
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("failed to write a new secret to Secret %q: %w", secret.Name, err)
	}
	p.secret = secret
	return nil
}

// subscriptionURL returns base with secret added as the query parameter
// webhook.SecretQueryParameter. The rest of base stays exactly as it is.
func subscriptionURL(base string, secret []byte) string {
	separator := "?"
	if strings.Contains(base, "?") {
		separator = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			separator = ""
		}
	}
	return base + separator + webhook.SecretQueryParameter + "=" + url.QueryEscape(string(secret))
}

// urlSecret returns the value of the secret query parameter of rawURL, and
// false when it has not exactly one.
func urlSecret(rawURL string) (string, bool) {
	values := secretParameterValues(rawURL)
	if len(values) != 1 {
		return "", false
	}
	return values[0], true
}

// desiredSubscriptions returns the subscriptions that the spec of wh
// requests, one per event, with secret in their URL.
//
// NOTE: filter values are sent as JSON strings. Whether the Notification
// service compares a numeric field such as durationOvertimePercentage with
// a string value as a number is not confirmed.
func desiredSubscriptions(wh *keboolav1.KeboolaWebhook, secret []byte) []keboola.SubscriptionSpec {
	target := subscriptionURL(wh.Spec.URL, secret)
	var filters []keboola.Filter
	for _, f := range wh.Spec.Filters {
		filters = append(filters, keboola.Filter{Field: f.Field, Value: f.Value, Operator: string(f.Operator)})
	}
	events := slices.Sorted(slices.Values(wh.Spec.Events))
	desired := make([]keboola.SubscriptionSpec, 0, len(events))
	for _, event := range events {
		desired = append(desired, keboola.SubscriptionSpec{Event: event, URL: target, Filters: filters})
	}
	return desired
}

// subscriptionMatches reports whether live matches desired.
func subscriptionMatches(live keboola.Subscription, desired keboola.SubscriptionSpec) bool {
	return live.Event == desired.Event && live.URL == desired.URL && live.ExpiresAt == nil &&
		slices.EqualFunc(live.Filters, desired.Filters, func(a, b keboola.Filter) bool {
			return a.Field == b.Field && a.Value == b.Value && filterOperator(a.Operator) == filterOperator(b.Operator)
		})
}

// filterOperator returns the operator of a filter, "==" when it is empty.
func filterOperator(op string) string {
	if op == "" {
		return "=="
	}
	return op
}

// subscriptionPlan is the work of one syncSubscriptions pass.
type subscriptionPlan struct {
	// keep maps an event to the live subscription that serves it.
	keep map[string]string
	// missing are the desired subscriptions that no live one matches.
	missing []keboola.SubscriptionSpec
	// obsolete are live subscriptions of this KeboolaWebhook that serve no
	// event: they differ from the spec, or duplicate a kept one.
	obsolete []string
	// vanished are the recorded subscriptions that the list lacks.
	vanished []keboolav1.SubscriptionStatus
}

// planSubscriptions compares the desired subscriptions with the live ones.
// A live subscription belongs to this KeboolaWebhook when status records it,
// or its URL carries one of secrets or a secret whose fingerprint status
// records.
func planSubscriptions(desired []keboola.SubscriptionSpec, live []keboola.Subscription, status *keboolav1.KeboolaWebhookStatus, secrets ...[]byte) subscriptionPlan {
	recorded := map[string]string{}
	for _, s := range status.Subscriptions {
		recorded[s.ID] = s.Event
	}
	fingerprints := recordedFingerprints(status)
	ours := slices.DeleteFunc(slices.Clone(live), func(s keboola.Subscription) bool {
		_, isRecorded := recorded[s.ID]
		return !isRecorded && !slices.Contains(status.RetiredSubscriptionIDs, s.ID) &&
			!carriesSecret(s.URL, secrets) && !carriesFingerprint(s.URL, fingerprints)
	})
	// Recorded subscriptions come first, so that they are kept rather than
	// an adopted duplicate.
	slices.SortStableFunc(ours, func(a, b keboola.Subscription) int {
		_, ra := recorded[a.ID]
		_, rb := recorded[b.ID]
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})

	plan := subscriptionPlan{keep: map[string]string{}}
	used := map[string]bool{}
	for _, d := range desired {
		index := slices.IndexFunc(ours, func(s keboola.Subscription) bool { return !used[s.ID] && subscriptionMatches(s, d) })
		if index < 0 {
			plan.missing = append(plan.missing, d)
			continue
		}
		used[ours[index].ID] = true
		plan.keep[d.Event] = ours[index].ID
	}
	for _, s := range ours {
		if !used[s.ID] {
			plan.obsolete = append(plan.obsolete, s.ID)
		}
	}
	for _, s := range status.Subscriptions {
		if !slices.ContainsFunc(live, func(l keboola.Subscription) bool { return l.ID == s.ID }) {
			plan.vanished = append(plan.vanished, keboolav1.SubscriptionStatus{Event: s.Event, ID: s.ID})
		}
	}
	return plan
}

// carriesSecret reports whether rawURL carries one of secrets in its secret
// query parameter.
func carriesSecret(rawURL string, secrets [][]byte) bool {
	value, ok := urlSecret(rawURL)
	if !ok || value == "" {
		return false
	}
	return slices.ContainsFunc(secrets, func(s []byte) bool { return len(s) > 0 && string(s) == value })
}

// recordedFingerprints returns the fingerprints of the secrets that status
// records: the current one and a rotation's previous one.
func recordedFingerprints(status *keboolav1.KeboolaWebhookStatus) []string {
	var fingerprints []string
	if status.SecretFingerprint != "" {
		fingerprints = append(fingerprints, status.SecretFingerprint)
	}
	if status.Rotation != nil && status.Rotation.PreviousSecretFingerprint != "" {
		fingerprints = append(fingerprints, status.Rotation.PreviousSecretFingerprint)
	}
	return fingerprints
}

// carriesFingerprint reports whether rawURL carries a secret whose
// fingerprint is one of fingerprints.
func carriesFingerprint(rawURL string, fingerprints []string) bool {
	value, ok := urlSecret(rawURL)
	return ok && value != "" && slices.Contains(fingerprints, fingerprint([]byte(value)))
}

// listSubscriptions returns the project's subscriptions: the shared list
// unless fresh is set, and a new one otherwise.
func (r *KeboolaWebhookReconciler) listSubscriptions(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, fresh bool) ([]keboola.Subscription, *outcome) {
	if fresh {
		r.subscriptionObserver().invalidate(p.key)
	} else if subscriptions, ok := r.subscriptionObserver().cached(p.key); ok {
		return subscriptions, nil
	}
	subscriptions, _, err := r.subscriptionObserver().list(ctx, p.key, api.ListSubscriptions)
	if err != nil {
		return nil, apiOutcome("list the Notification service subscriptions of the project", err)
	}
	return subscriptions, nil
}

// syncSubscriptions creates the subscriptions that the spec requests and no
// live one provides, records which subscription serves each event, and
// returns the list it decided on.
// Creates are decided on a fresh list only, so that a shared list that
// predates a create never causes a duplicate.
func (r *KeboolaWebhookReconciler) syncSubscriptions(ctx context.Context, p *webhookPass, api keboola.NotificationAPI) ([]keboola.Subscription, *outcome) {
	wh := p.wh
	status := &wh.Status
	current := p.secret.Data[keboolav1.SecretKeySigningSecret]
	previous := p.secret.Data[keboolav1.SecretKeyPreviousSigningSecret]
	desired := desiredSubscriptions(wh, current)

	live, o := r.listSubscriptions(ctx, p, api, false)
	if o != nil {
		return nil, o
	}
	plan := planSubscriptions(desired, live, status, current, previous)
	if len(plan.missing) > 0 {
		if live, o = r.listSubscriptions(ctx, p, api, true); o != nil {
			return nil, o
		}
		plan = planSubscriptions(desired, live, status, current, previous)
	}

	before := slices.Clone(status.Subscriptions)
	newlyRetired := slices.DeleteFunc(slices.Clone(plan.obsolete), func(id string) bool {
		return slices.Contains(status.RetiredSubscriptionIDs, id)
	})
	recordPlan(status, plan)
	var created []keboolav1.SubscriptionStatus
	for _, spec := range plan.missing {
		subscription, err := api.CreateSubscription(ctx, spec)
		r.subscriptionObserver().invalidate(p.key)
		if err != nil {
			// A subscription whose create had an unknown outcome carries
			// the current secret, so the next pass adopts or deletes it.
			if werr := r.writeStatus(ctx, p); werr != nil {
				return nil, kubeFailure(werr)
			}
			return nil, apiOutcome("create the Notification service subscription for event "+spec.Event, err)
		}
		if err := runCreateStepHook(ctx, wh, createStepSubscriptionCreated); err != nil {
			return nil, kubeFailure(err)
		}
		created = append(created, keboolav1.SubscriptionStatus{Event: spec.Event, ID: subscription.ID})
		setSubscription(status, spec.Event, subscription.ID)
	}

	if len(created) > 0 || !slices.Equal(before, status.Subscriptions) ||
		!isReady(p.written.Conditions, wh.Generation) || status.LastSyncedTime == nil {
		synced := metav1.Now()
		status.LastSyncedTime = &synced
	}
	status.WebhookAPI = keboolav1.WebhookAPINotificationSubscriptions
	startOverlap(status, time.Now(), r.Options.RotationGracePeriod)
	if err := r.writeStatus(ctx, p); err != nil {
		return nil, kubeFailure(err)
	}
	switch {
	case len(created) > 0:
		log.FromContext(ctx).Info("Created Notification service subscriptions", "subscriptions", len(created),
			"fingerprint", status.SecretFingerprint)
		r.emitSubscriptionsEvent(p, before, created, plan.vanished)
	case len(newlyRetired) > 0 && status.Rotation == nil:
		reason, cause := eventReasonDriftCorrected, "they duplicate or differ from the subscriptions that the spec requests"
		if wh.Generation != p.initialGeneration {
			reason, cause = eventReasonUpdated, "the spec no longer requests them"
		}
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, reason, "Update",
			"Deleting Notification service subscriptions %s because %s", quoteAll(newlyRetired), cause)
	}
	return live, nil
}

// recordPlan records in status the subscriptions that plan keeps, and
// moves the obsolete ones to retiredSubscriptionIDs.
func recordPlan(status *keboolav1.KeboolaWebhookStatus, plan subscriptionPlan) {
	var kept []keboolav1.SubscriptionStatus
	for event, id := range plan.keep {
		kept = append(kept, keboolav1.SubscriptionStatus{Event: event, ID: id})
	}
	for _, id := range plan.obsolete {
		status.RetiredSubscriptionIDs = appendMissing(status.RetiredSubscriptionIDs, id)
	}
	keptIDs := slices.Collect(maps.Values(plan.keep))
	status.RetiredSubscriptionIDs = slices.DeleteFunc(status.RetiredSubscriptionIDs, func(id string) bool {
		return slices.Contains(keptIDs, id)
	})
	if len(status.RetiredSubscriptionIDs) == 0 {
		status.RetiredSubscriptionIDs = nil
	}
	sortSubscriptions(kept)
	status.Subscriptions = kept
}

// setSubscription records id as the subscription of event.
func setSubscription(status *keboolav1.KeboolaWebhookStatus, event, id string) {
	status.Subscriptions = slices.DeleteFunc(status.Subscriptions, func(s keboolav1.SubscriptionStatus) bool { return s.Event == event })
	status.Subscriptions = append(status.Subscriptions, keboolav1.SubscriptionStatus{Event: event, ID: id})
	sortSubscriptions(status.Subscriptions)
}

func sortSubscriptions(subscriptions []keboolav1.SubscriptionStatus) {
	slices.SortFunc(subscriptions, func(a, b keboolav1.SubscriptionStatus) int { return strings.Compare(a.Event, b.Event) })
}

// appendMissing appends id to ids unless it is there already.
func appendMissing(ids []string, id string) []string {
	if slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}

// emitSubscriptionsEvent reports created subscriptions with the Event
// reason that matches why they were created.
func (r *KeboolaWebhookReconciler) emitSubscriptionsEvent(p *webhookPass, before, created, vanished []keboolav1.SubscriptionStatus) {
	wh := p.wh
	described := describeSubscriptions(created)
	switch {
	case wh.Status.Rotation != nil:
		r.Recorder.Eventf(wh, p.secret, corev1.EventTypeNormal, eventReasonRotated, "Create",
			"Created %s with a new secret in Secret %q; the previous subscriptions keep delivering for the grace period of %s and are deleted then",
			described, p.secret.Name, r.Options.RotationGracePeriod)
	case len(before) == 0:
		r.Recorder.Eventf(wh, p.secret, corev1.EventTypeNormal, eventReasonCreated, "Create",
			"Created %s and wrote their secret to Secret %q", described, p.secret.Name)
	case len(vanished) > 0:
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonRecreated, "Create",
			"Created %s because %s expired or was deleted in the Notification service", described, describeSubscriptions(vanished))
	case wh.Generation != p.initialGeneration:
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonUpdated, "Update",
			"Created %s to match the spec; the subscriptions they replace are deleted next", described)
	default:
		r.Recorder.Eventf(wh, nil, corev1.EventTypeNormal, eventReasonDriftCorrected, "Update",
			"Created %s because the subscriptions in the Notification service no longer matched the spec", described)
	}
}

// describeSubscriptions names subscriptions with their events, such as
// `subscription "12" for event "job-failed"`.
func describeSubscriptions(subscriptions []keboolav1.SubscriptionStatus) string {
	parts := make([]string, len(subscriptions))
	for i, s := range subscriptions {
		parts[i] = fmt.Sprintf("%q for event %q", s.ID, s.Event)
	}
	if len(parts) == 1 {
		return "subscription " + parts[0]
	}
	return "subscriptions " + strings.Join(parts, ", ")
}

// subscriptionOverlapProtects reports whether the retired subscriptions
// must keep delivering: while a rotation publishes its new subscriptions,
// and until its grace period ends.
func subscriptionOverlapProtects(status *keboolav1.KeboolaWebhookStatus, now time.Time) bool {
	rotation := status.Rotation
	if rotation == nil {
		return false
	}
	if rotation.Phase == keboolav1.RotationPhasePublishing {
		return true
	}
	remaining, overlapping := overlapRemaining(status, now)
	return overlapping && remaining > 0
}

// deleteRetiredSubscriptions deletes the subscriptions that newer ones
// replaced. While a rotation publishes or overlaps, the subscriptions that
// carry its previous secret keep delivering, and so do those that live lacks,
// whose URL is unknown. Older ones, whose secret the Secret no longer
// contains, go at once.
func (r *KeboolaWebhookReconciler) deleteRetiredSubscriptions(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, live []keboola.Subscription) *outcome {
	status := &p.wh.Status
	protects := subscriptionOverlapProtects(status, time.Now())
	return r.deleteRetired(ctx, p, api, func(id string) bool {
		return protects && carriesPreviousSecret(live, id, status.Rotation.PreviousSecretFingerprint)
	})
}

// deleteRetiredExcept deletes the retired subscriptions that do not carry
// keep, as a fresh list shows them. Those that the list lacks are gone
// already and are forgotten without a request.
func (r *KeboolaWebhookReconciler) deleteRetiredExcept(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, keep []byte) *outcome {
	status := &p.wh.Status
	if len(status.RetiredSubscriptionIDs) == 0 {
		return nil
	}
	live, o := r.listSubscriptions(ctx, p, api, true)
	if o != nil {
		return o
	}
	urls := make(map[string]string, len(live))
	for _, s := range live {
		urls[s.ID] = s.URL
	}
	status.RetiredSubscriptionIDs = slices.DeleteFunc(status.RetiredSubscriptionIDs, func(id string) bool {
		_, found := urls[id]
		return !found
	})
	return r.deleteRetired(ctx, p, api, func(id string) bool {
		return keep != nil && carriesSecret(urls[id], [][]byte{keep})
	})
}

// deleteRetired deletes the retired subscriptions for which keep is false,
// and leaves the others in status.retiredSubscriptionIDs.
func (r *KeboolaWebhookReconciler) deleteRetired(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, keep func(id string) bool) *outcome {
	status := &p.wh.Status
	var kept []string
	defer func() {
		status.RetiredSubscriptionIDs = append(kept, status.RetiredSubscriptionIDs...)
		if len(status.RetiredSubscriptionIDs) == 0 {
			status.RetiredSubscriptionIDs = nil
		}
	}()
	for len(status.RetiredSubscriptionIDs) > 0 {
		id := status.RetiredSubscriptionIDs[0]
		if keep(id) {
			kept = append(kept, id)
			status.RetiredSubscriptionIDs = status.RetiredSubscriptionIDs[1:]
			continue
		}

		err := api.DeleteSubscription(ctx, id)
		r.subscriptionObserver().invalidate(p.key)
		if err != nil {
			return replacedDeletionOutcome("delete the replaced Notification service subscription "+id, err)
		}
		log.FromContext(ctx).Info("Deleted replaced Notification service subscription", "subscriptionID", id)
		status.RetiredSubscriptionIDs = status.RetiredSubscriptionIDs[1:]
	}
	return nil
}

// carriesPreviousSecret reports whether the subscription id carries the
// secret with fingerprint previous, or is missing from live, which may
// predate it.
func carriesPreviousSecret(live []keboola.Subscription, id, previous string) bool {
	index := slices.IndexFunc(live, func(s keboola.Subscription) bool { return s.ID == id })
	return index < 0 || carriesFingerprint(live[index].URL, []string{previous})
}

// replacedDeletionOutcome is the outcome of a failed deletion of a webhook
// or subscription that a newer one replaced. A 400 or 422 on a delete is not
// a problem of the spec, and a 403 may be a passing fault, so unlike other
// rejections they are retried with backoff.
func replacedDeletionOutcome(action string, err error) *outcome {
	o := apiOutcome(action, err)
	switch {
	case errors.Is(err, keboola.ErrInvalidRequest):
		return &outcome{
			readiness: progressing(keboolav1.ReasonAPIUnavailable,
				fmt.Sprintf("Keboola rejected the request to %s (%s). It is retried with backoff", action, describeAPIError(err))),
			err: err,
		}
	case errors.Is(err, keboola.ErrForbidden):
		o.readiness = progressing(keboolav1.ReasonForbidden, o.readiness.message+". It is retried with backoff")
		o.err = err
	}
	return o
}

// deleteReplacedWebhooks deletes the webhooks of the Storage API that the
// KeboolaWebhook had before its project moved to the Notification service,
// once the subscriptions that replace them are recorded and the grace period
// is over. Webhooks with a marker name of an interrupted create go too.
func (r *KeboolaWebhookReconciler) deleteReplacedWebhooks(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	known := knownWebhookIDs(status)
	if (len(known) == 0 && status.PendingCreate == nil) || subscriptionOverlapProtects(status, time.Now()) {
		return nil
	}
	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}

	defer r.webhookObserver().invalidate(p.key)
	webhooks, err := api.ListWebhooks(ctx)
	switch {
	case errors.Is(err, keboola.ErrNotFound):
		// The stack no longer has the webhooks endpoint, and with it the
		// webhooks.
		webhooks = nil
		known = nil
	case err != nil:
		return replacedDeletionOutcome("list the webhooks of the project", err)
	}

	for _, id := range withMarkerWebhooks(known, webhooks, p.wh.UID) {
		if err := api.DeleteWebhook(ctx, id); err != nil {
			return replacedDeletionOutcome("delete the webhook "+id+" that the subscriptions replace", err)
		}
		log.FromContext(ctx).Info("Deleted webhook replaced by Notification service subscriptions", "webhookID", id)
	}

	status.WebhookID = ""
	status.RetiredWebhookIDs = nil
	status.PendingCreate = nil
	return nil
}

// retireSubscriptionRotation ends a rotation whose grace period has
// passed, once deleteRetiredSubscriptions deleted the previous
// subscriptions: it removes the previous secret from the Secret and clears
// status.rotation.
func (r *KeboolaWebhookReconciler) retireSubscriptionRotation(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	if status.Rotation == nil || subscriptionOverlapProtects(status, time.Now()) ||
		len(status.RetiredSubscriptionIDs) > 0 || status.WebhookID != "" {
		return nil
	}
	if err := r.removePreviousSecret(ctx, p, ""); err != nil {
		return kubeFailure(err)
	}
	status.Rotation = nil
	log.FromContext(ctx).Info("Rotation completed", "fingerprint", status.SecretFingerprint)
	r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRotationCompleted, "Rotate",
		"Deleted the subscriptions of the previous secret and removed that secret from Secret %q", p.secret.Name)
	return nil
}

// subscriptionsSyncedReadiness is the readiness of a KeboolaWebhook whose
// subscriptions match the spec.
func subscriptionsSyncedReadiness(status *keboolav1.KeboolaWebhookStatus) readiness {
	verb, pronoun := "match", "their"
	if len(status.Subscriptions) == 1 {
		verb, pronoun = "matches", "its"
	}
	message := fmt.Sprintf("The Notification service %s %s the spec and Secret %q contains %s secret",
		describeSubscriptions(status.Subscriptions), verb, status.SecretName, pronoun)
	_, overlapping := overlapRemaining(status, time.Now())
	switch {
	case overlapping && status.WebhookID != "":
		message += fmt.Sprintf(". The webhook %q that they replace keeps delivering until the grace period ends (status.rotation.overlapUntil)", status.WebhookID)
	case overlapping:
		message += ". The previous subscriptions keep delivering until the rotation's grace period ends (status.rotation.overlapUntil)"
	}
	return ready(keboolav1.ReasonSynced, message)
}

// knownSubscriptionIDs returns the current and the retired subscription
// ids of status.
func knownSubscriptionIDs(status *keboolav1.KeboolaWebhookStatus) []string {
	var ids []string
	for _, s := range status.Subscriptions {
		ids = appendMissing(ids, s.ID)
	}
	for _, id := range status.RetiredSubscriptionIDs {
		ids = appendMissing(ids, id)
	}
	return ids
}

// deleteAllSubscriptions deletes the known subscriptions of p.wh and every
// subscription whose URL carries a secret of its Secret, which an
// interrupted create may have left. It returns the ids it deleted.
func (r *KeboolaWebhookReconciler) deleteAllSubscriptions(ctx context.Context, p *webhookPass, known []string) ([]string, *outcome) {
	if p.project.Status.NotificationServiceURL == "" {
		return nil, &outcome{readiness: deletionBlockedReadiness(known,
			fmt.Sprintf("KeboolaProject %q no longer reports a Notification service", p.project.Name))}
	}
	api, err := p.api.Notifications(p.project.Status.NotificationServiceURL)
	if err != nil {
		return nil, &outcome{readiness: deletionBlockedReadiness(known, err.Error())}
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: p.wh.Namespace, Name: p.wh.Status.SecretName}
	if err := r.APIReader.Get(ctx, key, secret); client.IgnoreNotFound(err) != nil {
		return nil, kubeFailure(fmt.Errorf("failed to read Secret %q: %w", key.Name, err))
	}
	secrets := [][]byte{secret.Data[keboolav1.SecretKeySigningSecret], secret.Data[keboolav1.SecretKeyPreviousSigningSecret]}

	fingerprints := recordedFingerprints(&p.wh.Status)
	return r.sweepSubscriptions(ctx, p, api, known,
		func(rawURL string) bool {
			return carriesSecret(rawURL, secrets) || carriesFingerprint(rawURL, fingerprints)
		},
		func(action string, err error) *outcome { return deletionFailure(known, action, err) })
}

// sweepSubscriptions deletes the subscriptions known and every live
// subscription whose URL owns accepts, and returns the ids it deleted. fail
// turns a failed request into the outcome of the pass.
func (r *KeboolaWebhookReconciler) sweepSubscriptions(ctx context.Context, p *webhookPass, api keboola.NotificationAPI, known []string,
	owns func(rawURL string) bool, fail func(action string, err error) *outcome) ([]string, *outcome) {
	live, err := api.ListSubscriptions(ctx)
	if err != nil {
		return nil, fail("list the Notification service subscriptions of the project", err)
	}
	ids := slices.Clone(known)
	for _, s := range live {
		if owns(s.URL) {
			ids = appendMissing(ids, s.ID)
		}
	}

	defer r.subscriptionObserver().invalidate(p.key)
	for _, id := range ids {
		if err := api.DeleteSubscription(ctx, id); err != nil {
			return nil, fail("delete the Notification service subscription "+id, err)
		}
		log.FromContext(ctx).Info("Deleted Notification service subscription", "subscriptionID", id)
	}
	return ids, nil
}

// deleteReplacedSubscriptions deletes the Notification service
// subscriptions that the KeboolaWebhook had before its project moved to the
// webhooks endpoint of the Storage API, once the webhook that replaces them
// is recorded and the grace period is over. Subscriptions that carry the
// replaced secret go too, such as one whose create was interrupted.
func (r *KeboolaWebhookReconciler) deleteReplacedSubscriptions(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	known := knownSubscriptionIDs(status)
	if (len(known) == 0 && !replacesSubscriptions(status)) || status.WebhookID == "" ||
		subscriptionOverlapProtects(status, time.Now()) {
		return nil
	}
	api, o := r.notificationAPI(ctx, p)
	if o != nil {
		return o
	}
	fingerprints := recordedFingerprints(status)
	if _, o := r.sweepSubscriptions(ctx, p, api, known,
		func(rawURL string) bool { return carriesFingerprint(rawURL, fingerprints) },
		replacedDeletionOutcome); o != nil {
		return o
	}
	status.Subscriptions = nil
	status.RetiredSubscriptionIDs = nil
	return nil
}

// replacesSubscriptions reports whether the rotation in status replaces
// Notification service subscriptions with a webhook: it has a previous
// secret but no previous webhook.
func replacesSubscriptions(status *keboolav1.KeboolaWebhookStatus) bool {
	return status.Rotation != nil && status.Rotation.PreviousWebhookID == "" &&
		status.Rotation.PreviousSecretFingerprint != "" && status.WebhookID != ""
}
