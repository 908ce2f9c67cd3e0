package emulator

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAddRootPath(t *testing.T) {
	cases := map[string]string{
		"https://example.com":           "https://example.com/",
		"https://example.com/":          "https://example.com/",
		"https://example.com?x=1":       "https://example.com/?x=1",
		"https://example.com#top":       "https://example.com/#top",
		"https://example.com:8443":      "https://example.com:8443/",
		"https://example.com/hook?x=1":  "https://example.com/hook?x=1",
		"https://example.com?u=a%2Fb/c": "https://example.com/?u=a%2Fb/c",
		"not a url":                     "not a url",
	}
	for input, expected := range cases {
		if got := addRootPath(input); got != expected {
			t.Errorf("addRootPath(%q) = %q, expected %q", input, got, expected)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	cases := map[string]bool{
		"localhost":             true,
		"LocalHost.":            true,
		"127.0.0.1":             true,
		"127.255.0.9":           true,
		"::1":                   true,
		"[::1]":                 true,
		"::ffff:127.0.0.1":      true,
		"":                      false,
		"0.0.0.0":               false,
		"::":                    false,
		"10.0.0.1":              false,
		"169.254.169.254":       false,
		"example.com":           false,
		"localhost.example.com": false,
		"127.0.0.1.example.com": false,
	}
	for host, expected := range cases {
		if got := isLoopbackHost(host); got != expected {
			t.Errorf("isLoopbackHost(%q) = %v, expected %v", host, got, expected)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	cases := []struct {
		a, b     string
		expected int
	}{
		{"2", "10", -1},
		{"10", "2", 1},
		{"7", "7", 0},
		{"9", "abc", -1},
		{"abc", "9", 1},
		{"abc", "abd", -1},
		{"9223372036854775807", "-9223372036854775808", 1},
	}
	for _, c := range cases {
		if got := compareIDs(c.a, c.b); got != c.expected {
			t.Errorf("compareIDs(%q, %q) = %d, expected %d", c.a, c.b, got, c.expected)
		}
	}
}

func TestRequestLogKeepsLatestAndCountsAll(t *testing.T) {
	log := newRequestLog(3)
	for i := range 7 {
		log.add(Request{Method: "GET", Endpoint: EndpointVerify, Path: strconv.Itoa(i)})
	}

	paths := []string{}
	for _, r := range log.list() {
		paths = append(paths, r.Path)
	}
	if strings.Join(paths, ",") != "4,5,6" {
		t.Errorf("kept paths = %v, expected the latest three 4,5,6", paths)
	}
	if got := log.counts[requestKey{method: "GET", endpoint: EndpointVerify}]; got != 7 {
		t.Errorf("count = %d, expected all 7 requests", got)
	}
}

func TestDeliveryLogKeepsLatest(t *testing.T) {
	log := deliveryLog{max: 2}
	for i := range 5 {
		log.add(Delivery{Attempt: i})
	}
	list := log.list()
	if len(list) != 2 || list[0].Attempt != 3 || list[1].Attempt != 4 {
		t.Errorf("kept %+v, expected attempts 3 and 4", list)
	}
}

func TestBackoffDoubles(t *testing.T) {
	server := New(Options{DeliveryBackoff: 10 * time.Millisecond})
	for retry, expected := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond} {
		if got := server.backoff(retry); got != expected {
			t.Errorf("backoff(%d) = %s, expected %s", retry, got, expected)
		}
	}
	if got := server.backoff(100); got > 2*time.Hour {
		t.Errorf("backoff(100) = %s, expected it capped near an hour", got)
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	server := New(Options{})
	if server.opts.DeliveryTimeout != 30*time.Second || server.opts.DeliveryRetries != 3 || server.opts.DeliveryBackoff != time.Second {
		t.Errorf("defaults = %s, %d, %s; expected 30s, 3, 1s", server.opts.DeliveryTimeout, server.opts.DeliveryRetries, server.opts.DeliveryBackoff)
	}
	if server := New(Options{DeliveryRetries: -1}); server.opts.DeliveryRetries != 0 {
		t.Errorf("DeliveryRetries -1 became %d, expected 0", server.opts.DeliveryRetries)
	}
}

func TestDialLoopbackRejectsOtherAddresses(t *testing.T) {
	dialer := &net.Dialer{Timeout: time.Second}
	for _, address := range []string{"192.0.2.1:443", "example.com:443", "[2001:db8::1]:443", "0.0.0.0:80"} {
		if conn, err := dialLoopback(context.Background(), dialer, "tcp", address); err == nil {
			conn.Close()
			t.Errorf("dialLoopback(%q) connected, expected a rejection", address)
		} else if !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("dialLoopback(%q) error = %v, expected a rejection before dialing", address, err)
		}
	}
}
