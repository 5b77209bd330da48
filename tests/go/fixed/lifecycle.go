package main

import (
	"context"
	"fmt"
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

// lifecycleGuard enforces the contract's call order, which the SDK v0.12
// destination adapter does not: new -> Configure -> Open -> Write* ->
// Teardown, with Teardown allowed in every state and a no-op the second time.
// A failed Configure leaves the state at new; a failed Open leaves a state in
// which only Teardown works. Calls are serialised.
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

func (g *lifecycleGuard) Configure(ctx context.Context, cfg config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateNew {
		return g.refuse("Configure")
	}
	if err := g.Destination.Configure(ctx, cfg); err != nil {
		return err
	}
	g.state = stateConfigured
	return nil
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
