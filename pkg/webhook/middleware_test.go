package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
		query         string
		wantStatus    int
		wantErr       error
		wantBodyShown bool
		wantProof     Proof
		wantIndex     int
	}{
		"signed with the current secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody,
			signature:  referenceSignature(current, []byte(deliveryBody)),
			wantStatus: http.StatusNoContent, wantProof: ProofSignature, wantIndex: 0,
		},
		"signed with the previous secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody,
			signature:  referenceSignature(previous, []byte(deliveryBody)),
			wantStatus: http.StatusNoContent, wantProof: ProofSignature, wantIndex: 1,
		},
		"URL secret is the current secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody, query: "kbc_secret=" + string(current),
			wantStatus: http.StatusNoContent, wantProof: ProofURLSecret, wantIndex: 0,
		},
		"URL secret is the previous secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody, query: "kbc_secret=" + string(previous),
			wantStatus: http.StatusNoContent, wantProof: ProofURLSecret, wantIndex: 1,
		},
		"wrong URL secret": {
			secrets: StaticSecrets{current, previous}, body: deliveryBody, query: "kbc_secret=whsec-other",
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidURLSecret, wantBodyShown: true,
		},
		"repeated URL secret": {
			secrets: StaticSecrets{current}, body: deliveryBody,
			query:      "kbc_secret=" + string(current) + "&kbc_secret=" + string(current),
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidURLSecret, wantBodyShown: true,
		},
		"empty URL secret": {
			secrets: StaticSecrets{current}, body: deliveryBody, query: "kbc_secret=",
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidURLSecret, wantBodyShown: true,
		},
		"wrong signature and right URL secret": {
			secrets: StaticSecrets{current}, body: deliveryBody, query: "kbc_secret=" + string(current),
			signature:  referenceSignature([]byte("whsec-other"), []byte(deliveryBody)),
			wantStatus: http.StatusUnauthorized, wantErr: ErrInvalidSignature, wantBodyShown: true,
		},
		"right signature and wrong URL secret": {
			secrets: StaticSecrets{current}, body: deliveryBody, query: "kbc_secret=whsec-other",
			signature:  referenceSignature(current, []byte(deliveryBody)),
			wantStatus: http.StatusNoContent, wantProof: ProofSignature, wantIndex: 0,
		},
		"URL secret and no secret available": {
			secrets: StaticSecrets{}, body: deliveryBody, query: "kbc_secret=" + string(current),
			wantStatus: http.StatusServiceUnavailable, wantErr: ErrSecretUnavailable,
		},
		"unsigned and no secret available": {
			secrets: StaticSecrets{}, body: deliveryBody,
			wantStatus: http.StatusUnauthorized, wantErr: ErrMissingSignature, wantBodyShown: true,
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
			var rejectedURIs []string
			m := &Middleware{Secrets: tc.secrets, OnReject: func(r *http.Request, rejection Rejection) {
				rejections = append(rejections, rejection)
				rejectedURIs = append(rejectedURIs, r.RequestURI)
			}}

			target := "/webhook"
			if tc.query != "" {
				target += "?" + tc.query
			}
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(tc.body))
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
				if gotDelivery.Proof != tc.wantProof {
					t.Errorf("Delivery.Proof = %q, want %q", gotDelivery.Proof, tc.wantProof)
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
			if rejectedURIs[0] != "/webhook" {
				t.Errorf("OnReject got RequestURI %q, want %q without %s", rejectedURIs[0], "/webhook", SecretQueryParameter)
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

func TestMiddlewareRemovesURLSecret(t *testing.T) {
	secret := []byte(urlSecretCurrent)
	tests := map[string]struct {
		target    string
		signature string
		wantURI   string
	}{
		"URL secret only": {
			target:  "/webhook?tenant=a&kbc_secret=" + urlSecretCurrent + "&b=x%20y",
			wantURI: "/webhook?tenant=a&b=x%20y",
		},
		"URL secret is the only parameter": {
			target:  "/webhook?kbc_secret=" + urlSecretCurrent,
			wantURI: "/webhook",
		},
		"signature and URL secret": {
			target:    "/webhook?kbc_secret=" + urlSecretCurrent + "&tenant=a",
			signature: referenceSignature(secret, []byte(deliveryBody)),
			wantURI:   "/webhook?tenant=a",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var gotURI, gotRawQuery, gotURL, gotFormValue string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotURI = r.RequestURI
				gotRawQuery = r.URL.RawQuery
				gotURL = r.URL.String()
				gotFormValue = r.FormValue(SecretQueryParameter)
				w.WriteHeader(http.StatusNoContent)
			})
			req := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader(deliveryBody))
			if tc.signature != "" {
				req.Header.Set(SignatureHeader, tc.signature)
			}
			rec := httptest.NewRecorder()

			Handler(StaticSecrets{secret}, next).ServeHTTP(rec, req)

			if rec.Code != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", rec.Code)
			}
			if gotURI != tc.wantURI {
				t.Errorf("RequestURI in the next handler = %q, want %q", gotURI, tc.wantURI)
			}
			_, wantRawQuery, _ := strings.Cut(tc.wantURI, "?")
			if gotRawQuery != wantRawQuery {
				t.Errorf("URL.RawQuery in the next handler = %q, want %q", gotRawQuery, wantRawQuery)
			}
			if strings.Contains(gotURL, urlSecretCurrent) {
				t.Errorf("URL in the next handler = %q, want it without the secret", gotURL)
			}
			if gotFormValue != "" {
				t.Errorf("FormValue(%q) in the next handler = %q, want empty", SecretQueryParameter, gotFormValue)
			}
			if req.RequestURI != tc.target {
				t.Errorf("RequestURI of the caller's request = %q, want it unchanged: %q", req.RequestURI, tc.target)
			}
		})
	}
}

func TestMiddlewareRemovesURLSecretFromParsedForm(t *testing.T) {
	var gotForm url.Values
	handler := Handler(StaticSecrets{[]byte(urlSecretCurrent)}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotForm = r.Form
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodPost, "/webhook?tenant=a&kbc_secret="+urlSecretCurrent, strings.NewReader(deliveryBody))
	// An outer handler parsed the form before the Middleware ran.
	if err := req.ParseForm(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()

	handler.ServeHTTP(rec, req)

	if rec.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", rec.Code)
	}
	if gotForm.Has(SecretQueryParameter) {
		t.Errorf("Form in the next handler = %v, want no %s", gotForm, SecretQueryParameter)
	}
	if gotForm.Get("tenant") != "a" {
		t.Errorf("Form in the next handler = %v, want tenant=a", gotForm)
	}
	if !req.Form.Has(SecretQueryParameter) {
		t.Error("the Form of the caller's request was modified")
	}
}

// TestMiddlewareURLSecretOverHTTP sends deliveries with the secret in the
// URL through a real HTTP server and client, as the Notification service
// does.
func TestMiddlewareURLSecretOverHTTP(t *testing.T) {
	current := []byte(urlSecretCurrent)
	previous := []byte(urlSecretPrevious)
	server := httptest.NewServer(Handler(StaticSecrets{current, previous},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			delivery, _ := DeliveryFromContext(r.Context())
			_, _ = io.WriteString(w, string(delivery.Proof)+" "+r.RequestURI)
		})))
	defer server.Close()

	post := func(query string) (int, string) {
		t.Helper()
		resp, err := server.Client().Post(server.URL+"/webhook?"+query, "application/json", strings.NewReader(deliveryBody))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	for name, secret := range map[string]string{"current": urlSecretCurrent, "previous": urlSecretPrevious} {
		status, body := post("tenant=a&" + url.Values{SecretQueryParameter: {secret}}.Encode())
		if want := "url-secret /webhook?tenant=a"; status != http.StatusOK || body != want {
			t.Errorf("URL secret is the %s secret: got %d %q, want 200 %q", name, status, body, want)
		}
	}
	if status, _ := post("kbc_secret=" + urlSecretOther); status != http.StatusUnauthorized {
		t.Errorf("URL secret is a retired secret: status = %d, want 401", status)
	}
	if status, _ := post("kbc_secret=" + urlSecretCurrent + "&kbc_secret=" + urlSecretCurrent); status != http.StatusUnauthorized {
		t.Errorf("repeated URL secret: status = %d, want 401", status)
	}
}
