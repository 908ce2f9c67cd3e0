package localenv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// SamplesDir is the kustomization of the sample objects, relative to the
// module root.
const SamplesDir = "config/samples"

// Samples are the objects of config/samples and the values that a run
// needs from them. config/samples must contain one KeboolaProject, its
// token Secret and one KeboolaWebhook of that project.
type Samples struct {
	Objects []*unstructured.Unstructured

	// ProjectName is the name of the KeboolaProject.
	ProjectName string
	// ProjectID is its spec.expectedProjectID.
	ProjectID int64
	// StackURL is its spec.stackURL.
	StackURL string
	// Token is the Storage API token of its token Secret. It is a
	// credential: never print it.
	Token string

	// WebhookName is the name of the KeboolaWebhook.
	WebhookName string
	// WebhookURL is its spec.url.
	WebhookURL string
	// SecretName is its spec.secretName, the Secret the operator writes.
	SecretName string
}

// RenderSamples renders config/samples and reads the values of Samples.
func (e *Env) RenderSamples(ctx context.Context) (*Samples, error) {
	objects, err := e.Render(ctx, SamplesDir)
	if err != nil {
		return nil, err
	}
	s := &Samples{Objects: objects}

	project, err := single(objects, "KeboolaProject")
	if err != nil {
		return nil, err
	}
	s.ProjectName = project.GetName()
	s.ProjectID, _, _ = unstructured.NestedInt64(project.Object, "spec", "expectedProjectID")
	s.StackURL, _, _ = unstructured.NestedString(project.Object, "spec", "stackURL")
	if s.ProjectID == 0 || s.StackURL == "" {
		return nil, fmt.Errorf("KeboolaProject %q of %s needs spec.expectedProjectID and spec.stackURL", s.ProjectName, SamplesDir)
	}
	if s.Token, err = sampleToken(objects, project); err != nil {
		return nil, err
	}

	webhook, err := single(objects, "KeboolaWebhook")
	if err != nil {
		return nil, err
	}
	s.WebhookName = webhook.GetName()
	s.WebhookURL, _, _ = unstructured.NestedString(webhook.Object, "spec", "url")
	s.SecretName, _, _ = unstructured.NestedString(webhook.Object, "spec", "secretName")
	if s.WebhookURL == "" || s.SecretName == "" {
		return nil, fmt.Errorf("KeboolaWebhook %q of %s needs spec.url and spec.secretName", s.WebhookName, SamplesDir)
	}
	return s, nil
}

// single returns the only object of kind.
func single(objects []*unstructured.Unstructured, kind string) (*unstructured.Unstructured, error) {
	var found []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s renders %d objects of kind %s, want exactly 1", SamplesDir, len(found), kind)
	}
	return found[0], nil
}

// sampleToken returns the token in the Secret that project references,
// from stringData or data.
func sampleToken(objects []*unstructured.Unstructured, project *unstructured.Unstructured) (string, error) {
	name, _, _ := unstructured.NestedString(project.Object, "spec", "tokenSecretRef", "name")
	key, _, _ := unstructured.NestedString(project.Object, "spec", "tokenSecretRef", "key")
	if key == "" {
		key = "token"
	}
	secret := Find(objects, "Secret", name)
	if secret == nil {
		return "", fmt.Errorf("%s has no Secret %q, the token Secret of KeboolaProject %q", SamplesDir, name, project.GetName())
	}
	if token, ok, _ := unstructured.NestedString(secret.Object, "stringData", key); ok && token != "" {
		return token, nil
	}
	if encoded, ok, _ := unstructured.NestedString(secret.Object, "data", key); ok && encoded != "" {
		token, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			return "", fmt.Errorf("invalid base64 under data.%s of Secret %q: %w", key, name, err)
		}
		return string(token), nil
	}
	return "", fmt.Errorf("the Secret %q of %s has no key %q", name, SamplesDir, key)
}

// SetWebhookEvents sets spec.events of each KeboolaWebhook among objects to
// events. The demo uses it to subscribe the sample webhook to the
// Notification service's events, such as "job-failed", in place of the
// Storage API's "storage.jobFailed". It returns an error when events is
// empty or objects contain no KeboolaWebhook.
func SetWebhookEvents(objects []*unstructured.Unstructured, events []string) error {
	if len(events) == 0 {
		return errors.New("no events to set: a KeboolaWebhook needs at least one")
	}
	found := false
	for _, o := range objects {
		if o.GetKind() != "KeboolaWebhook" {
			continue
		}
		if err := unstructured.SetNestedStringSlice(o.Object, events, "spec", "events"); err != nil {
			return fmt.Errorf("failed to set spec.events of KeboolaWebhook %q: %w", o.GetName(), err)
		}
		found = true
	}
	if !found {
		return errors.New("no KeboolaWebhook among the objects to set spec.events of")
	}
	return nil
}
