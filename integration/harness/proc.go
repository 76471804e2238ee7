package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// Pdeathsig fires when the *thread* that forked the child exits, not the
// process. The Go runtime retires OS threads whenever a goroutine exits while
// locked to its thread, so forking from an arbitrary goroutine could get a
// healthy server SIGKILLed at a random later moment. All children are
// therefore forked from one goroutine that locks its thread and never returns.
type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for req := range spawnCh {
				req.reply <- req.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Own process group: a Ctrl-C in the demo's terminal must not reach the
	// servers directly, so the demo decides the shutdown order.
	cmd.SysProcAttr.Setpgid = true
	reply := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, reply: reply}
	return <-reply
}

// process tracks a started child so that readiness polling, Kill and Stop can
// all observe its exit without racing over cmd.Wait.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Ports handed out by this process are never handed out again, so parallel
// clusters in one test binary cannot pick each other's ports even before the
// servers have bound them.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePorts returns n distinct ports that were free a moment ago. All
// listeners stay open until the last one is chosen so that the kernel cannot
// return the same port twice within one call.
func freePorts(n int) ([]int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var (
		ports     []int
		listeners []net.Listener
	)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 1000 {
			return nil, errors.New("harness: could not find free TCP ports on 127.0.0.1")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("harness: finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		port := l.Addr().(*net.TCPAddr).Port
		if portsUsed[port] {
			continue
		}
		portsUsed[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

func freePort() (int, error) {
	ps, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// fileTail returns the last n lines of a file, or a note saying why it could
// not be read; it is meant for error messages, so it never fails.
func fileTail(path string, n int) string {
	return fileTailFrom(path, 0, n)
}

// fileTailFrom is fileTail restricted to what was written after offset, so
// a restart's error shows that start's log rather than an older one.
func fileTailFrom(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const maxRead = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot stat %s: %v)", path, err)
	}
	start := offset
	if st.Size()-start > maxRead {
		start = st.Size() - maxRead
	}
	if start < 0 || start > st.Size() {
		start = 0
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot seek %s: %v)", path, err)
	}
	data, _ := io.ReadAll(f)
	return lastLines(data, n)
}

func lastLines(data []byte, n int) string {
	data = bytes.TrimRight(data, "\n")
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
