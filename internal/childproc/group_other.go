//go:build !unix

package childproc

import "os/exec"

// SetProcessGroup leaves the default: cancellation kills the command
// itself.
func SetProcessGroup(*exec.Cmd) {}
