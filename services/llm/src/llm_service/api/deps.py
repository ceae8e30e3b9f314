"""Dependencies the routes declare with `Annotated[..., Depends()]`."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from llm_service.config import LLMSettings
from llm_service.embeddings import EmbeddingModel
from llm_service.engines.selection import EngineSelector


def get_settings(request: Request) -> LLMSettings:
    return cast(LLMSettings, request.app.state.settings)


def get_selector(request: Request) -> EngineSelector:
    return cast(EngineSelector, request.app.state.selector)


def get_embeddings(request: Request) -> EmbeddingModel:
    return cast(EmbeddingModel, request.app.state.embeddings)


SettingsDep = Annotated[LLMSettings, Depends(get_settings)]
SelectorDep = Annotated[EngineSelector, Depends(get_selector)]
EmbeddingsDep = Annotated[EmbeddingModel, Depends(get_embeddings)]
