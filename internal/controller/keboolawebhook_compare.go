package controller

import (
	"net/url"
	"slices"
	"strings"

	"github.com/keboola/keboola-operator/internal/keboola"
)

// desiredWebhook is the name, URL and events that the spec requires of the
// webhook at Keboola.
type desiredWebhook struct {
	Name   string
	URL    string
	Events []string
}

// webhookUpdate returns the update that makes live match desired, with only
// the differing fields set, and reports whether anything differs. Events
// are compared as sets and URLs in canonical form, so that an API that
// sorts events or adds a trailing slash never causes an update loop.
func webhookUpdate(desired desiredWebhook, live keboola.Webhook) (keboola.WebhookUpdate, bool) {
	var update keboola.WebhookUpdate
	changed := false
	if desired.Name != live.Name {
		name := desired.Name
		update.Name = &name
		changed = true
	}
	if canonicalURL(desired.URL) != canonicalURL(live.URL) {
		u := desired.URL
		update.URL = &u
		changed = true
	}
	if !sameEventSet(desired.Events, live.Events) {
		update.Events = slices.Clone(desired.Events)
		changed = true
	}
	return update, changed
}

// canonicalURL returns raw with a lowercase scheme and host, without the
// default port of its scheme, and with the path "/" in place of an empty
// path. Everything else keeps its exact bytes. A string that does not parse
// as an absolute URL is returned unchanged.
func canonicalURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)

	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host

	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	return u.String()
}

// sameEventSet reports whether a and b contain the same event names,
// ignoring order and duplicates.
func sameEventSet(a, b []string) bool {
	return slices.Equal(eventSet(a), eventSet(b))
}

// eventSet returns the distinct names of events, sorted.
func eventSet(events []string) []string {
	set := slices.Clone(events)
	slices.Sort(set)
	return slices.Compact(set)
}
