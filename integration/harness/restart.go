package harness

import (
	"context"
	"errors"
	"sync"
)

// Restart stops the proxy gracefully and starts it again with the config
// file as it is on disk now, not regenerated: a test that made switchyard
// rewrite its own file (SAVE CONFIG TO FILE) sees what a restart loads. The
// listen addresses are the file's, so they stay those of the first start
// unless the test changed them.
func (p *Proxy) Restart(ctx context.Context) error {
	if p.proc == nil {
		return errors.New("switchyard was never started")
	}
	if err := p.stopProcess(); err != nil {
		return err
	}
	p.stopOnce = sync.Once{}
	return p.launch(ctx)
}
