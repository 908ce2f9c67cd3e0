package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrEmptySecret is returned by SecretFile.Secret when the file contains
// only white space.
var ErrEmptySecret = errors.New("signing secret file is empty")

// SecretFile reads a signing secret from a file, such as the key
// "signingSecret" of a Secret mounted as a volume at
// /etc/keboola-webhook/signingSecret.
//
// Secret stats the file on each call and reads it again only when the file
// was replaced or changed: a different file (device and inode), size or
// modification time. The kubelet updates a mounted Secret by swapping a
// symbolic link to a new directory, which gives the file a new inode, so a
// rotated secret takes effect within one call after the kubelet writes it.
// A SecretFile is safe for concurrent use.
type SecretFile struct {
	path string

	mu     sync.Mutex
	info   os.FileInfo
	secret []byte
}

// NewSecretFile returns a SecretFile for path. It does not read the file,
// so the file may appear later.
func NewSecretFile(path string) *SecretFile {
	return &SecretFile{path: path}
}

// Path returns the path of the file.
func (f *SecretFile) Path() string {
	return f.path
}

// Secret returns the secret: the content of the file without leading and
// trailing white space. It returns an error when the file cannot be read,
// and ErrEmptySecret when it contains only white space. The returned slice
// must not be modified.
func (f *SecretFile) Secret() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	info, err := os.Stat(f.path)
	if err != nil {
		f.info, f.secret = nil, nil
		return nil, fmt.Errorf("failed to read the signing secret: %w", err)
	}
	if f.info != nil && unchanged(f.info, info) {
		return f.secret, nil
	}

	data, err := os.ReadFile(f.path)
	if err != nil {
		f.info, f.secret = nil, nil
		return nil, fmt.Errorf("failed to read the signing secret: %w", err)
	}
	secret := bytes.TrimSpace(data)
	if len(secret) == 0 {
		f.info, f.secret = nil, nil
		return nil, fmt.Errorf("%w: %s", ErrEmptySecret, f.path)
	}

	f.info, f.secret = info, secret
	return secret, nil
}

// unchanged reports whether two results of os.Stat describe the same,
// unmodified file.
func unchanged(previous, current os.FileInfo) bool {
	return os.SameFile(previous, current) &&
		previous.Size() == current.Size() &&
		previous.ModTime().Equal(current.ModTime()) &&
		// A file written twice within the file system's timestamp
		// resolution keeps its modification time, so a file modified
		// very recently is always read again.
		time.Since(current.ModTime()) > 2*time.Second
}

// Secrets returns the secret of the file as the only accepted secret, so
// that a SecretFile is a SecretSource.
func (f *SecretFile) Secrets() ([][]byte, error) {
	secret, err := f.Secret()
	if err != nil {
		return nil, err
	}
	return [][]byte{secret}, nil
}
