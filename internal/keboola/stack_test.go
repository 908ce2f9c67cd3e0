package keboola

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeStackURL(t *testing.T) {
	tests := map[string]struct {
		raw  string
		want string
	}{
		"bare host":                   {raw: "connection.keboola.com", want: "https://connection.keboola.com"},
		"bare host, trailing slash":   {raw: "connection.keboola.com/", want: "https://connection.keboola.com"},
		"https URL":                   {raw: "https://connection.keboola.com", want: "https://connection.keboola.com"},
		"https URL, trailing slash":   {raw: "https://connection.keboola.com/", want: "https://connection.keboola.com"},
		"upper case":                  {raw: "HTTPS://Connection.EU-Central-1.Keboola.COM/", want: "https://connection.eu-central-1.keboola.com"},
		"surrounding whitespace":      {raw: "  connection.keboola.com\n", want: "https://connection.keboola.com"},
		"trailing dot":                {raw: "connection.keboola.com.", want: "https://connection.keboola.com"},
		"default https port":          {raw: "https://connection.keboola.com:443/", want: "https://connection.keboola.com"},
		"custom port":                 {raw: "connection.keboola.com:8443", want: "https://connection.keboola.com:8443"},
		"empty port":                  {raw: "https://connection.keboola.com:", want: "https://connection.keboola.com"},
		"http localhost":              {raw: "http://localhost:8080", want: "http://localhost:8080"},
		"http LOCALHOST":              {raw: "HTTP://LOCALHOST:8080/", want: "http://localhost:8080"},
		"http localhost default port": {raw: "http://localhost:80", want: "http://localhost"},
		"http 127.0.0.1":              {raw: "http://127.0.0.1:36789", want: "http://127.0.0.1:36789"},
		"http 127.255.0.9":            {raw: "http://127.255.0.9", want: "http://127.255.0.9"},
		"http IPv6 loopback":          {raw: "http://[::1]:9000/", want: "http://[::1]:9000"},
		"http IPv6 loopback long":     {raw: "http://[0:0:0:0:0:0:0:1]", want: "http://[::1]"},
		"https IPv6":                  {raw: "https://[2001:DB8::1]:8443", want: "https://[2001:db8::1]:8443"},
		"https IPv6 no port":          {raw: "https://[2001:db8::1]", want: "https://[2001:db8::1]"},
		"https localhost":             {raw: "localhost:8443", want: "https://localhost:8443"},
		"single-tenant stack":         {raw: "connection.acme-corp.keboola.com", want: "https://connection.acme-corp.keboola.com"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeStackURL(tt.raw)
			if err != nil {
				t.Fatalf("NormalizeStackURL(%q) error = %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeStackURL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestNormalizeStackURLRejects(t *testing.T) {
	tests := map[string]struct {
		raw         string
		wantProblem string
	}{
		"empty":                  {raw: "", wantProblem: "empty"},
		"blank":                  {raw: "   ", wantProblem: "empty"},
		"user info":              {raw: "https://tok-SECRET-123@connection.keboola.com", wantProblem: "user info"},
		"user and password":      {raw: "https://user:tok-SECRET-123@connection.keboola.com/", wantProblem: "user info"},
		"bare host with user":    {raw: "tok-SECRET-123@connection.keboola.com", wantProblem: "user info"},
		"path":                   {raw: "https://connection.keboola.com/v2/storage", wantProblem: "path"},
		"double slash path":      {raw: "https://connection.keboola.com//", wantProblem: "path"},
		"bare host with path":    {raw: "connection.keboola.com/tok-SECRET-123", wantProblem: "path"},
		"query":                  {raw: "https://connection.keboola.com/?token=tok-SECRET-123", wantProblem: "query"},
		"empty query":            {raw: "https://connection.keboola.com?", wantProblem: "query"},
		"fragment":               {raw: "https://connection.keboola.com/#tok-SECRET-123", wantProblem: "fragment"},
		"empty fragment":         {raw: "https://connection.keboola.com#", wantProblem: "fragment"},
		"http remote":            {raw: "http://connection.keboola.com", wantProblem: "plain http"},
		"http private address":   {raw: "http://10.0.0.1", wantProblem: "plain http"},
		"http localhost subname": {raw: "http://localhost.example.com", wantProblem: "plain http"},
		"ftp":                    {raw: "ftp://connection.keboola.com", wantProblem: `scheme "ftp"`},
		"no host":                {raw: "https://", wantProblem: "host is missing"},
		"only a port":            {raw: "https://:8443", wantProblem: "host is missing"},
		"port zero":              {raw: "https://connection.keboola.com:0", wantProblem: "port"},
		"port too big":           {raw: "https://connection.keboola.com:70000", wantProblem: "port"},
		"port not a number":      {raw: "https://connection.keboola.com:https", wantProblem: "not a valid URL"},
		"underscore in host":     {raw: "connection_1.keboola.com", wantProblem: "DNS name"},
		"empty label":            {raw: "connection..keboola.com", wantProblem: "DNS name"},
		"leading hyphen":         {raw: "-connection.keboola.com", wantProblem: "DNS name"},
		"long label":             {raw: strings.Repeat("a", 64) + ".keboola.com", wantProblem: "DNS name"},
		"long host":              {raw: strings.Repeat("a.", 127) + "com", wantProblem: "253"},
		"space in host":          {raw: "connection keboola.com", wantProblem: "not a valid URL"},
		"backslash":              {raw: `https://connection.keboola.com\tok-SECRET-123`, wantProblem: "not a valid URL"},
		"IPv6 zone":              {raw: "https://[fe80::1%25eth0]", wantProblem: "IPv6"},
		"unicode host":           {raw: "https://connéction.keboola.com", wantProblem: "DNS name"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeStackURL(tt.raw)
			if err == nil {
				t.Fatalf("NormalizeStackURL(%q) = %q, want an error", tt.raw, got)
			}
			if !errors.Is(err, ErrInvalidStackURL) {
				t.Errorf("error %v does not match ErrInvalidStackURL", err)
			}
			if !strings.Contains(err.Error(), tt.wantProblem) {
				t.Errorf("error %q does not name the problem %q", err, tt.wantProblem)
			}
			assertNoToken(t, err)
			assertOneLine(t, err)
		})
	}
}
