//go:build unix

package processor

import (
	"os/exec"
	"syscall"
)

// setProcessGroup runs the command in a process group of its own and makes
// cancellation kill the whole group: `sh -c "a | b"` leaves no orphans
// holding the pipes.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
}
