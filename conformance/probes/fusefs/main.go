// Command fusefs serves a passthrough (loopback) FUSE filesystem that injects faults, for the conformance suite's
// fault.* and open.unwritable clauses on destinations whose I/O Python's pyfakefs cannot see (C code, other
// processes). It mounts -backing at -mount and reads one JSON command per line on stdin, answering each with the
// filesystem's state on stdout. When stdin ends (the controlling Python process exited or was killed) it unmounts,
// lazily if the mount is busy, and exits: a mount never outlives its controller.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	backing := flag.String("backing", "", "the real directory the mount passes through to")
	mountpoint := flag.String("mount", "", "where to mount")
	cleanup := flag.Bool("cleanup", false, "remove the mount point and the backing directory on exit")
	flag.Parse()
	if *backing == "" || *mountpoint == "" {
		fmt.Fprintln(os.Stderr, "usage: fusefs -backing DIR -mount DIR")
		os.Exit(2)
	}
	c := newControl()
	root := &fs.LoopbackRoot{Path: *backing}
	var st syscall.Stat_t
	if err := syscall.Stat(*backing, &st); err != nil {
		fail("stat backing directory", err)
	}
	root.Dev = uint64(st.Dev)
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, c: c}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	server, err := fs.Mount(*mountpoint, rootNode, &fs.Options{MountOptions: fuse.MountOptions{
		DirectMount: true, FsName: "conformance-fusefs", Name: "conformance", AllowOther: false,
	}})
	if err != nil {
		fail("mount", err)
	}
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() { <-signals; unmount(server, *mountpoint, *backing, *cleanup); os.Exit(1) }()

	out := json.NewEncoder(os.Stdout)
	_ = out.Encode(map[string]any{"ready": true, "pid": os.Getpid()})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			_ = out.Encode(map[string]any{"error": err.Error()})
			continue
		}
		if cmd.Cmd == "quit" {
			break
		}
		_ = out.Encode(c.apply(cmd))
	}
	unmount(server, *mountpoint, *backing, *cleanup)
	select { // a lazy unmount ends when the last file in the mount closes: do not wait for a holder still running
	case <-done:
	default:
	}
}

// unmount detaches the mount; when a process still holds a file in it, the kernel finishes lazily (MNT_DETACH).
// With cleanup, it then removes the (empty) mount point and the backing directory.
func unmount(server *fuse.Server, mountpoint, backing string, cleanup bool) {
	if err := syscall.Unmount(mountpoint, 0); err != nil {
		_ = syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	}
	_ = server
	if cleanup {
		_ = os.Remove(mountpoint)
		_ = os.RemoveAll(backing)
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "fusefs: %s: %v\n", what, err)
	os.Exit(1)
}

// relative is a backing path as the controller names it: relative to the mount's root.
func relative(n *node, name string) string {
	return filepath.Join(n.Path(n.Root()), name)
}
