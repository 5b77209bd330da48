"""The third blind audit's destinations (session 20), written from CONTRACT.md and the user docs alone, never from
conformance/: one-bug destinations the suite let through before its fixes, and correct-but-unusual controls.
manifest.json lists each with its target clause; tests/test_blind_audit3.py runs them."""
