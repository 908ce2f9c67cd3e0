package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// SecretQueryParameter is the query parameter that carries the secret in
// the URL of a delivery from the Keboola Notification service. That service
// signs nothing, so the operator mints a secret of 32 random bytes,
// hex-encoded, stores it in the Secret under SecretKeySigningSecret, and
// registers the receiver's URL with kbc_secret=<secret> added. A request
// without an X-Kbc-Signature header is verified when this parameter equals
// one of the accepted secrets.
const SecretQueryParameter = "kbc_secret"

// WithoutSecretQueryParameter returns r unchanged when its URL has no
// SecretQueryParameter, and otherwise a copy of r (see http.Request.Clone)
// without the parameter in URL.RawQuery, RequestURI and, when it is
// already parsed, Form. The order and the encoding of the other parameters
// are kept. The copy shares the body with r.
//
// Pairs are split at "&" and at ";", so the parameter is removed also for a
// handler that accepts ";" as a separator, such as one wrapped by
// http.AllowQuerySemicolons.
func WithoutSecretQueryParameter(r *http.Request) *http.Request {
	if r.URL == nil {
		return r
	}
	values, rest, _ := splitSecretParameter(r.URL.RawQuery)
	if len(values) == 0 {
		return r
	}

	stripped := r.Clone(r.Context())
	stripped.URL.RawQuery = rest
	if path, _, found := strings.Cut(stripped.RequestURI, "?"); found {
		stripped.RequestURI = path
		if rest != "" {
			stripped.RequestURI += "?" + rest
		}
	}
	if stripped.Form != nil {
		stripped.Form.Del(SecretQueryParameter)
	}
	return stripped
}

// splitSecretParameter separates the SecretQueryParameter pairs of a raw
// query from the other pairs. It returns the decoded values of those pairs,
// the query without them, and whether one of the values has an invalid
// percent-encoding. A pair belongs to the parameter when its key decodes to
// SecretQueryParameter, so "kbc%5Fsecret" counts as well.
//
// Pairs are split at "&" and at ";". net/url ignores a pair that contains a
// ";", but a pair such as "a=1;kbc_secret=..." still carries the secret, and
// some handlers split at ";", so it must be found and removed too. The
// other pairs are kept with the separator that preceded them.
func splitSecretParameter(rawQuery string) (values []string, rest string, invalidEscape bool) {
	var kept strings.Builder
	keptAny := false
	start := 0
	for end := 0; end <= len(rawQuery); end++ {
		if end < len(rawQuery) && rawQuery[end] != '&' && rawQuery[end] != ';' {
			continue
		}
		pair := rawQuery[start:end]
		separator := ""
		if start > 0 {
			separator = rawQuery[start-1 : start]
		}
		start = end + 1

		key, value, _ := strings.Cut(pair, "=")
		if decodedKey, err := url.QueryUnescape(key); err == nil && decodedKey == SecretQueryParameter {
			decoded, err := url.QueryUnescape(value)
			if err != nil {
				invalidEscape = true
			}
			values = append(values, decoded)
			continue
		}

		if keptAny {
			kept.WriteString(separator)
		}
		kept.WriteString(pair)
		keptAny = true
	}
	return values, kept.String(), invalidEscape
}

// matchURLSecret returns the index of the first of secrets that equals
// candidate, or -1. It compares the SHA-256 digests of the values with
// subtle.ConstantTimeCompare, and it compares every secret, also after a
// match. So the time taken does not depend on which secret matched or on
// how many leading bytes agree, and the comparison of digests of equal size
// does not reveal a secret's length. Hashing a secret takes time that grows
// with its length, which is the same for every request. Empty secrets
// never match.
func matchURLSecret(secrets [][]byte, candidate string) int {
	received := sha256.Sum256([]byte(candidate))
	match := -1
	for i, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		expected := sha256.Sum256(secret)
		if subtle.ConstantTimeCompare(received[:], expected[:]) == 1 && match < 0 {
			match = i
		}
	}
	return match
}
