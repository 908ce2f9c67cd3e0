package localenv

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
