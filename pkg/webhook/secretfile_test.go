package webhook

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSecretFileTrimsWhiteSpace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signingSecret")
	writeFile(t, path, "  s3cret\n")

	got, err := NewSecretFile(path).Secret()
	if err != nil {
		t.Fatalf("Secret() error = %v", err)
	}
	if string(got) != "s3cret" {
		t.Errorf("Secret() = %q, want %q", got, "s3cret")
	}
}

func TestSecretFileMissingFile(t *testing.T) {
	_, err := NewSecretFile(filepath.Join(t.TempDir(), "missing")).Secret()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Secret() error = %v, want one that wraps fs.ErrNotExist", err)
	}
}

func TestSecretFileEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signingSecret")
	writeFile(t, path, " \n")

	_, err := NewSecretFile(path).Secret()
	if !errors.Is(err, ErrEmptySecret) {
		t.Errorf("Secret() error = %v, want ErrEmptySecret", err)
	}
}

func TestSecretFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signingSecret")
	secrets := NewSecretFile(path)
	if _, err := secrets.Secret(); err == nil {
		t.Fatal("Secret() of a missing file returned no error")
	}

	writeFile(t, path, "late")
	got, err := secrets.Secret()
	if err != nil {
		t.Fatalf("Secret() error = %v", err)
	}
	if string(got) != "late" {
		t.Errorf("Secret() = %q, want %q", got, "late")
	}
}

func TestSecretFileInPlaceRewrite(t *testing.T) {
	// The same size and, on a coarse clock, the same modification time:
	// only the recent-modification rule makes the new content visible.
	path := filepath.Join(t.TempDir(), "signingSecret")
	writeFile(t, path, "aaaa")
	secrets := NewSecretFile(path)
	if _, err := secrets.Secret(); err != nil {
		t.Fatalf("Secret() error = %v", err)
	}

	writeFile(t, path, "bbbb")
	got, err := secrets.Secret()
	if err != nil {
		t.Fatalf("Secret() error = %v", err)
	}
	if string(got) != "bbbb" {
		t.Errorf("Secret() after rewrite = %q, want %q", got, "bbbb")
	}
}

// TestSecretFileKubeletRotation replays how the kubelet updates a Secret
// volume: the key is a symbolic link through "..data", which is swapped
// atomically to a new directory.
func TestSecretFileKubeletRotation(t *testing.T) {
	dir := t.TempDir()
	writeVersion := func(version, secret string) {
		versionDir := filepath.Join(dir, version)
		if err := os.Mkdir(versionDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(versionDir, "signingSecret"), secret)
		// Both versions get the same old modification time and size, so
		// only the new inode distinguishes them.
		setOldModTime(t, filepath.Join(versionDir, "signingSecret"))
		tmpLink := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version, tmpLink); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..2024_01_15_10_35_01.1", "first")
	if err := os.Symlink(filepath.Join("..data", "signingSecret"), filepath.Join(dir, "signingSecret")); err != nil {
		t.Fatal(err)
	}

	secrets := NewSecretFile(filepath.Join(dir, "signingSecret"))
	assertSecret(t, secrets, "first")

	writeVersion("..2024_01_15_10_36_01.2", "secnd")
	assertSecret(t, secrets, "secnd")
}

func TestSecretFileCachesUnchangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signingSecret")
	writeFile(t, path, "aaaa")
	setOldModTime(t, path)
	secrets := NewSecretFile(path)
	assertSecret(t, secrets, "aaaa")

	// An in-place rewrite that keeps the inode, the size and the old
	// modification time is indistinguishable by stat, so the cached
	// secret is returned. Writers replace the file instead.
	writeFile(t, path, "bbbb")
	setOldModTime(t, path)
	assertSecret(t, secrets, "aaaa")
}

func assertSecret(t *testing.T, secrets *SecretFile, want string) {
	t.Helper()
	got, err := secrets.Secret()
	if err != nil {
		t.Fatalf("Secret() error = %v", err)
	}
	if string(got) != want {
		t.Errorf("Secret() = %q, want %q", got, want)
	}
}

// setOldModTime sets the modification time of path to a fixed time long
// ago.
func setOldModTime(t *testing.T, path string) {
	t.Helper()
	old := time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
