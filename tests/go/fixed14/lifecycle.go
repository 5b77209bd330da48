package fixed14

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

type state int

const (
	stateNew state = iota
	stateConfigured
	stateOpen
	stateOpenFailed
	stateTornDown
)

func (s state) String() string {
	switch s {
	case stateNew:
		return "new"
	case stateConfigured:
		return "configured"
	case stateOpen:
		return "open"
	case stateOpenFailed:
		return "open failed"
	case stateTornDown:
		return "torn down"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// lifecycleGuard enforces the contract's call order, which the SDK's (v0.13.3, v0.14.2)
// destination adapter does not: new -> Configure -> Open -> Write* ->
// Teardown, with Teardown allowed in every state and a no-op the second time.
// A failed Configure leaves the state at new; a failed Open leaves a state in
// which only Teardown works. Calls are serialised. On SDK v0.13 and later the adapter
// parses the Configure request itself: it asks Config() for the struct to
// parse into, so the guard refuses a Configure by handing out a config whose
// validation fails, and learns of a successful one from the config's Validate
// (DestinationConfig.parsed).
type lifecycleGuard struct {
	sdk.Destination

	mu    sync.Mutex
	state state
}

func newLifecycleGuard(d sdk.Destination) *lifecycleGuard {
	return &lifecycleGuard{Destination: d}
}

func (g *lifecycleGuard) refuse(call string) error {
	return fmt.Errorf("lifecycle error: %s is not allowed in state %q (order: Configure, Open, Write..., Teardown)", call, g.state)
}

// refusedConfig is handed to the SDK for a Configure the lifecycle forbids: the
// request is parsed into a throwaway copy of the config (so the destination's
// own config stays as it was), and its validation fails with the lifecycle
// error.
type refusedConfig struct {
	DestinationConfig

	err error
}

func (r *refusedConfig) Validate(context.Context) error { return r.err }

func (g *lifecycleGuard) Config() sdk.DestinationConfig {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateNew {
		return &refusedConfig{err: g.refuse("Configure")}
	}
	return g.Destination.Config()
}

// configured is called by DestinationConfig.Validate once a Configure parsed
// and validated the whole config.
func (g *lifecycleGuard) configured() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateNew {
		g.state = stateConfigured
	}
}

func (g *lifecycleGuard) Open(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateConfigured {
		return g.refuse("Open")
	}
	if err := g.Destination.Open(ctx); err != nil {
		g.state = stateOpenFailed
		return err
	}
	g.state = stateOpen
	return nil
}

func (g *lifecycleGuard) Write(ctx context.Context, recs []opencdc.Record) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateOpen {
		if os.Getenv("FIXED14_PANIC_IN_GUARD") != "" {
			// A test hook: the connector's own code panics where it would refuse,
			// so the suite can tell that from a panic in the SDK's code.
			panic(g.refuse("Write"))
		}
		return 0, g.refuse("Write")
	}
	return g.Destination.Write(ctx, recs)
}

func (g *lifecycleGuard) Teardown(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateTornDown {
		return nil
	}
	g.state = stateTornDown
	return g.Destination.Teardown(ctx)
}

func (g *lifecycleGuard) LifecycleOnCreated(ctx context.Context, cfg config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateConfigured {
		return g.refuse("LifecycleOnCreated")
	}
	return g.Destination.LifecycleOnCreated(ctx, cfg)
}

func (g *lifecycleGuard) LifecycleOnUpdated(ctx context.Context, before, after config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateConfigured {
		return g.refuse("LifecycleOnUpdated")
	}
	return g.Destination.LifecycleOnUpdated(ctx, before, after)
}
