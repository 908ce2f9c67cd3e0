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

// VerifyAny reports whether signature is the signature of body under one of
// secrets, and returns the index of the first secret that matches, or -1.
// A receiver passes the current and the previous signing secret during a
// rotation. VerifyAny computes and compares the signature for every secret,
// also after a match, so its running time depends on the number of secrets
// but not on which one matched. Each comparison takes constant time. Empty
// secrets never match, and a malformed signature matches nothing, as in
// Verify.
func VerifyAny(secrets [][]byte, body []byte, signature string) (int, bool) {
	if len(signature) != hex.EncodedLen(sha256.Size) {
		return -1, false
	}
	received, err := hex.DecodeString(signature)
	if err != nil {
		return -1, false
	}
	match := -1
	for i, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(received, mac.Sum(nil)) && match < 0 {
			match = i
		}
	}
	return match, match >= 0
}
