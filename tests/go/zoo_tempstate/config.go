package fixed14

import (
	"context"

	sdk "github.com/conduitio/conduit-connector-sdk"
)

// DestinationConfig is the destination's configuration; the SDK (v0.13) parses
// the Configure request into it, middleware fields included.
type DestinationConfig struct {
	sdk.DefaultDestinationMiddleware

	// Directory is the path of the directory the records are written to, one
	// file per record key.
	Directory string `json:"directory" validate:"required"`

	// parsed, when set, is called once the whole config is valid: the
	// lifecycle guard learns this way that Configure succeeded, since the v0.13
	// adapter parses the config itself and never calls the destination.
	parsed func()
}

// Validate checks the middleware settings (the SDK calls it after decoding),
// then tells the lifecycle guard that Configure succeeded.
func (c *DestinationConfig) Validate(ctx context.Context) error {
	if err := c.DefaultDestinationMiddleware.Validate(ctx); err != nil {
		return err
	}
	if c.parsed != nil {
		c.parsed()
	}
	return nil
}
