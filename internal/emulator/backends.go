package emulator

import (
	"fmt"
	"strconv"
)

// Backends selects the APIs through which clients of the emulator subscribe
// HTTP receivers to events: the webhooks endpoint of the Storage API, the
// Notification service, or both. Real stacks differ in which of them they
// offer.
type Backends int

const (
	// BackendsBoth serves the webhooks endpoint and the Notification
	// service. It is the zero value.
	BackendsBoth Backends = iota
	// BackendsWebhooks serves only the webhooks endpoint. The Storage API
	// index lists no notification service, and paths under
	// NotificationPath get 404.
	BackendsWebhooks
	// BackendsNotification serves only the Notification service. Every
	// request under /v2/storage/webhooks gets 404 once its token passes the
	// usual checks, as on a stack without that endpoint.
	BackendsNotification
)

// String returns the name that ParseBackends accepts.
func (b Backends) String() string {
	switch b {
	case BackendsBoth:
		return "both"
	case BackendsWebhooks:
		return "webhooks"
	case BackendsNotification:
		return "notification"
	default:
		return "Backends(" + strconv.Itoa(int(b)) + ")"
	}
}

// ParseBackends returns the Backends named "webhooks", "notification" or
// "both".
func ParseBackends(name string) (Backends, error) {
	for _, b := range []Backends{BackendsBoth, BackendsWebhooks, BackendsNotification} {
		if name == b.String() {
			return b, nil
		}
	}
	return BackendsBoth, fmt.Errorf("invalid backends %q: expected webhooks, notification or both", name)
}

// MarshalText returns the name that ParseBackends accepts, so that
// Backends works with flag.TextVar and JSON.
func (b Backends) MarshalText() ([]byte, error) {
	if b < BackendsBoth || b > BackendsNotification {
		return nil, fmt.Errorf("invalid backends %d", int(b))
	}
	return []byte(b.String()), nil
}

// UnmarshalText sets b to the Backends that text names, as ParseBackends
// does.
func (b *Backends) UnmarshalText(text []byte) error {
	parsed, err := ParseBackends(string(text))
	if err != nil {
		return err
	}
	*b = parsed
	return nil
}

// webhooks reports whether the webhooks endpoint is served. A value
// outside the constants serves both backends.
func (b Backends) webhooks() bool {
	return b != BackendsNotification
}

// notification reports whether the Notification service is served.
func (b Backends) notification() bool {
	return b != BackendsWebhooks
}
