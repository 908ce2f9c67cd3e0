package localenv

import "syscall"

// processAttributes puts a child into its own process group and makes the
// kernel send it SIGTERM when the thread that started it exits, so that no
// child outlives a killed demo or test.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
