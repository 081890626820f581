"""Fake vendor APIs: callables for `httpx2.MockTransport`, also served on loopback by `server.py`."""
