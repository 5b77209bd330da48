package main

import sdk "github.com/conduitio/conduit-connector-sdk"

// Specification describes the connector to Conduit.
func Specification() sdk.Specification {
	return sdk.Specification{
		Name:        "seed-file-destination",
		Summary:     "The file destination from the Conduit docs page, as written there.",
		Description: "Writes each record's payload to a file named by the record key in a directory. Built exactly as the 'Developing a Destination Connector' page shows it, flaws included.",
		Version:     "v0.1.0",
		Author:      "conformance tests",
	}
}

func main() {
	sdk.Serve(sdk.Connector{
		NewSpecification: Specification,
		NewDestination:   NewDestination,
	})
}
