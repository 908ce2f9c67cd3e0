package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Keys of the Secret that the keboola-operator writes for a KeboolaWebhook.
// A Secret mounted as a volume has one file per key, named after the key.
const (
	// SecretKeySigningSecret is the key of the current signing secret.
	SecretKeySigningSecret = "signingSecret"

	// SecretKeyPreviousSigningSecret is the key of the signing secret of the
	// webhook that a rotation replaced. It is present only while both
	// webhooks exist, from the moment the new secret is published until the
	// operator deletes the old webhook after its grace period.
	SecretKeyPreviousSigningSecret = "previousSigningSecret"
)

// ErrNoSecret is returned by a SecretSource that has no secret to accept.
var ErrNoSecret = errors.New("no signing secret configured")

// SecretSource provides the signing secrets that a receiver accepts.
type SecretSource interface {
	// Secrets returns the accepted secrets, the current one first, each
	// non-empty. It returns an error when there is no current secret. The
	// caller must not modify the returned slices.
	Secrets() ([][]byte, error)
}

// StaticSecrets is a SecretSource with a fixed list of secrets, for tests
// and for receivers that get their secrets from environment variables.
// Empty entries are skipped.
type StaticSecrets [][]byte

// Secrets returns the non-empty secrets of s, or ErrNoSecret when there is
// none.
func (s StaticSecrets) Secrets() ([][]byte, error) {
	secrets := make([][]byte, 0, len(s))
	for _, secret := range s {
		if len(secret) > 0 {
			secrets = append(secrets, secret)
		}
	}
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	return secrets, nil
}

// kubeletDataLink is the symbolic link through which the kubelet publishes
// the content of a Secret volume. It points to a hidden directory with one
// file per key, and every key in the volume is a link through it.
const kubeletDataLink = "..data"

// maxSnapshotAttempts bounds how often SecretDir reads the link again when
// the kubelet removed its target between the read of the link and the read
// of the files.
const maxSnapshotAttempts = 3

// SecretDir reads the signing secrets from a directory in which a Secret of
// the keboola-operator is mounted as a volume, such as
// /etc/keboola-webhook. It accepts the current secret (the file
// signingSecret, which must exist) and, during a rotation, the previous one
// (the file previousSigningSecret, which may be absent).
//
// The kubelet updates a Secret volume atomically: it writes the new content
// into a new hidden directory and then renames the symbolic link "..data" to
// point to it. SecretDir reads the link on every call and reads both files
// through the same target. So it never combines the files of two versions,
// and it returns the new secrets from the first call after the kubelet
// swaps the link.
// The files of one target never change, so they are read only once per
// target. A directory without "..data", such as one written by hand, is read
// file by file, with the rules of SecretFile.
//
// Mount the whole Secret, not single keys with subPath: the kubelet never
// updates a subPath mount. A SecretDir is safe for concurrent use.
type SecretDir struct {
	dir string

	mu sync.Mutex
	// target and targetInfo identify the kubelet directory that secrets
	// were read from.
	target     string
	targetInfo os.FileInfo
	secrets    [][]byte
	// current and previous read a directory without the kubelet's link.
	current  *SecretFile
	previous *SecretFile
}

// NewSecretDir returns a SecretDir for dir. It does not read the directory,
// so the directory and its files may appear later.
func NewSecretDir(dir string) *SecretDir {
	return &SecretDir{
		dir:      dir,
		current:  NewSecretFile(filepath.Join(dir, SecretKeySigningSecret)),
		previous: NewSecretFile(filepath.Join(dir, SecretKeyPreviousSigningSecret)),
	}
}

// Dir returns the directory.
func (d *SecretDir) Dir() string {
	return d.dir
}

// Secrets returns the current signing secret and, when the file
// previousSigningSecret exists and is not empty, the previous one after it.
// Leading and trailing white space is removed from both. It returns an
// error that wraps fs.ErrNotExist when signingSecret is missing, and
// ErrEmptySecret when it contains only white space.
func (d *SecretDir) Secrets() ([][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	link := filepath.Join(d.dir, kubeletDataLink)
	target, err := os.Readlink(link)
	if err != nil {
		d.target, d.targetInfo, d.secrets = "", nil, nil
		return d.readFiles()
	}
	for attempt := 1; ; attempt++ {
		secrets, err := d.readTarget(d.resolve(target))
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == maxSnapshotAttempts {
			return secrets, err
		}
		// The kubelet may have swapped the link and removed the old target
		// after the link was read. A missing file in a target that is still
		// linked is a real error.
		next, linkErr := os.Readlink(link)
		if linkErr != nil || next == target {
			return nil, err
		}
		target = next
	}
}

// resolve returns the path of a target of the kubelet's link.
func (d *SecretDir) resolve(target string) string {
	if filepath.IsAbs(target) {
		return target
	}
	return filepath.Join(d.dir, target)
}

// readTarget returns the secrets in the kubelet directory target, from the
// cache when target is the directory read last.
func (d *SecretDir) readTarget(target string) ([][]byte, error) {
	info, err := os.Stat(target)
	if err != nil {
		return nil, fmt.Errorf("failed to read the signing secrets: %w", err)
	}
	if d.secrets != nil && d.target == target && os.SameFile(d.targetInfo, info) {
		return d.secrets, nil
	}

	current, err := readSecret(filepath.Join(target, SecretKeySigningSecret))
	if err != nil {
		return nil, err
	}
	secrets := [][]byte{current}
	previous, err := readSecret(filepath.Join(target, SecretKeyPreviousSigningSecret))
	switch {
	case err == nil:
		secrets = append(secrets, previous)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrEmptySecret):
	default:
		return nil, err
	}

	d.target, d.targetInfo, d.secrets = target, info, secrets
	return secrets, nil
}

// readFiles returns the secrets of a directory that the kubelet does not
// manage.
func (d *SecretDir) readFiles() ([][]byte, error) {
	current, err := d.current.Secret()
	if err != nil {
		return nil, err
	}
	previous, err := d.previous.Secret()
	switch {
	case err == nil:
		return [][]byte{current, previous}, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrEmptySecret):
		return [][]byte{current}, nil
	}
	return nil, err
}

// readSecret returns the content of the file at path without leading and
// trailing white space.
func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the signing secret: %w", err)
	}
	secret := bytes.TrimSpace(data)
	if len(secret) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrEmptySecret, path)
	}
	return secret, nil
}
