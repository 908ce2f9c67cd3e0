package main

import (
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// maxLogVerbosity is the highest V level the operator logs, whatever
// --zap-log-level requests. From V(8) on, client-go logs the bodies of
// Kubernetes requests and responses (k8s.io/client-go/rest, checked with
// v0.37.2), and the body of a Secret contains a Storage API token or a
// signing secret.
const maxLogVerbosity = 7

// cappedLevel enables a level only when it is at most V(maxLogVerbosity)
// and the wrapped LevelEnabler enables it too.
type cappedLevel struct {
	zapcore.LevelEnabler
}

func (l cappedLevel) Enabled(level zapcore.Level) bool {
	return level >= -maxLogVerbosity && l.LevelEnabler.Enabled(level)
}

// capVerbosity limits the level of opts to V(maxLogVerbosity) and reports
// whether the level that opts requested was more verbose. A nil level keeps
// controller-runtime's default, which is at most V(1).
func capVerbosity(opts *zap.Options) bool {
	if opts.Level == nil {
		return false
	}
	lowered := opts.Level.Enabled(zapcore.Level(-maxLogVerbosity - 1))
	opts.Level = cappedLevel{opts.Level}
	return lowered
}
