"""A registration for a standalone connector executable: its factory starts one connector process per destination
(the lifecycle adapter, harness.conduit.adapter), its behaviours say what the plugin protocol or the connector's SDK
release keeps the driver from observing, and its header line says what the connector is. Needs the `conduit` extra."""

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness.behaviours import Behaviour
from harness.conduit.adapter import StandaloneDestination
from harness.conduit.buildinfo import (
    MEASURED_SDK_VERSIONS,
    RECEIVE_LIMIT_ENV,
    SDK_MODULE,
    BuildInfo,
    BuildInfoError,
    read_build_info,
    reads_env,
    sdk_limitations,
    sdk_module,
)
from harness.conduit.plugin_process import PROTOCOL_VERSION
from harness.conduit.spares import spare_enabled
from harness.conduit.specification import executable_path
from harness.conduit.wire import NO_ACK_REASON, STRUCT_LIMITS
from harness.registration import ReadBack, Registration

__all__ = ["standalone_registration", "sdk_description", "EMPTY_BATCH_REASON", "LARGE_PAYLOAD_REASON"]

LARGE_PAYLOAD_REASON = ("a Run message is limited to the connector's gRPC receive limit, 4 MiB by default, which a "
                        "connector not built on the Go SDK has no known way to raise (the Python SDK sets none), so a "
                        "payload of 4 MiB cannot cross the plugin protocol")
EMPTY_BATCH_REASON = ("Conduit never sends an empty batch on the Run stream (the Go SDK's adapter panics on one), "
                      "so the standalone driver answers write([]) with 0 itself")


def standalone_registration(
    command: str | Sequence[str],
    *,
    config: Mapping[str, str] | None = None,
    read_back: ReadBack | None = None,
    directory_param: str | None = None,
    path_param: str | None = None,
    valid_keys: Any = None,
    invalid_keys: Any = None,
    skip: Mapping[str, str | None] | None = None,
    name: str = "",
    env: Mapping[str, str] | None = None,
    handshake_timeout: float = 15.0,
    spare: bool | None = None,
) -> Registration:
    """A Registration whose factory starts `command` as a standalone connector, one process per destination; each
    factory call takes a warm spare process and starts the next (`spare` None: unless $CONFORMANCE_SPARE is 0).
    `skip` adds skips, or with None as the reason has the clause checked whatever the behaviours reported leave
    out."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("standalone_registration needs a command")

    info = _build_info(argv)
    limits = _known_limits(argv, info)
    run_before_open = limits.get(Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER)
    # Every SDK adapter measured sets Run up anew on Open (and v0.12.0 on Configure too): a Stop naming a position
    # sent before either waits a minute, and the next batch on the old stream may panic. Conduit never sends them
    # during a Run, so for any binary built on the SDK the driver ends its Run stream after them (harmless where an
    # SDK does not reset: the next write opens a new stream).
    resets_run = ("Configure", "Open") if info is not None and sdk_module(info) is not None else ()

    def factory() -> StandaloneDestination:
        return StandaloneDestination(argv, handshake_timeout=handshake_timeout, env=env,
                                     run_needs_open=run_before_open[0] if run_before_open else None,
                                     resets_run=resets_run, spare=spare_enabled() if spare is None else spare,
                                     reuse_specification=True, build_info=info)

    factory.__qualname__ = f"StandaloneDestination({shlex.join(argv)!r})"
    behaviours = {Behaviour.EMPTY_BATCH_NOT_SENT: EMPTY_BATCH_REASON}
    # The SDK release it was built with adds what it is measured to do (see harness.conduit.buildinfo).
    behaviours.update((behaviour, reason) for behaviour, (reason, _) in limits.items())
    if info is None or sdk_module(info) is None:
        # On the SDK, the limit is known either way: it reads the receive limit (raised by the driver as Conduit
        # does) or it is predicted above.
        behaviours[Behaviour.LARGE_MESSAGE_MAY_BE_REFUSED] = LARGE_PAYLOAD_REASON
    behaviours[Behaviour.NO_ACK_FROM_PIPELINE] = NO_ACK_REASON
    return Registration(
        factory=factory,
        config=dict(config or {}),
        read_back=read_back,
        directory_param=directory_param,
        path_param=path_param,
        valid_keys=valid_keys,
        invalid_keys=invalid_keys,
        skip={clause: reason for clause, reason in (skip or {}).items() if reason is not None},
        behaviours=behaviours,
        check=frozenset(clause for clause, reason in (skip or {}).items() if reason is None),
        name=name,
        structured_data=STRUCT_LIMITS,
        transport="standalone",
        describe=lambda: _describe(argv, env, handshake_timeout, spare, info),
        command=tuple(argv),
        command_env=dict(env or {}),
        built_with=sdk_description(info) if info is not None else {},
    )


def _build_info(argv: Sequence[str]) -> BuildInfo | None:
    """The executable's Go build info; None when it is not a Go executable (a Python connector, a script)."""
    executable = executable_path(argv)
    try:
        return read_build_info(executable) if executable else None
    except BuildInfoError:
        return None


def _known_limits(argv: Sequence[str], info: BuildInfo | None) -> dict[Behaviour, Any]:
    """Behaviour -> (reason, limitation) predicted for the Conduit SDK the executable was built with; {} when it is not
    a Go executable or not built on the SDK."""
    if info is None:
        return {}
    executable = executable_path(argv) or ""
    return sdk_limitations(info, reads={RECEIVE_LIMIT_ENV} if reads_env(executable, RECEIVE_LIMIT_ENV) else set())


def sdk_description(info: BuildInfo) -> dict[str, Any]:
    """What the report says the connector was built with: the Go version, and the SDK module, its release and
    whether the suite has measured that release (its limits predicted) or not (told apart where they happen)."""
    module = sdk_module(info)
    if module is None:
        return {"go": info.go_version, "module": info.path}
    version = module.effective_version or "(local checkout)"
    return {"go": info.go_version, "module": info.path, "sdk_module": SDK_MODULE, "sdk_version": version,
            "sdk_measured": version in MEASURED_SDK_VERSIONS}


def _sdk_words(info: BuildInfo | None) -> str:
    """The header's words on the SDK: `; built on MODULE@VERSION (measured by the suite)`, or ""."""
    if info is None or sdk_module(info) is None:
        return ""
    built = sdk_description(info)
    seen = ("measured by this suite" if built["sdk_measured"] else
            "not measured by this suite: its panics are told apart from the connector's by where they happen")
    return f"; built on {SDK_MODULE}@{built['sdk_version']} ({seen})"


def _describe(argv: Sequence[str], env: Mapping[str, str] | None, handshake_timeout: float,
              spare: bool | None, info: BuildInfo | None = None) -> str:
    """The header line for a standalone connector: what `Specify` says it is (which the factory then reuses), and
    the SDK it was built with."""
    try:
        destination = StandaloneDestination(argv, handshake_timeout=handshake_timeout, env=env,
                                            spare=spare_enabled() if spare is None else spare,
                                            reuse_specification=True)
    except Exception as err:
        return (f"standalone over gRPC (plugin protocol v{PROTOCOL_VERSION}){_sdk_words(info)}; could not start: "
                f"{err}").splitlines()[0]
    try:
        spec = destination.specification
        return f"standalone over gRPC (plugin protocol v{PROTOCOL_VERSION}): {spec}{_sdk_words(info)}"
    finally:
        destination.close()
