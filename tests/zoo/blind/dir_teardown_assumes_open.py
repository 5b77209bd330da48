"""Keeps a directory descriptor for fsyncs; teardown closes it assuming open() ran, so teardown before open (or after
a failed open) raises TypeError."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    dirfd = None

    def open(self):
        super().open()
        self.dirfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def sync_dir(self, d):
        os.fsync(self.dirfd)

    def teardown(self):
        fd, self.dirfd = self.dirfd, None
        os.close(fd)  # BUG: None when open() never ran or failed -> TypeError


registration = registration_for(Dest)
