//go:build !unix

package processor

import "os/exec"

// setProcessGroup leaves the default: cancellation kills the shell.
func setProcessGroup(*exec.Cmd) {}
