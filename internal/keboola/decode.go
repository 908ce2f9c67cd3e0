package keboola

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// maxBodyBytes is the largest response body the client reads. A larger
	// body is an error, never silently truncated.
	maxBodyBytes = 1 << 20

	// maxMessageBytes caps APIError.Message, which callers copy into
	// status conditions and events.
	maxMessageBytes = 1000

	// maxCodeBytes caps APIError.Code and APIError.ExceptionID.
	maxCodeBytes = 200

	// maxRetryAfter caps a parsed Retry-After so that a huge value cannot
	// overflow time.Duration.
	maxRetryAfter = 24 * time.Hour

	// redacted replaces the token wherever a response repeats it.
	redacted = "[REDACTED]"
)

// errBodyTooLarge is the error of a response body over maxBodyBytes.
var errBodyTooLarge = errors.New("response body exceeds 1 MiB")

// timestampLayouts are the timestamp formats the API sends, such as
// "2024-01-15T10:35:01+0000" and "2024-01-15T10:35:01Z". Both accept
// fractional seconds when parsing.
var timestampLayouts = []string{
	"2006-01-02T15:04:05Z0700",
	time.RFC3339,
}

// tokenJSON is the body of GET /v2/storage/tokens/verify. Fields whose JSON
// type varies between stacks stay raw.
type tokenJSON struct {
	ID              json.RawMessage `json:"id"`
	Description     *string         `json:"description"`
	IsMasterToken   bool            `json:"isMasterToken"`
	CanManageTokens bool            `json:"canManageTokens"`
	Expires         json.RawMessage `json:"expires"`
	IsExpired       bool            `json:"isExpired"`
	IsDisabled      bool            `json:"isDisabled"`
	Owner           *struct {
		ID     json.RawMessage `json:"id"`
		Name   *string         `json:"name"`
		Region *string         `json:"region"`
	} `json:"owner"`
}

// webhookJSON is a webhook object. Secret and Token appear only in the
// response to a create, and Token is the older name of the signing secret.
type webhookJSON struct {
	ID          json.RawMessage `json:"id"`
	Name        *string         `json:"name"`
	URL         *string         `json:"url"`
	Events      []string        `json:"events"`
	CreatedTime json.RawMessage `json:"createdTime"`
	Secret      *string         `json:"secret"`
	Token       *string         `json:"token"`
}

// decodeTokenInfo decodes the body of a token verification. The owner's id
// is required and may be a JSON number or a string of digits.
func decodeTokenInfo(body []byte) (*TokenInfo, error) {
	var raw tokenJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a token object: %w", err)
	}

	id, _, err := decodeID(raw.ID)
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	expires, err := decodeTimestamp(raw.Expires)
	if err != nil {
		return nil, fmt.Errorf("expires: %w", err)
	}
	if raw.Owner == nil {
		return nil, errors.New("owner is missing")
	}
	ownerID, present, err := decodeInt64(raw.Owner.ID)
	if err != nil {
		return nil, fmt.Errorf("owner.id: %w", err)
	}
	if !present {
		return nil, errors.New("owner.id is missing")
	}

	return &TokenInfo{
		ID:              id,
		Description:     deref(raw.Description),
		IsMasterToken:   raw.IsMasterToken,
		CanManageTokens: raw.CanManageTokens,
		Expires:         expires,
		IsExpired:       raw.IsExpired,
		IsDisabled:      raw.IsDisabled,
		Owner: Project{
			ID:     ownerID,
			Name:   deref(raw.Owner.Name),
			Region: deref(raw.Owner.Region),
		},
	}, nil
}

// decodeWebhook decodes one webhook object. The id is required.
func decodeWebhook(body []byte) (*Webhook, error) {
	var raw webhookJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a webhook object: %w", err)
	}
	webhook, err := convertWebhook(&raw)
	if err != nil {
		return nil, err
	}
	return &webhook, nil
}

// decodeWebhookList decodes a JSON array of webhook objects. A null body is
// an empty list.
func decodeWebhookList(body []byte) ([]Webhook, error) {
	var raws []webhookJSON
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("not an array of webhook objects: %w", err)
	}
	webhooks := make([]Webhook, 0, len(raws))
	for i := range raws {
		webhook, err := convertWebhook(&raws[i])
		if err != nil {
			return nil, fmt.Errorf("webhook at index %d: %w", i, err)
		}
		webhooks = append(webhooks, webhook)
	}
	return webhooks, nil
}

// decodeCreatedWebhook decodes the response to a create. It requires the id
// and the signing secret, read from "secret" or else from "token".
func decodeCreatedWebhook(body []byte) (*CreatedWebhook, error) {
	var raw webhookJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a webhook object: %w", err)
	}
	webhook, err := convertWebhook(&raw)
	if err != nil {
		return nil, err
	}
	secret := deref(raw.Secret)
	if secret == "" {
		secret = deref(raw.Token)
	}
	if secret == "" {
		return nil, errors.New("the signing secret is missing from both secret and token")
	}
	return &CreatedWebhook{Webhook: webhook, Secret: secret}, nil
}

func convertWebhook(raw *webhookJSON) (Webhook, error) {
	id, present, err := decodeID(raw.ID)
	if err != nil {
		return Webhook{}, fmt.Errorf("id: %w", err)
	}
	if !present || id == "" {
		return Webhook{}, errors.New("id is missing")
	}
	created, err := decodeTimestamp(raw.CreatedTime)
	if err != nil {
		return Webhook{}, fmt.Errorf("createdTime: %w", err)
	}

	webhook := Webhook{
		ID:     id,
		Name:   deref(raw.Name),
		URL:    deref(raw.URL),
		Events: raw.Events,
	}
	if created != nil {
		webhook.CreatedTime = *created
	}
	return webhook, nil
}

// decodeID decodes an id sent as a JSON string or an integer. It reports
// false for an absent or null id.
func decodeID(raw json.RawMessage) (string, bool, error) {
	if isAbsent(raw) {
		return "", false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	}
	if !isDigits(strings.TrimPrefix(string(raw), "-")) {
		return "", false, errors.New("not a string or an integer")
	}
	return string(raw), true, nil
}

// decodeInt64 decodes an integer sent as a JSON number or as a string of
// digits. It reports false for an absent or null value.
func decodeInt64(raw json.RawMessage) (int64, bool, error) {
	if isAbsent(raw) {
		return 0, false, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, false, err
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false, errors.New("not an integer")
	}
	return n, true, nil
}

// decodeTimestamp decodes a timestamp string in one of timestampLayouts. It
// returns nil for an absent value, null or "".
func decodeTimestamp(raw json.RawMessage) (*time.Time, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("not a string")
	}
	if s == "" {
		return nil, nil
	}
	t, ok := parseTimestamp(s)
	if !ok {
		return nil, errors.New("not a timestamp such as 2024-01-15T10:35:01+0000")
	}
	return &t, nil
}

func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// errorResponse describes a response outside 2xx.
type errorResponse struct {
	method     string
	endpoint   string
	statusCode int
	header     http.Header
	body       []byte
	bodyErr    error
	now        time.Time
	token      string
	// redact lists further values to replace by "[REDACTED]", such as the
	// receiver URL of a create request.
	redact []string
}

// newAPIError builds the error of a response outside 2xx. It decodes the
// Keboola error body {"error", "code", "exceptionId"} and the maintenance
// body {"status": "maintenance", "reason", "estimatedEndTime"} where present.
// The status code classifies the error even when the body is unusable. The
// token and the values in resp.redact are replaced by "[REDACTED]" in every
// value copied from the response.
func newAPIError(resp errorResponse) *APIError {
	e := &APIError{
		Method:     resp.method,
		Endpoint:   resp.endpoint,
		StatusCode: resp.statusCode,
	}
	if ra, ok := parseRetryAfter(resp.header.Get("Retry-After"), resp.now); ok {
		e.RetryAfter = ra
	}

	fields, problem := parseErrorBody(resp.body, resp.bodyErr, resp.header.Get("Content-Type"))
	e.bodyProblem = problem

	message := stringField(fields, "error")
	if message == "" {
		message = stringField(fields, "message")
	}
	if resp.statusCode == http.StatusServiceUnavailable && stringField(fields, "status") == "maintenance" {
		e.Maintenance = true
		if message == "" {
			message = stringField(fields, "reason")
		}
		if e.RetryAfter == 0 {
			if end, ok := parseTimestamp(stringField(fields, "estimatedEndTime")); ok && end.After(resp.now) {
				e.RetryAfter = min(end.Sub(resp.now), maxRetryAfter)
			}
		}
	}
	if fields != nil && message == "" && !e.Maintenance {
		e.bodyProblem = "response body has no error message"
	}

	secrets := redactionList(resp.token, resp.redact)
	e.Message = cleanText(message, secrets, maxMessageBytes)
	e.Code = cleanText(scalarField(fields, "code"), secrets, maxCodeBytes)
	e.ExceptionID = cleanText(scalarField(fields, "exceptionId"), secrets, maxCodeBytes)
	e.bodyProblem = cleanText(e.bodyProblem, secrets, maxMessageBytes)
	return e
}

// parseErrorBody returns the fields of a JSON object body, or nil and a
// short explanation when the body is missing, unreadable or not a JSON
// object. The explanation never quotes the body, which may be a proxy's
// HTML page.
func parseErrorBody(body []byte, bodyErr error, contentType string) (map[string]json.RawMessage, string) {
	switch {
	case errors.Is(bodyErr, errBodyTooLarge):
		return nil, "response body exceeds 1 MiB"
	case bodyErr != nil:
		return nil, "response body could not be read"
	case len(bytes.TrimSpace(body)) == 0:
		return nil, "response body is empty"
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		mediaType, _, err := mime.ParseMediaType(contentType)
		if err != nil || mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") {
			return nil, "response body is not valid JSON"
		}
		return nil, fmt.Sprintf("response body of type %q is not JSON", truncate(mediaType, 64))
	}
	return fields, ""
}

// stringField returns the JSON string at key, or "" when it is absent or not
// a string.
func stringField(fields map[string]json.RawMessage, key string) string {
	raw, ok := fields[key]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

// scalarField returns the JSON string at key, or the text of a JSON number
// there, or "" for anything else.
func scalarField(fields map[string]json.RawMessage, key string) string {
	raw, ok := fields[key]
	if !ok || len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		return stringField(fields, key)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return ""
	}
	return n.String()
}

// cleanText makes a value from a response safe for an error message: valid
// UTF-8, without any of secrets, at most limit bytes. secrets comes from
// redactionList.
func cleanText(s string, secrets []string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	s = urlSecretParameter.ReplaceAllString(s, "${1}"+redacted)
	return truncate(s, limit)
}

// urlSecretParameter matches the value of the query parameter kbc_secret,
// which carries the secret of a receiver URL of the Notification service,
// wherever a response repeats such a URL, also in escaped form. The value
// ends at a character that cannot be part of it.
var urlSecretParameter = regexp.MustCompile(`(?i)(kbc(?:_|%5f)secret(?:=|%3d|\\u003d))[^&;#\s"'<>\\]*`)

// redactionList returns the token and the other values to redact, as valid
// UTF-8 and without empty strings, longest first. The order makes a value
// that contains another one, such as a URL and the query inside it, be
// replaced whole.
func redactionList(token string, others []string) []string {
	secrets := make([]string, 0, 1+len(others))
	for _, s := range append([]string{token}, others...) {
		if s = strings.ToValidUTF8(s, "\uFFFD"); s != "" {
			secrets = append(secrets, s)
		}
	}
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return secrets
}

// parseRetryAfter parses a Retry-After header value given as seconds or as
// an HTTP date. A date in the past gives zero. It reports false for an absent
// or invalid value.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if isDigits(value) {
		seconds, err := strconv.ParseInt(value, 10, 64)
		if err != nil || seconds > int64(maxRetryAfter/time.Second) {
			// Only an overflow fails here, because value is all digits.
			return maxRetryAfter, true
		}
		return time.Duration(seconds) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
