package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const deliveryBody = `{"event":"storage.jobFailed","data":{"id":"7","status":"error"},"createdTime":"2024-01-15T10:35:01+0000"}`

func TestMiddleware(t *testing.T) {
	current := []byte("whsec-current")
	previous := []byte("whsec-previous")
	tests := map[string]struct {
		secrets       SecretSource
		body          string
		signature     string
		wantStatus    int
		wantErr       error
		wantBodyShown bool
		wantIndex     int
	}{
		"signed with the current secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody,
			signature: referenceSignature(current, []byte(deliveryBody)), wantStatus: http.StatusNoContent, wantIndex: 0,
		},
		"signed with the previous secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody,
			signature: referenceSignature(previous, []byte(deliveryBody)), wantStatus: http.StatusNoContent, wantIndex: 1,
		},
		"unsigned": {
			secrets: StaticSecrets{current}, body: deliveryBody,
			wantStatus: http.StatusUnauthorized, wantErr: ErrMissingSignature, wantBodyShown: true,
		},
		"signed with another secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody,
			signature:  referenceSignature([]byte("whsec-other"), []byte(deliveryBody)),
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidSignature, wantBodyShown: true,
		},
		"signature of another body": {
			secrets: StaticSecrets{current}, body: deliveryBody,
			signature:  referenceSignature(current, []byte(deliveryBody+" ")),
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidSignature, wantBodyShown: true,
		},
		"body over the limit": {
			secrets: StaticSecrets{current}, body: strings.Repeat("x", DefaultMaxBodyBytes+1),
			signature:  referenceSignature(current, []byte(strings.Repeat("x", DefaultMaxBodyBytes+1))),
			wantStatus: http.StatusRequestEntityTooLarge, wantErr: ErrBodyTooLarge,
		},
		"no secret available": {
			secrets: StaticSecrets{}, body: deliveryBody,
			signature:  referenceSignature(current, []byte(deliveryBody)),
			wantStatus: http.StatusServiceUnavailable, wantErr: ErrSecretUnavailable,
		},
		"verified body not a delivery": {
			secrets: StaticSecrets{current}, body: `{"data":{}}`,
			signature:  referenceSignature(current, []byte(`{"data":{}}`)),
			wantStatus: http.StatusBadRequest, wantErr: ErrInvalidPayload, wantBodyShown: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var rejections []Rejection
			var nextCalled bool
			var gotDelivery *Delivery
			var gotBody []byte
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nextCalled = true
				gotDelivery, _ = DeliveryFromContext(r.Context())
				gotBody, _ = io.ReadAll(r.Body)
				w.WriteHeader(http.StatusNoContent)
			})
			m := &Middleware{Secrets: tc.secrets, OnReject: func(_ *http.Request, rejection Rejection) {
				rejections = append(rejections, rejection)
			}}

			req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tc.body))
			if tc.signature != "" {
				req.Header.Set(SignatureHeader, tc.signature)
			}
			rec := httptest.NewRecorder()
			m.Wrap(next).ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantErr == nil {
				if !nextCalled {
					t.Fatal("the next handler was not called for a verified delivery")
				}
				if len(rejections) != 0 {
					t.Errorf("OnReject was called for a verified delivery: %v", rejections[0].Err)
				}
				if string(gotBody) != tc.body {
					t.Errorf("r.Body in the next handler = %q, want the verified body", gotBody)
				}
				if gotDelivery == nil {
					t.Fatal("DeliveryFromContext() found no delivery in the next handler")
				}
				if string(gotDelivery.Body) != tc.body {
					t.Errorf("Delivery.Body = %q, want the verified body", gotDelivery.Body)
				}
				if gotDelivery.Event.Key() != "storage.jobFailed:7" {
					t.Errorf("Delivery.Event.Key() = %q, want %q", gotDelivery.Event.Key(), "storage.jobFailed:7")
				}
				if gotDelivery.SecretIndex != tc.wantIndex {
					t.Errorf("Delivery.SecretIndex = %d, want %d", gotDelivery.SecretIndex, tc.wantIndex)
				}
				return
			}

			if nextCalled {
				t.Error("the next handler was called for a rejected request")
			}
			if len(rejections) != 1 {
				t.Fatalf("OnReject was called %d times, want 1", len(rejections))
			}
			rejection := rejections[0]
			if !errors.Is(rejection.Err, tc.wantErr) {
				t.Errorf("Rejection.Err = %v, want %v", rejection.Err, tc.wantErr)
			}
			if rejection.Status != tc.wantStatus {
				t.Errorf("Rejection.Status = %d, want %d", rejection.Status, tc.wantStatus)
			}
			if tc.wantBodyShown && string(rejection.Body) != tc.body {
				t.Errorf("Rejection.Body = %q, want the received body", rejection.Body)
			}
			if !tc.wantBodyShown && rejection.Body != nil {
				t.Errorf("Rejection.Body = %q, want nil", rejection.Body)
			}
			if strings.TrimSpace(rec.Body.String()) != http.StatusText(tc.wantStatus) {
				t.Errorf("response body = %q, want only the status text", rec.Body.String())
			}
		})
	}
}

func TestMiddlewareMaxBodyBytes(t *testing.T) {
	secret := []byte("whsec-current")
	m := &Middleware{Secrets: StaticSecrets{secret}, MaxBodyBytes: int64(len(deliveryBody))}
	handler := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))

	for _, tc := range []struct {
		body string
		want int
	}{
		{body: deliveryBody, want: http.StatusOK},
		{body: deliveryBody + " ", want: http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tc.body))
		req.Header.Set(SignatureHeader, referenceSignature(secret, []byte(tc.body)))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("a body of %d bytes with a limit of %d: status = %d, want %d", len(tc.body), len(deliveryBody), rec.Code, tc.want)
		}
	}
}

// TestMiddlewareOverHTTP sends deliveries through a real HTTP server and
// client, with the signatures computed independently with crypto/hmac.
func TestMiddlewareOverHTTP(t *testing.T) {
	current := []byte("whsec-current")
	previous := []byte("whsec-previous")
	server := httptest.NewServer(Handler(StaticSecrets{current, previous},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			delivery, _ := DeliveryFromContext(r.Context())
			_, _ = io.WriteString(w, delivery.Event.Key())
		})))
	defer server.Close()

	post := func(signature string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, server.URL, strings.NewReader(deliveryBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(SignatureHeader, signature)
		resp, err := server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	for name, secret := range map[string][]byte{"current": current, "previous": previous} {
		status, body := post(referenceSignature(secret, []byte(deliveryBody)))
		if status != http.StatusOK || body != "storage.jobFailed:7" {
			t.Errorf("signed with the %s secret: got %d %q, want 200 %q", name, status, body, "storage.jobFailed:7")
		}
	}
	if status, _ := post(referenceSignature([]byte("whsec-retired"), []byte(deliveryBody))); status != http.StatusUnauthorized {
		t.Errorf("signed with a retired secret: status = %d, want 401", status)
	}
}
