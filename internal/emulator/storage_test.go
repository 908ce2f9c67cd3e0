package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// timestampPattern matches the API's timestamp format, such as
// 2024-01-15T10:35:01+0000.
var timestampPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$`)

func TestVerifyReturnsTokenAndOwner(t *testing.T) {
	server := startServer(t, emulator.Options{})

	resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, expected 200; body %s", resp.status, resp.body)
	}
	var body map[string]any
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatal(err)
	}
	expected := map[string]any{
		"id":              tokenIDA,
		"description":     "operator A",
		"isMasterToken":   false,
		"canManageTokens": false,
		"expires":         nil,
		"isExpired":       false,
		"isDisabled":      false,
		"owner":           map[string]any{"id": float64(projectA), "name": "Project A", "region": "eu-central-1"},
	}
	for key, want := range expected {
		if got, ok := body[key]; !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, expected %v", key, got, want)
		}
	}
	if strings.Contains(string(resp.body), tokenA) {
		t.Errorf("verify response contains the token: %s", resp.body)
	}
}

func TestVerifyExpiredAndDisabledToken(t *testing.T) {
	server := startServer(t, emulator.Options{})
	expired := time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)
	server.AddToken("expired-token", emulator.Token{ID: "9", ProjectID: projectA, Expires: &expired, CanManageWebhooks: true})
	server.AddToken("disabled-token", emulator.Token{ID: "10", ProjectID: projectA, Disabled: true, CanManageWebhooks: true, MasterToken: true})

	resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", "expired-token", "")
	if resp.status != http.StatusOK {
		t.Fatalf("expired token: status = %d, expected 200", resp.status)
	}
	body := decode[map[string]any](t, resp)
	if body["expires"] != "2024-01-15T10:35:01+0000" {
		t.Errorf("expires = %v, expected 2024-01-15T10:35:01+0000", body["expires"])
	}
	if body["isExpired"] != true {
		t.Errorf("isExpired = %v, expected true", body["isExpired"])
	}

	resp = call(t, server, http.MethodGet, "/v2/storage/tokens/verify", "disabled-token", "")
	if resp.status != http.StatusOK {
		t.Fatalf("disabled token: status = %d, expected 200", resp.status)
	}
	body = decode[map[string]any](t, resp)
	if body["isDisabled"] != true {
		t.Errorf("isDisabled = %v, expected true", body["isDisabled"])
	}
	if body["isMasterToken"] != true || body["canManageTokens"] != true {
		t.Errorf("isMasterToken = %v, canManageTokens = %v, expected both true", body["isMasterToken"], body["canManageTokens"])
	}

	expectError(t, call(t, server, http.MethodGet, "/v2/storage/webhooks", "expired-token", ""), http.StatusUnauthorized, "storage.tokenExpired")
	expectError(t, call(t, server, http.MethodGet, "/v2/storage/webhooks", "disabled-token", ""), http.StatusUnauthorized, "storage.tokenDisabled")
}

func TestVerifyOwnerIDAsString(t *testing.T) {
	server := startServer(t, emulator.Options{OwnerIDAsString: true})

	body := decode[map[string]any](t, call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, ""))
	owner := body["owner"].(map[string]any)
	if owner["id"] != "101" {
		t.Errorf("owner.id = %#v, expected the string \"101\"", owner["id"])
	}
}

func TestAuthenticationErrors(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.AddToken("read-only", emulator.Token{ID: "77", ProjectID: projectA})

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		status int
		code   string
	}{
		{"missing token on verify", http.MethodGet, "/v2/storage/tokens/verify", "", 401, "storage.tokenMissing"},
		{"missing token on list", http.MethodGet, "/v2/storage/webhooks", "", 401, "storage.tokenMissing"},
		{"unknown token on verify", http.MethodGet, "/v2/storage/tokens/verify", "no-such-token", 401, "storage.tokenInvalid"},
		{"unknown token on get", http.MethodGet, "/v2/storage/webhooks/1", "no-such-token", 401, "storage.tokenInvalid"},
		{"token without webhook permission", http.MethodGet, "/v2/storage/webhooks", "read-only", 403, "storage.accessDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, call(t, server, tc.method, tc.path, tc.token, ""), tc.status, tc.code)
		})
	}

	t.Run("removed token", func(t *testing.T) {
		server.RemoveToken(tokenB)
		expectError(t, call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenB, ""), 401, "storage.tokenInvalid")
	})
}

func TestCreateWebhookReturnsSecretOnlyOnce(t *testing.T) {
	server := startServer(t, emulator.Options{})

	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/keboola", jobFailed)
	if created.ID != "1" {
		t.Errorf("id = %q, expected \"1\"", created.ID)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64,}$`).MatchString(created.Secret) {
		t.Errorf("secret = %q, expected at least 32 random bytes in hex", created.Secret)
	}
	if !timestampPattern.MatchString(created.CreatedTime) {
		t.Errorf("createdTime = %q, expected the format 2006-01-02T15:04:05+0000", created.CreatedTime)
	}
	stored, ok := server.Webhook(projectA, created.ID)
	if !ok || stored.Secret != created.Secret {
		t.Errorf("stored secret differs from the created one")
	}

	reads := []struct{ method, path, body string }{
		{http.MethodGet, "/v2/storage/webhooks", ""},
		{http.MethodGet, "/v2/storage/webhooks/1", ""},
		{http.MethodPut, "/v2/storage/webhooks/1", `{"name":"renamed"}`},
	}
	for _, read := range reads {
		resp := call(t, server, read.method, read.path, tokenA, read.body)
		if resp.status != http.StatusOK {
			t.Errorf("%s %s: status = %d, expected 200", read.method, read.path, resp.status)
		}
		if strings.Contains(string(resp.body), created.Secret) || strings.Contains(string(resp.body), `"secret"`) || strings.Contains(string(resp.body), `"token"`) {
			t.Errorf("%s %s returned the secret: %s", read.method, read.path, resp.body)
		}
	}

	updated, _ := server.Webhook(projectA, created.ID)
	if updated.Secret != created.Secret {
		t.Errorf("an update changed the secret")
	}
}

func TestCreateWebhookSecretAsToken(t *testing.T) {
	server := startServer(t, emulator.Options{SecretAsToken: true})

	resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA,
		`{"name":"jobs","url":"https://hooks.example.com/","events":["storage.jobFailed"]}`)
	body := decode[map[string]any](t, resp)
	if _, ok := body["secret"]; ok {
		t.Errorf("response has a field secret, expected only token")
	}
	if token, _ := body["token"].(string); len(token) < 64 {
		t.Errorf("token = %q, expected the signing secret", token)
	}
}

func TestCreateWebhookValidation(t *testing.T) {
	valid := func(field string, value any) string {
		body := map[string]any{"name": "jobs", "url": "https://hooks.example.com/keboola", "events": []string{jobFailed}}
		if value == nil {
			delete(body, field)
		} else {
			body[field] = value
		}
		data, _ := json.Marshal(body)
		return string(data)
	}
	longURL := func(n int) string {
		prefix := "https://hooks.example.com/"
		return prefix + strings.Repeat("a", n-len(prefix))
	}
	fiftyOne := make([]string, 51)
	for i := range fiftyOne {
		fiftyOne[i] = jobFailed
	}

	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"valid", valid("name", "jobs"), 201, ""},
		{"name of 255 bytes", valid("name", strings.Repeat("n", 255)), 201, ""},
		{"name of 255 bytes in 3-byte runes", valid("name", strings.Repeat("€", 85)), 201, ""},
		{"url of 2048 bytes", valid("url", longURL(2048)), 201, ""},
		{"url without path", valid("url", "https://hooks.example.com"), 201, ""},
		{"all event types", valid("events", emulator.EventTypes()), 201, ""},
		{"http url of loopback host rejected by default", valid("url", "http://127.0.0.1:8080/hook"), 400, "storage.webhooks.validation"},
		{"missing name", valid("name", nil), 400, "storage.webhooks.validation"},
		{"empty name", valid("name", ""), 400, "storage.webhooks.validation"},
		{"name of 256 bytes", valid("name", strings.Repeat("n", 256)), 400, "storage.webhooks.validation"},
		{"name of 258 bytes in 3-byte runes", valid("name", strings.Repeat("€", 86)), 400, "storage.webhooks.validation"},
		{"name not a string", valid("name", 42), 400, "storage.webhooks.validation"},
		{"missing url", valid("url", nil), 400, "storage.webhooks.validation"},
		{"empty url", valid("url", ""), 400, "storage.webhooks.validation"},
		{"relative url", valid("url", "/hook"), 400, "storage.webhooks.validation"},
		{"url without host", valid("url", "https:///hook"), 400, "storage.webhooks.validation"},
		{"url of 2049 bytes", valid("url", longURL(2049)), 400, "storage.webhooks.validation"},
		{"http url", valid("url", "http://hooks.example.com/"), 400, "storage.webhooks.validation"},
		{"ftp url", valid("url", "ftp://hooks.example.com/"), 400, "storage.webhooks.validation"},
		{"url with user info", valid("url", "https://user:pass@hooks.example.com/"), 400, "storage.webhooks.validation"},
		{"url with invalid port", valid("url", "https://hooks.example.com:port/"), 400, "storage.webhooks.validation"},
		{"missing events", valid("events", nil), 400, "storage.webhooks.validation"},
		{"no events", valid("events", []string{}), 400, "storage.webhooks.validation"},
		{"51 events", valid("events", fiftyOne), 400, "storage.webhooks.validation"},
		{"duplicate event", valid("events", []string{jobFailed, jobSuccess, jobFailed}), 400, "storage.webhooks.validation"},
		{"unknown event", valid("events", []string{"storage.jobExploded"}), 400, "storage.webhooks.validation"},
		{"events not an array", valid("events", jobFailed), 400, "storage.webhooks.validation"},
		{"events null", `{"name":"a","url":"https://a.example.com/","events":null}`, 400, "storage.webhooks.validation"},
		{"malformed JSON", `{"name": "jobs",`, 400, "storage.malformedRequest"},
		{"JSON array", `[]`, 400, "storage.malformedRequest"},
		{"empty body", ``, 400, "storage.malformedRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := startServer(t, emulator.Options{})
			resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA, tc.body)
			if tc.code == "" {
				if resp.status != tc.status {
					t.Fatalf("status = %d, expected %d; body %s", resp.status, tc.status, resp.body)
				}
				return
			}
			expectError(t, resp, tc.status, tc.code)
			if webhooks := server.Webhooks(projectA); len(webhooks) != 0 {
				t.Errorf("an invalid create stored %d webhooks", len(webhooks))
			}
		})
	}
}

func TestCreateWebhookErrorOmitsURL(t *testing.T) {
	server := startServer(t, emulator.Options{})

	resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA,
		`{"name":"a","url":"http://hooks.example.com/?key=receiver-secret","events":["storage.jobFailed"]}`)
	body := expectError(t, resp, http.StatusBadRequest, "storage.webhooks.validation")
	if strings.Contains(body.Error, "receiver-secret") {
		t.Errorf("error message repeats the URL: %q", body.Error)
	}
}

func TestCreateWebhookHTTPLoopback(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})

	for _, url := range []string{"http://127.0.0.1:8080/hook", "http://127.8.9.10/hook", "http://[::1]:9000/", "http://localhost:3000/x", "http://LOCALHOST./x"} {
		resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA,
			fmt.Sprintf(`{"name":"a","url":%q,"events":["storage.jobFailed"]}`, url))
		if resp.status != http.StatusCreated {
			t.Errorf("%s: status = %d, expected 201; body %s", url, resp.status, resp.body)
		}
	}
	for _, url := range []string{"http://10.0.0.1/hook", "http://hooks.example.com/", "http://localhost.example.com/", "http://0.0.0.0/"} {
		resp := call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA,
			fmt.Sprintf(`{"name":"a","url":%q,"events":["storage.jobFailed"]}`, url))
		expectError(t, resp, http.StatusBadRequest, "storage.webhooks.validation")
	}
}

func TestUpdateWebhook(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
	path := "/v2/storage/webhooks/" + created.ID

	resp := call(t, server, http.MethodPut, path, tokenA, `{"events":["storage.jobSucceeded","storage.jobFailed"]}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, expected 200; body %s", resp.status, resp.body)
	}
	updated := decode[webhook](t, resp)
	if updated.Name != "jobs" || updated.URL != "https://hooks.example.com/a" {
		t.Errorf("update of events changed name or url: %+v", updated)
	}
	if strings.Join(updated.Events, ",") != "storage.jobSucceeded,storage.jobFailed" {
		t.Errorf("events = %v, expected them as sent", updated.Events)
	}
	if updated.CreatedTime != created.CreatedTime {
		t.Errorf("createdTime = %q, expected %q", updated.CreatedTime, created.CreatedTime)
	}

	updated = decode[webhook](t, call(t, server, http.MethodPut, path, tokenA, `{"name":"renamed","url":"https://hooks.example.com/b"}`))
	if updated.Name != "renamed" || updated.URL != "https://hooks.example.com/b" || len(updated.Events) != 2 {
		t.Errorf("updated webhook = %+v", updated)
	}

	got := decode[webhook](t, call(t, server, http.MethodGet, path, tokenA, ""))
	if got.Name != "renamed" || got.URL != "https://hooks.example.com/b" {
		t.Errorf("GET after PUT = %+v", got)
	}

	invalid := []string{
		`{}`,
		`{"name":""}`,
		`{"url":"http://hooks.example.com/"}`,
		`{"events":[]}`,
		`{"events":["storage.unknown"]}`,
		`{"name":null}`,
	}
	for _, body := range invalid {
		expectError(t, call(t, server, http.MethodPut, path, tokenA, body), http.StatusBadRequest, "storage.webhooks.validation")
	}
	expectError(t, call(t, server, http.MethodPut, path, tokenA, `not json`), http.StatusBadRequest, "storage.malformedRequest")
	expectError(t, call(t, server, http.MethodPut, "/v2/storage/webhooks/999", tokenA, `{"name":"x"}`), http.StatusNotFound, "storage.webhooks.notFound")
}

func TestDeleteWebhook(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
	path := "/v2/storage/webhooks/" + created.ID

	resp := call(t, server, http.MethodDelete, path, tokenA, "")
	if resp.status != http.StatusNoContent {
		t.Fatalf("status = %d, expected 204", resp.status)
	}
	if len(resp.body) != 0 {
		t.Errorf("204 response has a body: %q", resp.body)
	}
	expectError(t, call(t, server, http.MethodGet, path, tokenA, ""), http.StatusNotFound, "storage.webhooks.notFound")
	expectError(t, call(t, server, http.MethodDelete, path, tokenA, ""), http.StatusNotFound, "storage.webhooks.notFound")
	if list := decode[[]webhook](t, call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")); len(list) != 0 {
		t.Errorf("list after delete = %+v, expected empty", list)
	}
}

func TestListWebhooksEmptyIsArray(t *testing.T) {
	server := startServer(t, emulator.Options{})

	resp := call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	if strings.TrimSpace(string(resp.body)) != "[]" {
		t.Errorf("body = %q, expected []", resp.body)
	}
}

func TestWebhooksOfOtherProjectsInvisible(t *testing.T) {
	server := startServer(t, emulator.Options{})
	ofA := createWebhook(t, server, tokenA, "a", "https://hooks.example.com/a", jobFailed)
	ofB := createWebhook(t, server, tokenB, "b", "https://hooks.example.com/b", jobFailed)
	if ofA.ID == ofB.ID {
		t.Fatalf("both projects got webhook id %q, expected ids unique across projects", ofA.ID)
	}

	list := decode[[]webhook](t, call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenB, ""))
	if len(list) != 1 || list[0].ID != ofB.ID {
		t.Errorf("project B lists %+v, expected only webhook %s", list, ofB.ID)
	}

	pathOfA := "/v2/storage/webhooks/" + ofA.ID
	expectError(t, call(t, server, http.MethodGet, pathOfA, tokenB, ""), http.StatusNotFound, "storage.webhooks.notFound")
	expectError(t, call(t, server, http.MethodPut, pathOfA, tokenB, `{"name":"stolen"}`), http.StatusNotFound, "storage.webhooks.notFound")
	expectError(t, call(t, server, http.MethodDelete, pathOfA, tokenB, ""), http.StatusNotFound, "storage.webhooks.notFound")

	stored, ok := server.Webhook(projectA, ofA.ID)
	if !ok || stored.Name != "a" {
		t.Errorf("project B changed project A's webhook: %+v, %v", stored, ok)
	}
	if _, ok := server.Webhook(projectB, ofA.ID); ok {
		t.Errorf("Webhook(projectB, %q) found project A's webhook", ofA.ID)
	}
}

func TestNormalizeWebhooks(t *testing.T) {
	body := `{"name":"n","url":"https://hooks.example.com?x=1","events":["storage.tableCreated","storage.jobFailed"]}`

	t.Run("on", func(t *testing.T) {
		server := startServer(t, emulator.Options{NormalizeWebhooks: true})
		created := decode[webhook](t, call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA, body))
		if created.URL != "https://hooks.example.com/?x=1" {
			t.Errorf("url = %q, expected https://hooks.example.com/?x=1", created.URL)
		}
		if strings.Join(created.Events, ",") != "storage.jobFailed,storage.tableCreated" {
			t.Errorf("events = %v, expected them sorted", created.Events)
		}

		updated := decode[webhook](t, call(t, server, http.MethodPut, "/v2/storage/webhooks/"+created.ID, tokenA,
			`{"url":"https://other.example.com","events":["storage.tableDeleted","storage.jobWaiting"]}`))
		if updated.URL != "https://other.example.com/" || strings.Join(updated.Events, ",") != "storage.jobWaiting,storage.tableDeleted" {
			t.Errorf("updated = %+v, expected a normalized url and sorted events", updated)
		}
	})

	t.Run("off", func(t *testing.T) {
		server := startServer(t, emulator.Options{})
		created := decode[webhook](t, call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA, body))
		if created.URL != "https://hooks.example.com?x=1" {
			t.Errorf("url = %q, expected it as sent", created.URL)
		}
		if strings.Join(created.Events, ",") != "storage.tableCreated,storage.jobFailed" {
			t.Errorf("events = %v, expected them as sent", created.Events)
		}
	})
}

func TestUnknownPathAndMethod(t *testing.T) {
	server := startServer(t, emulator.Options{})

	for _, path := range []string{"/", "/v2/storage/", "/v2/storage/webhooks/", "/v2/storage/webhooks/1/extra", "/v2/storage/buckets"} {
		expectError(t, call(t, server, http.MethodGet, path, tokenA, ""), http.StatusNotFound, "storage.notFound")
	}

	resp := call(t, server, http.MethodDelete, "/v2/storage/webhooks", tokenA, "")
	expectError(t, resp, http.StatusMethodNotAllowed, "storage.methodNotAllowed")
	if allow := resp.header.Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow = %q, expected \"GET, POST\"", allow)
	}
	expectError(t, call(t, server, http.MethodPost, "/v2/storage/tokens/verify", tokenA, ""), http.StatusMethodNotAllowed, "storage.methodNotAllowed")
}

func TestOutOfBandChanges(t *testing.T) {
	server := startServer(t, emulator.Options{NormalizeWebhooks: true})
	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)

	edited := server.PutWebhook(projectA, emulator.StoredWebhook{
		ID: created.ID, Name: "edited by hand", URL: "https://hooks.example.com", Events: []string{jobSuccess, jobFailed},
	})
	if edited.Secret != created.Secret {
		t.Errorf("an out-of-band edit without a secret changed the secret")
	}
	if edited.URL != "https://hooks.example.com/" || edited.Events[0] != jobFailed {
		t.Errorf("edited = %+v, expected NormalizeWebhooks to apply", edited)
	}
	got := decode[webhook](t, call(t, server, http.MethodGet, "/v2/storage/webhooks/"+created.ID, tokenA, ""))
	if got.Name != "edited by hand" || got.CreatedTime != created.CreatedTime {
		t.Errorf("API returns %+v after the out-of-band edit", got)
	}

	added := server.PutWebhook(projectA, emulator.StoredWebhook{Name: "added by hand", URL: "https://x.example.com/", Events: []string{jobFailed}})
	if added.ID == "" || added.ID == created.ID || len(added.Secret) < 64 || added.CreatedTime.IsZero() {
		t.Errorf("added = %+v, expected a new id, a secret and a created time", added)
	}
	next := createWebhook(t, server, tokenA, "after", "https://hooks.example.com/c", jobFailed)
	if next.ID == added.ID {
		t.Errorf("API reused id %q of an out-of-band webhook", next.ID)
	}

	withID := server.PutWebhook(projectA, emulator.StoredWebhook{ID: "500", Name: "chosen id", URL: "https://x.example.com/", Events: []string{jobFailed}})
	if withID.ID != "500" {
		t.Errorf("id = %q, expected 500", withID.ID)
	}
	if later := createWebhook(t, server, tokenA, "later", "https://hooks.example.com/d", jobFailed); later.ID != "501" {
		t.Errorf("next API id = %q, expected 501", later.ID)
	}

	if !server.DeleteWebhookOutOfBand(projectA, created.ID) {
		t.Errorf("DeleteWebhookOutOfBand returned false for an existing webhook")
	}
	if server.DeleteWebhookOutOfBand(projectA, created.ID) {
		t.Errorf("DeleteWebhookOutOfBand returned true for a deleted webhook")
	}
	if server.DeleteWebhookOutOfBand(projectB, added.ID) {
		t.Errorf("DeleteWebhookOutOfBand deleted a webhook of another project")
	}
	expectError(t, call(t, server, http.MethodGet, "/v2/storage/webhooks/"+created.ID, tokenA, ""), http.StatusNotFound, "storage.webhooks.notFound")
}

func TestWebhooksReturnsCopies(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)

	list := server.Webhooks(projectA)
	list[0].Events[0] = "changed"
	list[0].Name = "changed"
	stored, _ := server.Webhook(projectA, created.ID)
	if stored.Events[0] != jobFailed || stored.Name != "jobs" {
		t.Errorf("changing the returned webhook changed the stored one: %+v", stored)
	}
}

func TestRequestCounters(t *testing.T) {
	server := startServer(t, emulator.Options{})
	createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
	call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/webhooks/1", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/webhooks/2", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/tokens/verify", "unknown", "")
	call(t, server, http.MethodGet, "/nowhere", "", "")
	call(t, server, http.MethodGet, "/_emulator/healthz", "", "")

	counts := []struct {
		method, endpoint string
		expected         int
	}{
		{"", "", 6},
		{http.MethodPost, emulator.EndpointWebhooks, 1},
		{http.MethodGet, emulator.EndpointWebhooks, 1},
		{"", emulator.EndpointWebhook, 2},
		{"get", emulator.EndpointWebhook, 2},
		{http.MethodGet, "", 5},
		{"", emulator.EndpointVerify, 1},
		{"", emulator.EndpointUnknown, 1},
		{http.MethodDelete, "", 0},
	}
	for _, c := range counts {
		if got := server.Count(c.method, c.endpoint); got != c.expected {
			t.Errorf("Count(%q, %q) = %d, expected %d", c.method, c.endpoint, got, c.expected)
		}
	}

	requests := server.Requests()
	if len(requests) != 6 {
		t.Fatalf("len(Requests()) = %d, expected 6", len(requests))
	}
	first := requests[0]
	if first.Method != http.MethodPost || first.Endpoint != emulator.EndpointWebhooks || first.Path != "/v2/storage/webhooks" ||
		first.TokenID != tokenIDA || first.Status != http.StatusCreated || first.Fault != "" || first.Time.IsZero() {
		t.Errorf("first request = %+v", first)
	}
	if requests[3].Status != http.StatusNotFound || requests[3].Path != "/v2/storage/webhooks/2" {
		t.Errorf("fourth request = %+v, expected the 404 of webhook 2", requests[3])
	}
	if requests[4].TokenID != "" || requests[4].Status != http.StatusUnauthorized {
		t.Errorf("request with an unknown token = %+v, expected no token id and 401", requests[4])
	}

	server.ResetRequests()
	if got := server.Count("", ""); got != 0 {
		t.Errorf("Count after ResetRequests = %d, expected 0", got)
	}
	if got := len(server.Requests()); got != 0 {
		t.Errorf("len(Requests()) after ResetRequests = %d, expected 0", got)
	}
}

func TestLatencyOption(t *testing.T) {
	server := startServer(t, emulator.Options{Latency: 80 * time.Millisecond})

	started := time.Now()
	call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	if elapsed := time.Since(started); elapsed < 80*time.Millisecond {
		t.Errorf("request took %s, expected at least the latency of 80ms", elapsed)
	}

	started = time.Now()
	call(t, server, http.MethodGet, "/_emulator/healthz", "", "")
	if elapsed := time.Since(started); elapsed >= 80*time.Millisecond {
		t.Errorf("admin request took %s, expected no added latency", elapsed)
	}
}

func TestConcurrentClients(t *testing.T) {
	server := startServer(t, emulator.Options{NormalizeWebhooks: true})
	const workers, perWorker = 8, 10

	var wg sync.WaitGroup
	ids := make(chan string, workers*perWorker)
	for worker := range workers {
		wg.Go(func() {
			token := tokenA
			if worker%2 == 1 {
				token = tokenB
			}
			for i := range perWorker {
				body := fmt.Sprintf(`{"name":"w%d-%d","url":"https://hooks.example.com","events":["storage.jobFailed"]}`, worker, i)
				resp, err := send(http.DefaultClient, server, http.MethodPost, "/v2/storage/webhooks", token, body)
				if err != nil || resp.status != http.StatusCreated {
					t.Errorf("create failed: %v, status %d", err, resp.status)
					return
				}
				var created webhook
				_ = json.Unmarshal(resp.body, &created)
				ids <- created.ID
				_, _ = send(http.DefaultClient, server, http.MethodGet, "/v2/storage/webhooks", token, "")
				_, _ = send(http.DefaultClient, server, http.MethodPut, "/v2/storage/webhooks/"+created.ID, token, `{"name":"x"}`)
				server.Webhooks(projectA)
				server.Count("", "")
			}
		})
	}
	wg.Wait()
	close(ids)

	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %q was given out twice", id)
		}
		seen[id] = true
	}
	if total := len(server.Webhooks(projectA)) + len(server.Webhooks(projectB)); total != workers*perWorker {
		t.Errorf("stored %d webhooks, expected %d", total, workers*perWorker)
	}
	if got := server.Count(http.MethodPost, emulator.EndpointWebhooks); got != workers*perWorker {
		t.Errorf("Count(POST) = %d, expected %d", got, workers*perWorker)
	}
}

func TestListenRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0", "example.com:0", "no-port"} {
		server := emulator.New(emulator.Options{})
		if err := server.Listen(addr); err == nil {
			server.Close()
			t.Errorf("Listen(%q) succeeded, expected an error", addr)
		}
	}

	server := emulator.New(emulator.Options{})
	if err := server.Listen("localhost:0"); err != nil {
		t.Fatalf("Listen(localhost:0) failed: %v", err)
	}
	defer server.Close()
	if !strings.HasPrefix(server.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, expected http://127.0.0.1:PORT", server.URL())
	}
	if err := server.Start(); err == nil {
		t.Errorf("a second Start succeeded, expected an error")
	}
}
