"""Provider adapters: one module per hosted API, plus the offline `local` provider; see registry.py."""

from aleph_mcp.providers.registry import build_providers as build_providers
