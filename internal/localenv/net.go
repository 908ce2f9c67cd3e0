package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keboola/keboola-operator/pkg/webhook"
)

// CheckPortFree returns an error that names address and ends with hint
// when something already listens on address, such as "127.0.0.1:8765".
func CheckPortFree(address, hint string) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("port %s is in use; %s", address, hint)
	}
	return listener.Close()
}

// FreeAddress returns "127.0.0.1:<port>" with a port that was free a moment
// ago. Another process may take it before the caller listens on it, which
// is unlikely among ephemeral ports.
func FreeAddress() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free loopback port: %w", err)
	}
	address := listener.Addr().String()
	if err := listener.Close(); err != nil {
		return "", fmt.Errorf("failed to release the loopback port %s: %w", address, err)
	}
	return address, nil
}

// WaitHTTP polls rawURL with GET until it responds with 200, timeout passes,
// ctx ends, or process exits (process may be nil). rawURL must point at a
// loopback address.
func WaitHTTP(ctx context.Context, rawURL string, timeout time.Duration, process *Process) error {
	if err := checkLoopbackURL(rawURL); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		lastErr = getOK(ctx, client, rawURL)
		if lastErr == nil {
			return nil
		}

		var exited <-chan struct{}
		if process != nil {
			exited = process.Done()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not respond with 200 within %s: %w", rawURL, timeout, lastErr)
			}
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("%w before %s responded: %w", errProcessExited, rawURL, process.ExitError())
		case <-ticker.C:
		}
	}
}

func getOK(ctx context.Context, client *http.Client, rawURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// checkLoopbackURL rejects a URL whose host is not a loopback IP address or
// "localhost", so that the helpers never send traffic off the machine. Its
// errors leave out the query string, which may contain a secret.
func checkLoopbackURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", withoutQuery(rawURL), unwrapURLError(err))
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("request to %q rejected: localenv sends requests only to loopback addresses", withoutQuery(rawURL))
}

// withoutQuery returns rawURL without its query string and fragment, for
// use in messages, because the query string of a Notification service
// delivery carries the signing secret in kbc_secret.
func withoutQuery(rawURL string) string {
	base, _, found := strings.Cut(rawURL, "?")
	if found {
		return base + "?(query left out)"
	}
	base, _, _ = strings.Cut(base, "#")
	return base
}

// unwrapURLError returns the cause of a *url.Error, whose message would
// repeat the whole URL, and err itself otherwise.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// PostDelivery sends body to a webhook receiver at rawURL as the webhooks
// endpoint of the Storage API does, with signature in the X-Kbc-Signature
// header, and returns the response status. rawURL must point at a loopback
// address.
func PostDelivery(ctx context.Context, rawURL string, body []byte, signature string) (int, error) {
	header := http.Header{}
	header.Set(webhook.SignatureHeader, signature)
	return postDelivery(ctx, rawURL, body, header)
}

// PostUnsignedDelivery sends body to a webhook receiver at rawURL as the
// Notification service does, without an X-Kbc-Signature header, so that
// only a kbc_secret query parameter in rawURL can prove the delivery. It
// returns the response status. rawURL must point at a loopback address.
func PostUnsignedDelivery(ctx context.Context, rawURL string, body []byte) (int, error) {
	return postDelivery(ctx, rawURL, body, http.Header{})
}

// postDelivery posts body as JSON with header added. Its errors leave out
// the query string of rawURL, which may contain a secret.
func postDelivery(ctx context.Context, rawURL string, body []byte, header http.Header) (int, error) {
	if err := checkLoopbackURL(rawURL); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("invalid delivery request to %s: %w", withoutQuery(rawURL), unwrapURLError(err))
	}
	maps.Copy(req.Header, header)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("delivery to %s failed: %w", withoutQuery(rawURL), unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
