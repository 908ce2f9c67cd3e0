package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// writeVerbs are the verbs of apiserver_request_total that change an
// object. Server-side apply is counted as APPLY.
var writeVerbs = map[string]bool{
	"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true,
}

// operatorResources are the resources that the operator writes. The
// kube-apiserver writes others by itself (Leases, EndpointSlices), and no
// other client writes these while the bench waits.
var operatorResources = map[string]bool{
	"keboolawebhooks": true, "keboolaprojects": true, "secrets": true, "events": true,
}

// writeCounts are the kube-apiserver's write counters of operatorResources,
// keyed by "resource[/subresource] VERB".
type writeCounts map[string]float64

func (w writeCounts) total() float64 {
	sum := 0.0
	for _, n := range w {
		sum += n
	}
	return sum
}

// minus returns the counters of w that grew since before, by how much.
func (w writeCounts) minus(before writeCounts) writeCounts {
	diff := writeCounts{}
	for key, n := range w {
		if d := n - before[key]; d != 0 {
			diff[key] = d
		}
	}
	return diff
}

// kubeWrites reads apiserver_request_total from the kube-apiserver's
// metrics endpoint and sums the writes of operatorResources. The
// apiserver's counters carry no user agent, so in the window that the
// caller measures, no client other than the operator may write these
// resources.
func (b *bench) kubeWrites(ctx context.Context) (writeCounts, error) {
	clientset, err := kubernetes.NewForConfig(b.restConfig)
	if err != nil {
		return nil, fmt.Errorf("failed to create the metrics client: %w", err)
	}
	raw, err := clientset.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the kube-apiserver metrics: %w", err)
	}

	counts := writeCounts{}
	const prefix = "apiserver_request_total{"
	for line := range strings.SplitSeq(string(raw), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		end := strings.LastIndex(line, "} ")
		if end < 0 {
			continue
		}
		labels := parseLabels(line[len(prefix):end])
		if !writeVerbs[labels["verb"]] || !operatorResources[labels["resource"]] {
			continue
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(line[end+2:]), 64)
		if err != nil {
			return nil, fmt.Errorf("invalid metric line %q: %w", line, err)
		}
		key := labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		counts[key+" "+labels["verb"]] += value
	}
	return counts, nil
}

// parseLabels parses the labels of a Prometheus text line, such as
// `code="200",verb="GET"`. Label values of apiserver_request_total contain
// no quotes or commas.
func parseLabels(text string) map[string]string {
	labels := map[string]string{}
	for pair := range strings.SplitSeq(text, ",") {
		name, value, ok := strings.Cut(pair, "=")
		if ok {
			labels[name] = strings.Trim(value, `"`)
		}
	}
	return labels
}

// operatorMetricNames are the operator's Prometheus metrics that the bench
// records, each summed over its labels.
var operatorMetricNames = []string{
	"go_memstats_heap_alloc_bytes",
	"go_memstats_heap_inuse_bytes",
	"go_memstats_sys_bytes",
	"go_goroutines",
	"process_cpu_seconds_total",
	"keboola_api_rate_limiter_wait_seconds_sum",
	"keboola_api_rate_limiter_wait_seconds_count",
	"controller_runtime_reconcile_total",
	"controller_runtime_reconcile_time_seconds_sum",
}

// operatorMetrics reads the operator's metrics endpoint and returns the
// metrics of operatorMetricNames.
func (b *bench) operatorMetrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.operatorMetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to read the operator's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read the operator's metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the operator's metrics endpoint returned status %d", resp.StatusCode)
	}

	values := map[string]float64{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if !slices.Contains(operatorMetricNames, name) {
			continue
		}
		fields := strings.Fields(line)
		value, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("invalid metric line %q: %w", line, err)
		}
		values[name] += value
	}
	return values, nil
}

// memory is the resident memory of a process, from /proc/<pid>/status.
type memory struct {
	// PeakKiB is VmHWM, the peak resident set size.
	PeakKiB int64 `json:"vmHWMKiB"`
	// RSSKiB is VmRSS, the current resident set size.
	RSSKiB int64 `json:"vmRSSKiB"`
}

func (m memory) peakMiB() float64 { return float64(m.PeakKiB) / 1024 }
func (m memory) rssMiB() float64  { return float64(m.RSSKiB) / 1024 }

// readMemory reads VmHWM and VmRSS of process pid. It needs Linux.
func readMemory(pid int) (memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		return memory{}, fmt.Errorf("failed to read the operator's memory (Linux only): %w", err)
	}
	defer func() { _ = f.Close() }()

	var m memory
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			m.PeakKiB = n
		case "VmRSS":
			m.RSSKiB = n
		}
	}
	if err := scanner.Err(); err != nil {
		return memory{}, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if m.PeakKiB == 0 || m.RSSKiB == 0 {
		return memory{}, fmt.Errorf("%s has no VmHWM or VmRSS", path)
	}
	return m, nil
}

// percentile returns the q quantile of samples (0.5 is the median, 1 the
// maximum) by the nearest-rank method, or 0 without samples.
func percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// machine describes the computer the bench ran on.
type machine struct {
	CPUs  int    `json:"cpus"`
	Model string `json:"cpuModel"`
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages at
	// the start and the end of the run.
	LoadStart string `json:"loadAverageStart"`
	LoadEnd   string `json:"loadAverageEnd,omitempty"`
	GoVersion string `json:"goVersion"`
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// loadAverage returns the first three fields of /proc/loadavg, or "unknown".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}
