//go:build tools

// Package kubernetes records the Kubernetes commands that the Makefile builds
// from this module, so that go mod tidy keeps their dependencies.
package kubernetes

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
