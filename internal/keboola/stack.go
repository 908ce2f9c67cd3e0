package keboola

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// NormalizeStackURL returns the base URL of the Storage API of a stack, in
// the form "https://host" or "https://host:port". The input may be a bare
// host such as "connection.keboola.com" or a URL such as
// "HTTPS://Connection.Keboola.com/", in any case and with or without a
// trailing slash. The host is lowercased, and a trailing dot and the
// default port are removed.
//
// The input is rejected when it has user info, a path other than "/", a
// query or a fragment, or a scheme other than https. Plain http is accepted
// only for loopback hosts (localhost, 127.0.0.0/8 and [::1]), for tests.
// Errors match ErrInvalidStackURL and never quote the input, which may
// contain a pasted credential.
func NormalizeStackURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalidStackURL("the value is empty")
	}
	if strings.ContainsAny(raw, "#") {
		return "", invalidStackURL("it must not contain a fragment")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}

	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the whole input, so it is left out.
		return "", invalidStackURL("it is not a valid URL")
	}
	if u.User != nil {
		return "", invalidStackURL("it must not contain user info")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") {
		return "", invalidStackURL("it must not contain a path")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", invalidStackURL("it must not contain a query")
	}

	host, err := normalizeHost(u.Hostname())
	if err != nil {
		return "", err
	}
	port, err := normalizePort(u.Port(), u.Scheme)
	if err != nil {
		return "", err
	}

	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(host) {
			return "", invalidStackURL("plain http is allowed only for localhost, 127.0.0.0/8 and [::1]: use https")
		}
	default:
		return "", invalidStackURL(fmt.Sprintf("scheme %q is not supported: use https", truncate(u.Scheme, 16)))
	}

	hostPort := host
	if port != "" {
		hostPort = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hostPort = "[" + host + "]"
	}
	return u.Scheme + "://" + hostPort, nil
}

func invalidStackURL(problem string) error {
	return fmt.Errorf("%w: %s", ErrInvalidStackURL, problem)
}

// normalizeHost lowercases host and checks that it is an IP address or a DNS
// name made of letters, digits, hyphens and dots.
func normalizeHost(host string) (string, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return "", invalidStackURL("the host is missing")
	}
	if strings.Contains(host, ":") {
		// url.Parse accepts IPv6 zones such as "fe80::1%eth0", which
		// net.ParseIP rejects, and a stack never has one.
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() != nil {
			return "", invalidStackURL("the host is not a valid IPv6 address")
		}
		return ip.String(), nil
	}
	if len(host) > 253 {
		return "", invalidStackURL("the host is longer than 253 characters")
	}
	for label := range strings.SplitSeq(host, ".") {
		if !isDNSLabel(label) {
			return "", invalidStackURL("the host is not a valid DNS name: each label must be 1 to 63 letters, digits or inner hyphens")
		}
	}
	return host, nil
}

func isDNSLabel(label string) bool {
	if len(label) == 0 || len(label) > 63 {
		return false
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, r := range label {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// normalizePort checks port and returns "" for an absent port or the default
// port of scheme.
func normalizePort(port, scheme string) (string, error) {
	if port == "" {
		return "", nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", invalidStackURL("the port must be a number from 1 to 65535")
	}
	if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
		return "", nil
	}
	return strconv.Itoa(n), nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
