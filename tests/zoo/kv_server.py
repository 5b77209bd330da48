"""A tiny TCP key-value server, the backend of the zoo's networked destinations (tests/zoo/backend.py): run as a
script, it serves on a free port on 127.0.0.1, prints the port, and serves until its stdin closes.

One command per line, every field in hex: `PUT space key value` and `DEL space key` answer `OK`; `DUMP space`
answers one `key value` line per key and then `END`. A space keeps one example's keys apart from another's.
"""

from __future__ import annotations

import socketserver
import sys
import threading

__all__ = ["serve"]

_DATA: dict[str, dict[str, str]] = {}
_LOCK = threading.Lock()


class _Handler(socketserver.StreamRequestHandler):
    """Answers one connection's commands in order, applying each whole line (a cut line is never applied)."""

    def handle(self) -> None:
        for raw in self.rfile:
            if not raw.endswith(b"\n"):
                return  # the connection dropped inside the line: nothing of it is applied
            words = raw.decode().split()
            with _LOCK:
                if words[:1] == ["PUT"] and len(words) == 4:
                    _DATA.setdefault(words[1], {})[words[2]] = words[3]
                    answer = "OK\n"
                elif words[:1] == ["DEL"] and len(words) == 3:
                    _DATA.setdefault(words[1], {}).pop(words[2], None)
                    answer = "OK\n"
                elif words[:1] == ["DUMP"] and len(words) == 2:
                    answer = "".join(f"{k} {v}\n" for k, v in _DATA.get(words[1], {}).items()) + "END\n"
                else:
                    answer = f"ERR {raw[:40]!r}\n"
            try:
                self.wfile.write(answer.encode())
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve() -> None:
    """Serves on 127.0.0.1 on a free port (printed) until stdin closes."""
    with _Server(("127.0.0.1", 0), _Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(server.server_address[1], flush=True)
        sys.stdin.read()
        server.shutdown()


if __name__ == "__main__":
    serve()
