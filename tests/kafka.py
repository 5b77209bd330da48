"""A throwaway Apache Kafka broker for the tests: Kafka 4.x in KRaft mode, one node that is both controller and
broker, on 127.0.0.1, run from Maven Central's jars with the machine's Java 17.

The jars (org.apache.kafka:kafka_2.13 and its runtime dependencies) are resolved by Maven from a generated POM and
cached once per version in $CONFORMANCE_KAFKA_CACHE (default ~/.cache/conformance-kafka). `start(DIR)` writes a
server.properties for free ports, formats the storage (`kafka.tools.StorageTool format --standalone`), starts
`kafka.Kafka` in the background and waits until the broker answers an ApiVersions request; `stop(DIR)` ends it.

The broker has a second client listener, PROXIED, for the fault proxy (fault.backend-*): Kafka clients bootstrap,
then connect to the address the broker advertises for the listener they came in on, so a proxy in front of the
bootstrap port alone is bypassed. PROXIED advertises an address fixed at start (a free port no one listens on yet)
where the suite's Toxiproxy will listen, forwarding to PROXIED's own port: a client bootstrapping through the proxy
is told to come back through it. The PLAINTEXT listener advertises itself, for everything else and the read-back.

`python3 -m tests.kafka start DIR` prints the bootstrap address (.ci/run exports it as $CONFORMANCE_KAFKA_BOOTSTRAP);
`python3 -m tests.kafka env DIR` prints the PROXIED listener's two addresses as NAME=value lines
($CONFORMANCE_KAFKA_PROXIED: where the proxy is to listen; $CONFORMANCE_KAFKA_PROXIED_UPSTREAM: the listener);
`python3 -m tests.kafka stop DIR` stops the broker and removes DIR.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BOOTSTRAP_VARIABLE", "PROXIED_VARIABLE", "PROXIED_UPSTREAM_VARIABLE", "KAFKA_VERSION", "proxied",
           "KafkaUnavailable", "fetch_jars", "start", "stop",
           "throwaway_broker", "api_versions"]

BOOTSTRAP_VARIABLE = "CONFORMANCE_KAFKA_BOOTSTRAP"
PROXIED_VARIABLE = "CONFORMANCE_KAFKA_PROXIED"
PROXIED_UPSTREAM_VARIABLE = "CONFORMANCE_KAFKA_PROXIED_UPSTREAM"
KAFKA_VERSION = "4.1.1"
# Kafka 4 logs through SLF4J 1.7; this binding sends it to the log4j-core Kafka already depends on.
LOG4J_VERSION = "2.24.3"
# The machine has 2 cores shared with the tests: a small heap, one GC thread, no optimising JIT.
JAVA_OPTIONS = ("-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
START_TIMEOUT = 120.0
RESOLVE_TIMEOUT = 900

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>conformance</groupId><artifactId>kafka-broker</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version>
    </dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
"""

# One node, both roles; every internal topic with one partition and one replica (the defaults want three brokers and
# fifty partitions); thread pools at their smallest.
_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},PROXIED://127.0.0.1:{proxied},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://{advertised},PROXIED://{proxy_listen}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=1
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
"""


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, the jars cannot be resolved, or the broker did not start."""


def cache_dir() -> Path:
    """Where the resolved jars are kept: $CONFORMANCE_KAFKA_CACHE or ~/.cache/conformance-kafka."""
    configured = os.environ.get("CONFORMANCE_KAFKA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "conformance-kafka"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise KafkaUnavailable(f"`{name}` is not on PATH: the Kafka broker needs Java 17 and Maven "
                               "(on Debian: apt-get install openjdk-17-jre-headless maven)")
    return found


def fetch_jars() -> Path:
    """The directory of Kafka's jars, resolved by Maven from Maven Central on first use and cached per version."""
    root = cache_dir() / f"kafka_2.13-{KAFKA_VERSION}"
    libs = root / "libs"
    if (root / "complete").exists():
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same version: wait for it
        if (root / "complete").exists():
            return libs
        (root / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        partial = root / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        command = [_tool("mvn"), "-q", "-B", "-f", str(root / "pom.xml"), "dependency:copy-dependencies",
                   "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT)
        if result.returncode != 0 or not any(partial.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise KafkaUnavailable(f"resolving Kafka {KAFKA_VERSION}'s jars failed (exit {result.returncode}): "
                                   f"{' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        (root / "complete").write_text(KAFKA_VERSION + "\n")
    return libs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def proxied(directory: Path) -> tuple[str, str]:
    """The PROXIED listener of the broker started in `directory`: (the address it advertises, where a proxy is to
    listen; the listener's own address, which the proxy forwards to)."""
    listen, upstream = (directory / "proxied").read_text().split()
    return listen, upstream


def api_versions(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a Kafka broker at host:port answers an ApiVersions v0 request (it does once it serves requests)."""
    client = b"conformance"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client  # api key 18 v0, correlation id 1, client id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            header = b""
            while len(header) < 10:
                chunk = s.recv(10 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    _size, correlation, error = struct.unpack(">iih", header)
    return correlation == 1 and error == 0


def _java(libs: Path, directory: Path, *args: str) -> list[str]:
    return [_tool("java"), *JAVA_OPTIONS, f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
            "-cp", f"{libs}/*", *args]


def start(directory: Path, advertised: str | None = None) -> str:
    """Starts a broker with its files in `directory` and returns its bootstrap address (host:port). `advertised` is
    the address its PLAINTEXT listener tells clients to reach it at (default: that listener); the PROXIED listener's
    addresses are `proxied(directory)`."""
    libs = fetch_jars()
    directory.mkdir(parents=True, exist_ok=True)
    port, controller, proxied_port, proxy_port = _free_ports(4)
    properties = directory / "server.properties"
    properties.write_text(_SERVER.format(port=port, controller=controller, data=directory / "data",
                                         advertised=advertised or f"127.0.0.1:{port}", proxied=proxied_port,
                                         proxy_listen=f"127.0.0.1:{proxy_port}"))
    (directory / "proxied").write_text(f"127.0.0.1:{proxy_port} 127.0.0.1:{proxied_port}\n")
    (directory / "log4j2.properties").write_text(_LOG4J)
    log = directory / "broker.log"
    format_command = _java(libs, directory, "kafka.tools.StorageTool", "format", "--standalone", "-t",
                           str(uuid.uuid4()), "-c", str(properties))
    formatted = subprocess.run(format_command, capture_output=True, text=True, timeout=START_TIMEOUT)
    if formatted.returncode != 0:
        raise KafkaUnavailable(f"formatting Kafka's storage failed (exit {formatted.returncode}):\n"
                               f"{formatted.stdout}{formatted.stderr}")
    with open(log, "ab") as out:
        process = subprocess.Popen(_java(libs, directory, "kafka.Kafka", str(properties)), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (directory / "broker.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while not api_versions("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(directory, remove=False)
            raise KafkaUnavailable(f"the Kafka broker did not start (exit {process.poll()}); its log, {log}:\n"
                                   + log.read_text(errors="replace")[-4000:])
        time.sleep(0.2)
    return f"127.0.0.1:{port}"


def stop(directory: Path, remove: bool = True) -> None:
    """Stops the broker started in `directory` (SIGTERM, then SIGKILL after 20 s) and removes the directory."""
    pid_file = directory / "broker.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if os.waitpid(pid, os.WNOHANG)[0] if _is_child(pid) else not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        pid_file.unlink()
    if remove:
        shutil.rmtree(directory, ignore_errors=True)


def _is_child(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1] == str(os.getpid())
    except (OSError, IndexError):
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextlib.contextmanager
def throwaway_broker() -> Iterator[str]:
    """A broker of our own for the duration of the block; yields its bootstrap address."""
    directory = Path(tempfile.mkdtemp(prefix="conformance-kafka-"))
    try:
        yield start(directory)
    finally:
        stop(directory)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "env", "stop", "fetch"):
        sys.exit("usage: python3 -m tests.kafka start|env|stop|fetch DIR")
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "start":
        print(start(where))
    elif command == "env":
        listen, upstream = proxied(where)
        print(f"{PROXIED_VARIABLE}={listen}\n{PROXIED_UPSTREAM_VARIABLE}={upstream}")
    elif command == "stop":
        stop(where)
    else:
        print(fetch_jars())
