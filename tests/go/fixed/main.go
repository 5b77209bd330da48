package main

import sdk "github.com/conduitio/conduit-connector-sdk"

// Specification describes the connector to Conduit.
func Specification() sdk.Specification {
	return sdk.Specification{
		Name:        "fixed-file-destination",
		Summary:     "The file destination from the Conduit docs page, with its flaws fixed.",
		Description: "Writes each record's payload to a file named by the record key in a directory: keys are validated, deletes remove the file, files are replaced atomically, symlinks are never followed, and the call order is enforced.",
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
