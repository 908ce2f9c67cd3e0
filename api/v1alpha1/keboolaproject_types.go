package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultTokenSecretKey is the key of the token Secret that holds the token
// when spec.tokenSecretRef.key is absent.
const DefaultTokenSecretKey = "token"

// KeboolaProjectSpec defines the Keboola stack and the Storage API token of
// one project.
type KeboolaProjectSpec struct {
	// stackURL is the Keboola stack that hosts the project: a bare host such
	// as "connection.keboola.com", or an https URL such as
	// "https://connection.eu-central-1.keboola.com". A trailing slash and the
	// case of the host do not matter. Plain http is accepted only for
	// loopback hosts (localhost, 127.0.0.0/8 and [::1]), for tests and local
	// emulators. Paths, queries, fragments and user info are rejected.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?i)(https://)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/?$') || self.matches('^(?i)http://(localhost|127\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}|\\\\[::1\\\\])(:[0-9]{1,5})?/?$')",message="stackURL must be a host name or an https URL such as https://connection.keboola.com, without path, query or user info; plain http is allowed only for localhost, 127.0.0.0/8 and [::1]"
	StackURL string `json:"stackURL"`

	// tokenSecretRef names the Secret, in the namespace of this
	// KeboolaProject, that holds the Storage API token. The operator reads
	// the token and never copies it elsewhere. While KeboolaWebhooks use the
	// project, the operator keeps a finalizer on the Secret so that the
	// webhooks can still be deleted at Keboola.
	// +required
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`

	// expectedProjectID, when set, is the id of the Keboola project the token
	// must belong to. A token of any other project is rejected with reason
	// ProjectMismatch, which guards against pasting the wrong token.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ExpectedProjectID *int64 `json:"expectedProjectID,omitempty"`

	// allowedNamespaces selects the namespaces whose KeboolaWebhooks may use
	// this project through spec.projectRef.namespace. The namespace of this
	// KeboolaProject is always allowed, and when allowedNamespaces is absent,
	// it is the only one.
	// Those KeboolaWebhooks never read the token: the operator uses it on
	// their behalf, and writes only each webhook's signing secret into the
	// webhook's own namespace. A KeboolaWebhook from a namespace that is not
	// allowed reports reason ProjectNotAllowed and is neither created nor
	// updated at Keboola. A webhook it created while it was allowed is still
	// deleted at Keboola when the KeboolaWebhook is deleted.
	// +optional
	AllowedNamespaces *AllowedNamespaces `json:"allowedNamespaces,omitempty"`

	// maxWebhooks, when set, is the maximum number of KeboolaWebhooks that may
	// use this project, counted over every allowed namespace and including
	// KeboolaWebhooks being deleted. The oldest ones, by creationTimestamp and
	// then by "<namespace>/<name>", are served. The others report reason
	// QuotaExceeded: one that has no webhook at Keboola creates none, and one
	// that has a webhook is no longer updated, but is still deleted at Keboola
	// with its KeboolaWebhook. 0 serves none, which stops new webhooks
	// without deleting any. When absent, there is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxWebhooks *int32 `json:"maxWebhooks,omitempty"`

	// allowedEvents, when set, are the only event types that KeboolaWebhooks
	// of this project may request. A KeboolaWebhook whose spec.events
	// contains another event type reports reason InvalidSpec, naming those
	// event types, and is neither created nor updated at Keboola. When
	// absent, every event type is allowed.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^([a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*|[a-z][a-z0-9]*(-[a-z0-9]+)*)$`
	AllowedEvents []string `json:"allowedEvents,omitempty"`

	// webhookAPI selects how the operator registers webhooks in this
	// project. "StorageWebhooks" uses the webhooks endpoint of the Storage
	// API: one webhook carries all events of a KeboolaWebhook, and Keboola
	// signs each delivery with the X-Kbc-Signature header.
	// "NotificationSubscriptions" uses the Notification service: one
	// subscription per event, and the operator mints the secret and adds it
	// to the receiver URL as the query parameter kbc_secret, because that
	// service signs nothing. When absent, the operator detects the backend
	// when it first verifies the token, and again whenever the stack, the
	// token or this spec changes. It takes the webhooks endpoint when the
	// stack has it, and otherwise the Notification service when the Storage
	// API index lists it. status.webhookAPI shows the result and
	// status.webhookAPIMessage the reason.
	// +optional
	WebhookAPI WebhookAPI `json:"webhookAPI,omitempty"`
}

// WebhookAPI is the way a Keboola stack delivers events to HTTP receivers.
// +kubebuilder:validation:Enum=StorageWebhooks;NotificationSubscriptions
type WebhookAPI string

const (
	// WebhookAPIStorageWebhooks is the webhooks endpoint of the Storage API.
	WebhookAPIStorageWebhooks WebhookAPI = "StorageWebhooks"

	// WebhookAPINotificationSubscriptions is the Notification service.
	WebhookAPINotificationSubscriptions WebhookAPI = "NotificationSubscriptions"
)

// NamespacesFrom is the kind of namespace selection of AllowedNamespaces.
// +kubebuilder:validation:Enum=Same;All;Selector
type NamespacesFrom string

const (
	// NamespacesFromSame allows only the namespace of the KeboolaProject.
	NamespacesFromSame NamespacesFrom = "Same"

	// NamespacesFromAll allows every namespace.
	NamespacesFromAll NamespacesFrom = "All"

	// NamespacesFromSelector allows the namespace of the KeboolaProject and
	// the namespaces whose labels match a label selector.
	NamespacesFromSelector NamespacesFrom = "Selector"
)

// AllowedNamespaces selects namespaces, in the way that
// allowedRoutes.namespaces of a Listener in Gateway API v1 does. Unlike
// there, the namespace of the KeboolaProject itself is always allowed.
// +kubebuilder:validation:XValidation:rule="(has(self.from) && self.from == 'Selector') == has(self.selector)",message="selector must be set when from is Selector, and only then"
type AllowedNamespaces struct {
	// from selects the namespaces: "Same" allows only the namespace of the
	// KeboolaProject, "All" allows every namespace, and "Selector" allows
	// the namespaces whose labels match selector besides the namespace of
	// the KeboolaProject. When absent, "Same" applies.
	// +optional
	From NamespacesFrom `json:"from,omitempty"`

	// selector matches the labels of the allowed namespaces when from is
	// "Selector", and must be absent otherwise. An empty selector matches
	// every namespace. A change of a namespace's labels takes effect without
	// a restart of the operator.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="values must be non-empty for the operators In and NotIn, and absent for Exists and DoesNotExist"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// SecretKeyReference names a key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key is the key of the Secret's data that holds the value. When absent,
	// the key "token" is used.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// KeboolaProjectStatus is the verified state of a KeboolaProject.
type KeboolaProjectStatus struct {
	// conditions describe the state of the project: Ready, Reconciling,
	// Stalled and TokenExpiringSoon.
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

	// stackURL is the normalised base URL of the Storage API that the
	// operator calls, for example "https://connection.keboola.com".
	// +optional
	StackURL string `json:"stackURL,omitempty"`

	// projectID is the id of the Keboola project the token belongs to.
	// +optional
	ProjectID int64 `json:"projectID,omitempty"`

	// projectName is the name of the Keboola project.
	// +optional
	ProjectName string `json:"projectName,omitempty"`

	// region is the stack region that Keboola reports for the project, for
	// example "us-east-1".
	// +optional
	Region string `json:"region,omitempty"`

	// tokenID is the id of the Storage API token. It identifies the token
	// in Keboola's UI and is not a credential.
	// +optional
	TokenID string `json:"tokenID,omitempty"`

	// tokenDescription is the description of the token at Keboola.
	// +optional
	TokenDescription string `json:"tokenDescription,omitempty"`

	// tokenExpiresAt is when the token expires. Absent means the token does
	// not expire.
	// +optional
	TokenExpiresAt *metav1.Time `json:"tokenExpiresAt,omitempty"`

	// tokenFingerprint identifies the content of the token Secret that was
	// last verified: "sha256:" followed by the first 16 hexadecimal digits
	// of the SHA-256 hash of the token. The token cannot be recovered from it.
	// +optional
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`

	// lastVerifiedTime is when a successful verification last changed this
	// status: when the project became Ready, or when the token or the
	// details Keboola reports for it changed. A periodic verification that
	// confirms the recorded details leaves it unchanged, so that a healthy
	// project causes no status writes.
	// +optional
	LastVerifiedTime *metav1.Time `json:"lastVerifiedTime,omitempty"`

	// tokenSecretName is the name of the token Secret that carries the
	// finalizer keboola.dev/credentials-protection for this project. The
	// operator keeps that finalizer while KeboolaWebhooks refer to the
	// project, so that the token stays readable until their webhooks are
	// deleted at Keboola. Empty when no KeboolaWebhook refers to the project.
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`

	// webhooks counts the KeboolaWebhooks that refer to this project. The
	// operator updates it only when a count changes.
	// +optional
	Webhooks *WebhookUsage `json:"webhooks,omitempty"`

	// webhookAPI is the backend that KeboolaWebhooks of this project use:
	// spec.webhookAPI, or the one the operator detected.
	// +optional
	WebhookAPI WebhookAPI `json:"webhookAPI,omitempty"`

	// webhookAPIMessage explains why webhookAPI was chosen.
	// +optional
	WebhookAPIMessage string `json:"webhookAPIMessage,omitempty"`

	// notificationServiceURL is the base URL of the Notification service
	// that the stack's Storage API index lists. It stays after webhookAPI
	// moves to StorageWebhooks, so that the subscriptions made before can
	// be deleted.
	// +optional
	NotificationServiceURL string `json:"notificationServiceURL,omitempty"`
}

// WebhookUsage counts the KeboolaWebhooks that refer to a KeboolaProject.
type WebhookUsage struct {
	// count is the number of KeboolaWebhooks, in every namespace, that refer
	// to the project. It includes those that the project does not allow,
	// those beyond spec.maxWebhooks and those being deleted, because each of
	// them keeps the project from being deleted.
	// +required
	// +kubebuilder:validation:Minimum=0
	Count int32 `json:"count"`

	// namespaces is the number of distinct namespaces of these
	// KeboolaWebhooks.
	// +required
	// +kubebuilder:validation:Minimum=0
	Namespaces int32 `json:"namespaces"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kbp,categories=keboola
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Project",type=integer,JSONPath=`.status.projectID`
// +kubebuilder:printcolumn:name="Stack",type=string,JSONPath=`.status.stackURL`,priority=1
// +kubebuilder:printcolumn:name="API",type=string,JSONPath=`.status.webhookAPI`,priority=1
// +kubebuilder:printcolumn:name="Webhooks",type=integer,JSONPath=`.status.webhooks.count`,priority=1
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.webhooks.namespaces`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// KeboolaProject is a Keboola project on one stack, reached with a Storage API
// token held in a Secret. The operator verifies the token, reports the project
// it belongs to, and keeps verifying it. KeboolaWebhooks refer to a
// KeboolaProject to manage webhooks in that project.
type KeboolaProject struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec defines the stack and the token.
	// +required
	Spec KeboolaProjectSpec `json:"spec"`

	// status is the verified state of the project.
	// +optional
	Status KeboolaProjectStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// KeboolaProjectList is a list of KeboolaProjects.
type KeboolaProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KeboolaProject `json:"items"`
}
