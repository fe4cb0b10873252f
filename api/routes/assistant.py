"""The partner's assistant settings (`admin` scope)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from alim.assistants import AssistantSettings, validate
from api.deps import AdminPartner, EngineDep
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


class AssistantOut(AssistantIn):
    updated_at: str | None = None


@router.get("", response_model=AssistantOut)
async def get_assistant(partner: AdminPartner, engine: EngineDep) -> AssistantOut:
    """This partner's assistant settings (defaults until first saved)."""
    return AssistantOut(**(await engine.assistants.get(partner.name)).as_dict())


@router.put("", response_model=AssistantOut, responses={422: {"model": ErrorBody}})
async def put_assistant(
    body: AssistantIn, partner: AdminPartner, engine: EngineDep
) -> AssistantOut:
    """Replace the settings; they apply from the partner's next turn."""
    wanted = AssistantSettings(**body.model_dump())
    validate(engine.settings, wanted)
    return AssistantOut(**(await engine.assistants.put(partner.name, wanted)).as_dict())
