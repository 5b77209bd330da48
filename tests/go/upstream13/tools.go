//go:build tools

// Package upstream13 pins the destinations built into Conduit v0.13.3 at the
// versions its go.mod requires (conduit-connector-file v0.10.1,
// conduit-connector-kafka v0.12.1, conduit-connector-log v0.7.1,
// conduit-connector-postgres v0.11.2,
// conduit-connector-s3 v0.9.1, all on
// conduit-connector-sdk v0.13.3). go.mod also requires
// github.com/conduitio/conduit v0.13.3 itself (no package of it is imported),
// so that every dependency resolves to the version Conduit's own build uses:
// each connector is built standalone from exactly the code Conduit v0.13.3
// runs built in:
//
//	go build github.com/conduitio/conduit-connector-file/cmd/connector
//
// from this directory (tests/go_connectors.py does that and caches the result).
package upstream13

import (
	_ "github.com/conduitio/conduit-connector-file/cmd/connector"
	_ "github.com/conduitio/conduit-connector-kafka/cmd/connector"
	_ "github.com/conduitio/conduit-connector-log/cmd/connector"
	_ "github.com/conduitio/conduit-connector-postgres/cmd/connector"
	_ "github.com/conduitio/conduit-connector-s3/cmd/connector"
)
