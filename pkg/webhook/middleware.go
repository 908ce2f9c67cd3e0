package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxBodyBytes is the largest body a Middleware accepts when
// MaxBodyBytes is not set: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Errors that a Rejection wraps, one per reason to reject a request.
var (
	// ErrMissingSignature means the request has neither an X-Kbc-Signature
	// header nor a SecretQueryParameter in its URL.
	ErrMissingSignature = errors.New("missing signature or URL secret")
	// ErrInvalidSignature means the signature matches none of the accepted
	// secrets.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrInvalidURLSecret means the request has no X-Kbc-Signature header,
	// and its SecretQueryParameter matches none of the accepted secrets or
	// is repeated, empty or not validly percent-encoded.
	ErrInvalidURLSecret = errors.New("invalid URL secret")
	// ErrBodyTooLarge means the body is larger than MaxBodyBytes.
	ErrBodyTooLarge = errors.New("body too large")
	// ErrReadBody means the body could not be read, for example because the
	// client closed the connection.
	ErrReadBody = errors.New("failed to read the body")
	// ErrSecretUnavailable means the SecretSource returned an error, so no
	// signature or URL secret can be checked.
	ErrSecretUnavailable = errors.New("signing secret not available")
)

// Rejection describes a request that a Middleware rejected.
type Rejection struct {
	// Status is the HTTP status of the response. It is 401 for a missing or
	// wrong signature or URL secret and 413 for a body over the limit. It is
	// 400 for an unreadable body or a verified body that is not a delivery,
	// and 503 when no secret is available.
	Status int
	// Err wraps one of ErrMissingSignature, ErrInvalidSignature,
	// ErrInvalidURLSecret, ErrBodyTooLarge, ErrReadBody,
	// ErrSecretUnavailable or ErrInvalidPayload, and the cause where there
	// is one.
	Err error
	// Body is the body as received for ErrMissingSignature,
	// ErrInvalidSignature, ErrInvalidURLSecret and ErrInvalidPayload, and
	// nil otherwise. Unless Err wraps ErrInvalidPayload, anyone could have
	// sent it, so use it for diagnosis only.
	Body []byte
}

// Delivery is a request that a Middleware verified.
type Delivery struct {
	// Body is the exact body that was verified.
	Body []byte
	// Event is the decoded body.
	Event Event
	// Proof is the kind of evidence that matched: ProofSignature or
	// ProofURLSecret.
	Proof Proof
	// SecretIndex is the index, in the list of the SecretSource, of the
	// secret that matched the proof. For a SecretDir, 0 is the current
	// secret and 1 the previous one.
	SecretIndex int
}

type deliveryContextKey struct{}

// DeliveryFromContext returns the Delivery that a Middleware stored in the
// context of the request it passed on.
func DeliveryFromContext(ctx context.Context) (*Delivery, bool) {
	d, ok := ctx.Value(deliveryContextKey{}).(*Delivery)
	return d, ok
}

// Middleware verifies each delivery before it passes the request on. It
// reads the whole body, up to MaxBodyBytes, and checks the request against
// every secret of Secrets with the rules of VerifyRequest: the
// X-Kbc-Signature header over those exact bytes when the header is present,
// and otherwise the SecretQueryParameter in the URL. It then decodes the
// body with ParseEvent and calls the next handler with the Delivery in the
// request's context and a fresh reader of the same bytes in r.Body. Every
// other request gets an error status and never reaches the next handler
// (see Rejection.Status).
//
// Both the next handler and OnReject get a request without the
// SecretQueryParameter (see WithoutSecretQueryParameter), so that the URL
// they log never contains the secret. The URL of the caller's request is
// left unchanged.
//
// The responses to rejected requests carry only the status text, so that a
// sender learns nothing about the secrets.
//
// NOTE: The deliveries of both backends are decoded with ParseEvent, and
// the tests cover Notification service deliveries only with bodies in the
// format of Event.
type Middleware struct {
	// Secrets provides the accepted signing secrets.
	Secrets SecretSource
	// MaxBodyBytes is the largest body accepted. Zero or a negative value
	// means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// OnReject, when set, is called for every rejected request before the
	// response is written, for example to log it. It must not write to the
	// response.
	OnReject func(r *http.Request, rejection Rejection)
}

// Handler returns a Middleware with the default settings around next.
func Handler(secrets SecretSource, next http.Handler) http.Handler {
	return (&Middleware{Secrets: secrets}).Wrap(next)
}

// Wrap returns a handler that verifies each request and passes the verified
// ones to next.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivery, rejection := m.verify(w, r)
		r = WithoutSecretQueryParameter(r)
		if rejection != nil {
			if m.OnReject != nil {
				m.OnReject(r, *rejection)
			}
			http.Error(w, http.StatusText(rejection.Status), rejection.Status)
			return
		}

		r = r.WithContext(context.WithValue(r.Context(), deliveryContextKey{}, delivery))
		r.Body = io.NopCloser(bytes.NewReader(delivery.Body))
		r.ContentLength = int64(len(delivery.Body))
		next.ServeHTTP(w, r)
	})
}

// verify returns the verified delivery of r, or why r is rejected.
func (m *Middleware) verify(w http.ResponseWriter, r *http.Request) (*Delivery, *Rejection) {
	limit := m.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &Rejection{Status: http.StatusRequestEntityTooLarge,
				Err: fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)}
		}
		return nil, &Rejection{Status: http.StatusBadRequest, Err: fmt.Errorf("%w: %w", ErrReadBody, err)}
	}

	// A request without a usable proof is rejected before the secrets are
	// read, so it gets 401 also while no secret is available.
	cred, err := credentialOf(r)
	if err != nil {
		return nil, &Rejection{Status: http.StatusUnauthorized, Err: err, Body: body}
	}
	secrets, err := m.Secrets.Secrets()
	if err != nil {
		return nil, &Rejection{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("%w: %w", ErrSecretUnavailable, err)}
	}
	index, err := cred.verify(secrets, body)
	if err != nil {
		return nil, &Rejection{Status: http.StatusUnauthorized, Err: err, Body: body}
	}

	event, err := ParseEvent(body)
	if err != nil {
		return nil, &Rejection{Status: http.StatusBadRequest, Err: err, Body: body}
	}
	return &Delivery{Body: body, Event: event, Proof: cred.proof, SecretIndex: index}, nil
}
