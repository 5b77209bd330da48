package main

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose calls are counted, can fail as planned, and check write permission as for a
// non-root user (the suite runs as root, whom the kernel lets write anywhere; open.unwritable needs a refusal).
type node struct {
	fs.LoopbackNode
	c *control
}

func (n *node) backing(name string) string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()), name)
}

// writable refuses a change inside this directory when its owner has no write permission.
func (n *node) writable() syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(n.backing(""), &st); err != nil {
		return fs.ToErrno(err)
	}
	if st.Mode&0o200 == 0 || st.Mode&0o100 == 0 {
		return syscall.EACCES
	}
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	// An existing file opened without O_TRUNC: a device gone bad still opens it (nothing on it changes).
	if e := n.c.opening(relative(n, ""), flags&syscall.O_TRUNC == 0); e != 0 {
		return nil, 0, e
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		var st syscall.Stat_t
		if err := syscall.Lstat(n.backing(""), &st); err == nil && st.Mode&0o200 == 0 {
			return nil, 0, syscall.EACCES
		}
	}
	fh, fl, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &file{FileHandle: fh, c: n.c, path: relative(n, "")}, fl, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32,
	out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := n.c.call("open", relative(n, name)); e != 0 {
		return nil, nil, 0, e
	}
	if e := n.writable(); e != 0 {
		return nil, nil, 0, e
	}
	ch, fh, fl, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	var st syscall.Stat_t
	if syscall.Lstat(n.backing(name), &st) == nil {
		n.c.made(st.Ino)
	}
	return ch, &file{FileHandle: fh, c: n.c, path: relative(n, name)}, fl, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.c.changing("mkdir", relative(n, name)); e != 0 {
		return nil, e
	}
	if e := n.writable(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.c.changing("mknod", relative(n, name)); e != 0 {
		return nil, e
	}
	if e := n.writable(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.c.changing("symlink", relative(n, name)); e != 0 {
		return nil, e
	}
	if e := n.writable(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.c.changing("link", relative(n, name)); e != 0 {
		return nil, e
	}
	if e := n.writable(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.c.changing("rmdir", relative(n, name)); e != 0 {
		return e
	}
	if e := n.writable(); e != 0 {
		return e
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.c.call("remove", relative(n, name)); e != 0 {
		return e
	}
	if e := n.writable(); e != 0 {
		return e
	}
	var st syscall.Stat_t
	gone := int64(0)
	if err := syscall.Lstat(n.backing(name), &st); err == nil && st.Nlink == 1 {
		gone = st.Size
	}
	e := n.LoopbackNode.Unlink(ctx, name)
	if e == 0 {
		n.c.release(gone)
	}
	return e
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.c.call("rename", relative(n, name)); e != 0 {
		return e
	}
	if e := n.writable(); e != 0 {
		return e
	}
	if p, ok := newParent.(*node); ok {
		if e := p.writable(); e != 0 {
			return e
		}
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		if e := n.c.changing("truncate", relative(n, "")); e != 0 {
			return e
		}
	}
	if ff, ok := f.(*file); ok {
		f = ff.FileHandle
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// file is a loopback file handle whose writes use the disk's room and whose fsyncs can fail.
type file struct {
	fs.FileHandle
	c    *control
	path string
}

func (f *file) descriptor() int {
	if p, ok := f.FileHandle.(fs.FilePassthroughFder); ok {
		fd, _ := p.PassthroughFd()
		return fd
	}
	return -1
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if e := f.c.call("write", f.path); e != 0 {
		return 0, e
	}
	var st syscall.Stat_t
	growth := int64(len(data))
	if err := syscall.Fstat(f.descriptor(), &st); err == nil {
		growth = off + int64(len(data)) - st.Size
	}
	fits, e := f.c.room(len(data), growth, f.path)
	if e != 0 {
		return 0, e
	}
	return f.FileHandle.(fs.FileWriter).Write(ctx, data[:fits], off)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if e := f.c.call("fsync", f.path); e != 0 {
		f.c.failedFsync(f.descriptor(), f.path)
		return e
	}
	return f.FileHandle.(fs.FileFsyncer).Fsync(ctx, flags)
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.FileHandle.(fs.FileReader).Read(ctx, dest, off)
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	return f.FileHandle.(fs.FileReleaser).Release(ctx)
}

func (f *file) Flush(ctx context.Context) syscall.Errno {
	return f.FileHandle.(fs.FileFlusher).Flush(ctx)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.FileHandle.(fs.FileGetattrer).Getattr(ctx, out)
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		if e := f.c.changing("truncate", f.path); e != 0 {
			return e
		}
	}
	return f.FileHandle.(fs.FileSetattrer).Setattr(ctx, in, out)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.FileHandle.(fs.FileLseeker).Lseek(ctx, off, whence)
}

func (f *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return f.FileHandle.(fs.FileGetlker).Getlk(ctx, owner, lk, flags, out)
}

func (f *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.FileHandle.(fs.FileSetlker).Setlk(ctx, owner, lk, flags)
}

func (f *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.FileHandle.(fs.FileSetlkwer).Setlkw(ctx, owner, lk, flags)
}

func (f *file) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if e := f.c.changing("allocate", f.path); e != 0 {
		return e
	}
	return f.FileHandle.(fs.FileAllocater).Allocate(ctx, off, size, mode)
}
