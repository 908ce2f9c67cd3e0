// Package webhook verifies the deliveries that Keboola sends to webhook
// receivers.
//
// Keboola sends each event as an HTTP POST with a JSON body. The
// keboola-operator writes the secret that proves a delivery into a Secret
// under the key "signingSecret", and during a rotation the previous secret
// under "previousSigningSecret", until the previous webhook is deleted. A
// delivery proves in one of two ways that its sender has the secret,
// depending on the Keboola backend that sends it:
//
//   - The webhooks endpoint of the Storage API signs each delivery. The
//     header X-Kbc-Signature carries the lowercase hexadecimal HMAC-SHA256
//     of the raw request body, keyed with the webhook's signing secret.
//   - The Notification service signs nothing. The operator mints the secret
//     itself and registers the receiver's URL with the query parameter
//     kbc_secret (SecretQueryParameter) set to it.
//
// A receiver accepts both with the same Secret. When the signature header
// is present it decides, and otherwise the query parameter does
// (VerifyRequest).
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
// The Middleware responds with 401 to a missing or wrong signature or URL
// secret and 413 to a body over its limit, and passes the verified body,
// the decoded Event and the Proof used to the next handler. It removes
// kbc_secret from the request's URL before it calls a handler. Verify and
// VerifyAny check one body without the Middleware, and VerifyRequest checks
// a request and its body.
//
// Keboola may deliver an event late, twice or out of order, so receivers
// must be idempotent: the pair of the body's "event" and "data.id", or
// "data.job.id" for the Notification service, identifies an event
// (Event.Key). Deduplicator skips the repeats, with a
// SeenSet in memory or in a shared store.
//
// # Secrets in access logs
//
// The Middleware keeps the URL secret out of the handlers it wraps, but not
// out of the access logs of proxies in front of the receiver, such as
// ingress controllers and load balancers. Those often record the full
// request URL with its query string. Configure them to log the path
// without the query string. Where the Keboola stack offers the webhooks
// endpoint of the Storage API, prefer it, because its deliveries carry a
// signature and no secret. When a secret may have been logged, rotate it.
package webhook
