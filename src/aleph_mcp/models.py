"""Domain types shared by every layer: statuses, requests, provider answers, stored edits, tool outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from aleph_mcp.errors import ErrorCode

EditStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
AspectRatio = Literal["16:9", "9:16", "4:3", "3:4", "1:1", "21:9"]
ASPECT_RATIOS: tuple[AspectRatio, ...] = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
SEED_MAX = 4_294_967_295
LOCAL_OWNER = "local"  # the owner of everything made without sign-in: stdio, the CLI, unsigned loopback


@dataclass(frozen=True)
class EditRequest:
    """What an adapter turns into one create call. `video` is an https URL, data URI or upload URI."""

    prompt: str
    video: str
    model: str
    aspect_ratio: AspectRatio | None = None
    seed: int | None = None
    reference_image: str | None = None
    watermark: str | None = None
    # Where the provider may announce the job's end (a webhook); only a hint to check it (server/webhooks).
    callback_url: str | None = None


@dataclass(frozen=True)
class RemoteStatus:
    """One status read from a provider, already in our vocabulary."""

    status: EditStatus
    progress: float | None = None
    output_url: str | None = None
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    notes: str | None = None  # what the provider did or changed that the agent should know
    # The provider's own figure for this job, in its credits: an estimate while it runs, final once ended
    # (Runway: `estimatedCost.credits`, then `cost.credits`, 0 when refunded). None: it reports none.
    cost_credits: float | None = None
    cost_final: bool = False


@dataclass
class Edit:
    """The stored edit. Mutable: the poller and the service update it and save it back."""

    edit_id: str
    provider: str
    model: str
    prompt: str
    video: str  # display form of the input: a URL or a short data-URI summary, never a whole data URI
    options: dict[str, Any] = field(default_factory=dict)
    status: EditStatus = "queued"
    provider_task_id: str | None = None
    progress: float | None = None
    output_url: str | None = None
    thumbnail_url: str | None = None
    local_path: str | None = None
    thumbnail_path: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    notes: str | None = None
    warnings: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    next_poll_at: float | None = None
    poll_failures: int = 0
    polls: int = 0
    estimated_cost_usd: float | None = None  # the quote when it was submitted; None: price unknown
    cost_basis: str | None = None  # how that figure was reached, e.g. "5 s × $0.15/s"
    # What the provider itself reports the job costs (see RemoteStatus.cost_credits), and that in USD at the
    # catalog's credit price (an estimate: the conversion is not the provider's). The budget prefers these.
    provider_cost_credits: float | None = None
    provider_cost_usd: float | None = None
    provider_cost_final: bool = False
    # Sending the create, recorded in the store before it leaves (see edits/capacity.py): with no task id,
    # `create_sent_at` set means the provider may have the job; `submit_after` set means it waits for
    # capacity, was never created, and `pending_request` holds the create to send.
    create_sent_at: float | None = None
    submit_after: float | None = None
    pending_request: dict[str, Any] | None = None
    webhook_token_hash: str | None = None  # sha256 of the secret in this edit's callback URL, if it has one
    owner: str = LOCAL_OWNER  # who made it: a signed-in HTTP caller ("token:…", "oauth:…"), or local
    # A chain: the finished edit whose archived output is this edit's input (edits/chains.py).
    parent_edit_id: str | None = None
    # The part of the input edited, seconds into it (edits/trims.py); None: from its start / to its end.
    trim_start: float | None = None
    trim_end: float | None = None
    # A window of a whole-clip job (edits/long_clips.py): the job's edit id, and which part of its input
    # this edit renders (seconds of the original clip). None on every other edit.
    part_of: str | None = None
    window_index: int | None = None
    window_start: float | None = None
    window_end: float | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def waiting_for_capacity(self) -> bool:
        """Never sent: queued here until the provider has room (no job exists, nothing is billed)."""
        return (
            not self.is_terminal
            and self.provider_task_id is None
            and self.create_sent_at is None
            and self.submit_after is not None
            and self.pending_request is not None
        )

    # -- the lifecycle's end: every code path that ends an edit goes through `finish` -------------------
    def finish(
        self, status: EditStatus, now: float, code: str | None = None, message: str | None = None
    ) -> None:
        """End the edit: succeeded (no error), failed or cancelled (with why). Nothing polls it again."""
        self.status = status
        self.error_code, self.error_message = (None, None) if status == "succeeded" else (code, message)
        self.finished_at = self.updated_at = now
        self.next_poll_at = self.submit_after = self.pending_request = None

    def fail(self, code: str, message: str, now: float) -> None:
        self.finish("failed", now, code, message)

    def cancel(self, now: float) -> None:
        self.finish("cancelled", now, "cancelled", "Cancelled on request.")


# -- what an edit may have cost: the budget's inputs, which a store sums without reading every edit ---------
# "refused": ended before a job existed (never billed); "billed": may have been billed, whatever the provider
# says; "failed" / "cancelled": billed only where the provider bills failures / cancellations (prices.json).
# The SQLite ledger classifies in SQL too (store/ledger.py billing_sql): change both, in a migration.
BillingClass = Literal["billed", "refused", "failed", "cancelled"]
# Failures of ours, not renders the provider reported failed: the job may have run (and been billed).
NOT_A_RENDER_FAILURE: frozenset[ErrorCode] = frozenset(
    {"submit_outcome_unknown", "timeout", "output_expired", "auth_failed", "remote_not_found"}
)
# How a store sums an edit's stored cost: "requote" (none stored: the budget quotes today's price), "summed"
# (0 to MAX_SUMMED_USD, summed exactly in whole nanodollars), "outlier" (anything else: recounted one by one).
CostKind = Literal["requote", "summed", "outlier"]
MAX_SUMMED_USD = 1e6
NANO = 1e9


def billing_class(edit: Edit) -> BillingClass:
    if edit.is_terminal and edit.provider_task_id is None and edit.error_code != "submit_outcome_unknown":
        return "refused"  # refused, out of time waiting for capacity, or cancelled before a job existed
    if edit.status == "failed":
        return "billed" if edit.error_code in NOT_A_RENDER_FAILURE else "failed"
    return "cancelled" if edit.status == "cancelled" else "billed"


def stored_cost(edit: Edit) -> float | None:
    """The provider's own figure once it reported one (0 when it refunded the job), else our quote."""
    return edit.provider_cost_usd if edit.provider_cost_usd is not None else edit.estimated_cost_usd


def cost_kind(cost: float | None) -> CostKind:
    if cost is None:
        return "requote"
    return "summed" if 0 <= cost <= MAX_SUMMED_USD else "outlier"


def nanodollars(cost: float) -> int:
    """A summed cost in whole nanodollars, rounded half up (SQL: CAST(cost * 1e9 + 0.5 AS INTEGER))."""
    return int(cost * NANO + 0.5)


@dataclass(frozen=True)
class SpendGroup:
    """Edits of a time window alike for the budget: one provider, model, billing class and cost kind.
    `nano` sums the stored costs of "summed" edits in nanodollars; `free` counts those stored at $0."""

    provider: str
    model: str
    billing: BillingClass
    kind: CostKind
    edits: int
    nano: int
    free: int


_MERGEABLE = {"type", "enum", "minLength", "maxLength", "minimum", "maximum"}


def lean_schema(schema: dict[str, Any]) -> None:
    """Trim a model's JSON schema to what a client needs: clients validate every result against it, so its
    size is latency. Drops the titles pydantic derives from field names and null defaults, and writes
    `X | None` as a type list instead of an `anyOf`."""
    schema.pop("title", None)
    schema.pop("description", None)  # a class docstring: the tool's own description says it better
    schema.pop("additionalProperties", None)  # extra="forbid" guards what we read, not what clients get
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if "default" in prop and prop["default"] in (None, False, []):  # what absent means anyway
            del prop["default"]
        options = prop.get("anyOf")
        if options and len(options) == 2 and {"type": "null"} in options:
            other = next(o for o in options if o != {"type": "null"})
            if isinstance(other.get("type"), str) and set(other) <= _MERGEABLE:
                del prop["anyOf"]
                prop.update(other, type=[other["type"], "null"])
                if "enum" in prop:
                    prop["enum"] = [*prop["enum"], None]


class Lean(BaseModel):
    """Base of every model a tool returns: the same data with a leaner published schema."""

    model_config = ConfigDict(json_schema_extra=lambda schema, _: lean_schema(schema))


class EditErrorInfo(Lean):
    code: str = Field(description="Stable reason, e.g. provider_rejected, timeout")
    message: str = Field(description="What went wrong, in the provider's words if any")


# Inlined where it is used: a `$defs` entry plus its reference would cost more in every tool's schema.
ERROR_SCHEMA = {
    "type": ["object", "null"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "description": "Why it failed or was cancelled",
}


class ProviderCost(Lean):
    """What the provider itself reports the job costs (Runway: estimatedCost, then cost.credits)."""

    credits: float
    final: bool = Field(description="False while it runs: an estimate")
    usd: float | None = Field(description="credits at the catalog's credit price: a conversion, not the bill")
    basis: str


PROVIDER_COST_SCHEMA = {
    "type": ["object", "null"],
    "description": "The provider's own figure: {credits, final, usd, basis}",
}


class LineageStep(Lean):
    """One edit of a chain: its id, its prompt and its input (the first step's is the original input)."""

    edit_id: str
    prompt: str
    input: str
    trim: str | None = None


LINEAGE_SCHEMA = {
    "type": ["array", "null"]
}  # described in the tools' text: every byte here is paid four times


class WindowInfo(Lean):
    """One window of a whole-clip job: the part of the clip it covers and the edit that renders it."""

    index: int
    start_seconds: float
    end_seconds: float
    edit_id: str | None = None
    status: str | None = None
    part_of: str | None = None  # on a window's own edit: the job it belongs to


# As small as it gets: every tool's schema carries it, and tools/list has a size budget (test_tool_text).
WINDOWS_SCHEMA: dict[str, object] = {}  # any JSON: the records are built here, never parsed from a client


class RecordFields(Lean):
    """The status record's fields. edit_id, status and the times are null only in edit_video's dry run
    (nothing was created); EditRecord, what every tool and resource returns for an edit, requires them."""

    edit_id: str | None = Field(description="null only in a dry run: no edit was created")
    status: EditStatus | None = Field(description="null only in a dry run")
    provider: str
    model: str
    prompt: str
    provider_task_id: str | None = None
    created_at: str | None = Field(description="ISO 8601, UTC; null only in a dry run")
    updated_at: str | None = Field(description="ISO 8601, UTC; null only in a dry run")
    finished_at: str | None = None
    progress: float | None = Field(default=None, description="0..1")
    output_url: str | None = Field(default=None, description="Expires")
    local_path: str | None = None
    video_uri: str | None = None
    thumbnail_uri: str | None = None
    error: Annotated[EditErrorInfo | None, WithJsonSchema(ERROR_SCHEMA)] = None
    notes: str | None = Field(default=None, description="What the provider applied or ignored")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the provider changes silently, or was not checked",
    )
    check_again_in_seconds: int | None = Field(default=None, description="null once ended")
    duplicate_of_request: bool = Field(default=False, description="Matched an earlier identical call")
    estimated_cost_usd: float | None = Field(
        default=None,
        description="The quote, USD; null: unknown",
    )
    cost_basis: str | None = None
    provider_cost: Annotated[ProviderCost | None, WithJsonSchema(PROVIDER_COST_SCHEMA)] = None
    parent_edit_id: str | None = None
    trim: str | None = None
    lineage: Annotated[list[LineageStep] | None, WithJsonSchema(LINEAGE_SCHEMA)] = None
    # A whole-clip job's windows; on a window's own edit, that window with `part_of`, its job's id.
    windows: Annotated[list[WindowInfo], WithJsonSchema(WINDOWS_SCHEMA)] = Field(default_factory=list)


class EditRecord(RecordFields):
    """An edit's status record."""

    edit_id: str
    status: EditStatus
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str


# What a status answer's published schema types: the fields an agent acts on. A client validates every
# field a schema names on every answer, in pure Python (~4 µs a field: all 26 cost it more than the server
# spends making the answer). Every field is listed in the tools' text and the README's record; the server
# still checks each answer against the whole EditRecord before it leaves.
CHECKED_FIELDS = ("edit_id", "status", "check_again_in_seconds", "video_uri", "error")
RECORD_DESCRIPTION = (
    "An edit's status record; also provider, model, prompt, created_at, updated_at (strings) and the "
    "record's other fields (null or empty when they do not apply)"
)


def _checked(schema: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`schema` (a record's, made lean) with only `names` typed, and what the rest are said in words."""
    lean_schema(schema)
    schema["properties"] = {name: schema["properties"][name] for name in names}
    schema["description"] = RECORD_DESCRIPTION
    return schema


def _status_schema(schema: dict[str, Any], _model: Any) -> None:
    _checked(schema, CHECKED_FIELDS)


class StatusRecord(EditRecord):
    """EditRecord, published with its required fields and the types of CHECKED_FIELDS only (see above):
    what get_edit_status and cancel_edit answer. It validates exactly as EditRecord does."""

    model_config = ConfigDict(json_schema_extra=_status_schema)


def _listed_record_schema() -> dict[str, Any]:
    """A listed record's published schema: its required fields, and the types of the two a client picks
    an edit by (20 records a page: every field typed would cost a client ~10x the time). Inlined, not a
    `$ref`; the server still checks every record against the full model."""
    return _checked(EditRecord.model_json_schema(), ("edit_id", "status"))


class EditList(Lean):
    edits: Annotated[list[EditRecord], WithJsonSchema({"type": "array", "items": _listed_record_schema()})]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next, older page")
