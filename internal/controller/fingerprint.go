package controller

import (
	"crypto/sha256"
	"encoding/hex"
)

// fingerprint identifies a secret value without revealing it: "sha256:"
// followed by the first 16 hexadecimal digits of its SHA-256 hash. It is
// safe to show in status, annotations and logs.
func fingerprint(value []byte) string {
	sum := sha256.Sum256(value)
	return "sha256:" + hex.EncodeToString(sum[:8])
}
