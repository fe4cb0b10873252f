"""What a caller asks of the engine: one message for a thread, validated before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from alim.assistants import AssistantSettings
from alim.errors import InvalidRequest
from alim.threads import Owner
from graphs.context import Context


@dataclass
class TurnRequest:
    message: str
    owner: Owner
    thread_id: str | None = None
    profile: dict[str, Any] | None = None
    context: Context = field(default_factory=Context)
    metadata: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None
    """The partner's datasets to search (None: all of them); resolved by the engine into
    `context.datasets` (404 `dataset_not_found` for one that is not the partner's)."""
    include_bundled: bool | None = None
    """Search the shared bundled knowledge base too (None: as the assistant's settings say)."""
    datasets_by_default: bool = False
    """`datasets` came from the assistant's settings: one deleted since is skipped, not 404."""
    stream_tokens: bool = True
    """Stream the answer as the model writes it. A caller that waits for the whole answer
    (`/graph/invoke`) says False: the answer is one token event, and the model's chunks are
    not passed through LangGraph's message stream one by one."""


def validate(request: TurnRequest, max_chars: int) -> TurnRequest:
    """The request with its message stripped; InvalidRequest (stable codes) when unusable."""
    text = request.message
    if not text or not text.strip():
        raise InvalidRequest("message is empty", code="message_empty")
    if len(text) > max_chars:
        raise InvalidRequest(
            f"message is longer than {max_chars} characters", code="message_too_long"
        )
    if "\x00" in text:
        raise InvalidRequest("message contains a NUL character", code="invalid_characters")
    return replace(request, message=text.strip())


def with_assistant(request: TurnRequest, a: AssistantSettings) -> TurnRequest:
    """Apply the partner's assistant settings where the request leaves a choice open."""
    ctx = request.context
    changes: dict[str, Any] = {}
    if a.model and not ctx.model:
        changes["model"] = a.model
    if a.instructions:
        changes["instructions"] = a.instructions
    if a.escalation_threshold is not None:
        changes["escalation_threshold"] = a.escalation_threshold
    if a.default_language != "auto" and ctx.language == "auto":
        changes["language"] = a.default_language
    if a.default_region:
        changes["default_region"] = a.default_region
    metadata = {**request.metadata, "assistant": a.display_name}
    if a.updated_at:
        metadata["assistant_updated_at"] = a.updated_at
    datasets, by_default = request.datasets, request.datasets_by_default
    if datasets is None and a.dataset_ids is not None:
        datasets, by_default = a.dataset_ids, True
    include_bundled = (
        a.include_bundled if request.include_bundled is None else request.include_bundled
    )
    return replace(
        request,
        context=replace(ctx, **changes),
        metadata=metadata,
        datasets=datasets,
        datasets_by_default=by_default,
        include_bundled=include_bundled,
    )
