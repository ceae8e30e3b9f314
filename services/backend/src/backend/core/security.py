"""Bearer-token authentication for everything under /api."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# auto_error=False: we raise our own 401 with a message saying what to send, and the
# scheme still appears in OpenAPI so /docs offers an "Authorize" button.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="The API_TOKEN from `.env.<env>`: `Authorization: Bearer <API_TOKEN>`.",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing bearer token: send `Authorization: Bearer <API_TOKEN>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected: str = request.app.state.settings.api_token.get_secret_value()
    # Constant-time comparison: response timing must not reveal how much of a guess matched.
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Invalid bearer token: use the API_TOKEN configured in `.env.<env>`.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
