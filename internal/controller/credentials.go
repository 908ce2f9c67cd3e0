package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// Token Secrets are read with an uncached reader. The manager's Secret cache
// holds only the Secrets the operator writes (see LabelManagedBy), so that an
// operator in a cluster with many unrelated Secrets does not keep all of them
// in memory. Token Secrets belong to users and carry no such label. The
// KeboolaProject controller gives them the label LabelTokenSecret, watches
// only Secrets with that label through a separate metadata-only informer
// (see keboolaproject_tokensecret.go), and reads their content here, once per
// pass.

// errTokenSecretNotFound and errTokenKeyMissing describe a token Secret that
// cannot be used. Their messages name the Secret and the key but never the
// value.
var (
	errTokenSecretNotFound = errors.New("token Secret not found")
	errTokenKeyMissing     = errors.New("token Secret key missing or empty")
)

// tokenSecretError is a token Secret problem whose message is a condition
// message: full sentences that end with what the user should do.
type tokenSecretError struct {
	sentinel error
	message  string
}

func (e *tokenSecretError) Error() string { return e.message }
func (e *tokenSecretError) Unwrap() error { return e.sentinel }

// tokenSecretKey returns the effective key of a token Secret reference.
func tokenSecretKey(ref keboolav1.SecretKeyReference) string {
	if ref.Key == "" {
		return keboolav1.DefaultTokenSecretKey
	}
	return ref.Key
}

// readToken returns the Storage API token of project. It returns an error
// that wraps errTokenSecretNotFound or errTokenKeyMissing when the Secret
// cannot provide a token, and the reader's error otherwise.
func readToken(ctx context.Context, reader client.Reader, project *keboolav1.KeboolaProject) ([]byte, error) {
	ref := project.Spec.TokenSecretRef
	key := tokenSecretKey(ref)

	var secret corev1.Secret
	err := reader.Get(ctx, types.NamespacedName{Namespace: project.Namespace, Name: ref.Name}, &secret)
	if apierrors.IsNotFound(err) {
		return nil, &tokenSecretError{errTokenSecretNotFound, fmt.Sprintf(
			"Secret %q does not exist in namespace %q. Create it with the Storage API token under key %q.",
			ref.Name, project.Namespace, key)}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read token Secret %q: %w", ref.Name, err)
	}

	token, ok := secret.Data[key]
	// A token written with "kubectl create secret --from-file" often ends in a
	// newline, which the Storage API would reject.
	token = bytes.TrimSpace(token)
	if !ok {
		return nil, &tokenSecretError{errTokenKeyMissing, fmt.Sprintf(
			"Secret %q has no key %q. Store the Storage API token under that key, or set spec.tokenSecretRef.key to the key that contains it.",
			ref.Name, key)}
	}
	if len(token) == 0 {
		return nil, &tokenSecretError{errTokenKeyMissing, fmt.Sprintf(
			"Secret %q has an empty value under key %q. Store the Storage API token under that key.", ref.Name, key)}
	}
	return token, nil
}

// projectAPI returns a Storage API client for project, using the stack URL
// of its spec and the token of its Secret.
func projectAPI(ctx context.Context, reader client.Reader, clients ClientFactory, project *keboolav1.KeboolaProject) (keboola.API, error) {
	token, err := readToken(ctx, reader, project)
	if err != nil {
		return nil, err
	}
	api, err := clients(project.Spec.StackURL, string(token))
	if err != nil {
		return nil, fmt.Errorf("invalid stack URL %q: %w", project.Spec.StackURL, err)
	}
	return api, nil
}
