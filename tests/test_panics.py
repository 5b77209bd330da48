"""harness.conduit.panics: a Go panic read from stderr, and whose code raised it (the SDK's or the connector's), for any SDK
release; the traces are shaped as Go prints them (the first one is SDK v0.14.2's run-before-open panic)."""

from __future__ import annotations

from harness.conduit.buildinfo import SDK_MODULE, BuildInfo, Module
from harness.conduit.panics import connector_module, origin, parse_panic

__all__: list[str] = []

INFO = BuildInfo("go1.26.8", "conformance.test/fixed14/cmd/connector", Module("conformance.test/fixed14", "(devel)"),
                 (Module(SDK_MODULE, "v0.14.2"), Module("github.com/conduitio/conduit-connector-protocol", "v0.9.4")))

SDK_RUN = """{"@level":"debug","@message":"plugin address"}
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x20 pc=0xb6b798]

goroutine 22 [running]:
github.com/conduitio/conduit-connector-sdk.(*destinationPluginAdapter).Run(0x2f33ad191480, {0xe463b8?, 0x2f33ad2044e0?})
\tgithub.com/conduitio/conduit-connector-sdk@v0.14.2/destination.go:189 +0xf8
github.com/conduitio/conduit-connector-protocol/pconnector/v2/server.(*DestinationPluginServer).Run(0x2f33ad2acb20, {0xe4fec0})
\tgithub.com/conduitio/conduit-connector-protocol@v0.9.4/pconnector/v2/server/destination.go:54 +0x9b
google.golang.org/grpc.(*Server).serveStreams.func2.1()
\tgoogle.golang.org/grpc@v1.82.0/server.go:1078 +0x7f
created by google.golang.org/grpc.(*Server).serveStreams.func2 in goroutine 35
\tgoogle.golang.org/grpc@v1.82.0/server.go:1089 +0x11d
"""

# The connector's own Write panics, called by the SDK's write strategy.
OWN_WRITE = """panic: runtime error: invalid memory address or nil pointer dereference [recovered]
\tpanic: nil file

goroutine 7 [running]:
runtime.gopanic({0x9a1b20?, 0xc0000a2000?})
\truntime/panic.go:785 +0x132
conformance.test/fixed14.(*lifecycleGuard).Write(0xc000010000, {0xe463b8, 0xc0000b0000}, {0xc0000c0000, 0x1, 0x1})
\tconformance.test/fixed14/lifecycle.go:118 +0x45
github.com/conduitio/conduit-connector-sdk.(*writeStrategySingle).Write(0xc000012000, {0xe463b8, 0xc0000b0000})
\tgithub.com/conduitio/conduit-connector-sdk@v0.14.2/destination.go:299 +0x6a
github.com/conduitio/conduit-connector-sdk.(*destinationPluginAdapter).Run(0xc000014000, {0xe463b8, 0xc0000b0000})
\tgithub.com/conduitio/conduit-connector-sdk@v0.14.2/destination.go:197 +0x1b2
"""

# The SDK's code panics, called from the connector (what the connector handed it is the SDK's to check).
SDK_CALLED_BY_CONNECTOR = """panic: runtime error: index out of range [3] with length 3

goroutine 9 [running]:
github.com/conduitio/conduit-connector-sdk.Util.ParseConfig(...)
\tgithub.com/conduitio/conduit-connector-sdk@v0.14.2/util.go:88 +0x10
main.(*Destination).Open(0xc000010000)
\t/src/connector/destination.go:40 +0x45
"""

# A library the connector chose panics in a goroutine the connector started.
LIBRARY_IN_OWN_GOROUTINE = """fatal error: concurrent map writes

goroutine 12 [running]:
internal/runtime/maps.fatal({0x9b2f3e?, 0x0?})
\truntime/panic.go:1058 +0x18
github.com/some/driver.(*Conn).send(0xc000010000)
\tgithub.com/some/driver@v1.2.3/conn.go:77 +0x45
created by conformance.test/fixed14.(*Destination).Open in goroutine 5
\tconformance.test/fixed14/destination.go:60 +0x6a
"""


def test_a_panic_is_read_with_its_goroutines_frames() -> None:
    """The message, and every frame of the panicking goroutine innermost first, `created by` last."""
    panic = parse_panic(SDK_RUN)
    assert panic is not None
    assert panic.message == "runtime error: invalid memory address or nil pointer dereference"
    protocol = "github.com/conduitio/conduit-connector-protocol/pconnector/v2/server"
    assert [f.package for f in panic.frames] == [SDK_MODULE, protocol, "google.golang.org/grpc",
                                                 "google.golang.org/grpc"]
    assert panic.frames[0].site == "destination.go:189" and panic.frames[0].version == "v0.14.2"
    assert panic.frames[-1].created_by and not panic.frames[0].created_by
    assert parse_panic("plain log line\nexit status 1\n") is None


def test_the_connector_module_is_the_one_holding_the_main_package() -> None:
    """The longest module path that prefixes the main package's path (a tools module builds upstream ones)."""
    assert connector_module(INFO) == "conformance.test/fixed14"
    tools = BuildInfo("go1.26.8", "github.com/conduitio/conduit-connector-file/cmd/connector",
                      Module("conformance.test/upstream13", "(devel)"),
                      (Module("github.com/conduitio/conduit-connector-file", "v0.10.1"),))
    assert connector_module(tools) == "github.com/conduitio/conduit-connector-file"


def test_a_panic_in_the_sdk_before_any_connector_frame_is_upstream_for_any_version() -> None:
    """The SDK's own code died before any connector code ran: upstream, named by module, release and line, whatever
    the release (an unmeasured one, a pseudo-version, a build without build info)."""
    panic = parse_panic(SDK_RUN)
    assert panic is not None
    found = origin(panic, INFO)
    assert found.upstream
    assert found.describe() == (f"upstream {SDK_MODULE}@v0.14.2 destination.go:189: runtime error: invalid memory "
                                "address or nil pointer dereference")
    unmeasured = BuildInfo("go1.26.8", INFO.path, INFO.main, (Module(SDK_MODULE, "v0.99.0"),))
    assert origin(panic, unmeasured).describe().startswith(f"upstream {SDK_MODULE}@v0.99.0 destination.go:189: ")
    assert origin(panic, None).upstream  # no build info: the frames' own paths say where and which release


def test_the_connectors_own_frames_decide_a_failure() -> None:
    """A panic in the connector's code (the SDK's frames below it called it) is the connector's, and so is one in a
    library in a goroutine the connector started."""
    for trace, site in ((OWN_WRITE, "conformance.test/fixed14 lifecycle.go:118"),
                        (LIBRARY_IN_OWN_GOROUTINE, "github.com/some/driver@v1.2.3 conn.go:77")):
        panic = parse_panic(trace)
        assert panic is not None
        found = origin(panic, INFO)
        assert not found.upstream, found
        assert found.describe().startswith(site), found.describe()


def test_sdk_frames_above_the_connectors_are_upstream() -> None:
    """Every frame above the connector's first one is the SDK's: the SDK raised it (package main is the connector)."""
    panic = parse_panic(SDK_CALLED_BY_CONNECTOR)
    assert panic is not None
    assert origin(panic, INFO).describe() == (f"upstream {SDK_MODULE}@v0.14.2 util.go:88: runtime error: index out "
                                              "of range [3] with length 3")
