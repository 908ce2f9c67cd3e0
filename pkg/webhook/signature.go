package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SignatureHeader is the HTTP header that carries the signature of a
// delivery's body.
const SignatureHeader = "X-Kbc-Signature"

// Sign returns the signature of body: the lowercase hexadecimal HMAC-SHA256
// of body keyed with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is the signature of body under secret.
// It compares the decoded bytes in constant time. It returns false for an
// empty secret, because a receiver without a secret must not accept
// deliveries that anyone can sign, and for a signature that is not 64
// hexadecimal digits, such as an empty, odd-length or non-hexadecimal one.
// Upper-case digits are accepted.
func Verify(secret, body []byte, signature string) bool {
	if len(secret) == 0 || len(signature) != hex.EncodedLen(sha256.Size) {
		return false
	}
	received, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(received, mac.Sum(nil))
}
