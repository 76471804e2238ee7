package proxy

import (
	"context"
	"sync"
	"testing"
)

// TestWorkerPoolRunsEveryTaskAndEndsWithItsContext: tasks handed to busy
// and idle workers all run, and every worker exits once the context ends,
// so a listener's shutdown leaves no goroutine behind.
func TestWorkerPoolRunsEveryTaskAndEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := workerPool{tasks: make(chan func())}
	var ran sync.WaitGroup
	const tasks = 50
	ran.Add(tasks)
	for range tasks {
		p.run(ctx, ran.Done)
	}
	ran.Wait()
	cancel()
	p.wait()
}
