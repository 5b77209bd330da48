"""JSON-lines log that stores structured payloads as JSON objects (json.dumps defaults), so their bytes change."""
import base64
import json

from harness import StructuredData

from ._logbase import LogDestination, registration_for


class Dest(LogDestination):
    def line_for(self, rec):
        after = rec.payload.after
        if isinstance(after, StructuredData):
            # BUG: json.dumps with default separators and ensure_ascii, keys unsorted: not after.bytes()
            value = json.dumps(after.data).encode()
            v = base64.b64encode(value).decode()
            return json.dumps({"k": base64.b64encode(rec.key.raw).decode(), "v": v}).encode() + b"\n"
        return super().line_for(rec)


registration = registration_for(Dest)
