package harness

import (
	"os/exec"
	"syscall"
	"time"
)

// Command is a child process started the way the harness starts servers:
// killed if this process dies (Pdeathsig, from the harness's forking
// thread) and in its own process group, so a Ctrl-C in the terminal reaches
// only the parent, which then stops its children in order. The demo runs
// nginx, PHP-FPM and HAProxy with it.
type Command struct {
	proc *process
}

// StartCommand starts cmd (not yet started) as described on Command.
func StartCommand(cmd *exec.Cmd) (*Command, error) {
	p, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	return &Command{proc: p}, nil
}

// PID is the process id, or 0 once it has exited.
func (c *Command) PID() int {
	if c.proc.exited() {
		return 0
	}
	return c.proc.cmd.Process.Pid
}

// Done is closed when the process has exited.
func (c *Command) Done() <-chan struct{} { return c.proc.done }

// ExitErr is what Wait returned; valid once Done is closed.
func (c *Command) ExitErr() error { return c.proc.waitErr }

// Stop sends sig, waits up to timeout for the exit, then kills the process.
func (c *Command) Stop(sig syscall.Signal, timeout time.Duration) {
	if c.proc.exited() {
		return
	}
	_ = c.proc.cmd.Process.Signal(sig)
	select {
	case <-c.proc.done:
	case <-time.After(timeout):
		c.proc.kill()
	}
}
