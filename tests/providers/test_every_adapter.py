"""What every hosted adapter does the same way: how a create that fails in transit is classified."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx2
import pytest

from aleph_mcp.errors import RateLimited, TransientProviderError
from aleph_mcp.models import EditRequest
from aleph_mcp.providers.aimlapi import AimlapiProvider
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.crun import CrunProvider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.runway import RunwayProvider
from tests.fakes.aimlapi import FakeAimlapi
from tests.fakes.base import FakeAPI, Fault
from tests.fakes.crun import FakeCrun
from tests.fakes.kie import FakeKie
from tests.fakes.krea import FakeKrea
from tests.fakes.runway import FakeRunway
from tests.providers.adapters import VIDEO, Build, submit_error


@dataclass(frozen=True)
class Adapter:
    """One adapter with its fake: how to build both, a minimal request, and the vendor's 5xx body."""

    fake: Callable[[], FakeAPI]
    build: Build[Provider]
    model: str
    server_error: Callable[[int], object]

    def request(self) -> EditRequest:
        return EditRequest(prompt="Make it snow", video=VIDEO, model=self.model)


ADAPTERS = {
    "aimlapi": Adapter(
        FakeAimlapi,
        lambda client, key: AimlapiProvider(client, api_key=key, base_url="https://api.aimlapi.test"),
        "gen4_aleph",
        lambda status: {"message": "Bad gateway", "statusCode": status},
    ),
    "crun": Adapter(
        FakeCrun,
        lambda client, key: CrunProvider(client, api_key=key, base_url="https://api.crun.test", timeout=5),
        "gen-4-aleph",
        lambda status: {"code": status, "message": "Server error"},
    ),
    "kie": Adapter(
        FakeKie,
        lambda client, key: KieProvider(
            client,
            api_key=key,
            base_url="https://api.kie.test",
            upload_base_url="https://upload.kie.test",
            timeout=5,
        ),
        "aleph",
        lambda status: {"code": status, "msg": "Server error"},
    ),
    "krea": Adapter(
        FakeKrea,
        lambda client, key: KreaProvider(client, api_key=key, base_url="https://api.krea.test"),
        "aleph",
        lambda status: {"error": "Service unavailable"},
    ),
    "runway": Adapter(
        FakeRunway,
        lambda client, key: RunwayProvider(client, api_key=key, base_url="https://api.dev.runwayml.com"),
        "aleph2",
        lambda status: {"error": "Service overloaded"},
    ),
}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_a_5xx_on_create_is_transient_may_have_created_and_is_sent_once(name: str, status: int) -> None:
    """A server error on create is retryable, but the task may exist: not_created stays False, no resend."""
    adapter = ADAPTERS[name]
    fake = adapter.fake()
    fake.inject(Fault(kind="create", status=status, body=adapter.server_error(status)))
    error = await submit_error(fake, adapter.build, adapter.request())
    assert isinstance(error, TransientProviderError)
    assert not isinstance(error, RateLimited)
    assert (error.status_code, error.not_created) == (status, False)
    assert len(fake.creates) == 1


@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_a_refused_connection_on_create_is_transient_and_created_nothing(name: str) -> None:
    """A connect error means the create never left: retryable, safe to send again, no task at the vendor."""
    adapter = ADAPTERS[name]
    fake = adapter.fake()
    fake.inject(Fault(kind="create", raise_exc=httpx2.ConnectError))
    error = await submit_error(fake, adapter.build, adapter.request())
    assert isinstance(error, TransientProviderError)
    assert error.not_created is True
    assert fake.tasks == {}
