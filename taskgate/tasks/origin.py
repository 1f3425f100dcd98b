"""Follow-up tasks (Midjourney upscale, variation, reroll, pan, outpaint, inpaint, seed, ...) name
the task they act on in ``input.origin_task_id``. The origin must exist, be the caller's own task
(another customer's is "not found", as everywhere), be of the same model and of a task type the
follow-up applies to, and be completed. Checked before anything is frozen or queued."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from taskgate.errors import InvalidInput, NotFound
from taskgate.models import TaskStatus
from taskgate.tasks.record import TaskRecord

ORIGIN_FIELD = "origin_task_id"
FIELD = f"input.{ORIGIN_FIELD}"
# Midjourney task types that end in a grid of four images, and what each follow-up acts on
MJ_GRIDS = frozenset({"imagine", "variation", "reroll", "blend", "pan", "outpaint", "inpaint"})
MJ_UPSCALED = frozenset({"upscale"})
FOLLOW_UP_ORIGINS: dict[tuple[str, str], frozenset[str]] = {
    ("midjourney", "upscale"): MJ_GRIDS,
    ("midjourney", "variation"): MJ_GRIDS | MJ_UPSCALED,
    ("midjourney", "reroll"): MJ_GRIDS,
    ("midjourney", "seed"): MJ_GRIDS | MJ_UPSCALED,
    ("midjourney", "pan"): MJ_UPSCALED,
    ("midjourney", "outpaint"): MJ_UPSCALED,
    ("midjourney", "inpaint"): MJ_UPSCALED,
}
Loader = Callable[[str], Awaitable[TaskRecord | None]]


async def check_origin(
    load: Loader, user_id: str, model: str, task_type: str, task_input: dict[str, Any]
) -> None:
    """Raise NotFound / InvalidInput naming ``input.origin_task_id`` unless the origin may be used.
    A task type outside the table that carries an origin gets the same checks with any origin
    task type of its model."""
    origin_id = task_input.get(ORIGIN_FIELD)
    if origin_id is None:
        return
    origin_id = str(origin_id)
    origin = await load(origin_id)
    if origin is None or origin.user_id != user_id:
        missing = NotFound("origin task", origin_id)
        missing.detail = {"field": FIELD}
        raise missing
    allowed = FOLLOW_UP_ORIGINS.get((model, task_type))
    if origin.model != model or (allowed is not None and origin.task_type not in allowed):
        kinds = ", ".join(sorted(allowed)) if allowed else f"{model} tasks"
        raise InvalidInput(
            FIELD, f"{task_type} applies to {kinds}, not to a {origin.model} {origin.task_type} task"
        )
    if origin.status != TaskStatus.COMPLETED:
        raise InvalidInput(FIELD, f"the origin task is {origin.status}; it must be completed")
