package redisledger

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds how many scripts one round trip carries.
const maxBatch = 64

// batcher sends the scripts of concurrent operations together, in one
// pipeline (one write and one read for all of them), without waiting for
// company: the first operation that finds no pipeline on its way sends
// what is queued at that moment, itself included; operations that come
// while it is on its way queue up and go in the next pipeline, sent as
// soon as this one is answered. Each script stays one atomic step in
// Redis.
type batcher struct {
	client redis.Cmdable

	mu      sync.Mutex
	queue   []*scriptCall
	sending bool
}

// scriptCall is one operation's script and, once done is closed, its reply.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	done   chan struct{} // closed when val and err are set
	val    any
	err    error
}

// run runs s, batched with the scripts of concurrent operations. A ctx
// already done sends nothing; if ctx ends while the script is on its way,
// run returns its error, and the script may still run.
func (b *batcher) run(ctx context.Context, s *redis.Script, keys []string, args []any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &scriptCall{script: s, keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	first := !b.sending
	b.sending = true
	b.mu.Unlock()
	if first {
		b.send()
	}
	// A call that gives up is still sent: it may run.
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send takes the queue and sends it, then sends what was queued meanwhile
// from a goroutine of its own (so that no caller waits for the others'
// pipelines), or stops if nothing was.
func (b *batcher) send() {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	calls := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	// The pipeline is not bound to any one caller's context: a caller who
	// gives up must not fail the others. The client's read and write
	// timeouts bound it.
	ctx := context.Background()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, execErr := pipe.Exec(ctx)
	for i, c := range calls {
		c.val, c.err = cmds[i].Result()
		if c.err == nil && c.val == nil {
			// Not sent: the connection failed before (a refused
			// password, say).
			c.err = execErr
		}
		if c.err != nil && strings.HasPrefix(c.err.Error(), "NOSCRIPT") {
			// Redis does not have the script (yet, or any more): send
			// it whole, which caches it for the next pipelines.
			c.val, c.err = c.script.Eval(ctx, b.client, c.keys, c.args...).Result()
		}
		close(c.done)
	}

	b.mu.Lock()
	more := len(b.queue) > 0
	b.sending = more
	b.mu.Unlock()
	if more {
		go b.send()
	}
}
