"""Typed calls of the user and API-key scripts (store/lua)."""

from __future__ import annotations

from collections.abc import Mapping

from taskgate.store.keys import Keys
from taskgate.store.script_api.typed import typed
from taskgate.store.scripts import Scripts


@typed("create_user")
async def create_user(s: Scripts, k: Keys, *, user_id: str, digest: str, fields: Mapping[str, str]) -> None:
    await s.call(
        "create_user",
        keys=[k.user(user_id), k.users(), k.api_key(digest), k.user_api_keys(user_id)],
        args=[user_id, digest, *(x for pair in fields.items() for x in pair)],
    )


@typed("revoke_api_key")
async def revoke_api_key(s: Scripts, k: Keys, *, digest: str) -> str:
    """The user whose key it was; NotFound("api key") when no key has this digest."""
    r = await s.call("revoke_api_key", keys=[k.api_key(digest)], args=[k.base, digest])
    return str(r[1])


@typed("rotate_api_key")
async def rotate_api_key(s: Scripts, k: Keys, *, digest: str, user_id: str) -> int:
    """How many old keys were revoked; NotFound("user") for an unknown user."""
    r = await s.call(
        "rotate_api_key", keys=[k.user(user_id), k.user_api_keys(user_id)], args=[k.base, digest, user_id]
    )
    return int(r[1])
