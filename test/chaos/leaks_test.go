package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// credentials collects every credential of the soak: the Storage API
// tokens, every signing secret that the Storage API emulator handed out,
// and every secret that the operator minted for Notification service
// subscriptions, including those of webhooks and subscriptions that a
// rotation or a recovery deleted soon after.
type credentials struct {
	mu      sync.Mutex
	tokens  map[string]int64 // token to project id
	signing map[string]bool
	minted  map[string]bool
}

func newCredentials(projects []*project) *credentials {
	c := &credentials{tokens: map[string]int64{}, signing: map[string]bool{}, minted: map[string]bool{}}
	for _, p := range projects {
		c.tokens[p.token] = p.id
	}
	return c
}

// collect adds the signing secrets of every webhook and the kbc_secret of
// every subscription that the stacks hold now. The soak calls it every
// 50ms, so it also collects the secrets of most webhooks and subscriptions
// that exist only briefly.
func (c *credentials) collect(projects []*project) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range projects {
		for _, w := range p.emu.Webhooks(p.id) {
			c.signing[w.Secret] = true
		}
		for _, s := range p.emu.Subscriptions(p.id) {
			if value, ok := urlSecretValue(s.Recipient.URL); ok && value != "" {
				c.minted[value] = true
			}
		}
	}
}

// collectSecrets adds the signingSecret and previousSigningSecret of every
// Secret in the soak's namespaces. The operator writes a minted secret to
// the Secret before it creates a subscription with it, so this also finds
// secrets that a kill or a fault kept from ever reaching the stack.
func (c *credentials) collectSecrets(ctx context.Context, kube client.Client, projects []*project) error {
	for _, p := range projects {
		var secrets corev1.SecretList
		if err := kube.List(ctx, &secrets, client.InNamespace(p.namespace)); err != nil {
			return err
		}
		c.mu.Lock()
		for _, secret := range secrets.Items {
			for _, key := range []string{keboolav1.SecretKeySigningSecret, keboolav1.SecretKeyPreviousSigningSecret} {
				value := string(secret.Data[key])
				switch {
				case value == "":
				case p.notification:
					c.minted[value] = true
				default:
					c.signing[value] = true
				}
			}
		}
		c.mu.Unlock()
	}
	return nil
}

func (c *credentials) signingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.signing)
}

func (c *credentials) mintedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.minted)
}

// leakWindow is the length of the prefix by which the scanner finds a
// credential. A match of the prefix alone counts as a leak, so that a
// credential cut short in a message is found too. Every credential and
// every encoding of one is longer than this.
const leakWindow = 16

// leakScanner finds credentials in text: each token, the random part of each
// token, each signing secret and minted secret, and the standard base64
// encoding of each of them, which is how a Secret's data would appear in a
// dumped object. It also finds every value of a kbc_secret query parameter,
// known or not, except the "[REDACTED]" that the operator's client puts in
// its place.
type leakScanner struct {
	byPrefix map[string][]needle
}

// needle is one form of a credential. label describes it without
// revealing it.
type needle struct {
	value string
	label string
}

func newLeakScanner(c *credentials) *leakScanner {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &leakScanner{byPrefix: map[string][]needle{}}
	for token, projectID := range c.tokens {
		label := fmt.Sprintf("the token of project %d", projectID)
		s.add(token, label)
		if i := strings.LastIndex(token, "-"); i >= 0 {
			s.add(token[i+1:], label+" (its random part)")
		}
	}
	for secret := range c.signing {
		s.add(secret, "the signing secret with fingerprint "+fingerprint(secret))
	}
	for secret := range c.minted {
		s.add(secret, "the minted secret with fingerprint "+fingerprint(secret))
	}
	return s
}

// add registers value and its base64 encoding.
func (s *leakScanner) add(value, label string) {
	for _, n := range []needle{
		{value: value, label: label},
		{value: base64.StdEncoding.EncodeToString([]byte(value)), label: label + " in base64"},
	} {
		if len(n.value) < leakWindow {
			panic(fmt.Sprintf("%s is shorter than %d bytes, so the scanner cannot find it", n.label, leakWindow))
		}
		prefix := n.value[:leakWindow]
		s.byPrefix[prefix] = append(s.byPrefix[prefix], n)
	}
}

// scan returns the labels of the credentials in text, each once, in order.
// It looks up every window of leakWindow bytes, so its cost grows with the
// length of text and not with the number of credentials.
func (s *leakScanner) scan(text string) []string {
	found := map[string]bool{}
	for _, label := range scanURLSecrets(text) {
		found[label] = true
	}
	for i := 0; i+leakWindow <= len(text); i++ {
		needles, ok := s.byPrefix[text[i:i+leakWindow]]
		if !ok {
			continue
		}
		for _, n := range needles {
			if strings.HasPrefix(text[i:], n.value) {
				found[n.label] = true
			} else {
				found[n.label+" (cut short)"] = true
			}
		}
	}
	labels := make([]string, 0, len(found))
	for label := range found {
		// A full match also matches later windows of itself when the
		// credential repeats its first bytes, so a cut-short match counts
		// only for a credential that never appears in full.
		if base, cut := strings.CutSuffix(label, " (cut short)"); cut && found[base] {
			continue
		}
		labels = append(labels, label)
	}
	sort.Strings(labels)
	return labels
}

// urlSecretPrefixes are the forms in which a URL's kbc_secret parameter
// starts: plain, and with "=" percent-encoded, as in a URL that is itself
// the value of a query parameter.
var urlSecretPrefixes = []string{"kbc_secret=", "kbc_secret%3D", "kbc_secret%3d"}

// redactedURLSecrets are the values of kbc_secret that are no leak: the
// placeholder of the operator's client, plain and percent-encoded.
var redactedURLSecrets = []string{"[REDACTED]", "%5BREDACTED%5D"}

// scanURLSecrets returns a label for every distinct value of a kbc_secret
// query parameter in text, other than a redactedURLSecrets placeholder. A
// value ends at the first character that cannot be part of a query value
// in a log line, an Event or a status: "&", ";", quotes, a backslash of a
// JSON escape, white space, "<" and ">".
func scanURLSecrets(text string) []string {
	var labels []string
	for _, prefix := range urlSecretPrefixes {
		rest := text
		for {
			i := strings.Index(rest, prefix)
			if i < 0 {
				break
			}
			rest = rest[i+len(prefix):]
			end := strings.IndexAny(rest, "&;\"'\\ \t\r\n<>")
			if end < 0 {
				end = len(rest)
			}
			value := rest[:end]
			if value == "" || slices.Contains(redactedURLSecrets, value) {
				continue
			}
			label := fmt.Sprintf("a URL with a kbc_secret value of %d bytes with fingerprint %s", len(value), fingerprint(value))
			if !slices.Contains(labels, label) {
				labels = append(labels, label)
			}
		}
	}
	return labels
}

// fingerprint returns the fingerprint the operator shows for a signing
// secret, so that a failure can name a secret without revealing it.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// corpus is what the operator wrote where users and tools can read it,
// apart from its log files, collected during the soak. Each source keeps
// every distinct line once.
type corpus struct {
	mu      sync.Mutex
	sources map[string]map[string]struct{}
	samples map[string]int
}

func newCorpus() *corpus {
	return &corpus{sources: map[string]map[string]struct{}{}, samples: map[string]int{}}
}

// add records the lines of text under source, such as "metrics".
func (c *corpus) add(source, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines, ok := c.sources[source]
	if !ok {
		lines = map[string]struct{}{}
		c.sources[source] = lines
	}
	for line := range strings.Lines(text) {
		lines[line] = struct{}{}
	}
	c.samples[source]++
}

// text returns the distinct lines of source.
func (c *corpus) text(source string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for line := range c.sources[source] {
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// sampleStatus adds the status of every KeboolaProject and KeboolaWebhook
// of the soak, one JSON line per object, to the corpus under "status".
// Sampled during the faults, the statuses carry the error messages of
// failed requests, which a status at the end of the soak no longer does.
func sampleStatus(ctx context.Context, c client.Client, projects []*project, into *corpus) error {
	var b strings.Builder
	for _, p := range projects {
		var kbps keboolav1.KeboolaProjectList
		if err := c.List(ctx, &kbps, client.InNamespace(p.namespace)); err != nil {
			return err
		}
		for _, kbp := range kbps.Items {
			writeJSONLine(&b, kbp.Status)
		}
		var kbwhs keboolav1.KeboolaWebhookList
		if err := c.List(ctx, &kbwhs, client.InNamespace(p.namespace)); err != nil {
			return err
		}
		for _, kbwh := range kbwhs.Items {
			writeJSONLine(&b, kbwh.Status)
		}
	}
	into.add("status", b.String())
	return nil
}

// collectEvents adds every Event of the cluster, of both Event APIs, to the
// corpus under "events", and returns how many there were.
func collectEvents(ctx context.Context, c client.Client, into *corpus) (int, error) {
	var b strings.Builder
	var events eventsv1.EventList
	if err := c.List(ctx, &events); err != nil {
		return 0, fmt.Errorf("failed to list events.k8s.io Events: %w", err)
	}
	for _, e := range events.Items {
		writeJSONLine(&b, e)
	}
	var coreEvents corev1.EventList
	if err := c.List(ctx, &coreEvents); err != nil {
		return 0, fmt.Errorf("failed to list core Events: %w", err)
	}
	for _, e := range coreEvents.Items {
		writeJSONLine(&b, e)
	}
	into.add("events", b.String())
	return len(events.Items) + len(coreEvents.Items), nil
}

// decodeHexDumps returns the bytes of every hex dump in the "body" field of
// a JSON log line. client-go logs the body of a Kubernetes request or
// response at V(8) and above. It logs a protobuf body, such as that of a
// Secret, as a hex dump, which splits a credential over several lines where
// no plain scan finds it.
func decodeHexDumps(log string) string {
	var decoded strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `"body":"00000000  `) {
			continue
		}
		var record struct {
			Body string `json:"body"`
		}
		if json.Unmarshal([]byte(line), &record) != nil {
			continue
		}
		for dumpLine := range strings.Lines(record.Body) {
			// A line is "<offset>  <up to 16 hex bytes>  |<ASCII>|".
			_, rest, ok := strings.Cut(dumpLine, "  ")
			if !ok {
				continue
			}
			hexPart, _, _ := strings.Cut(rest, "|")
			for _, field := range strings.Fields(hexPart) {
				if b, err := hex.DecodeString(field); err == nil {
					decoded.Write(b)
				}
			}
		}
		decoded.WriteByte('\n')
	}
	return decoded.String()
}

func writeJSONLine(b *strings.Builder, value any) {
	data, err := json.Marshal(value)
	if err != nil {
		// Every value here is an API type, which always encodes.
		panic(err)
	}
	b.Write(data)
	b.WriteByte('\n')
}

// leakReport is what scanning one source found.
type leakReport struct {
	Source string   `json:"source"`
	Bytes  int      `json:"bytes"`
	Leaks  []string `json:"leaks,omitempty"`
}

// scanSources scans the log files of the replicas and every source of the
// corpus.
func scanSources(scanner *leakScanner, logFiles map[string]string, collected *corpus, sources []string) ([]leakReport, error) {
	var reports []leakReport
	for _, name := range sortedKeys(logFiles) {
		data, err := os.ReadFile(logFiles[name])
		if err != nil {
			return nil, fmt.Errorf("failed to read the log of %s: %w", name, err)
		}
		text := string(data) + decodeHexDumps(string(data))
		reports = append(reports, leakReport{Source: "log of " + name, Bytes: len(data), Leaks: scanner.scan(text)})
	}
	for _, source := range sources {
		text := collected.text(source)
		reports = append(reports, leakReport{Source: source, Bytes: len(text), Leaks: scanner.scan(text)})
	}
	return reports, nil
}

func TestLeakScannerFindsEncodedAndCutCredentials(t *testing.T) {
	token := "7001-9000-" + randomHex(20)
	secret := randomHex(32)
	c := &credentials{tokens: map[string]int64{token: 7001}, signing: map[string]bool{secret: true}}
	scanner := newLeakScanner(c)

	cases := []struct {
		name string
		text string
		want []string
	}{
		{name: "clean text", text: `{"msg":"Created webhook","fingerprint":"` + fingerprint(secret) + `"}`},
		{name: "token in a header dump", text: "X-StorageApi-Token: " + token,
			want: []string{"the token of project 7001", "the token of project 7001 (its random part)"}},
		{name: "signing secret in base64", text: `data: {signingSecret: ` + base64.StdEncoding.EncodeToString([]byte(secret)) + `}`,
			want: []string{"the signing secret with fingerprint " + fingerprint(secret) + " in base64"}},
		{name: "signing secret cut short", text: "secret=" + secret[:20] + "...",
			want: []string{"the signing secret with fingerprint " + fingerprint(secret) + " (cut short)"}},
	}
	for _, tc := range cases {
		got := scanner.scan(tc.text)
		if !slices.Equal(got, tc.want) {
			t.Errorf("scan of %s = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLeakScannerFindsURLSecrets(t *testing.T) {
	minted := randomHex(32)
	unknown := randomHex(32)
	scanner := newLeakScanner(&credentials{minted: map[string]bool{minted: true}})
	unknownLabel := fmt.Sprintf("a URL with a kbc_secret value of 64 bytes with fingerprint %s", fingerprint(unknown))
	mintedLabels := []string{
		fmt.Sprintf("a URL with a kbc_secret value of 64 bytes with fingerprint %s", fingerprint(minted)),
		"the minted secret with fingerprint " + fingerprint(minted),
	}

	cases := []struct {
		name string
		text string
		want []string
	}{
		{name: "parameter named in a message", text: `spec.url must not contain the query parameter kbc_secret`},
		{name: "redacted value", text: `"error":"POST /project-subscriptions: 400: url http://127.0.0.1/hook?kbc_secret=[REDACTED] is invalid"`},
		{name: "percent-encoded redacted value", text: `target=http%3A%2F%2Fhost%2Fhook%3Fkbc_secret%3D%5BREDACTED%5D`},
		{name: "empty value", text: `url=http://127.0.0.1/hook?kbc_secret=&v=1`},
		{name: "unknown secret after another parameter", text: `{"url":"http://127.0.0.1/hook?v=1\u0026kbc_secret=` + unknown + `"}`,
			want: []string{unknownLabel}},
		{name: "percent-encoded unknown secret", text: `target=http%3A%2F%2Fhost%2Fhook%3Fkbc_secret%3D` + unknown + `&x=1`,
			want: []string{unknownLabel}},
		{name: "minted secret", text: `http://127.0.0.1/hook?kbc_secret=` + minted, want: mintedLabels},
	}
	for _, tc := range cases {
		got := scanner.scan(tc.text)
		if !slices.Equal(got, tc.want) {
			t.Errorf("scan of %s = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDecodeHexDumpsRevealsSplitSecret(t *testing.T) {
	secret := randomHex(32)
	body := append([]byte("k8s\x00\x0a\x0cv1\x12\x06Secret\x12"), []byte(secret)...)
	line, err := json.Marshal(map[string]string{"msg": "Request Body", "body": hex.Dump(body)})
	if err != nil {
		t.Fatal(err)
	}
	log := string(line) + "\n"
	scanner := newLeakScanner(&credentials{signing: map[string]bool{secret: true}})

	if got := scanner.scan(log); len(got) != 0 {
		t.Fatalf("the plain scan of the hex dump found %q; the dump no longer splits the secret, so this test needs another body", got)
	}
	want := []string{"the signing secret with fingerprint " + fingerprint(secret)}
	if got := scanner.scan(decodeHexDumps(log)); !slices.Equal(got, want) {
		t.Errorf("scan of the decoded hex dump = %q, want %q", got, want)
	}
}
