package localenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the paths of the binaries that Build builds.
type Binaries struct {
	Operator string
	Emulator string
	Receiver string
}

// Build builds the operator, the Storage API emulator and the webhook
// receiver into BinDir with one "go build", so the Go build cache makes a
// rebuild of unchanged code fast. Options.Version is stamped into each
// binary that has a main.version variable.
func (e *Env) Build(ctx context.Context) (*Binaries, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is not on PATH: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build",
		"-ldflags", "-X main.version="+e.opts.Version,
		"-o", e.BinDir+string(filepath.Separator),
		".", "./cmd/keboola-emulator", "./cmd/webhook-receiver")
	cmd.Dir = e.ModuleRoot
	output, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go build failed: %w\n%s", err, strings.TrimSpace(string(output)))
	}

	bins := &Binaries{
		Operator: filepath.Join(e.BinDir, "keboola-operator"),
		Emulator: filepath.Join(e.BinDir, "keboola-emulator"),
		Receiver: filepath.Join(e.BinDir, "webhook-receiver"),
	}
	for _, path := range []string{bins.Operator, bins.Emulator, bins.Receiver} {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("go build did not produce %s: %w", path, err)
		}
	}
	return bins, nil
}
