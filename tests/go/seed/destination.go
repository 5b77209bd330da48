// Package main is the file destination exactly as the Conduit docs page
// "Developing a Destination Connector" writes it, adapted only where the page's
// code does not compile against conduit-connector-sdk v0.12.0 (method
// signatures, the ParseConfig call, and the writeToFile helper the page leaves
// out). Its flaws are kept on purpose: the conformance suite must find them.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

type Destination struct {
	sdk.UnimplementedDestination

	config DestinationConfig
}

func NewDestination() sdk.Destination {
	// Create Destination and wrap it in the default middleware.
	return sdk.DestinationWithMiddleware(&Destination{}, sdk.DefaultDestinationMiddleware()...)
}

func (d *Destination) Parameters() config.Parameters {
	return d.config.Parameters()
}

func (d *Destination) Configure(ctx context.Context, cfg config.Config) error {
	// v0.12: ParseConfig takes the context and the parameters (middleware
	// parameters included, as the SDK documents).
	err := sdk.Util.ParseConfig(ctx, cfg, &d.config, NewDestination().Parameters())
	if err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	// custom validations here
	return nil
}

func (d *Destination) Open(ctx context.Context) error {
	// Retrieve the directory path from the config
	directoryPath := d.config.Directory

	// Check if the directory exists
	if _, err := os.Stat(directoryPath); os.IsNotExist(err) {
		// Create the directory if it doesn't exist
		err := os.MkdirAll(directoryPath, 0755)
		if err != nil {
			return fmt.Errorf("failed to create directory '%s': %w", directoryPath, err)
		}
	} else if err != nil {
		// Return any error other than the directory not existing
		return fmt.Errorf("error checking directory '%s': %w", directoryPath, err)
	}

	// The directory exists (or was just created), so we can proceed
	return nil
}

func (d *Destination) Write(ctx context.Context, recs []opencdc.Record) (int, error) {
	outputDir := d.config.Directory

	for i, r := range recs {
		fileName, ok := r.Key.(opencdc.RawData)
		if !ok || len(fileName) == 0 {
			return i, fmt.Errorf("record key is invalid or not provided, record index: %v", i)
		}

		filePath := filepath.Join(outputDir, string(fileName))
		if err := d.writeToFile(filePath, r.Payload.After.Bytes()); err != nil {
			return i, fmt.Errorf("failed to write record to file '%s', record index: %v, error: %w", filePath, i, err)
		}
		sdk.Logger(ctx).Info().Msgf("Wrote file %s to directory %s\n", string(fileName), outputDir)
	}
	return len(recs), nil
}

// Ack is on the docs page, but the v0.12 Destination interface has no Ack
// (acknowledgements are sent by the SDK). It is kept, unused, as the page has it.
func (d *Destination) Ack(ctx context.Context, position opencdc.Position) error {
	sdk.Logger(ctx).Debug().Msg("Record successfully processed")
	return nil
}

func (d *Destination) Teardown(ctx context.Context) error {
	return nil
}

// writeToFile is used but not shown by the docs page; this is what a reader
// of the page would write.
func (d *Destination) writeToFile(filePath string, data []byte) error {
	return os.WriteFile(filePath, data, 0644)
}
