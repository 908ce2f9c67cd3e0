package packaging

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root, relative to this package.
var repoRoot = filepath.Join("..", "..")

// repoPath returns the path of a file given relative to the repository root.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{repoRoot}, elem...)...)
}

// readRepoFile returns the content of a file given relative to the
// repository root.
func readRepoFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(elem...))
	if err != nil {
		t.Fatalf("failed to read %s: %v", filepath.Join(elem...), err)
	}
	return data
}

// decodeManifests splits a multi-document YAML stream into objects. Empty
// documents, which templates that render nothing leave behind, are skipped.
func decodeManifests(t *testing.T, source string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatalf("failed to split the YAML documents of %s: %v", source, err)
		}
		var content map[string]any
		if err := yaml.Unmarshal(doc, &content); err != nil {
			t.Fatalf("failed to parse a YAML document of %s: %v\n%s", source, err, doc)
		}
		if len(content) == 0 {
			continue
		}
		objects = append(objects, &unstructured.Unstructured{Object: content})
	}
}

// objectKey identifies an object in a set of manifests by kind and name.
type objectKey struct {
	kind string
	name string
}

func keyOf(u *unstructured.Unstructured) objectKey {
	return objectKey{kind: u.GetKind(), name: u.GetName()}
}

// indexObjects maps objects by kind and name, and fails on duplicates.
func indexObjects(t *testing.T, source string, objects []*unstructured.Unstructured) map[objectKey]*unstructured.Unstructured {
	t.Helper()
	index := make(map[objectKey]*unstructured.Unstructured, len(objects))
	for _, u := range objects {
		key := keyOf(u)
		if _, ok := index[key]; ok {
			t.Fatalf("%s contains %s %q twice", source, key.kind, key.name)
		}
		index[key] = u
	}
	return index
}

// nested returns the value at path in u, or nil when it is absent.
func nested(u *unstructured.Unstructured, path ...string) any {
	value, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil || !found {
		return nil
	}
	return value
}
