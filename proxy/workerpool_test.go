package proxy

import (
	"sync"
	"testing"

	"switchyard/internal/mysqltest"
)

// TestWorkerPoolRunsEveryTaskAndStops: tasks handed to busy and idle
// workers all run, and stop ends every worker, so a listener's shutdown
// leaves no goroutine behind.
func TestWorkerPoolRunsEveryTaskAndStops(t *testing.T) {
	var p workerPool
	var ran sync.WaitGroup
	const tasks = 50
	ran.Add(tasks)
	for range tasks {
		p.run(ran.Done)
	}
	ran.Wait()
	p.stop()
}

// TestWorkerPoolHandsTheNextTaskToTheLastIdleWorker: of two idle workers,
// the one that went idle last (its stack the warmest) runs the next task.
func TestWorkerPoolHandsTheNextTaskToTheLastIdleWorker(t *testing.T) {
	var p workerPool
	defer p.stop()
	idle := func() []*worker {
		p.mu.Lock()
		defer p.mu.Unlock()
		return append([]*worker(nil), p.idle...)
	}
	releaseFirst, releaseSecond := make(chan struct{}), make(chan struct{})
	p.run(func() { <-releaseFirst })
	p.run(func() { <-releaseSecond })
	close(releaseFirst)
	mysqltest.Eventually(t, "the first worker idle", func() bool { return len(idle()) == 1 })
	close(releaseSecond)
	mysqltest.Eventually(t, "both workers idle", func() bool { return len(idle()) == 2 })
	before := idle()
	release := make(chan struct{})
	defer close(release)
	p.run(func() { <-release })
	if after := idle(); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("idle workers %v after a task went to one of %v; want the first one left", after, before)
	}
}
