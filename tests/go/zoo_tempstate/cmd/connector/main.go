package main

import (
	fixed14 "conformance.test/zootempstate"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

func main() {
	sdk.Serve(fixed14.Connector)
}
