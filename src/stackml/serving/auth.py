"""Optional bearer-token authentication (``STACKML_API_TOKEN``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

__all__ = ["bearer_guard"]


def bearer_guard(token: str | None) -> Callable[..., Any] | None:
    """A FastAPI dependency that answers 401 unless the request carries ``Authorization: Bearer <token>``.

    Args:
        token: the expected token; None or empty turns authentication off (no dependency).

    Returns:
        The dependency, or None when no token is configured.
    """
    if not token:
        return None
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    scheme = HTTPBearer(auto_error=False, description="The service's STACKML_API_TOKEN.")
    expected = token.encode()

    # async: a plain def would run in the thread pool, a thread hop per request.
    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        # compare_digest takes the same time wherever the strings differ: no timing oracle on the token.
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(
                status_code=401,
                detail="Missing or wrong bearer token.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
