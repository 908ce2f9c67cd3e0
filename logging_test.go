package main

import (
	"testing"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func TestCapVerbosityStopsBeforeRequestBodies(t *testing.T) {
	// --zap-log-level=10 requests V(10), where client-go logs Secret bodies.
	opts := zap.Options{Level: zapcore.Level(-10)}
	if lowered := capVerbosity(&opts); !lowered {
		t.Error("capVerbosity() = false for V(10), want true")
	}
	if !opts.Level.Enabled(zapcore.Level(-maxLogVerbosity)) {
		t.Errorf("V(%d) is disabled, want enabled", maxLogVerbosity)
	}
	if opts.Level.Enabled(zapcore.Level(-8)) {
		t.Error("V(8) is enabled, where client-go logs request and response bodies")
	}
}

func TestCapVerbosityKeepsLowerLevels(t *testing.T) {
	opts := zap.Options{Level: zapcore.Level(-2)}
	if lowered := capVerbosity(&opts); lowered {
		t.Error("capVerbosity() = true for V(2), want false")
	}
	if !opts.Level.Enabled(zapcore.Level(-2)) || opts.Level.Enabled(zapcore.Level(-3)) {
		t.Error("the capped level differs from V(2) below the cap")
	}
	if !opts.Level.Enabled(zapcore.InfoLevel) {
		t.Error("info is disabled, want enabled")
	}
}

func TestCapVerbosityKeepsDefault(t *testing.T) {
	opts := zap.Options{}
	if capVerbosity(&opts) || opts.Level != nil {
		t.Errorf("capVerbosity() changed the default level to %v", opts.Level)
	}
}
