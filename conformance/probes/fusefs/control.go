package main

import (
	"sync"
	"syscall"
)

// command is one line the controller sends.
type command struct {
	Cmd    string   `json:"cmd"`              // reset, count, inject, limit, unlimited, removable, shortwrites, state, unsynced
	Op     string   `json:"op,omitempty"`     // inject: open, write, fsync, rename or remove
	Nth    int      `json:"nth,omitempty"`    // inject: the call (1-based, per op) that fails
	Errno  int      `json:"errno,omitempty"`  // inject, limit: the error to fail with
	Sticky bool     `json:"sticky,omitempty"` // inject: every changing call fails after the first fault
	Free   int64    `json:"free,omitempty"`   // limit: bytes the disk can still store
	Paths  []string `json:"paths,omitempty"`  // removable: the files "remove" counts (relative paths)
	Limit  int      `json:"limit,omitempty"`  // shortwrites: most bytes one write stores
}

// fired records a call that failed because of the plan: the evidence the controller reports.
type fired struct {
	Op    string `json:"op"`
	N     int    `json:"n"`
	Path  string `json:"path"`
	Errno int    `json:"errno"`
}

// unsynced is a file a failed fsync was called on, as the "unsynced" command reports it: its path then, and its
// backing inode (Ino 0: not identified), which the controller finds again under whatever names it has now.
type unsynced struct {
	Path    string `json:"path"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Created bool   `json:"created"` // the file was created after the plan was set (by the batch)
}

// state is what every answer carries.
type state struct {
	Calls     map[string]int `json:"calls"`
	Injected  int            `json:"injected"`
	DiskFull  int            `json:"disk_full"`
	Shortened int            `json:"shortened"`
	Fired     []fired        `json:"fired"`
	Free      int64          `json:"free"`
	Unsynced  []unsynced     `json:"unsynced,omitempty"` // the "unsynced" command's answer only
}

// control holds the plan and the counters, shared by every filesystem call.
type control struct {
	mu        sync.Mutex
	st        state
	op        string // the point the plan fails at ("" when none)
	nth       int
	errno     int
	sticky    bool
	broken    int   // after a sticky fault: the errno every changing call fails with
	limited   bool  // a disk size is in force
	free      int64 // room left while limited
	limitErr  int   // what a write fails with once the room is gone (ENOSPC, or a cut's errno)
	removable map[string]bool
	shortMax  int
	// held: a duplicate of the backing descriptor of every file a failed fsync was called on since the plan was
	// set (-1: none), kept open so that its inode number is not reused while the controller looks for it.
	held     []int
	heldPath []string
	// created: the backing inodes of the files created since the plan was set.
	created map[uint64]bool
	heldNew []bool
}

var points = []string{"open", "write", "rename", "fsync", "remove"}

func newControl() *control {
	c := &control{}
	c.reset()
	return c
}

func (c *control) zero() {
	for _, fd := range c.held {
		if fd >= 0 {
			_ = syscall.Close(fd)
		}
	}
	c.held, c.heldPath, c.heldNew, c.created = nil, nil, nil, map[uint64]bool{}
	c.st.Calls = map[string]int{}
	for _, p := range points {
		c.st.Calls[p] = 0
	}
}

func (c *control) reset() {
	c.st = state{Fired: []fired{}}
	c.zero()
	c.op, c.nth, c.errno, c.sticky, c.broken = "", 0, 0, false, 0
	c.limited, c.free, c.limitErr, c.removable, c.shortMax = false, 0, 0, nil, 0
}

func (c *control) apply(cmd command) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch cmd.Cmd {
	case "reset":
		c.reset()
	case "count":
		c.zero()
	case "inject":
		c.zero()
		c.op, c.nth, c.errno, c.sticky = cmd.Op, cmd.Nth, cmd.Errno, cmd.Sticky
	case "clear":
		c.op, c.nth, c.errno, c.sticky, c.broken = "", 0, 0, false, 0
		c.limited, c.limitErr, c.shortMax = false, 0, 0
	case "limit":
		c.limited, c.free, c.limitErr = true, cmd.Free, cmd.Errno
		if c.limitErr == 0 {
			c.limitErr = int(syscall.ENOSPC)
		}
	case "unlimited":
		c.limited, c.limitErr = false, 0
	case "removable":
		c.removable = map[string]bool{}
		for _, p := range cmd.Paths {
			c.removable[p] = true
		}
	case "shortwrites":
		c.shortMax = cmd.Limit
	case "state":
	case "unsynced":
		st := c.st
		st.Unsynced = c.unsynced()
		st.Free = c.free
		return map[string]any{"state": st}
	default:
		return map[string]any{"error": "unknown command " + cmd.Cmd}
	}
	c.st.Free = c.free
	return map[string]any{"state": c.st}
}

// failedFsync keeps a duplicate of `fd` (the backing descriptor a failed fsync was called on; -1: unknown).
func (c *control) failedFsync(fd int, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	held, created := -1, false
	if fd >= 0 {
		if dup, err := syscall.Dup(fd); err == nil {
			held = dup
			var st syscall.Stat_t
			created = syscall.Fstat(dup, &st) == nil && c.created[st.Ino]
		}
	}
	c.held, c.heldPath, c.heldNew = append(c.held, held), append(c.heldPath, path), append(c.heldNew, created)
}

// made records a file created by the batch (its backing inode).
func (c *control) made(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created[ino] = true
}

// unsynced is the files a failed fsync was called on, with their backing inodes (c.mu held).
func (c *control) unsynced() []unsynced {
	out := []unsynced{}
	for i, fd := range c.held {
		u := unsynced{Path: c.heldPath[i], Created: c.heldNew[i]}
		var st syscall.Stat_t
		if fd >= 0 && syscall.Fstat(fd, &st) == nil {
			u.Dev, u.Ino = uint64(st.Dev), st.Ino
		}
		out = append(out, u)
	}
	return out
}

// call counts a call at `op` on `path` and says which errno it must fail with (0: let it run).
func (c *control) call(op, path string) syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count(op, path)
}

// count is call with c.mu held.
func (c *control) count(op, path string) syscall.Errno {
	if op == "remove" && c.removable != nil && c.broken == 0 && !c.removable[path] {
		return 0 // a temporary file being cleaned up, not a key being removed
	}
	c.st.Calls[op]++
	n := c.st.Calls[op]
	if c.broken != 0 {
		return c.fire(op, n, path, c.broken)
	}
	if op == c.op && n == c.nth && c.errno != 0 {
		if c.sticky {
			c.broken = c.errno
		}
		return c.fire(op, n, path, c.errno)
	}
	return 0
}

// opening is call("open") for an existing file: once broken, one that changes nothing (`keeps`: no O_TRUNC) runs.
func (c *control) opening(path string, keeps bool) syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != 0 && keeps {
		c.st.Calls["open"]++
		return 0
	}
	return c.count("open", path)
}

// changing says which errno a call that changes the filesystem (outside the points) fails with once broken.
func (c *control) changing(op, path string) syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != 0 {
		return c.fire(op, 0, path, c.broken)
	}
	return 0
}

func (c *control) fire(op string, n int, path string, errno int) syscall.Errno {
	c.st.Injected++
	c.st.Fired = append(c.st.Fired, fired{Op: op, N: n, Path: path, Errno: errno})
	return syscall.Errno(errno)
}

// room says how many of `want` bytes growing a file by `growth` may store (want when there is room), and the errno
// when none may.
func (c *control) room(want int, growth int64, path string) (int, syscall.Errno) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shortMax > 0 && want > c.shortMax {
		c.st.Shortened++
		want = c.shortMax
		if growth > int64(want) {
			growth = int64(want)
		}
	}
	if !c.limited || growth <= 0 {
		return want, 0
	}
	if growth <= c.free {
		c.free -= growth
		return want, 0
	}
	if c.free > 0 { // a short write first, as a nearly full disk gives: what fits
		fits := want - int(growth-c.free)
		if fits > 0 {
			c.free = 0
			c.st.Shortened++
			return fits, 0
		}
	}
	if c.limitErr == int(syscall.ENOSPC) {
		c.st.DiskFull++
		c.st.Fired = append(c.st.Fired, fired{Op: "write", Path: path, Errno: c.limitErr})
		return 0, syscall.ENOSPC
	}
	return 0, c.fire("write", 0, path, c.limitErr)
}

// release gives back room when a file shrinks or goes.
func (c *control) release(bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limited && bytes > 0 {
		c.free += bytes
	}
}
