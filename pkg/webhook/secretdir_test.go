package webhook

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSecretDirPlainDirectory(t *testing.T) {
	dir := t.TempDir()
	secrets := NewSecretDir(dir)

	if _, err := secrets.Secrets(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Secrets() of an empty directory: error = %v, want one that wraps fs.ErrNotExist", err)
	}

	writeFile(t, filepath.Join(dir, SecretKeySigningSecret), "current\n")
	assertSecrets(t, secrets, "current")

	writeFile(t, filepath.Join(dir, SecretKeyPreviousSigningSecret), "previous\n")
	assertSecrets(t, secrets, "current", "previous")

	if err := os.Remove(filepath.Join(dir, SecretKeyPreviousSigningSecret)); err != nil {
		t.Fatal(err)
	}
	assertSecrets(t, secrets, "current")
}

func TestSecretDirEmptyPreviousIgnored(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, SecretKeySigningSecret), "current")
	writeFile(t, filepath.Join(dir, SecretKeyPreviousSigningSecret), " \n")

	assertSecrets(t, NewSecretDir(dir), "current")
}

func TestSecretDirEmptyCurrent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, SecretKeySigningSecret), "\n")
	writeFile(t, filepath.Join(dir, SecretKeyPreviousSigningSecret), "previous")

	if _, err := NewSecretDir(dir).Secrets(); !errors.Is(err, ErrEmptySecret) {
		t.Errorf("Secrets() error = %v, want ErrEmptySecret", err)
	}
}

// TestSecretDirKubeletRotation replays the updates of a Secret volume
// through a rotation: the kubelet writes each version into a new directory,
// swaps the "..data" link atomically and removes the old directory.
func TestSecretDirKubeletRotation(t *testing.T) {
	volume := newKubeletVolume(t)
	secrets := NewSecretDir(volume.dir)

	volume.publish(map[string]string{SecretKeySigningSecret: "first", "webhookID": "1"})
	assertSecrets(t, secrets, "first")

	volume.publish(map[string]string{
		SecretKeySigningSecret: "second", SecretKeyPreviousSigningSecret: "first", "webhookID": "2",
	})
	assertSecrets(t, secrets, "second", "first")

	volume.publish(map[string]string{SecretKeySigningSecret: "second", "webhookID": "2"})
	assertSecrets(t, secrets, "second")
}

func TestSecretDirKubeletKeyMissing(t *testing.T) {
	// The operator creates its Secret before the webhook, so the volume may
	// hold a version without signingSecret.
	volume := newKubeletVolume(t)
	volume.publish(map[string]string{})
	secrets := NewSecretDir(volume.dir)

	if _, err := secrets.Secrets(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Secrets() error = %v, want one that wraps fs.ErrNotExist", err)
	}

	volume.publish(map[string]string{SecretKeySigningSecret: "late"})
	assertSecrets(t, secrets, "late")
}

func TestSecretDirKubeletTargetCached(t *testing.T) {
	volume := newKubeletVolume(t)
	target := volume.publish(map[string]string{SecretKeySigningSecret: "aaaa"})
	secrets := NewSecretDir(volume.dir)
	assertSecrets(t, secrets, "aaaa")

	// The kubelet never changes a published version, so its files are not
	// read again while the link points to it.
	writeFile(t, filepath.Join(target, SecretKeySigningSecret), "bbbb")
	assertSecrets(t, secrets, "aaaa")
}

func TestSecretDirKubeletTargetGone(t *testing.T) {
	volume := newKubeletVolume(t)
	target := volume.publish(map[string]string{SecretKeySigningSecret: "first"})
	secrets := NewSecretDir(volume.dir)
	assertSecrets(t, secrets, "first")

	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Secrets(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Secrets() with a dangling link: error = %v, want one that wraps fs.ErrNotExist", err)
	}
}

func TestStaticSecrets(t *testing.T) {
	got, err := StaticSecrets{nil, []byte("current"), []byte(""), []byte("previous")}.Secrets()
	if err != nil {
		t.Fatalf("Secrets() error = %v", err)
	}
	if want := [][]byte{[]byte("current"), []byte("previous")}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}

	if _, err := (StaticSecrets{nil}).Secrets(); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Secrets() of empty secrets: error = %v, want ErrNoSecret", err)
	}
}

func TestSecretFileIsASecretSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), SecretKeySigningSecret)
	writeFile(t, path, "only")
	var source SecretSource = NewSecretFile(path)
	assertSecrets(t, source, "only")
}

// kubeletVolume lays out a directory the way the kubelet's atomic writer
// does for a Secret volume: every key is a link "<key> -> ..data/<key>", and
// "..data" links to a hidden directory with the files of one version.
type kubeletVolume struct {
	t       *testing.T
	dir     string
	version int
	keys    []string
}

func newKubeletVolume(t *testing.T) *kubeletVolume {
	return &kubeletVolume{t: t, dir: t.TempDir()}
}

// publish writes a new version with data, swaps "..data" to it, updates the
// key links and removes the previous version, and returns the new version's
// directory.
func (v *kubeletVolume) publish(data map[string]string) string {
	t := v.t
	t.Helper()
	v.version++
	name := fmt.Sprintf("..2024_01_15_10_35_%02d.%d", v.version, v.version)
	target := filepath.Join(v.dir, name)
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	for key, value := range data {
		writeFile(t, filepath.Join(target, key), value)
		setOldModTime(t, filepath.Join(target, key))
	}

	previous, _ := os.Readlink(filepath.Join(v.dir, kubeletDataLink))
	tmpLink := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(name, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, kubeletDataLink)); err != nil {
		t.Fatal(err)
	}

	for key := range data {
		if !slices.Contains(v.keys, key) {
			if err := os.Symlink(filepath.Join(kubeletDataLink, key), filepath.Join(v.dir, key)); err != nil {
				t.Fatal(err)
			}
			v.keys = append(v.keys, key)
		}
	}
	v.keys = slices.DeleteFunc(v.keys, func(key string) bool {
		if _, ok := data[key]; ok {
			return false
		}
		if err := os.Remove(filepath.Join(v.dir, key)); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if previous != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, previous)); err != nil {
			t.Fatal(err)
		}
	}
	return target
}

func assertSecrets(t *testing.T, source SecretSource, want ...string) {
	t.Helper()
	got, err := source.Secrets()
	if err != nil {
		t.Fatalf("Secrets() error = %v", err)
	}
	gotStrings := make([]string, len(got))
	for i, secret := range got {
		gotStrings[i] = string(secret)
	}
	if !slices.Equal(gotStrings, want) {
		t.Errorf("Secrets() = %q, want %q", gotStrings, want)
	}
}
