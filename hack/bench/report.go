package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of the figures. docs/performance.md explains each.
const (
	// convergenceTarget is the highest acceptable ratio of the
	// convergence time to its Storage API floor.
	convergenceTarget = 1.5
	// steadyCallsTarget is the highest acceptable number of requests per
	// project and resync period. The ideal is 1, and the margin absorbs a
	// resync that falls just inside the window's edge.
	steadyCallsTarget = 1.1
	// memoryTarget is the highest acceptable ratio of the peak RSS after
	// the unrelated Secrets to the peak RSS before them.
	memoryTarget = 1.2
)

// result is one row of the table.
type result struct {
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	// Baseline is the floor or the value the figure is compared with, and
	// zero when there is none.
	Baseline float64 `json:"baseline,omitempty"`
	// Ratio is Value/Baseline, and zero without a baseline.
	Ratio float64 `json:"ratio,omitempty"`
	// Target is the condition for Pass, or "info" for a figure without one.
	Target string `json:"target"`
	Pass   bool   `json:"pass"`
	Note   string `json:"note,omitempty"`
}

// report is the JSON document that the bench writes.
type report struct {
	Started  time.Time `json:"started"`
	Duration float64   `json:"durationSeconds"`
	Command  string    `json:"command"`
	Machine  machine   `json:"machine"`
	// Parameters are the settings of the run.
	Parameters map[string]any `json:"parameters"`
	Results    []result       `json:"results"`
	// Details are raw counters behind the results, for comparing runs.
	Details map[string]any `json:"details"`
}

func newReport(cfg config, started time.Time) report {
	return report{
		Started: started.UTC(),
		// os.Args[0] of "go run" is a temporary file, so the command is
		// recorded as the "go run" command that "make bench" uses.
		Command: commandLine(os.Args[1:]),
		Machine: machine{
			CPUs:      runtime.NumCPU(),
			Model:     cpuModel(),
			LoadStart: loadAverage(),
			GoVersion: runtime.Version(),
		},
		Parameters: map[string]any{
			"webhooks":                cfg.webhooks,
			"projects":                cfg.projects,
			"secrets":                 cfg.secrets,
			"secretSizeBytes":         cfg.secretSize,
			"latency":                 cfg.latency.String(),
			"maxConcurrentPerProject": cfg.maxConcurrent,
			"resyncPeriod":            cfg.resyncPeriod.String(),
			"steadyPeriods":           cfg.steadyPeriods,
			"latencySamples":          cfg.latencySamples,
			"operatorFlags":           cfg.operatorFlags(),
		},
		Details: map[string]any{},
	}
}

func (r *report) add(row result) {
	r.Results = append(r.Results, row)
}

// figureGroups orders the rows of the table by the word before the colon
// of each figure.
var figureGroups = []string{"Convergence", "Steady state", "Latency", "Memory"}

// finish records the end of the run and groups the rows.
func (r *report) finish() {
	r.Duration = time.Since(r.Started).Seconds()
	r.Machine.LoadEnd = loadAverage()
	slices.SortStableFunc(r.Results, func(a, b result) int {
		return groupIndex(a.Figure) - groupIndex(b.Figure)
	})
}

func groupIndex(figure string) int {
	group, _, _ := strings.Cut(figure, ":")
	if i := slices.Index(figureGroups, group); i >= 0 {
		return i
	}
	return len(figureGroups)
}

// printTable writes the results as an aligned text table.
func (r *report) printTable(out io.Writer) {
	fmt.Fprintf(out, "\nMachine: %d CPUs, %s, load average %s at the start and %s at the end\n\n",
		r.Machine.CPUs, r.Machine.Model, r.Machine.LoadStart, r.Machine.LoadEnd)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tvalue\tfloor/baseline\tratio\ttarget\tresult")
	for _, row := range r.Results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n",
			row.Figure, formatValue(row.Value, row.Unit), formatBaseline(row.Baseline, row.Unit),
			formatRatio(row.Ratio), row.Target, verdict(row))
	}
	_ = w.Flush()
	fmt.Fprintln(out)
	for _, row := range r.Results {
		if row.Note != "" {
			fmt.Fprintf(out, "- %s: %s\n", row.Figure, row.Note)
		}
	}
}

// writeJSON writes the report to path, creating its directory.
func (r *report) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create the directory of %s: %w", path, err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode the results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write the results: %w", err)
	}
	return nil
}

// commandLine returns the "go run" command with args, each argument that
// contains a space in single quotes.
func commandLine(args []string) string {
	words := []string{"go run ./hack/bench"}
	for _, arg := range args {
		if strings.ContainsAny(arg, " \t") {
			arg = "'" + arg + "'"
		}
		words = append(words, arg)
	}
	return strings.Join(words, " ")
}

func formatValue(v float64, unit string) string {
	text := fmt.Sprintf("%.2f", v)
	if v == float64(int64(v)) {
		text = fmt.Sprintf("%d", int64(v))
	}
	if unit != "" {
		text += " " + unit
	}
	return text
}

func formatBaseline(v float64, unit string) string {
	if v == 0 {
		return "-"
	}
	return formatValue(v, unit)
}

func formatRatio(ratio float64) string {
	if ratio == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", ratio)
}

func verdict(row result) string {
	switch {
	case row.Target == "info":
		return "info"
	case row.Pass:
		return "pass"
	default:
		return "FAIL"
	}
}
