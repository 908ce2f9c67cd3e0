package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// Tokens and projects that most tests use.
const (
	tokenA     = "token-a-3f9d1c7e"
	tokenB     = "token-b-88a2e410"
	projectA   = int64(101)
	projectB   = int64(202)
	tokenIDA   = "5001"
	tokenIDB   = "5002"
	jobFailed  = "storage.jobFailed"
	jobSuccess = "storage.jobSucceeded"
)

// startServer starts an emulator with two projects, one webhook-managing
// token for each, and stops it when the test ends.
func startServer(t *testing.T, opts emulator.Options) *emulator.Server {
	t.Helper()
	server := emulator.New(opts)
	if err := server.Start(); err != nil {
		t.Fatalf("Start() failed: %v", err)
	}
	t.Cleanup(server.Close)

	server.AddProject(emulator.Project{ID: projectA, Name: "Project A", Region: "eu-central-1"})
	server.AddProject(emulator.Project{ID: projectB, Name: "Project B", Region: "us-east-1"})
	server.AddToken(tokenA, emulator.Token{ID: tokenIDA, Description: "operator A", ProjectID: projectA, CanManageWebhooks: true})
	server.AddToken(tokenB, emulator.Token{ID: tokenIDB, Description: "operator B", ProjectID: projectB, CanManageWebhooks: true})
	return server
}

// response is a received response with its whole body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error body of the Storage API.
type apiError struct {
	Error       string `json:"error"`
	Code        string `json:"code"`
	ExceptionID string `json:"exceptionId"`
}

// webhook is a webhook as the Storage API sends it.
type webhook struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	CreatedTime string   `json:"createdTime"`
	Secret      string   `json:"secret"`
}

// call sends a request with token (none when empty) and a JSON body (none
// when empty) and fails the test on a transport error.
func call(t *testing.T, server *emulator.Server, method, path, token, body string) response {
	t.Helper()
	resp, err := send(http.DefaultClient, server, method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s failed: %v", method, path, err)
	}
	return resp
}

// send is call that returns the transport error, for tests of faults.
func send(client *http.Client, server *emulator.Server, method, path, token, body string) (response, error) {
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, server.URL()+path, reader)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("X-StorageApi-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// freshClient returns a client that opens a new connection for every
// request, so that http.Transport never replays a request whose connection
// the emulator dropped.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

func decode[T any](t *testing.T, resp response) T {
	t.Helper()
	var value T
	if err := json.Unmarshal(resp.body, &value); err != nil {
		t.Fatalf("failed to decode %q: %v", resp.body, err)
	}
	return value
}

// expectError checks a Storage API error response.
func expectError(t *testing.T, resp response, status int, code string) apiError {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status = %d, expected %d; body %s", resp.status, status, resp.body)
	}
	if contentType := resp.header.Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", contentType)
	}
	body := decode[apiError](t, resp)
	if body.Code != code {
		t.Errorf("code = %q, expected %q; body %s", body.Code, code, resp.body)
	}
	if body.Error == "" {
		t.Errorf("error message is empty; body %s", resp.body)
	}
	if !strings.HasPrefix(body.ExceptionID, "exception-") {
		t.Errorf("exceptionId = %q, expected an id starting with exception-", body.ExceptionID)
	}
	return body
}

// createWebhook creates a webhook through the Storage API and returns the
// create response.
func createWebhook(t *testing.T, server *emulator.Server, token, name, url string, events ...string) webhook {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "url": url, "events": events})
	if err != nil {
		t.Fatal(err)
	}
	resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", token, string(body))
	if resp.status != http.StatusCreated {
		t.Fatalf("create status = %d, expected 201; body %s", resp.status, resp.body)
	}
	return decode[webhook](t, resp)
}

// receiver is a webhook receiver on loopback that records each request and
// responds with the statuses in replies in turn, then with 200.
type receiver struct {
	mu       sync.Mutex
	requests []receivedRequest
	replies  []int
	delay    time.Duration
}

type receivedRequest struct {
	time   time.Time
	header http.Header
	body   []byte
	path   string
	query  string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, receivedRequest{
		time: time.Now(), header: req.Header.Clone(), body: body, path: req.URL.Path, query: req.URL.RawQuery,
	})
	status := http.StatusOK
	if len(r.replies) > 0 {
		status = r.replies[0]
		r.replies = r.replies[1:]
	}
	delay := r.delay
	r.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader([]byte("ok")))
}

func (r *receiver) received() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedRequest(nil), r.requests...)
}
