// Package main is the docs page's file destination with its flaws fixed, so
// that it meets the conformance contract (CONTRACT.md) over the plugin protocol:
// keys are checked, deletes remove the key's file, files are replaced
// atomically and never written through a symlink, Open refuses a path that is
// not a directory, and a lifecycle guard enforces the call order that the SDK
// v0.12 adapter does not.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

// tempPrefix starts the name of every temporary file. Any file name is also a
// valid key, so no temporary name can be reserved; the prefix plus
// os.CreateTemp's random part (created with O_EXCL, so an existing file is never
// taken over) makes a clash unlikely, and a temporary file only exists while
// one record is being written.
const tempPrefix = ".~conformance-tmp-"

// maxKeyLen is the longest valid key in bytes (a file name on most systems).
const maxKeyLen = 255

type Destination struct {
	sdk.UnimplementedDestination

	config DestinationConfig
}

// NewDestination returns the destination wrapped in the default middleware and,
// outermost, in the lifecycle guard, so that the guard sees the outcome of the
// whole stack (a middleware may reject a config the inner destination accepted).
func NewDestination() sdk.Destination {
	return newLifecycleGuard(sdk.DestinationWithMiddleware(&Destination{}, sdk.DefaultDestinationMiddleware()...))
}

func (d *Destination) Parameters() config.Parameters {
	return d.config.Parameters()
}

func (d *Destination) Configure(ctx context.Context, cfg config.Config) error {
	var parsed DestinationConfig
	// The middleware parameters must be included, or their keys would be
	// rejected as unknown.
	if err := sdk.Util.ParseConfig(ctx, cfg, &parsed, NewDestination().Parameters()); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	d.config = parsed
	return nil
}

func (d *Destination) Open(_ context.Context) error {
	dir := d.config.Directory
	info, err := os.Stat(dir)
	switch {
	case err == nil && !info.IsDir():
		return fmt.Errorf("directory %q: exists and is not a directory", dir)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("failed to create directory %q: %w", dir, err)
		}
		return nil
	default:
		return fmt.Errorf("cannot access directory %q: %w", dir, err)
	}
}

func (d *Destination) Write(ctx context.Context, recs []opencdc.Record) (int, error) {
	dir := d.config.Directory
	for i, r := range recs {
		name, err := validKey(r.Key)
		if err != nil {
			return i, fmt.Errorf("record %d (position %q): %w", i, r.Position, err)
		}
		path := filepath.Join(dir, name)
		if r.Payload.After == nil {
			if err := removeFile(path); err != nil {
				return i, fmt.Errorf("record %d (position %q): %w", i, r.Position, err)
			}
			continue
		}
		if err := replaceFile(dir, path, r.Payload.After.Bytes()); err != nil {
			return i, fmt.Errorf("record %d (position %q): %w", i, r.Position, err)
		}
	}
	sdk.Logger(ctx).Debug().Int("records", len(recs)).Str("directory", dir).Msg("batch written")
	return len(recs), nil
}

func (d *Destination) Teardown(_ context.Context) error {
	return nil // nothing is held open between calls
}

// validKey returns the file name for a record key, or why the key is invalid.
func validKey(key opencdc.Data) (string, error) {
	raw, ok := key.(opencdc.RawData)
	switch {
	case key == nil:
		return "", errors.New("invalid key: the record has no key")
	case !ok:
		return "", fmt.Errorf("invalid key: must be raw data, got %T", key)
	case len(raw) == 0:
		return "", errors.New("invalid key: empty")
	case len(raw) > maxKeyLen:
		return "", fmt.Errorf("invalid key: %d bytes, at most %d allowed", len(raw), maxKeyLen)
	case bytes.IndexByte(raw, '/') >= 0:
		return "", fmt.Errorf("invalid key %q: contains '/'", []byte(raw))
	case bytes.IndexByte(raw, 0) >= 0:
		return "", fmt.Errorf("invalid key %q: contains NUL", []byte(raw))
	case string(raw) == "." || string(raw) == "..":
		return "", fmt.Errorf("invalid key %q: not a file name", []byte(raw))
	}
	return string(raw), nil
}

// removeFile removes the file at path; an absent file is not an error. It
// unlinks the directory entry itself (a symlink, never its target) and refuses
// to remove a directory.
func removeFile(path string) error {
	err := syscall.Unlink(path)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return fmt.Errorf("failed to delete file %q: %w", path, err)
}

// replaceFile atomically replaces the entry at path with a regular file holding
// data: a temporary file in the same directory is written, closed and renamed
// over path. Renaming replaces a symlink at path instead of following it, and
// fails if a directory is there. The temporary file is removed on any failure.
func replaceFile(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("failed to create a temporary file in %q: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("failed to set the mode of %q: %w", tmpName, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %q: %w", tmpName, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("failed to close %q: %w", tmpName, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("failed to write file %q: %w", path, err)
	}
	return nil
}
