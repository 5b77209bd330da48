package main

import (
	fixed13 "conformance.test/fixed13"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

func main() {
	sdk.Serve(fixed13.Connector)
}
