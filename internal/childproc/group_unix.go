//go:build unix

package childproc

import (
	"os/exec"
	"syscall"
)

// SetProcessGroup runs the command in a process group of its own and makes
// cancellation of its context kill the whole group: `sh -c "a | b"` leaves
// no orphans holding the pipes.
func SetProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
}
