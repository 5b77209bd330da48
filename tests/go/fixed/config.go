package main

import "github.com/conduitio/conduit-commons/config"

// DestinationConfig is the configuration the docs page's code reads.
type DestinationConfig struct {
	// Directory is the path of the directory the records are written to, one
	// file per record key.
	Directory string `json:"directory" validate:"required"`
}

// Parameters is what paramgen would generate for DestinationConfig.
func (DestinationConfig) Parameters() config.Parameters {
	return config.Parameters{
		"directory": {
			Default:     "",
			Description: "Directory is the path of the directory the records are written to, one file per record key.",
			Type:        config.ParameterTypeString,
			Validations: []config.Validation{
				config.ValidationRequired{},
			},
		},
	}
}
