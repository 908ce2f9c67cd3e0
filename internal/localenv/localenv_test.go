package localenv

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keboola/keboola-operator/pkg/webhook"
)

// newTestEnv returns an Env with empty stand-ins for the control plane
// binaries, enough for everything but StartControlPlane.
func newTestEnv(t *testing.T) *Env {
	t.Helper()
	assets := t.TempDir()
	for _, name := range controlPlaneBinaries {
		if err := os.WriteFile(filepath.Join(assets, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env, err := New(Options{AssetsDir: assets, ModuleRoot: t.TempDir(), Name: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Close() })
	return env
}

func TestNewMissingAssets(t *testing.T) {
	_, err := New(Options{AssetsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make controlplane") {
		t.Errorf("New() error = %v, want one that says to run make controlplane", err)
	}
}

func TestCloseRemovesWorkDirOnce(t *testing.T) {
	env := newTestEnv(t)
	if err := env.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Errorf("work directory still exists after Close: %v", err)
	}
	if err := env.Close(); err != nil {
		t.Errorf("second Close() error = %v", err)
	}
}

func TestCloseKeepsLogs(t *testing.T) {
	env := newTestEnv(t)
	env.opts.KeepLogs = true
	t.Cleanup(func() { _ = os.RemoveAll(env.Dir) })
	if err := os.WriteFile(env.LogPath("operator"), []byte("line\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := env.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if _, err := os.Stat(env.LogPath("operator")); err != nil {
		t.Errorf("log file removed despite KeepLogs: %v", err)
	}
	if _, err := os.Stat(env.BinDir); !os.IsNotExist(err) {
		t.Errorf("binary directory still exists after Close: %v", err)
	}
}

func TestProcessStopsOnSIGTERM(t *testing.T) {
	env := newTestEnv(t)
	p, err := env.Start(ProcessSpec{Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}

	waitForLine(t, p.LogPath, "started")

	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Stop() took %s, want well under the grace period", elapsed)
	}
	if p.ExitError() == nil {
		t.Error("ExitError() = nil after Stop, want the exit status")
	}
}

// waitForLine waits up to 10 seconds for a line of the file at path that
// contains substring.
func waitForLine(t *testing.T, path, substring string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := FindLine(path, substring); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no line with %q in %s within 10s:\n%s", substring, path, Tail(path, 10))
}

func TestProcessKilledAfterGracePeriod(t *testing.T) {
	env := newTestEnv(t)
	// The shell and its child sleep both ignore SIGTERM.
	p, err := env.Start(ProcessSpec{
		Name:            "stubborn",
		Path:            "/bin/sh",
		Args:            []string{"-c", `trap "" TERM; echo trapped; sleep 60; sleep 60`},
		StopGracePeriod: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, p.LogPath, "trapped")

	err = p.Stop()
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Errorf("Stop() error = %v, want one that says the process was killed", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done() is open after Stop returned")
	}
}

func TestProcessKillIgnoresTrap(t *testing.T) {
	env := newTestEnv(t)
	// SIGKILL cannot be trapped, so the process ends at once.
	p, err := env.Start(ProcessSpec{
		Name: "victim",
		Path: "/bin/sh",
		Args: []string{"-c", `trap "" TERM KILL; echo trapped; sleep 60`},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, p.LogPath, "trapped")

	start := time.Now()
	p.Kill()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Kill() took %s, want well under the 10s grace period of Stop", elapsed)
	}
	if err := p.ExitError(); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("ExitError() = %v, want one that names the signal SIGKILL", err)
	}
	p.Kill() // a second Kill of an exited process returns at once
}

func TestCloseStopsProcesses(t *testing.T) {
	env := newTestEnv(t)
	p, err := env.Start(ProcessSpec{Name: "sleeper", Path: "/bin/sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("process still runs after Close")
	}
}

func TestWaitHTTPProcessExited(t *testing.T) {
	env := newTestEnv(t)
	p, err := env.Start(ProcessSpec{Name: "quitter", Path: "/bin/sh", Args: []string{"-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	address, err := FreeAddress()
	if err != nil {
		t.Fatal(err)
	}

	err = WaitHTTP(context.Background(), "http://"+address+"/healthz", 30*time.Second, p)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("WaitHTTP() error = %v, want one with the exit status", err)
	}
}

func TestWaitHTTPRejectsNonLoopback(t *testing.T) {
	err := WaitHTTP(context.Background(), "http://192.0.2.1/healthz", time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("WaitHTTP() error = %v, want a rejection of the non-loopback address", err)
	}
}

func TestCheckPortFreeInUse(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	address := listener.Addr().String()

	err = CheckPortFree(address, "stop the other demo")
	want := "port " + address + " is in use; stop the other demo"
	if err == nil || err.Error() != want {
		t.Errorf("CheckPortFree() error = %v, want %q", err, want)
	}
}

func TestDecodeObjectsKeepsIntegers(t *testing.T) {
	objects, err := decodeObjects("---\napiVersion: keboola.dev/v1alpha1\nkind: KeboolaProject\nmetadata:\n  name: demo\nspec:\n  expectedProjectID: 1234\n---\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 {
		t.Fatalf("decodeObjects() returned %d objects, want 1", len(objects))
	}
	id, found, err := unstructured.NestedInt64(objects[0].Object, "spec", "expectedProjectID")
	if err != nil || !found || id != 1234 {
		t.Errorf("spec.expectedProjectID = %d (found %v, error %v), want int64 1234", id, found, err)
	}
}

func TestSetEndpoints(t *testing.T) {
	objects, err := decodeObjects(`
apiVersion: keboola.dev/v1alpha1
kind: KeboolaProject
metadata: {name: demo}
spec: {stackURL: "http://127.0.0.1:8765"}
---
apiVersion: keboola.dev/v1alpha1
kind: KeboolaWebhook
metadata: {name: job-events}
spec: {url: "http://127.0.0.1:8766/webhook?x=1"}
`)
	if err != nil {
		t.Fatal(err)
	}

	if err := SetEndpoints(objects, "http://127.0.0.1:40001", "127.0.0.1:40002"); err != nil {
		t.Fatal(err)
	}
	stackURL, _, _ := unstructured.NestedString(objects[0].Object, "spec", "stackURL")
	if stackURL != "http://127.0.0.1:40001" {
		t.Errorf("spec.stackURL = %q, want %q", stackURL, "http://127.0.0.1:40001")
	}
	webhookURL, _, _ := unstructured.NestedString(objects[1].Object, "spec", "url")
	if webhookURL != "http://127.0.0.1:40002/webhook?x=1" {
		t.Errorf("spec.url = %q, want %q", webhookURL, "http://127.0.0.1:40002/webhook?x=1")
	}
}

func TestTailLastLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("1\n2\n3\n4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 2); got != "3\n4" {
		t.Errorf("Tail() = %q, want %q", got, "3\n4")
	}
}

func TestSetWebhookEvents(t *testing.T) {
	objects, err := decodeObjects(`
apiVersion: keboola.dev/v1alpha1
kind: KeboolaProject
metadata: {name: demo}
spec: {stackURL: "http://127.0.0.1:8765"}
---
apiVersion: keboola.dev/v1alpha1
kind: KeboolaWebhook
metadata: {name: job-events}
spec:
  url: "http://127.0.0.1:8766/webhook"
  events: [storage.jobFailed, storage.jobSucceeded]
`)
	if err != nil {
		t.Fatal(err)
	}
	events := []string{"job-succeeded", "job-failed"}

	if err := SetWebhookEvents(objects, events); err != nil {
		t.Fatal(err)
	}
	got, _, err := unstructured.NestedStringSlice(objects[1].Object, "spec", "events")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"job-succeeded", "job-failed"}) {
		t.Errorf("spec.events = %q, want %q", got, []string{"job-succeeded", "job-failed"})
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(objects[0].Object, "spec", "events"); found {
		t.Error("SetWebhookEvents added spec.events to the KeboolaProject")
	}
	webhookURL, _, _ := unstructured.NestedString(objects[1].Object, "spec", "url")
	if webhookURL != "http://127.0.0.1:8766/webhook" {
		t.Errorf("spec.url = %q, want it unchanged", webhookURL)
	}

	events[0] = "changed"
	got, _, _ = unstructured.NestedStringSlice(objects[1].Object, "spec", "events")
	if got[0] != "job-succeeded" {
		t.Errorf("spec.events[0] = %q after the caller changed its slice, want a copy", got[0])
	}
}

func TestSetWebhookEventsErrors(t *testing.T) {
	projectOnly, err := decodeObjects("apiVersion: keboola.dev/v1alpha1\nkind: KeboolaProject\nmetadata: {name: demo}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetWebhookEvents(projectOnly, []string{"job-failed"}); err == nil || !strings.Contains(err.Error(), "no KeboolaWebhook") {
		t.Errorf("SetWebhookEvents() without a KeboolaWebhook error = %v, want one that says so", err)
	}

	hook, err := decodeObjects("apiVersion: keboola.dev/v1alpha1\nkind: KeboolaWebhook\nmetadata: {name: job-events}\nspec: {events: [storage.jobFailed]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetWebhookEvents(hook, nil); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Errorf("SetWebhookEvents() with no events error = %v, want one that needs at least one event", err)
	}
	got, _, _ := unstructured.NestedStringSlice(hook[0].Object, "spec", "events")
	if !slices.Equal(got, []string{"storage.jobFailed"}) {
		t.Errorf("spec.events = %q after a failed call, want it unchanged", got)
	}
}

func TestPostDeliverySendsSignature(t *testing.T) {
	var signatures []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signatures = r.Header.Values(webhook.SignatureHeader)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()

	status, err := PostDelivery(context.Background(), receiver.URL+"/webhook", []byte(`{}`), "sha256=abc")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusAccepted {
		t.Errorf("PostDelivery() status = %d, want %d", status, http.StatusAccepted)
	}
	if !slices.Equal(signatures, []string{"sha256=abc"}) {
		t.Errorf("X-Kbc-Signature = %q, want [sha256=abc]", signatures)
	}
}

func TestPostUnsignedDeliveryNoSignature(t *testing.T) {
	var (
		signed bool
		secret string
		body   string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, signed = r.Header[webhook.SignatureHeader]
		secret = r.URL.Query().Get("kbc_secret")
		data, _ := io.ReadAll(r.Body)
		body = string(data)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer receiver.Close()

	status, err := PostUnsignedDelivery(context.Background(), receiver.URL+"/webhook?kbc_secret=abc", []byte(`{"event":"job-failed"}`))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("PostUnsignedDelivery() status = %d, want %d", status, http.StatusUnauthorized)
	}
	if signed {
		t.Error("the request has an X-Kbc-Signature header, want none")
	}
	if secret != "abc" {
		t.Errorf("query parameter kbc_secret = %q, want %q", secret, "abc")
	}
	if body != `{"event":"job-failed"}` {
		t.Errorf("body = %q, want the body that was passed", body)
	}
}

func TestPostDeliveryErrorHidesQuery(t *testing.T) {
	address, err := FreeAddress()
	if err != nil {
		t.Fatal(err)
	}

	// Nothing listens on address, so the request fails.
	_, err = PostUnsignedDelivery(context.Background(), "http://"+address+"/webhook?kbc_secret=s3cr3t", []byte(`{}`))
	if err == nil {
		t.Fatal("PostUnsignedDelivery() to a closed port returned no error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q contains the query parameter kbc_secret", err)
	}
	if !strings.Contains(err.Error(), address+"/webhook") {
		t.Errorf("error %q does not name the receiver", err)
	}
}

func TestCheckLoopbackURLHidesQuery(t *testing.T) {
	err := checkLoopbackURL("http://192.0.2.1/webhook?kbc_secret=s3cr3t")
	if err == nil {
		t.Fatal("checkLoopbackURL() accepted a non-loopback address")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q contains the query parameter kbc_secret", err)
	}

	err = checkLoopbackURL("http://127.0.0.1:8766/webhook?kbc_secret=s3cr3t&x=%zz\x7f")
	if err == nil {
		t.Fatal("checkLoopbackURL() accepted a URL with a control character")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q of an invalid URL contains the query parameter kbc_secret", err)
	}
}
