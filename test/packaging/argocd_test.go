package packaging

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// healthStatus is the table an Argo CD health script returns.
type healthStatus struct {
	Status  string
	Message string
}

// validHealthStatuses are the statuses Argo CD accepts from a script. It
// reports any other value as Unknown.
var validHealthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// runHealthScript runs an Argo CD health check the way Argo CD runs a script
// from argocd-cm without resource.customizations.useOpenLibs. Only the
// package, base and table libraries are open. Argo CD also opens a reduced os
// library, which these scripts do not use. The global obj contains the live
// object, the run times out after one second, and the script returns a table.
func runHealthScript(t *testing.T, script string, obj *unstructured.Unstructured) healthStatus {
	t.Helper()
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatalf("failed to open the Lua library %q: %v", lib.name, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, obj.Object))

	if err := state.DoString(script); err != nil {
		t.Fatalf("health script failed: %v", err)
	}
	table, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health script returned %s, want a table", state.Get(-1).Type())
	}
	result := healthStatus{
		Status:  lua.LVAsString(table.RawGetString("status")),
		Message: lua.LVAsString(table.RawGetString("message")),
	}
	if !validHealthStatuses[result.Status] {
		t.Fatalf("health script returned status %q, which Argo CD does not accept", result.Status)
	}
	return result
}

// toLua converts a value of an unstructured object to a Lua value, as Argo CD
// does for the types that objects from the API server contain: maps and
// slices become tables, and numbers become Lua numbers.
func toLua(state *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		table := state.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(state, item))
		}
		return table
	case map[string]any:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	default:
		panic(fmt.Sprintf("unexpected value of type %T in an unstructured object", value))
	}
}

func readHealthScript(t *testing.T, kind string) string {
	t.Helper()
	return string(readRepoFile(t, "config", "argocd", "health-"+strings.ToLower(kind)+".lua"))
}

func TestArgoCDHealthBothKinds(t *testing.T) {
	for _, kind := range bothKinds {
		script := readHealthScript(t, kind.kind)
		cases := []struct {
			name    string
			fixture statusFixture
			want    healthStatus
		}{
			{
				name:    "no status yet",
				fixture: statusFixture{generation: 1},
				want:    healthStatus{Status: "Progressing", Message: "Waiting for the operator to report status"},
			},
			{
				name:    "ready",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateReady, reason: kind.readyReason, message: "All good"},
				want:    healthStatus{Status: "Healthy", Message: "All good"},
			},
			{
				name:    "ready without message",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateReady, reason: kind.readyReason},
				want:    healthStatus{Status: "Healthy", Message: kind.readyReason},
			},
			{
				name:    "ready for an older generation",
				fixture: statusFixture{generation: 3, observedGeneration: 2, state: stateReady, reason: kind.readyReason, message: "All good"},
				want:    healthStatus{Status: "Progressing", Message: "Waiting for the operator to observe generation 3"},
			},
			{
				name:    "reconciling",
				fixture: statusFixture{generation: 1, observedGeneration: 1, state: stateProgressing, reason: kind.progressingReason, message: "Work in progress"},
				want:    healthStatus{Status: "Progressing", Message: "Work in progress"},
			},
			{
				name:    "transient failure retried",
				fixture: statusFixture{generation: 1, observedGeneration: 1, state: stateProgressing, reason: keboolav1.ReasonRateLimited, message: "Rate limited; retrying in 30s"},
				want:    healthStatus{Status: "Progressing", Message: "Rate limited; retrying in 30s"},
			},
			{
				name:    "stalled",
				fixture: statusFixture{generation: 1, observedGeneration: 1, state: stateStalled, reason: kind.stalledReason, message: "Fix the spec"},
				want:    healthStatus{Status: "Degraded", Message: "Fix the spec"},
			},
			{
				name:    "stalled for an older generation",
				fixture: statusFixture{generation: 2, observedGeneration: 1, state: stateStalled, reason: kind.stalledReason, message: "Fix the spec"},
				want:    healthStatus{Status: "Progressing", Message: "Waiting for the operator to observe generation 2"},
			},
			{
				name:    "being deleted while ready",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateReady, reason: kind.readyReason, message: "All good", deleting: true},
				want:    healthStatus{Status: "Progressing", Message: "Waiting for the operator to finish the deletion"},
			},
			{
				name:    "being deleted",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: kind.deletingState, reason: kind.deletingReason, message: "Cleaning up", deleting: true},
				want:    healthStatus{Status: "Progressing", Message: "Cleaning up"},
			},
			{
				name:    "being deleted and stalled",
				fixture: statusFixture{generation: 2, observedGeneration: 2, state: stateStalled, reason: keboolav1.ReasonDeletionBlocked, message: "Deletion needs the token Secret", deleting: true},
				want:    healthStatus{Status: "Degraded", Message: "Deletion needs the token Secret"},
			},
			{
				// Today only Paused, and WebhooksRemain during deletion, leave
				// Ready=False without Reconciling or Stalled. The script
				// handles any other reason in the same way.
				name:    "not ready with another reason",
				fixture: statusFixture{generation: 1, observedGeneration: 1, state: stateWaiting, reason: "Waiting", message: "Waiting for a user"},
				want:    healthStatus{Status: "Progressing", Message: "Waiting for a user"},
			},
		}
		for _, tc := range cases {
			t.Run(kind.kind+"/"+tc.name, func(t *testing.T) {
				got := runHealthScript(t, script, kind.build(tc.fixture, t))
				if got != tc.want {
					t.Errorf("health = %+v, want %+v", got, tc.want)
				}
			})
		}
	}
}

func TestArgoCDHealthPausedWebhookSuspended(t *testing.T) {
	fixture := statusFixture{
		generation:         1,
		observedGeneration: 1,
		state:              stateWaiting,
		reason:             keboolav1.ReasonPaused,
		message:            "Paused by the keboola.dev/paused annotation",
	}
	got := runHealthScript(t, readHealthScript(t, "KeboolaWebhook"), fixture.webhook(t))
	want := healthStatus{Status: "Suspended", Message: "Paused by the keboola.dev/paused annotation"}
	if got != want {
		t.Errorf("health = %+v, want %+v", got, want)
	}
}

// TestArgoCDHealthNumbersAsStrings covers objects whose numbers reach the
// script as strings, which is how Argo CD converts a json.Number.
func TestArgoCDHealthNumbersAsStrings(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.kind, func(t *testing.T) {
			obj := kind.build(statusFixture{generation: 5, observedGeneration: 4, state: stateReady, reason: kind.readyReason}, t)
			obj.Object["metadata"].(map[string]any)["generation"] = "5"
			obj.Object["status"].(map[string]any)["observedGeneration"] = "4"

			got := runHealthScript(t, readHealthScript(t, kind.kind), obj)
			want := healthStatus{Status: "Progressing", Message: "Waiting for the operator to observe generation 5"}
			if got != want {
				t.Errorf("health = %+v, want %+v", got, want)
			}
		})
	}
}

// TestArgoCDConfigMapEmbedsScripts checks that config/argocd/argocd-cm.yaml
// contains each health script unchanged under the key Argo CD looks it up by.
func TestArgoCDConfigMapEmbedsScripts(t *testing.T) {
	var configMap struct {
		Kind     string
		Metadata struct{ Name string }
		Data     map[string]string
	}
	if err := yaml.Unmarshal(readRepoFile(t, "config", "argocd", "argocd-cm.yaml"), &configMap); err != nil {
		t.Fatalf("failed to parse config/argocd/argocd-cm.yaml: %v", err)
	}
	if configMap.Kind != "ConfigMap" || configMap.Metadata.Name != "argocd-cm" {
		t.Fatalf("config/argocd/argocd-cm.yaml is a %s %q, want the ConfigMap argocd-cm", configMap.Kind, configMap.Metadata.Name)
	}

	var keys []string
	for _, kind := range bothKinds {
		key := "resource.customizations.health." + keboolav1.GroupVersion.Group + "_" + kind.kind
		keys = append(keys, key)
		if configMap.Data[key] != readHealthScript(t, kind.kind) {
			t.Errorf("argocd-cm.yaml key %s differs from config/argocd/health-%s.lua; run \"make argocd-sync\"", key, strings.ToLower(kind.kind))
		}
	}
	var gotKeys []string
	for key := range configMap.Data {
		gotKeys = append(gotKeys, key)
	}
	sort.Strings(gotKeys)
	if strings.Join(gotKeys, ",") != strings.Join(keys, ",") {
		t.Errorf("argocd-cm.yaml keys = %v, want %v", gotKeys, keys)
	}
}
