package localenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// defaultStopGracePeriod is how long Stop waits after SIGTERM before it
// sends SIGKILL, unless ProcessSpec.StopGracePeriod is set.
const defaultStopGracePeriod = 10 * time.Second

// ProcessSpec describes a process to start.
type ProcessSpec struct {
	// Name names the process in messages and its log file,
	// LogDir/<Name>.log.
	Name string
	// Path is the binary.
	Path string
	Args []string
	// Env is added to the environment of the current process.
	Env []string
	// StopGracePeriod is how long Stop waits after SIGTERM before it sends
	// SIGKILL. Zero means 10 seconds.
	StopGracePeriod time.Duration
}

// Process is a process started by Env.Start. Its standard output and
// standard error go to LogPath.
type Process struct {
	Name    string
	LogPath string

	cmd         *exec.Cmd
	gracePeriod time.Duration
	done        chan struct{}
	waitErr     error
	stopOnce    sync.Once
	stopErr     error
}

// Start starts a process in its own process group, so that a Ctrl-C in the
// terminal reaches only the caller, which then stops the process with
// Close. On Linux the process also gets SIGTERM when the caller dies.
func (e *Env) Start(spec ProcessSpec) (*Process, error) {
	logFile, err := e.createLog(spec.Name)
	if err != nil {
		return nil, err
	}

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = e.ModuleRoot
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = processAttributes()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("failed to start %s: %w", spec.Name, err)
	}

	gracePeriod := spec.StopGracePeriod
	if gracePeriod == 0 {
		gracePeriod = defaultStopGracePeriod
	}
	p := &Process{Name: spec.Name, LogPath: logFile.Name(), cmd: cmd, gracePeriod: gracePeriod, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()

	e.mu.Lock()
	e.processes = append(e.processes, p)
	e.mu.Unlock()
	return p, nil
}

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} {
	return p.done
}

// ExitError returns an error that describes how the process exited, or nil
// while it runs.
func (p *Process) ExitError() error {
	select {
	case <-p.done:
		if p.waitErr == nil {
			return fmt.Errorf("%s exited with status 0", p.Name)
		}
		return fmt.Errorf("%s exited: %w", p.Name, p.waitErr)
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, and SIGKILL to the group if the
// process has not exited after its grace period. It returns an error only when the process
// had to be killed; an exit status after SIGTERM is not an error. Later
// calls return the result of the first.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}

		_ = signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(p.gracePeriod):
		}

		_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.stopErr = fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.Name, p.gracePeriod)
	})
	return p.stopErr
}

// Kill sends SIGKILL to the process group at once, as a crash or an
// out-of-memory kill would end the process, and waits until the process
// has exited. The process gets no chance to clean up. Killing a process
// that has exited does nothing.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signalGroup sends sig to the process group of pid, and to pid alone if
// that fails.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err == nil {
		return nil
	}
	return syscall.Kill(pid, sig)
}

// Tail returns the last lines of a file, or a note that it cannot be read.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	data = bytes.TrimRight(data, "\n")
	if len(data) == 0 {
		return fmt.Sprintf("(%s is empty)", path)
	}
	all := strings.Split(string(data), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// errProcessExited wraps ExitError for waits that end because the process
// they wait for has exited.
var errProcessExited = errors.New("process exited")

// FindLine returns the first line of the file at path that contains every
// one of substrings.
func FindLine(path string, substrings ...string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		matches := true
		for _, s := range substrings {
			if !strings.Contains(line, s) {
				matches = false
				break
			}
		}
		if matches {
			return line, true
		}
	}
	return "", false
}
