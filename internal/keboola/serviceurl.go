package keboola

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// trustedServiceURL checks raw, the base URL of a Keboola service of the
// stack at stackURL, before the client sends the token there. stackURL is a
// normalized stack URL. It returns raw normalized, with a lowercase host,
// without a default port and without a trailing slash, and its origin
// "scheme://host[:port]", which keys the host's rate limiter.
//
// raw must be an absolute https URL without user info, query or fragment. A
// path, such as the prefix under which an emulator serves the service, is
// allowed. Plain http is allowed only when raw's host and the stack's host
// are loopback and the stack uses http too, for tests. raw's host must be
// the stack's host or share the stack host's parent domain (see
// isStackSibling). The returned error never quotes raw.
func trustedServiceURL(stackURL, raw string) (serviceURL, origin string, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", "", errors.New("the URL is empty")
	}
	if strings.Contains(raw, "#") {
		return "", "", errors.New("it must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the whole input, so it is left out.
		return "", "", errors.New("it is not a valid URL")
	}
	if u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", "", errors.New("it must be an absolute URL with a host")
	}
	if u.User != nil {
		return "", "", errors.New("it must not contain user info")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", "", errors.New("it must not contain a query")
	}

	host, err := normalizeHost(u.Hostname())
	if err != nil {
		return "", "", errors.New("its host is not a valid DNS name or IP address")
	}
	port, err := normalizePort(u.Port(), u.Scheme)
	if err != nil {
		return "", "", errors.New("its port must be a number from 1 to 65535")
	}

	stack, err := url.Parse(stackURL)
	if err != nil {
		return "", "", errors.New("the stack URL is not a valid URL")
	}
	stackHost := stack.Hostname()

	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(host) || !isLoopbackHost(stackHost) || stack.Scheme != "http" {
			return "", "", errors.New("it must use https, because plain http is allowed only when both the service and the stack are on loopback addresses")
		}
	default:
		return "", "", errors.New("it must use https")
	}
	if !isStackSibling(host, stackHost) {
		return "", "", errors.New("its host must be the stack's host or a host in the stack host's parent domain")
	}

	path := strings.TrimRight(u.EscapedPath(), "/")
	for segment := range strings.SplitSeq(path, "/") {
		if unescaped, err := url.PathUnescape(segment); err != nil || unescaped == "." || unescaped == ".." {
			return "", "", errors.New("its path must not contain dot segments or invalid escapes")
		}
	}

	hostPort := host
	if port != "" {
		hostPort = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hostPort = "[" + host + "]"
	}
	origin = u.Scheme + "://" + hostPort
	return origin + path, origin, nil
}

// isStackSibling reports whether host, a normalized host, may serve a
// Keboola service of the stack at stackHost. That is stackHost itself, or a
// host with one label in front of stackHost's parent domain, which is
// stackHost without its first label: for connection.eu-central-1.keboola.com
// that is any host of the form *.eu-central-1.keboola.com. When stackHost is
// loopback, host must be loopback too. A stack on an IP address, or on a
// host whose parent domain has a single label such as "com", has no
// siblings.
//
// NOTE: a stack host of three labels on a two-label public suffix, such as
// stack.co.uk, would admit every host under co.uk. The check does not
// consult the public suffix list, and Keboola stacks have longer hosts.
func isStackSibling(host, stackHost string) bool {
	if host == stackHost {
		return true
	}
	if isLoopbackHost(stackHost) {
		return isLoopbackHost(host)
	}
	if net.ParseIP(stackHost) != nil || net.ParseIP(host) != nil {
		return false
	}
	_, parent, ok := strings.Cut(stackHost, ".")
	if !ok || !strings.Contains(parent, ".") {
		return false
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && label != "" && rest == parent
}
