"""Composes its middleware by hand (batching, rate limit) with its own small state check instead of the lifecycle
guard; the check lets write open the directory lazily when the destination is only configured."""
from harness import BatchSize, LifecycleError, RateLimit, Registration, destination_with_middleware, directory_reader

from ._dirbase import DirDestination


class Dest(DirDestination):
    state = "new"

    def configure(self, config):
        if self.state != "new":
            raise LifecycleError(f"configure() in state {self.state}")
        super().configure(config)
        self.state = "configured"

    def open(self):
        if self.state != "configured":
            raise LifecycleError(f"open() in state {self.state}")
        super().open()
        self.state = "open"

    def write(self, records):
        if self.state == "configured":  # BUG: "convenience": open lazily instead of refusing
            self.open()
        if self.state != "open":
            raise LifecycleError(f"write() in state {self.state}")
        return super().write(records)

    def ack(self, position):
        if self.state != "open":
            raise LifecycleError(f"ack() in state {self.state}")

    def teardown(self):
        self.state = "torn down"


def factory():
    return destination_with_middleware(Dest(), BatchSize, RateLimit)


registration = Registration(factory=factory, config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"),
                            directory_param="directory", variants=({"sync": "true"},))
