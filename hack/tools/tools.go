//go:build tools

// Package tools records the development tools that the Makefile builds from
// this module, so that go mod tidy keeps their pinned versions.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
