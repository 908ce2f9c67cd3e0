package emulator

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Project is a Keboola project, the owner of tokens and webhooks.
type Project struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Region string `json:"region"`
}

// Token describes a Storage API token. The token string itself, the
// credential, is the key under which AddToken stores it.
type Token struct {
	// ID is the token's id, which is not a credential. AddToken assigns a
	// numeric id when it is empty.
	ID          string
	Description string
	ProjectID   int64
	// Expires is nil for a token that never expires.
	Expires  *time.Time
	Disabled bool
	// CanManageWebhooks must be true for webhook requests: without it they
	// get 403.
	CanManageWebhooks bool
	MasterToken       bool
	// CanManageTokens is sent by token verification. A master token can
	// always manage tokens.
	CanManageTokens bool
}

// StoredWebhook is a webhook as the emulator stores it, including its
// signing secret.
type StoredWebhook struct {
	ID          string    `json:"id"`
	ProjectID   int64     `json:"projectId"`
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Secret      string    `json:"secret"`
	CreatedTime time.Time `json:"createdTime"`
}

// AddProject adds a project or replaces the one with the same ID.
func (s *Server) AddProject(p Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[p.ID] = p
}

// AddToken adds the credential token with the details t, or replaces the
// details of a known token. A token may belong to a project that was never
// added, and then its owner has only an id.
func (s *Server) AddToken(token string, t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.ID == "" {
		s.nextTokenID++
		t.ID = strconv.FormatInt(s.nextTokenID, 10)
	}
	if t.Expires != nil {
		expires := *t.Expires
		t.Expires = &expires
	}
	s.tokens[token] = t
}

// RemoveToken deletes token, so requests with it get 401 like any unknown
// token.
func (s *Server) RemoveToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Webhooks returns copies of the project's webhooks, secrets included,
// ordered by id.
func (s *Server) Webhooks(projectID int64) []StoredWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.projectWebhooksLocked(projectID)
}

// Webhook returns a copy of one webhook of the project, secret included.
func (s *Server) Webhook(projectID int64, id string) (StoredWebhook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok || w.ProjectID != projectID {
		return StoredWebhook{}, false
	}
	return cloneWebhook(w), true
}

// PutWebhook creates or replaces a webhook out of band, as if a person had
// changed it in Keboola behind the operator's back, and returns what it
// stored. An empty w.ID creates a webhook with a new id. An empty w.Secret
// keeps the stored secret or, for a new webhook, generates one. A zero
// w.CreatedTime keeps the stored time or, for a new webhook, uses the current
// time. The fields are not validated, so tests can store what the API would
// reject, but NormalizeWebhooks applies. An id that belongs to a webhook of
// another project moves that webhook to projectID.
func (s *Server) PutWebhook(projectID int64, w StoredWebhook) StoredWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()

	stored := cloneWebhook(&w)
	stored.ProjectID = projectID
	stored.URL, stored.Events = s.normalizeWebhook(stored.URL, stored.Events)

	previous, exists := s.webhooks[stored.ID]
	switch {
	case stored.ID == "" || !exists:
		if stored.ID == "" {
			stored.ID = s.newWebhookIDLocked()
		} else if n, err := strconv.ParseInt(stored.ID, 10, 64); err == nil && n > s.nextWebhookID {
			// Keep later generated ids from colliding with this one.
			s.nextWebhookID = n
		}
		if stored.Secret == "" {
			stored.Secret = newSecret()
		}
		if stored.CreatedTime.IsZero() {
			stored.CreatedTime = now()
		}
	default:
		if stored.Secret == "" {
			stored.Secret = previous.Secret
		}
		if stored.CreatedTime.IsZero() {
			stored.CreatedTime = previous.CreatedTime
		}
	}

	s.webhooks[stored.ID] = &stored
	return cloneWebhook(&stored)
}

// DeleteWebhookOutOfBand deletes a webhook of the project as if a person had
// deleted it in Keboola, and reports whether it existed.
func (s *Server) DeleteWebhookOutOfBand(projectID int64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok || w.ProjectID != projectID {
		return false
	}
	delete(s.webhooks, id)
	return true
}

// projectWebhooksLocked returns copies of the project's webhooks ordered by
// id. The caller holds s.mu.
func (s *Server) projectWebhooksLocked(projectID int64) []StoredWebhook {
	list := []StoredWebhook{}
	for _, w := range s.webhooks {
		if w.ProjectID == projectID {
			list = append(list, cloneWebhook(w))
		}
	}
	slices.SortFunc(list, func(a, b StoredWebhook) int { return compareIDs(a.ID, b.ID) })
	return list
}

// newWebhookIDLocked returns the next free webhook id. Ids are unique across
// projects, as on a real stack. The caller holds s.mu.
func (s *Server) newWebhookIDLocked() string {
	for {
		s.nextWebhookID++
		id := strconv.FormatInt(s.nextWebhookID, 10)
		if _, inUse := s.webhooks[id]; !inUse {
			return id
		}
	}
}

// normalizeWebhook returns url and events as they are stored: unchanged, or
// with NormalizeWebhooks the events sorted and a "/" path added to a URL
// with an empty path.
func (s *Server) normalizeWebhook(url string, events []string) (string, []string) {
	events = slices.Clone(events)
	if !s.opts.NormalizeWebhooks {
		return url, events
	}
	slices.Sort(events)
	return addRootPath(url), events
}

// addRootPath inserts "/" after the authority of an absolute URL whose path
// is empty, so "https://example.com?x=1" becomes "https://example.com/?x=1".
// Any other string is returned unchanged. The rest of the URL keeps its exact
// bytes.
func addRootPath(rawURL string) string {
	schemeEnd := strings.Index(rawURL, "://")
	if schemeEnd < 0 {
		return rawURL
	}
	authorityStart := schemeEnd + len("://")
	authorityLength := strings.IndexAny(rawURL[authorityStart:], "/?#")
	if authorityLength < 0 {
		return rawURL + "/"
	}
	authorityEnd := authorityStart + authorityLength
	if rawURL[authorityEnd] == '/' {
		return rawURL
	}
	return rawURL[:authorityEnd] + "/" + rawURL[authorityEnd:]
}

// compareIDs orders numeric ids by value and puts them before other ids,
// which are ordered as strings.
func compareIDs(a, b string) int {
	na, errA := strconv.ParseInt(a, 10, 64)
	nb, errB := strconv.ParseInt(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(na, nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	default:
		return strings.Compare(a, b)
	}
}

func cloneWebhook(w *StoredWebhook) StoredWebhook {
	c := *w
	c.Events = slices.Clone(w.Events)
	return c
}

// newSecret returns a random signing secret: 32 bytes, hex encoded.
func newSecret() string {
	return randomHex(32)
}

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24: it crashes the
	// program instead.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// now returns the current time in UTC, truncated to the second because the
// API's timestamps carry no fractions.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Second)
}
