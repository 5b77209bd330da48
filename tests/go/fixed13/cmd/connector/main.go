// The fixed destination on SDK v0.13.3: this module is go.mod, go.sum (the
// SDK release) and this file; its package's files are tests/go/fixed14's,
// overlaid by tests/go_connectors.py (target "fixed13"), so build it with
// `python -c "from tests.go_connectors import build; print(build('fixed13'))"`.
package main

import (
	fixed13 "conformance.test/fixed13"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

func main() {
	sdk.Serve(fixed13.Connector)
}
