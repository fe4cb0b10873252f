"""The partner's assistant settings (`admin` scope)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from alim.assistants import AssistantSettings, save
from api.deps import AdminPartner, EngineDep
from api.routes.knowledge import knowledge_of
from api.schemas import ErrorBody

router = APIRouter(prefix="/assistant", tags=["assistant"])


class AssistantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field("ALİM", min_length=1, max_length=100, examples=["Aqro Köməkçi"])
    instructions: str = Field(
        "",
        max_length=4000,
        description="Appended to the system prompt of hosted models.",
        examples=["Cavablarda həmişə yerli aqronom xidmətinin telefonunu xatırlat."],
    )
    model: str = Field(
        "",
        max_length=100,
        description='"" = server default; groq | openai | offline, optionally ":<model>".',
        examples=["offline"],
    )
    escalation_threshold: float | None = Field(None, ge=0, le=1)
    default_language: Literal["auto", "az", "en", "ru"] = "auto"
    default_region: str | None = Field(None, max_length=100, examples=["Quba"])
    dataset_ids: list[str] | None = Field(
        None,
        max_length=20,
        description="The datasets of yours a chat request searches when it names none (at most "
        "20; `[]`: none of yours); null: all of yours. A dataset deleted later is skipped. "
        "Another partner's dataset id gives 404 `dataset_not_found`.",
        examples=[["ds-3f2a9c1e5b7d4a60"]],
    )
    include_bundled: bool = Field(
        True,
        description="Whether a chat request that does not say searches the shared bundled base.",
    )


class AssistantOut(AssistantIn):
    updated_at: str | None = None


@router.get("", response_model=AssistantOut)
async def get_assistant(partner: AdminPartner, engine: EngineDep) -> AssistantOut:
    """This partner's assistant settings (defaults until first saved)."""
    return AssistantOut(**(await engine.assistants.get(partner.name)).as_dict())


@router.put(
    "",
    response_model=AssistantOut,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def put_assistant(
    body: AssistantIn, partner: AdminPartner, engine: EngineDep
) -> AssistantOut:
    """Replace the settings; they apply from the partner's next turn."""
    fields = body.model_dump()
    if body.dataset_ids is not None:
        fields["dataset_ids"] = tuple(body.dataset_ids)
    saved = await save(
        engine.assistants,
        engine.settings,
        knowledge_of(engine),
        partner.name,
        AssistantSettings(**fields),
    )
    return AssistantOut(**saved.as_dict())
