//go:build tools

// Package upstream pins the upstream Conduit file connector
// (github.com/conduitio/conduit-connector-file v0.9.0, built on
// conduit-connector-sdk v0.12.0, plugin protocol v2) so that it can be built
// with `go build github.com/conduitio/conduit-connector-file/cmd/connector`
// from this directory. `go install ...@v0.9.0` does not work behind a proxy
// that refuses the module's version list.
package upstream

import (
	_ "github.com/conduitio/conduit-connector-file/cmd/connector"
)
