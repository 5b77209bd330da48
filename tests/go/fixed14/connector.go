// Package fixed14 is our fixed file destination (tests/go/fixed, SDK v0.12.0)
// ported to conduit-connector-sdk v0.14.2, plus a test hook in the guard
// (FIXED14_PANIC_IN_GUARD). tests/go/fixed13 builds these same files on
// v0.13.3 (overlaid into its module by tests/go_connectors.py), and the zoo
// variants are these files with one patch each (tests/go/zoo). The
// configuration is a struct the SDK parses itself (Config() instead of Parameters() and Configure()), and the
// parameters Conduit sees come from connector.yaml, generated from that struct
// with `conn-sdk-cli specgen` (the v0.13 workflow). The behaviour is the same:
// keys are checked, deletes remove the key's file, files are replaced
// atomically and never written through a symlink, Open refuses a path that is
// not a directory, and a lifecycle guard enforces the call order.
package fixed14

import (
	_ "embed"

	sdk "github.com/conduitio/conduit-connector-sdk"
)

//go:generate conn-sdk-cli specgen

//go:embed connector.yaml
var specs string

// version is what Specify reports (connector.yaml says the same).
var version = "v0.1.0"

// Connector is what cmd/connector serves and what specgen reads.
var Connector = sdk.Connector{
	NewSpecification: sdk.YAMLSpecification(specs, version),
	NewDestination:   NewDestination,
}
