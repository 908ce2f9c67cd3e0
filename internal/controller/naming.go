package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/types"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// Limits of the names the operator derives.
const (
	// maxWebhookNameBytes is the Storage API's limit on a webhook name.
	maxWebhookNameBytes = 255

	// maxSecretNameLength is the limit on a Secret name, a DNS subdomain.
	maxSecretNameLength = 253

	// maxLabelValueLength is the limit on a label value.
	maxLabelValueLength = 63

	// secretNameSuffix is appended to metadata.name to derive a Secret name.
	secretNameSuffix = "-webhook-secret"

	// nameHashLength is the number of hexadecimal digits of the hash that
	// replaces the cut part of a derived name, so that two long names with
	// the same prefix still differ.
	nameHashLength = 8
)

// markerNamePrefix starts the name of every webhook that the operator has
// created but not yet committed. The full marker name is
// "keboola-operator:pending:<object UID>:<attempt ID>", so that recovery can
// find the webhooks of one object after a crash or a lost create response.
const markerNamePrefix = "keboola-operator:pending:"

// labelWebhook, on a Secret the operator writes, is the name of the
// KeboolaWebhook that owns it, cut to a valid label value by labelValue.
const labelWebhook = "keboola.dev/webhook"

// effectiveWebhookName returns spec.name, or "<namespace>/<name>" cut to
// 255 bytes at a rune boundary when spec.name is absent.
func effectiveWebhookName(wh *keboolav1.KeboolaWebhook) string {
	if wh.Spec.Name != nil && *wh.Spec.Name != "" {
		return *wh.Spec.Name
	}
	return truncateUTF8(wh.Namespace+"/"+wh.Name, maxWebhookNameBytes)
}

// effectiveSecretName returns spec.secretName, or a name derived from
// metadata.name: "<name>-webhook-secret", with the name cut and followed by a
// short hash when the result would exceed 253 characters.
func effectiveSecretName(wh *keboolav1.KeboolaWebhook) string {
	if wh.Spec.SecretName != nil && *wh.Spec.SecretName != "" {
		return *wh.Spec.SecretName
	}
	return derivedSecretName(wh.Name)
}

// derivedSecretName returns the Secret name for a KeboolaWebhook named name,
// which is a DNS subdomain. The result is a DNS subdomain too.
func derivedSecretName(name string) string {
	if len(name)+len(secretNameSuffix) <= maxSecretNameLength {
		return name + secretNameSuffix
	}
	keep := maxSecretNameLength - len(secretNameSuffix) - 1 - nameHashLength
	return cutName(name, keep) + "-" + nameHash(name) + secretNameSuffix
}

// labelValue returns name as a valid label value: unchanged when it fits in
// 63 characters, else cut and followed by a short hash. name must be a DNS
// subdomain, whose characters are all valid in a label value.
func labelValue(name string) string {
	if len(name) <= maxLabelValueLength {
		return name
	}
	keep := maxLabelValueLength - 1 - nameHashLength
	return cutName(name, keep) + "-" + nameHash(name)
}

// cutName returns the first n bytes of a DNS subdomain without the dashes
// and dots they may end with, so that the result still ends with a letter
// or digit.
func cutName(name string, n int) string {
	if len(name) > n {
		name = name[:n]
	}
	return strings.TrimRight(name, "-.")
}

// nameHash returns the first hexadecimal digits of the SHA-256 hash of name.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:nameHashLength]
}

// truncateUTF8 returns the longest prefix of s that has at most n bytes and
// does not split a multi-byte character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// markerName returns the name under which the operator creates a webhook for
// the object with uid in the create attempt attemptID.
func markerName(uid types.UID, attemptID string) string {
	return markerPrefix(uid) + attemptID
}

// markerPrefix returns the start of the marker names of every create attempt
// of the object with uid.
func markerPrefix(uid types.UID) string {
	return markerNamePrefix + string(uid) + ":"
}

// isMarkerOf reports whether a webhook name is a marker name of the object
// with uid.
func isMarkerOf(name string, uid types.UID) bool {
	return strings.HasPrefix(name, markerPrefix(uid))
}
