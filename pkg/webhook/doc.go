// Package webhook verifies the deliveries that Keboola sends to webhook
// receivers.
//
// Keboola sends each event as an HTTP POST with a JSON body. The header
// X-Kbc-Signature carries the lowercase hexadecimal HMAC-SHA256 of the raw
// request body, keyed with the webhook's signing secret. The keboola-operator
// writes that secret into a Secret under the key "signingSecret", and during
// a rotation the previous webhook's secret under "previousSigningSecret",
// until the previous webhook is deleted.
//
// A receiver mounts the Secret as a volume, reads both keys with
// NewSecretDir, and lets a Middleware verify every request against them. A
// rotated secret then takes effect without a restart, and the deliveries of
// the previous webhook are still accepted during the rotation:
//
//	secrets := webhook.NewSecretDir("/etc/keboola-webhook")
//	verify := &webhook.Middleware{Secrets: secrets}
//	dedupe := &webhook.Deduplicator{Seen: webhook.NewMemorySeenSet(100_000, 24*time.Hour)}
//	http.Handle("POST /webhook", verify.Wrap(dedupe.Wrap(http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			delivery, _ := webhook.DeliveryFromContext(r.Context())
//			process(delivery.Event)
//		}))))
//
// The Middleware responds with 401 to a missing or wrong signature and 413
// to a body over its limit, and passes the verified body and the decoded
// Event to the next handler. Verify and VerifyAny check one body without
// the Middleware.
//
// Keboola may deliver an event late, twice or out of order, so receivers
// must be idempotent: the pair of the body's "event" and "data.id"
// identifies an event (Event.Key). Deduplicator skips the repeats, with a
// SeenSet in memory or in a shared store.
package webhook
