package webhook

import (
	"fmt"
	"net/http"
)

// Proof is the kind of evidence of an accepted secret that a request
// carries.
type Proof string

const (
	// ProofSignature is a valid X-Kbc-Signature header, which the webhooks
	// endpoint of the Keboola Storage API sends.
	ProofSignature Proof = "signature"
	// ProofURLSecret is a SecretQueryParameter equal to an accepted secret,
	// which deliveries of the Keboola Notification service carry.
	ProofURLSecret Proof = "url-secret"
)

// VerifyRequest checks that r, whose body is body, proves knowledge of one
// of secrets, and returns the proof it used and the index of the matching
// secret in secrets.
//
// When r has an X-Kbc-Signature header, the signature alone decides, as in
// VerifyAny, and a SecretQueryParameter in the URL is ignored. A present but
// empty header is a wrong signature. Without the header, the URL must carry
// SecretQueryParameter exactly once, and its value must equal one of
// secrets, compared in constant time.
//
// The error wraps ErrMissingSignature when r carries neither, and
// ErrInvalidSignature or ErrInvalidURLSecret when the proof does not match
// or the parameter is repeated, empty or not validly percent-encoded. The
// proof is then "" and the index -1.
//
// VerifyRequest does not change r. Pass r through WithoutSecretQueryParameter
// before logging or handling it, as Middleware does.
func VerifyRequest(secrets [][]byte, r *http.Request, body []byte) (Proof, int, error) {
	cred, err := credentialOf(r)
	if err != nil {
		return "", -1, err
	}
	index, err := cred.verify(secrets, body)
	if err != nil {
		return "", -1, err
	}
	return cred.proof, index, nil
}

// credential is the proof that a request offers, before it is checked
// against the secrets.
type credential struct {
	proof Proof
	// value is the signature for ProofSignature and the decoded query
	// parameter for ProofURLSecret.
	value string
}

// credentialOf returns the proof that r offers. It returns an error when r
// offers none, or a SecretQueryParameter that no secret can match.
func credentialOf(r *http.Request) (credential, error) {
	if signatures := r.Header.Values(SignatureHeader); len(signatures) > 0 {
		return credential{proof: ProofSignature, value: signatures[0]}, nil
	}

	var values []string
	invalidEscape := false
	if r.URL != nil {
		values, _, invalidEscape = splitSecretParameter(r.URL.RawQuery)
	}
	switch {
	case len(values) == 0:
		return credential{}, ErrMissingSignature
	case len(values) > 1:
		return credential{}, fmt.Errorf("%w: the query parameter %s appears %d times, expected once",
			ErrInvalidURLSecret, SecretQueryParameter, len(values))
	case invalidEscape:
		return credential{}, fmt.Errorf("%w: the query parameter %s has an invalid percent-encoding",
			ErrInvalidURLSecret, SecretQueryParameter)
	case values[0] == "":
		return credential{}, fmt.Errorf("%w: the query parameter %s is empty", ErrInvalidURLSecret, SecretQueryParameter)
	}
	return credential{proof: ProofURLSecret, value: values[0]}, nil
}

// verify returns the index of the secret that c matches for body.
func (c credential) verify(secrets [][]byte, body []byte) (int, error) {
	if c.proof == ProofSignature {
		index, ok := VerifyAny(secrets, body, c.value)
		if !ok {
			return -1, ErrInvalidSignature
		}
		return index, nil
	}

	index := matchURLSecret(secrets, c.value)
	if index < 0 {
		return -1, ErrInvalidURLSecret
	}
	return index, nil
}
