package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// referenceSignature computes the expected signature with crypto/hmac
// directly, independently of Sign.
func referenceSignature(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func TestSignMatchesHMACSHA256(t *testing.T) {
	tests := map[string]struct {
		secret string
		body   string
	}{
		"delivery body": {
			secret: "whsec-3f9a1c",
			body:   `{"event":"storage.jobSucceeded","data":{"id":"42"},"createdTime":"2024-01-15T10:35:01+0000"}`,
		},
		"empty body":                 {secret: "secret", body: ""},
		"binary body":                {secret: "secret", body: "\x00\xff\x10\n"},
		"secret longer than a block": {secret: strings.Repeat("k", 200), body: "body"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			want := referenceSignature([]byte(tc.secret), []byte(tc.body))
			if got := Sign([]byte(tc.secret), []byte(tc.body)); got != want {
				t.Errorf("Sign() = %q, want %q", got, want)
			}
		})
	}
}

func TestSignRFC4231Vector(t *testing.T) {
	// Test case 2 of RFC 4231 (HMAC-SHA-256 test vectors).
	const want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?")); got != want {
		t.Errorf("Sign() = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("whsec-3f9a1c")
	body := []byte(`{"event":"storage.jobFailed","data":{"id":"7"}}`)
	valid := referenceSignature(secret, body)

	tests := map[string]struct {
		secret    []byte
		body      []byte
		signature string
		want      bool
	}{
		"valid signature":             {secret: secret, body: body, signature: valid, want: true},
		"upper-case digits":           {secret: secret, body: body, signature: strings.ToUpper(valid), want: true},
		"wrong secret":                {secret: []byte("other"), body: body, signature: valid, want: false},
		"body changed":                {secret: secret, body: append([]byte(" "), body...), signature: valid, want: false},
		"empty signature":             {secret: secret, body: body, signature: "", want: false},
		"odd number of digits":        {secret: secret, body: body, signature: valid[:63], want: false},
		"truncated signature":         {secret: secret, body: body, signature: valid[:62], want: false},
		"extra digits":                {secret: secret, body: body, signature: valid + "00", want: false},
		"non-hexadecimal digit":       {secret: secret, body: body, signature: "g" + valid[1:], want: false},
		"prefixed with the algorithm": {secret: secret, body: body, signature: "sha256=" + valid, want: false},
		"empty secret":                {secret: nil, body: body, signature: referenceSignature(nil, body), want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Verify(tc.secret, tc.body, tc.signature); got != tc.want {
				t.Errorf("Verify() = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("secret"), []byte(`{"event":"storage.jobSucceeded"}`), "")
	f.Add([]byte("secret"), []byte(""), "zz")
	f.Add([]byte(""), []byte("body"), strings.Repeat("0", 64))
	f.Add([]byte("k"), []byte("b"), strings.Repeat("f", 63))

	f.Fuzz(func(t *testing.T, secret, body []byte, signature string) {
		// Verify must not panic on any input, and must agree with the
		// reference computation.
		want := len(secret) > 0 && strings.EqualFold(signature, referenceSignature(secret, body))
		if got := Verify(secret, body, signature); got != want {
			t.Errorf("Verify(%q, %q, %q) = %v, want %v", secret, body, signature, got, want)
		}

		if len(secret) > 0 && !Verify(secret, body, Sign(secret, body)) {
			t.Errorf("Verify(%q, %q, Sign(...)) = false, want true", secret, body)
		}
	})
}

func TestVerifyAny(t *testing.T) {
	current := []byte("whsec-current")
	previous := []byte("whsec-previous")
	body := []byte(`{"event":"storage.jobSucceeded","data":{"id":"42"},"createdTime":"2024-01-15T10:35:01+0000"}`)

	tests := map[string]struct {
		secrets   [][]byte
		signature string
		wantIndex int
		wantOK    bool
	}{
		"signed with the current secret": {
			secrets: [][]byte{current, previous}, signature: referenceSignature(current, body), wantIndex: 0, wantOK: true,
		},
		"signed with the previous secret": {
			secrets: [][]byte{current, previous}, signature: referenceSignature(previous, body), wantIndex: 1, wantOK: true,
		},
		"signed with another secret": {
			secrets: [][]byte{current, previous}, signature: referenceSignature([]byte("other"), body), wantIndex: -1,
		},
		"first of two equal secrets": {
			secrets: [][]byte{current, current}, signature: referenceSignature(current, body), wantIndex: 0, wantOK: true,
		},
		"empty secret skipped": {
			secrets: [][]byte{nil, previous}, signature: referenceSignature(previous, body), wantIndex: 1, wantOK: true,
		},
		"empty secret never matches": {
			secrets: [][]byte{nil}, signature: referenceSignature(nil, body), wantIndex: -1,
		},
		"no secrets": {
			secrets: nil, signature: referenceSignature(current, body), wantIndex: -1,
		},
		"malformed signature": {
			secrets: [][]byte{current}, signature: "sha256=" + referenceSignature(current, body), wantIndex: -1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			index, ok := VerifyAny(tc.secrets, body, tc.signature)
			if ok != tc.wantOK {
				t.Errorf("VerifyAny() ok = %v, want %v", ok, tc.wantOK)
			}
			if index != tc.wantIndex {
				t.Errorf("VerifyAny() index = %d, want %d", index, tc.wantIndex)
			}
		})
	}
}

func FuzzVerifyAny(f *testing.F) {
	f.Add([]byte("current"), []byte("previous"), []byte(`{"event":"storage.jobFailed"}`), "", false)
	f.Add([]byte("current"), []byte(""), []byte("body"), strings.Repeat("A", 64), true)
	f.Add([]byte(""), []byte(""), []byte(""), "zz", false)

	f.Fuzz(func(t *testing.T, current, previous, body []byte, signature string, signWithPrevious bool) {
		if signWithPrevious && len(previous) > 0 {
			signature = referenceSignature(previous, body)
		}
		wantIndex := -1
		for i, secret := range [][]byte{current, previous} {
			if len(secret) > 0 && strings.EqualFold(signature, referenceSignature(secret, body)) {
				wantIndex = i
				break
			}
		}

		index, ok := VerifyAny([][]byte{current, previous}, body, signature)
		if index != wantIndex || ok != (wantIndex >= 0) {
			t.Errorf("VerifyAny(%q, %q, %q) = %d, %v, want %d, %v",
				[][]byte{current, previous}, body, signature, index, ok, wantIndex, wantIndex >= 0)
		}
		if got := Verify(current, body, signature); got != (len(current) > 0 && strings.EqualFold(signature, referenceSignature(current, body))) {
			t.Errorf("Verify() = %v disagrees with the reference computation", got)
		}
	})
}
