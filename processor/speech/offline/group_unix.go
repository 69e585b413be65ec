//go:build unix

package offline

import (
	"os/exec"
	"syscall"
)

// setProcessGroup runs the command in a process group of its own, so that
// killProcessGroup takes the whole `bash -c "a | b | c"` pipeline down and
// leaves no orphan holding a pipe.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
