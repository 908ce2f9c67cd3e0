package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Secrets in the format the operator mints for the Notification service:
// 32 random bytes, hex-encoded.
const (
	urlSecretCurrent  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	urlSecretPrevious = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	urlSecretOther    = "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"
)

func TestVerifyRequest(t *testing.T) {
	secrets := [][]byte{[]byte(urlSecretCurrent), []byte(urlSecretPrevious)}
	body := []byte(deliveryBody)
	signedCurrent := referenceSignature([]byte(urlSecretCurrent), body)

	tests := map[string]struct {
		secrets    [][]byte
		query      string
		signatures []string
		wantProof  Proof
		wantIndex  int
		wantErr    error
	}{
		"signature only": {
			secrets: secrets, signatures: []string{signedCurrent},
			wantProof: ProofSignature, wantIndex: 0,
		},
		"signature with the previous secret": {
			secrets: secrets, signatures: []string{referenceSignature([]byte(urlSecretPrevious), body)},
			wantProof: ProofSignature, wantIndex: 1,
		},
		"URL secret only": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent,
			wantProof: ProofURLSecret, wantIndex: 0,
		},
		"URL secret is the previous secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretPrevious,
			wantProof: ProofURLSecret, wantIndex: 1,
		},
		"URL secret among other parameters": {
			secrets: secrets, query: "tenant=a&kbc_secret=" + urlSecretCurrent + "&b=2",
			wantProof: ProofURLSecret, wantIndex: 0,
		},
		"URL secret with a percent-encoded key": {
			secrets: secrets, query: "kbc%5Fsecret=" + urlSecretCurrent,
			wantProof: ProofURLSecret, wantIndex: 0,
		},
		"URL secret after an empty secret": {
			secrets: [][]byte{nil, []byte(urlSecretPrevious)}, query: "kbc_secret=" + urlSecretPrevious,
			wantProof: ProofURLSecret, wantIndex: 1,
		},
		"wrong URL secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretOther,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"URL secret with a prefix of a secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent[:32],
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"URL secret with an extra character": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent + "0",
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"URL secret in upper case": {
			secrets: secrets, query: "kbc_secret=" + strings.ToUpper(urlSecretCurrent),
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"repeated parameter with the same secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent + "&kbc_secret=" + urlSecretCurrent,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"repeated parameter with a wrong and a right secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretOther + "&kbc_secret=" + urlSecretCurrent,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"repeated parameter, one percent-encoded": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent + "&kbc%5fsecret=" + urlSecretOther,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"repeated parameter, one invalid": {
			secrets: secrets, query: "kbc_secret=%zz&kbc_secret=" + urlSecretCurrent,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"empty parameter": {
			secrets: secrets, query: "kbc_secret=",
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"parameter without a value": {
			secrets: secrets, query: "kbc_secret",
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"invalid percent-encoding": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent + "%zz",
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
		"wrong signature and right URL secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent,
			signatures: []string{referenceSignature([]byte(urlSecretOther), body)},
			wantIndex:  -1, wantErr: ErrInvalidSignature,
		},
		"empty signature header and right URL secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretCurrent, signatures: []string{""},
			wantIndex: -1, wantErr: ErrInvalidSignature,
		},
		"right signature and wrong URL secret": {
			secrets: secrets, query: "kbc_secret=" + urlSecretOther, signatures: []string{signedCurrent},
			wantProof: ProofSignature, wantIndex: 0,
		},
		"right signature and repeated parameter": {
			secrets: secrets, query: "kbc_secret=a&kbc_secret=b", signatures: []string{signedCurrent},
			wantProof: ProofSignature, wantIndex: 0,
		},
		"neither signature nor URL secret": {
			secrets: secrets, query: "tenant=a",
			wantIndex: -1, wantErr: ErrMissingSignature,
		},
		"similar parameter name": {
			secrets: secrets, query: "kbc_secrets=" + urlSecretCurrent + "&x=kbc_secret",
			wantIndex: -1, wantErr: ErrMissingSignature,
		},
		"no secrets": {
			secrets: nil, query: "kbc_secret=" + urlSecretCurrent,
			wantIndex: -1, wantErr: ErrInvalidURLSecret,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/webhook?"+tc.query, strings.NewReader(deliveryBody))
			for _, signature := range tc.signatures {
				req.Header.Add(SignatureHeader, signature)
			}

			proof, index, err := VerifyRequest(tc.secrets, req, body)

			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("VerifyRequest() error = %v, want %v", err, tc.wantErr)
			}
			if proof != tc.wantProof {
				t.Errorf("VerifyRequest() proof = %q, want %q", proof, tc.wantProof)
			}
			if index != tc.wantIndex {
				t.Errorf("VerifyRequest() index = %d, want %d", index, tc.wantIndex)
			}
			if err != nil && strings.Contains(err.Error(), urlSecretCurrent) {
				t.Errorf("VerifyRequest() error %q contains a secret", err)
			}
		})
	}
}

func TestVerifyRequestLeavesRequestUnchanged(t *testing.T) {
	target := "/webhook?a=1&kbc_secret=" + urlSecretCurrent
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(deliveryBody))

	if _, _, err := VerifyRequest([][]byte{[]byte(urlSecretCurrent)}, req, []byte(deliveryBody)); err != nil {
		t.Fatalf("VerifyRequest() error = %v", err)
	}
	if req.RequestURI != target {
		t.Errorf("RequestURI = %q, want %q", req.RequestURI, target)
	}
}

func TestWithoutSecretQueryParameter(t *testing.T) {
	tests := map[string]struct {
		query     string
		wantQuery string
	}{
		"only the parameter":         {query: "kbc_secret=s", wantQuery: ""},
		"parameter first":            {query: "kbc_secret=s&a=1", wantQuery: "a=1"},
		"parameter in the middle":    {query: "a=1&kbc_secret=s&b=2", wantQuery: "a=1&b=2"},
		"parameter last":             {query: "a=1&kbc_secret=s", wantQuery: "a=1"},
		"repeated parameter":         {query: "kbc_secret=s&a=1&kbc_secret=t", wantQuery: "a=1"},
		"percent-encoded key":        {query: "kbc%5Fsecret=s&a=1", wantQuery: "a=1"},
		"parameter without a value":  {query: "a=1&kbc_secret", wantQuery: "a=1"},
		"invalid value":              {query: "kbc_secret=%zz&a=1", wantQuery: "a=1"},
		"semicolon separator":        {query: "a=1;kbc_secret=s;b=2", wantQuery: "a=1;b=2"},
		"encoding of others kept":    {query: "b=x%20y&kbc_secret=s&a=%2F+z", wantQuery: "b=x%20y&a=%2F+z"},
		"empty pairs of others kept": {query: "a=1&&kbc_secret=s&b=2&", wantQuery: "a=1&&b=2&"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/webhook?"+tc.query, nil)
			// ParseForm reports an error for a pair with a semicolon or an
			// invalid escape, and parses the other pairs.
			_ = req.ParseForm()

			stripped := WithoutSecretQueryParameter(req)

			if stripped.URL.RawQuery != tc.wantQuery {
				t.Errorf("URL.RawQuery = %q, want %q", stripped.URL.RawQuery, tc.wantQuery)
			}
			wantURI := "/webhook"
			if tc.wantQuery != "" {
				wantURI += "?" + tc.wantQuery
			}
			if stripped.RequestURI != wantURI {
				t.Errorf("RequestURI = %q, want %q", stripped.RequestURI, wantURI)
			}
			if stripped.Form.Has(SecretQueryParameter) {
				t.Errorf("Form = %v, want no %s", stripped.Form, SecretQueryParameter)
			}
			if req.URL.RawQuery != tc.query {
				t.Errorf("URL.RawQuery of the original request = %q, want it unchanged: %q", req.URL.RawQuery, tc.query)
			}
			if req.RequestURI != "/webhook?"+tc.query {
				t.Errorf("RequestURI of the original request = %q, want it unchanged", req.RequestURI)
			}
		})
	}
}

func TestWithoutSecretQueryParameterAbsent(t *testing.T) {
	for _, target := range []string{"/webhook", "/webhook?a=1&b=2", "/webhook?kbc_secretx=1&x=kbc_secret"} {
		req := httptest.NewRequest(http.MethodPost, target, nil)
		if got := WithoutSecretQueryParameter(req); got != req {
			t.Errorf("WithoutSecretQueryParameter(%q) returned a copy, want the same request", target)
		}
	}
}

func TestWithoutSecretQueryParameterKeepsContext(t *testing.T) {
	type contextKey struct{}
	req := httptest.NewRequest(http.MethodPost, "/webhook?kbc_secret=s", nil)
	req = req.WithContext(context.WithValue(req.Context(), contextKey{}, "value"))

	stripped := WithoutSecretQueryParameter(req)

	if got := stripped.Context().Value(contextKey{}); got != "value" {
		t.Errorf("context value = %v, want %q", got, "value")
	}
}

func FuzzSplitSecretParameter(f *testing.F) {
	f.Add("kbc_secret=s")
	f.Add("a=1&kbc_secret=s&b=2")
	f.Add("a=1;kbc%5Fsecret=%zz&&b")
	f.Add("kbc_secret&kbc_secret=&")

	f.Fuzz(func(t *testing.T, rawQuery string) {
		values, rest, _ := splitSecretParameter(rawQuery)

		if len(values) == 0 && rest != rawQuery {
			t.Errorf("splitSecretParameter(%q) changed a query without the parameter to %q", rawQuery, rest)
		}
		if again, _, _ := splitSecretParameter(rest); len(again) > 0 {
			t.Errorf("splitSecretParameter(%q) left the parameter in %q", rawQuery, rest)
		}
		// Every value that net/url parses must be found, so that none
		// reaches a handler that parses the query itself.
		parsed, _ := url.ParseQuery(rawQuery)
		if len(parsed[SecretQueryParameter]) > len(values) {
			t.Errorf("splitSecretParameter(%q) found %d values, net/url parses %d",
				rawQuery, len(values), len(parsed[SecretQueryParameter]))
		}
		if restParsed, _ := url.ParseQuery(rest); restParsed.Has(SecretQueryParameter) {
			t.Errorf("net/url parses %s in the rest %q of %q", SecretQueryParameter, rest, rawQuery)
		}
	})
}
