//go:build tools

// Package upstream14 pins the destinations built into Conduit v0.14.0 at the
// versions its go.mod requires (conduit-connector-file v0.10.3,
// conduit-connector-log v0.7.3, conduit-connector-postgres v0.14.0,
// conduit-connector-s3 v0.9.3, all on conduit-connector-sdk v0.14.1). go.mod
// also requires github.com/conduitio/conduit v0.14.0 itself, so that every
// dependency resolves to the version Conduit's own build uses, and so that
// Conduit v0.14.0 itself builds from here (github.com/conduitio/conduit/cmd/conduit):
// each connector is built standalone from exactly the code Conduit v0.14.0
// runs built in:
//
//	go build github.com/conduitio/conduit-connector-file/cmd/connector
//
// from this directory (tests/go_connectors.py does that and caches the result).
package upstream14

import (
	_ "github.com/conduitio/conduit-connector-file/cmd/connector"
	_ "github.com/conduitio/conduit-connector-log/cmd/connector"
	_ "github.com/conduitio/conduit-connector-postgres/cmd/connector"
	_ "github.com/conduitio/conduit-connector-s3/cmd/connector"
)
