"""The offline `local` provider: real FFmpeg filters through PyAV (adapter), prompt words (words), the
render (render, audio, watermark). Not generative: it makes the whole flow work with no key and no network."""

from aleph_mcp.providers.local.adapter import CAPABILITIES, MODEL_FACTS, LocalProvider

__all__ = ["CAPABILITIES", "MODEL_FACTS", "LocalProvider"]
