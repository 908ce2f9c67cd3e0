package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy determines what happens to the webhook at Keboola when its
// KeboolaWebhook is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the webhook at Keboola.
	DeletionPolicyDelete DeletionPolicy = "Delete"

	// DeletionPolicyOrphan leaves the webhook at Keboola untouched.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// Keys of the Secret that the operator writes for a KeboolaWebhook.
const (
	// SecretKeySigningSecret is the key of the signing secret: the HMAC-SHA256
	// key of the X-Kbc-Signature header of every delivery.
	SecretKeySigningSecret = "signingSecret"

	// SecretKeyWebhookID is the key of the id of the webhook at Keboola that
	// signs with the signing secret.
	SecretKeyWebhookID = "webhookID"

	// SecretKeyPreviousSigningSecret is the key of the signing secret of the
	// webhook that a rotation replaces. It is present from the moment the new
	// signing secret is published until the operator deletes the previous
	// webhook, after the operator's rotation grace period, so that receivers
	// accept the deliveries of both webhooks in between.
	SecretKeyPreviousSigningSecret = "previousSigningSecret"

	// SecretKeyPreviousWebhookID is the key of the id of the webhook that
	// signs with the secret under SecretKeyPreviousSigningSecret. Both keys
	// are present together or not at all.
	SecretKeyPreviousWebhookID = "previousWebhookID"
)

// Annotations and labels the operator reads or sets.
const (
	// AnnotationPaused, set to "true" on a KeboolaWebhook, stops every call
	// to Keboola for that object until it is removed or set to another value.
	AnnotationPaused = "keboola.dev/paused"

	// AnnotationSecretFingerprint, on a Secret the operator writes, is the
	// fingerprint of its signing secret: "sha256:" followed by the first 16
	// hexadecimal digits of the SHA-256 hash of the secret.
	AnnotationSecretFingerprint = "keboola.dev/secret-fingerprint"

	// LabelManagedBy marks the Secrets the operator writes. The operator's
	// Secret cache holds only Secrets with this label.
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// ManagedByValue is the value of LabelManagedBy on the operator's Secrets.
	ManagedByValue = "keboola-operator"

	// LabelTokenSecret marks a Secret that a KeboolaProject in its namespace
	// names in spec.tokenSecretRef. The operator watches only the Secrets
	// with this label, whatever its value, and adds it to a token Secret
	// that lacks it in the project's next pass. A token Secret created
	// after its project without the label is found by polling, within a
	// minute or the resync period if that is shorter. One created with the
	// label is noticed at once.
	LabelTokenSecret = "keboola.dev/token-secret"

	// TokenSecretValue is the value of LabelTokenSecret that the operator
	// sets. The operator removes the label with this value once no
	// KeboolaProject needs the Secret, and never removes a label with
	// another value.
	TokenSecretValue = "true"

	// AnnotationSigningSecretFingerprint, on the pod template of a rollout
	// target (spec.rolloutTargets), is the fingerprint of the signing secret
	// that the target's pods were restarted for. The operator changes it
	// when the signing secret changes, which makes Kubernetes replace the
	// pods.
	AnnotationSigningSecretFingerprint = "keboola.dev/signing-secret-fingerprint"
)

// RolloutTargetKind is the kind of a workload that the operator restarts
// when the signing secret changes.
// +kubebuilder:validation:Enum=Deployment;StatefulSet
type RolloutTargetKind string

const (
	// RolloutTargetDeployment is an apps/v1 Deployment.
	RolloutTargetDeployment RolloutTargetKind = "Deployment"

	// RolloutTargetStatefulSet is an apps/v1 StatefulSet.
	RolloutTargetStatefulSet RolloutTargetKind = "StatefulSet"
)

// RotationPhase is how far a rotation of the signing secret has got.
// +kubebuilder:validation:Enum=Publishing;Overlapping;Retiring
type RotationPhase string

const (
	// RotationPhasePublishing means the new webhook is being created and its
	// signing secret written to the Secret, next to the previous one.
	RotationPhasePublishing RotationPhase = "Publishing"

	// RotationPhaseOverlapping means both webhooks exist and deliver every
	// event, and the Secret holds both signing secrets, until
	// status.rotation.overlapUntil.
	RotationPhaseOverlapping RotationPhase = "Overlapping"

	// RotationPhaseRetiring means the grace period is over: the operator
	// deletes the previous webhook at Keboola and then removes its signing
	// secret from the Secret.
	RotationPhaseRetiring RotationPhase = "Retiring"
)

// KeboolaWebhookSpec defines one webhook in a Keboola project.
// +kubebuilder:validation:XValidation:rule="has(oldSelf.secretName) == has(self.secretName) && (!has(self.secretName) || oldSelf.secretName == self.secretName)",message="secretName cannot be changed; create a new KeboolaWebhook instead",fieldPath=".secretName"
type KeboolaWebhookSpec struct {
	// projectRef names the KeboolaProject that the webhook belongs to.
	// +required
	ProjectRef ProjectReference `json:"projectRef"`

	// url is the address Keboola delivers events to: an absolute https URL
	// of at most 2048 bytes, without user info or a fragment. Plain http is
	// accepted only for loopback hosts (localhost, 127.0.0.0/8 and [::1]),
	// for tests and local receivers.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL with a host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="url must not contain a fragment: receivers never get the part after '#'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="url must not contain user info; put credentials in the receiver, not in the URL"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?i)https://') || self.matches('^(?i)http://(localhost|127\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}|\\\\[::1\\\\])([:/?#]|$)')",message="url must use https; plain http is allowed only for localhost, 127.0.0.0/8 and [::1]"
	URL string `json:"url"`

	// events are the Keboola event types the webhook receives: 1 to 50
	// distinct names. The order does not matter. The names depend on the
	// project's webhook API (status.webhookAPI of the KeboolaProject). The
	// webhooks endpoint of the Storage API uses names of the form
	// "<area>.<event>", such as "storage.jobFailed" or
	// "orchestration.jobSucceeded"; Keboola rejects unknown ones, and the
	// operator then reports reason InvalidSpec with Keboola's message. The
	// Notification service uses "job-failed", "job-succeeded",
	// "job-succeeded-with-warning", "job-processing-long" and the same four
	// prefixed with "phase-". A name the project's webhook API does not
	// have is reported with reason InvalidSpec.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^([a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*|[a-z][a-z0-9]*(-[a-z0-9]+)*)$`
	Events []string `json:"events"`

	// filters narrow the events delivered through the Notification service,
	// for example to one component: each filter compares an event field such
	// as "job.component.id", "job.configuration.id", "branch.id", "phase.id"
	// or "durationOvertimePercentage" with a value. Every filter applies to
	// every event of spec.events. The webhooks endpoint of the Storage API
	// has no filters: a KeboolaWebhook with filters in a project that uses it
	// reports reason InvalidSpec. At most 16 entries.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Filters []EventFilter `json:"filters,omitempty"`

	// name is the name of the webhook at Keboola: 1 to 255 bytes of UTF-8
	// without control characters. When absent, the operator uses
	// "<namespace>/<name>" of this KeboolaWebhook, cut to 255 bytes, and shows
	// it in status.name. The Notification service has no names, so a
	// project that uses it ignores this field.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 255",message="name must be at most 255 bytes of UTF-8"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x1f\\\\x7f]')",message="name must not contain control characters"
	Name *string `json:"name,omitempty"`

	// secretName is the name of the Secret, in the namespace of this
	// KeboolaWebhook, that receives the signing secret. When absent, the
	// operator derives a name from the KeboolaWebhook's name and shows it in
	// status.secretName. The operator never overwrites a Secret it does not
	// own. It cannot be changed after creation.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName *string `json:"secretName,omitempty"`

	// secretTemplate adds labels and annotations to the Secret, for example
	// those a reloader or a backup tool looks for. The operator never copies
	// the labels of the KeboolaWebhook itself to the Secret, because GitOps
	// tools would then treat the Secret as theirs and prune it.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// deletionPolicy determines what happens to the webhook at Keboola when this
	// KeboolaWebhook is deleted: "Delete" deletes it, "Orphan" leaves it in
	// place. When absent, the webhook is deleted.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// rotationToken is a free string. Changing it requests a new signing
	// secret. The operator creates a new webhook, writes its secret to the
	// Secret under signingSecret and moves the old secret to
	// previousSigningSecret. After the operator's rotation grace period
	// (flag --rotation-grace-period, 5 minutes by default) it deletes the old
	// webhook and that key. status.rotation shows the progress.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RotationToken string `json:"rotationToken,omitempty"`

	// rolloutTargets are Deployments and StatefulSets, in the namespace of
	// this KeboolaWebhook, whose pods read the signing secret from
	// environment variables and therefore see a new one only after a
	// restart. When the signing secret changes, including when it is first
	// published, the operator sets the annotation
	// keboola.dev/signing-secret-fingerprint on their pod template to the
	// new fingerprint, so that Kubernetes replaces their pods. A target that
	// does not exist gets a Warning Event and does not keep this
	// KeboolaWebhook from being Ready. Leave out pods that mount the Secret
	// as a volume: they see a new secret without a restart. At most 16
	// entries.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RolloutTargets []RolloutTarget `json:"rolloutTargets,omitempty"`
}

// FilterOperator compares the field of an event filter with its value.
// +kubebuilder:validation:Enum="==";"!=";"<";">";"<=";">="
type FilterOperator string

// EventFilter selects events whose field compares to a value.
type EventFilter struct {
	// field is the event field, such as "job.component.id".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z][a-zA-Z0-9_.-]*$`
	Field string `json:"field"`

	// value is compared with the field.
	// +required
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value"`

	// operator is one of "==", "!=", "<", ">", "<=" and ">=". When absent,
	// "==" applies.
	// +optional
	Operator FilterOperator `json:"operator,omitempty"`
}

// RolloutTarget names a workload in the namespace of the KeboolaWebhook.
type RolloutTarget struct {
	// kind is the kind of the workload: "Deployment" or "StatefulSet", both
	// of the API group apps.
	// +required
	Kind RolloutTargetKind `json:"kind"`

	// name is the name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// RotationStatus describes a rotation of the signing secret in progress.
type RotationStatus struct {
	// phase is how far the rotation has got. "Publishing": the new webhook is
	// created and its secret written. "Overlapping": both webhooks deliver,
	// and the Secret contains both secrets. "Retiring": the previous webhook
	// is deleted and its secret removed.
	// +required
	Phase RotationPhase `json:"phase"`

	// previousWebhookID is the id of the webhook that the rotation replaces.
	// +required
	PreviousWebhookID string `json:"previousWebhookID"`

	// previousSecretFingerprint is the fingerprint of the previous signing
	// secret, which the Secret holds under previousSigningSecret until the
	// rotation ends. It is absent when the operator could not keep the
	// previous secret, because the Secret was deleted or edited: the previous
	// webhook then still delivers until overlapUntil, but only receivers
	// that kept the old secret accept its deliveries.
	// +optional
	PreviousSecretFingerprint string `json:"previousSecretFingerprint,omitempty"`

	// startedTime is when the rotation started.
	// +required
	StartedTime metav1.Time `json:"startedTime"`

	// overlapUntil is when the grace period ends and the previous webhook is
	// deleted. It is set when the phase becomes Overlapping.
	// +optional
	OverlapUntil *metav1.Time `json:"overlapUntil,omitempty"`
}

// ProjectReference names a KeboolaProject.
type ProjectReference struct {
	// name is the name of the KeboolaProject.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace is the namespace of the KeboolaProject. When absent, it is
	// the namespace of this KeboolaWebhook. A KeboolaProject in another
	// namespace must allow this KeboolaWebhook's namespace in its
	// spec.allowedNamespaces, or the webhook reports reason
	// ProjectNotAllowed. The signing secret is still written into this
	// KeboolaWebhook's namespace, and the project's token never is.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// SecretTemplate is the metadata the operator adds to a Secret it writes.
type SecretTemplate struct {
	// labels are added to the Secret. Labels under the keboola.dev/ prefix
	// and app.kubernetes.io/managed-by are reserved for the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('keboola.dev/') && k != 'app.kubernetes.io/managed-by')",message="labels under keboola.dev/ and app.kubernetes.io/managed-by are reserved for the operator"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the Secret. Annotations under the keboola.dev/
	// prefix are reserved for the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('keboola.dev/'))",message="annotations under keboola.dev/ are reserved for the operator"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PendingCreate records a webhook create that was started but may not have
// finished. The operator writes it before it sends the create request, so
// that after a crash or a lost response it can find the webhook by its
// marker name and either adopt it or delete it.
type PendingCreate struct {
	// attemptID identifies the create attempt. The webhook is created with
	// a marker name that contains it.
	// +required
	AttemptID string `json:"attemptID"`

	// startedTime is when the attempt was recorded.
	// +required
	StartedTime metav1.Time `json:"startedTime"`

	// reason is the cause of the create: "Create", "Recreate" or "Rotate".
	// +optional
	Reason string `json:"reason,omitempty"`

	// rotationToken is the spec.rotationToken that the new webhook is
	// created for. It becomes status.rotationToken when the webhook is
	// committed, also when a recovery adopts it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RotationToken string `json:"rotationToken,omitempty"`
}

// SubscriptionStatus is one subscription of the Notification service.
type SubscriptionStatus struct {
	// event is the event type of the subscription.
	// +required
	Event string `json:"event"`

	// id is the id of the subscription.
	// +required
	ID string `json:"id"`
}

// KeboolaWebhookStatus is the observed state of a KeboolaWebhook.
type KeboolaWebhookStatus struct {
	// conditions describe the state of the webhook: Ready, Reconciling and
	// Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// observedGeneration is the metadata.generation that the conditions
	// describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// webhookID is the id of the webhook at Keboola.
	// +optional
	WebhookID string `json:"webhookID,omitempty"`

	// projectID is the id of the Keboola project that holds the webhook.
	// +optional
	ProjectID int64 `json:"projectID,omitempty"`

	// name is the effective name of the webhook at Keboola: spec.name, or the
	// name the operator derived when spec.name is absent.
	// +optional
	Name string `json:"name,omitempty"`

	// secretName is the effective name of the Secret that holds the signing
	// secret.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// secretFingerprint identifies the signing secret in the Secret:
	// "sha256:" followed by the first 16 hexadecimal digits of its SHA-256
	// hash. The secret cannot be recovered from it.
	// +optional
	SecretFingerprint string `json:"secretFingerprint,omitempty"`

	// rotationToken is the spec.rotationToken that the current webhook was
	// created for.
	// +optional
	RotationToken string `json:"rotationToken,omitempty"`

	// lastSyncedTime is when the operator last brought the webhook at
	// Keboola in line with the spec, by a create or an update, or first found
	// it matching. A periodic check that finds nothing to change leaves it
	// as it is, so that an idle webhook causes no status writes.
	// +optional
	LastSyncedTime *metav1.Time `json:"lastSyncedTime,omitempty"`

	// pendingCreate is present while a create is in progress or must be
	// recovered after an interruption.
	// +optional
	PendingCreate *PendingCreate `json:"pendingCreate,omitempty"`

	// retiredWebhookIDs are webhooks that a newer webhook replaced and that
	// the operator still has to delete at Keboola. The previous webhook of a
	// rotation stays here until status.rotation ends.
	// +optional
	// +listType=set
	RetiredWebhookIDs []string `json:"retiredWebhookIDs,omitempty"`

	// rotation is present while a rotation of the signing secret is in
	// progress: from the start of the new webhook's create until the
	// previous webhook is deleted and its secret removed from the Secret.
	// +optional
	Rotation *RotationStatus `json:"rotation,omitempty"`

	// webhookAPI is the webhook API of the project when the operator last
	// created or checked the webhook: "StorageWebhooks" for webhookID, or
	// "NotificationSubscriptions" for subscriptions.
	// +optional
	WebhookAPI WebhookAPI `json:"webhookAPI,omitempty"`

	// subscriptions are the Notification service subscriptions of this
	// KeboolaWebhook, one per event, while the project uses that service.
	// +optional
	// +listType=map
	// +listMapKey=event
	Subscriptions []SubscriptionStatus `json:"subscriptions,omitempty"`

	// retiredSubscriptionIDs are subscriptions that newer ones replaced and
	// that the operator still has to delete. During a rotation they keep
	// delivering until status.rotation.overlapUntil.
	// +optional
	// +listType=set
	RetiredSubscriptionIDs []string `json:"retiredSubscriptionIDs,omitempty"`

	// rolloutFingerprint is the secretFingerprint that spec.rolloutTargets
	// were last restarted for. The operator restarts the targets when
	// secretFingerprint differs from it. It records the fingerprint also
	// when there are no targets, so that a target added later is restarted
	// only at the next change of the signing secret.
	// +optional
	RolloutFingerprint string `json:"rolloutFingerprint,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kbwh,categories=keboola
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Webhook",type=string,JSONPath=`.status.webhookID`
// +kubebuilder:printcolumn:name="API",type=string,JSONPath=`.status.webhookAPI`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`,priority=1
// +kubebuilder:printcolumn:name="Rotation",type=string,JSONPath=`.status.rotation.phase`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// KeboolaWebhook is a webhook in a Keboola project. The operator creates,
// updates and deletes it through the Storage API, and writes its signing
// secret into a Secret that receivers mount to verify the X-Kbc-Signature
// header of each delivery.
type KeboolaWebhook struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec defines the webhook.
	// +required
	Spec KeboolaWebhookSpec `json:"spec"`

	// status is the observed state of the webhook.
	// +optional
	Status KeboolaWebhookStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// KeboolaWebhookList is a list of KeboolaWebhooks.
type KeboolaWebhookList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KeboolaWebhook `json:"items"`
}
