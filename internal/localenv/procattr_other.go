//go:build !linux

package localenv

import "syscall"

// processAttributes puts a child into its own process group. Outside Linux
// there is no parent-death signal, so a child of a killed demo or test keeps
// running.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
