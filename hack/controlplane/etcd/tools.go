//go:build tools

// Package etcd records the etcd server command that the Makefile builds from
// this module, so that go mod tidy keeps its dependencies.
package etcd

import _ "go.etcd.io/etcd/server/v3"
