"""Dependencies the routes declare with `Annotated[..., Depends()]`."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from llm_service.config import LLMSettings
from llm_service.engines.selection import EngineSelector


def get_settings(request: Request) -> LLMSettings:
    return cast(LLMSettings, request.app.state.settings)


def get_selector(request: Request) -> EngineSelector:
    return cast(EngineSelector, request.app.state.selector)


SettingsDep = Annotated[LLMSettings, Depends(get_settings)]
SelectorDep = Annotated[EngineSelector, Depends(get_selector)]
