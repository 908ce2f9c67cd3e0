// Package emulator is an in-process emulator of the Keboola Storage API
// endpoints that the operator uses (the index, token verification and
// webhooks) and of the project subscriptions of the Notification service,
// which it serves under /notification. Options.Backends selects whether
// the webhooks endpoint, the Notification service or both are served. Tests
// start it like an httptest server and talk to it over real HTTP. It also
// delivers events to webhooks, signed the way Keboola signs them, and to
// the webhook recipients of subscriptions, unsigned. It can inject faults
// (error statuses, latency, dropped connections, lost responses) per
// endpoint. For benchmarks it can delay every request and limit how many
// requests of one project it handles at once.
//
// Besides these APIs, the server has an admin API under /_emulator/
// that sets it up and inspects it without a Storage API token, for the
// command keboola-emulator and the local demo. Tests in Go use the methods
// of Server instead.
//
// The emulator listens on loopback addresses only and delivers events only to
// loopback hosts, so it never sends traffic off the machine.
package emulator
