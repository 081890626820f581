"""Runway's own numbers: its reported cost (recorded, used by the budget), gen4_aleph's ignored ratio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from aleph_mcp.edits import dry_run
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.pricing.budget import Budget
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.records import to_record
from aleph_mcp.store import InMemoryEditStore
from tests.conftest import TEST_KEY, make_settings
from tests.fakes.runway import FakeRunway
from tests.test_poller import make_rig

BASE = "http://fake.invalid"
VIDEO = "https://cdn.example.com/in/clip.mp4"


async def poll_once(fake: FakeRunway) -> Any:
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        runway = RunwayProvider(client, api_key=TEST_KEY, base_url=BASE)
        return await runway.poll(await runway.submit(EditRequest("Make it winter", VIDEO, "aleph2")))


async def test_a_running_task_s_estimated_cost_is_read_as_an_estimate() -> None:
    """estimatedCost.credits while RUNNING: the figure, not final."""
    fake = FakeRunway(steps=("running",))
    remote = await poll_once(fake)
    assert (remote.cost_credits, remote.cost_final) == (75.0, False)


async def test_a_finished_task_s_cost_is_final_and_zero_when_refunded() -> None:
    """cost.credits once ended: 75 for a success, 0 for a refunded failure."""
    assert (await poll_once(FakeRunway(steps=("succeeded",)))).cost_credits == 75.0
    failed = await poll_once(FakeRunway(steps=("failed",)))
    assert (failed.cost_credits, failed.cost_final) == (0.0, True)


@pytest.mark.parametrize("credits", ["75", True, -3, 10**400, None, [75], {"credits": "x"}])
async def test_a_cost_that_is_not_a_plain_number_is_ignored(credits: Any) -> None:
    """Provider answers are data: strings, bools, negatives, huge ints and unknown shapes are dropped."""
    fake = FakeRunway(steps=("running",))
    fake.credits = credits
    assert (await poll_once(fake)).cost_credits is None


async def test_the_poller_records_runway_s_cost_and_the_budget_counts_it_over_the_quote(
    tmp_path: Path,
) -> None:
    """The estimate while running, then the final figure, with its USD at $0.01/credit, beside the quote."""
    fake = FakeRunway(steps=("running", "succeeded"))
    fake.credits = 60
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        edit.estimated_cost_usd = 1.5
        await rig.store.save(edit)
        running = await rig.step(edit.edit_id)
        assert (running.provider_cost_credits, running.provider_cost_final) == (60.0, False)
        done = await rig.step(edit.edit_id)
    assert (done.status, done.provider_cost_credits, done.provider_cost_final) == ("succeeded", 60.0, True)
    assert done.provider_cost_usd == pytest.approx(0.60)
    record = to_record(done)
    reported = record.provider_cost
    assert record.estimated_cost_usd == 1.5 and reported is not None and reported.usd == pytest.approx(0.60)
    assert reported.final and "runway reported 60 credits (final)" in reported.basis
    assert "third-party" in reported.basis
    budget = Budget(usd=10.0, edits=None, prices={})
    assert budget.cost(done) == pytest.approx(0.60)
    assert budget.spend([done]).usd == pytest.approx(0.60)


def test_a_refunded_edit_spends_nothing_in_the_budget() -> None:
    """A final cost of 0 credits (refunded) replaces the quote: nothing counted."""
    edit = Edit("ed_refund", "runway", "gen4_aleph", "snow", VIDEO, status="failed", provider_task_id="t1")
    edit.estimated_cost_usd, edit.provider_cost_credits, edit.provider_cost_usd = 0.75, 0.0, 0.0
    edit.provider_cost_final = True
    assert Budget(usd=10.0, edits=None, prices={}).spend([edit]).counted == []


@pytest.mark.parametrize(("model", "warned"), [("gen4_aleph", True), ("aleph2", False)])
async def test_an_aspect_ratio_with_gen4_aleph_is_warned_about_in_the_record_and_the_dry_run(
    tmp_path: Path, model: str, warned: bool
) -> None:
    """Runway ignores `ratio` for gen4_aleph silently: say so; aleph2 applies targetAspectRatio."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = RunwayProvider(client, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, runway_api_key=TEST_KEY, probe_urls=False)
        service = EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="p1")
        args = EditArgs("Make it winter", VIDEO, provider="runway", model=model, aspect_ratio="9:16")
        preview = await dry_run.preview(service, await service.check(args))
        edit, _ = await service.submit(args)
    hits = [w for w in edit.warnings if "ignores aspect_ratio" in w]
    assert bool(hits) is warned
    assert [w for w in preview.warnings if "ignores aspect_ratio" in w] == hits
    if warned:
        assert "9:16 will not be applied" in hits[0] and "aleph2 applies it" in hits[0]
