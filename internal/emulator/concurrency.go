package emulator

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// projectLimiter limits the Storage API requests that the emulator handles
// at once for each project, as a stack with a fixed number of workers per
// project would. A request beyond the limit waits in line instead of
// being rejected.
type projectLimiter struct {
	// max is the limit per project. Zero or less means no limit, but the
	// statistics are kept all the same.
	max int

	mu       sync.Mutex
	projects map[int64]*projectSlots
}

// projectSlots is the state of one project: the semaphore and the
// statistics since the last reset.
type projectSlots struct {
	// slots holds one value per request being handled, and is nil without
	// a limit.
	slots    chan struct{}
	inFlight int
	stats    ProjectConcurrency
}

// ProjectConcurrency describes how many requests of one project, to the
// Storage API and the Notification service together, the emulator handled
// at once since it started or since ResetRequests.
type ProjectConcurrency struct {
	ProjectID int64 `json:"projectId"`
	// PeakInFlight is the maximum number of the project's requests that
	// were handled at the same time. It never exceeds
	// Options.MaxConcurrentPerProject when that is set.
	PeakInFlight int `json:"peakInFlight"`
	// Waited is how many requests got a slot only after waiting for it.
	// A request whose client gave up while it waited is not counted.
	Waited int `json:"waited"`
	// WaitSeconds is the total time the requests of Waited waited for their
	// slot, in seconds.
	WaitSeconds float64 `json:"waitSeconds"`
}

func newProjectLimiter(maxPerProject int) *projectLimiter {
	return &projectLimiter{max: maxPerProject, projects: make(map[int64]*projectSlots)}
}

// slotsOf returns the state of projectID, creating it on first use.
func (l *projectLimiter) slotsOf(projectID int64) *projectSlots {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.projects[projectID]
	if !ok {
		p = &projectSlots{stats: ProjectConcurrency{ProjectID: projectID}}
		if l.max > 0 {
			p.slots = make(chan struct{}, l.max)
		}
		l.projects[projectID] = p
	}
	return p
}

// acquire waits for a free slot of projectID and returns the function that
// frees it. It returns false, and nothing to free, when ctx ends first.
func (l *projectLimiter) acquire(ctx context.Context, projectID int64) (release func(), ok bool) {
	p := l.slotsOf(projectID)

	var waited time.Duration
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		default:
			start := time.Now()
			select {
			case p.slots <- struct{}{}:
				waited = time.Since(start)
			case <-ctx.Done():
				return nil, false
			}
		}
	}

	l.mu.Lock()
	p.inFlight++
	p.stats.PeakInFlight = max(p.stats.PeakInFlight, p.inFlight)
	if waited > 0 {
		p.stats.Waited++
		p.stats.WaitSeconds += waited.Seconds()
	}
	l.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			p.inFlight--
			l.mu.Unlock()
			if p.slots != nil {
				<-p.slots
			}
		})
	}, true
}

// snapshot returns the statistics of every project that sent a request,
// ordered by project id.
func (l *projectLimiter) snapshot() []ProjectConcurrency {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := make([]ProjectConcurrency, 0, len(l.projects))
	for _, p := range l.projects {
		list = append(list, p.stats)
	}
	slices.SortFunc(list, func(a, b ProjectConcurrency) int { return cmp.Compare(a.ProjectID, b.ProjectID) })
	return list
}

// reset sets the statistics to zero. Requests in flight keep their slots
// and still count towards the next peak.
func (l *projectLimiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, p := range l.projects {
		p.stats = ProjectConcurrency{ProjectID: id, PeakInFlight: p.inFlight}
	}
}

// Concurrency returns, for every project that sent a Storage API request
// since the emulator started, how many of its requests were handled at once
// and how many waited for a free slot. ResetRequests sets these statistics
// to zero.
func (s *Server) Concurrency() []ProjectConcurrency {
	return s.limiter.snapshot()
}
