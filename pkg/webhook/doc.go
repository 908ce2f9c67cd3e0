// Package webhook verifies the deliveries that Keboola sends to webhook
// receivers.
//
// Keboola sends each event as an HTTP POST with a JSON body. The header
// X-Kbc-Signature carries the lowercase hexadecimal HMAC-SHA256 of the raw
// request body, keyed with the webhook's signing secret. The keboola-operator
// writes that secret into a Secret under the key "signingSecret". A receiver
// usually mounts the Secret as a volume and reads the secret with
// NewSecretFile, so that a rotated secret takes effect without a restart.
//
// A receiver verifies a delivery over the exact bytes it received:
//
//	secret, err := secretFile.Secret()
//	if err != nil { ... }
//	if !webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)) {
//		w.WriteHeader(http.StatusUnauthorized)
//		return
//	}
//
// Keboola may deliver an event late, twice or out of order, so receivers
// must be idempotent: the pair of the body's "event" and "data.id"
// identifies an event.
package webhook
