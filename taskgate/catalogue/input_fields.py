"""Field types and helpers shared by the input models (``taskgate.catalogue.inputs``, ``inputs_video``,
``inputs_audio``).

Each input model checks the fields taskgate relies on and the constraints GoAPI documents, and passes
any other field through unchanged (``extra="allow"``): where the documentation is silent, taskgate
accepts rather than invents a limit. Model-level checks raise ``PydanticCustomError`` with
``ctx={"field": ...}`` so the error still names a field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from taskgate.errors import InvalidInput

PROMPT_MAX_CHARS = 4000
URL_MAX_CHARS = 2048
VIDEO_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")

_SIZE = re.compile(r"(\d{1,5})\s*[xX*×]\s*(\d{1,5})")
# data:<type>/<subtype>[;param];base64,<payload>: a picture, clip or sound inline in the request
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/=\s]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]+={0,2}")


def field_error(field: str, message: str) -> PydanticCustomError:
    """A model-level validation error that still names the field it is about."""
    return PydanticCustomError("invalid_field", message, {"field": field})


def first_error(error: ValidationError) -> tuple[list[str], str]:
    """The first validation error's field path (a model-level ``field_error`` names its field) and
    its reason without pydantic's ``Value error, `` prefix."""
    first = error.errors()[0]
    ctx = first.get("ctx") or {}
    loc = [str(part) for part in first["loc"]] or ([str(ctx["field"])] if "field" in ctx else [])
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        reason = "is required"
    return loc, reason


def invalid_input_from(error: ValidationError) -> InvalidInput:
    """The first validation error as ``InvalidInput("input.<field>", reason)``."""
    loc, reason = first_error(error)
    return InvalidInput(".".join(["input", *loc]), reason)


def _prompt(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
    return value


def _optional_prompt(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


def _http_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    if len(value) > URL_MAX_CHARS:
        raise ValueError(f"must be at most {URL_MAX_CHARS} characters")
    return value


def _media(value: str) -> str:
    """An http(s) URL, or a ``data:`` URL with a base64 payload (bounded by the body limit)."""
    stripped = value.strip()
    if stripped[:5].lower() == "data:":
        if not _DATA_URL.fullmatch(stripped):
            raise ValueError("must be an http(s) URL or a data: URL (data:<type>;base64,<payload>)")
        return stripped
    try:
        return _http_url(stripped)
    except ValueError as exc:
        raise ValueError(f"{exc} or a data: URL") from exc


def _media_or_base64(value: str) -> str:
    """Where GoAPI documents "URL or base64": also a bare base64 payload."""
    stripped = value.strip()
    if len(stripped) >= 16 and _BASE64.fullmatch(stripped) and not stripped.lower().startswith("http"):
        return stripped
    try:
        return _media(stripped)
    except ValueError as exc:
        raise ValueError(f"{exc}, or base64") from exc


def _to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _to_int(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _image_size(value: str) -> str:
    match = _SIZE.fullmatch(value.strip())
    if not match or not int(match[1]) or not int(match[2]):
        raise ValueError("must look like WIDTHxHEIGHT, for example 1024x768")
    return f"{int(match[1])}x{int(match[2])}"


def image_pixels(data: dict[str, Any]) -> int | None:
    """Pixel count of the input picture from ``image_size`` ("WxH"), else ``width`` x ``height``."""
    size = data.get("image_size")
    if isinstance(size, str) and (match := _SIZE.fullmatch(size.strip())):
        return int(match[1]) * int(match[2])
    width, height = data.get("width"), data.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width * height
    return None


Prompt = Annotated[str, Field(max_length=PROMPT_MAX_CHARS), BeforeValidator(_prompt)]
OptionalPrompt = Annotated[
    Annotated[str, Field(max_length=PROMPT_MAX_CHARS)] | None, BeforeValidator(_optional_prompt)
]
# lyrics and speech text: no length rule in the docs, so none here beyond the request body limit
Text = Annotated[str, BeforeValidator(_prompt)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_prompt)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
MediaUrl = Annotated[str, AfterValidator(_media)]
MediaOrBase64 = Annotated[str, AfterValidator(_media_or_base64)]
# optional media: clients send "" (or null) for "none" (the docs' own examples do: "local_dubbing_url": "")
OptionalMediaUrl = Annotated[MediaUrl | None, BeforeValidator(lambda v: None if v == "" else v)]
VideoAspectRatio = Annotated[Literal[VIDEO_RATIOS], BeforeValidator(_lower)]  # type: ignore[valid-type]
ImageSize = Annotated[str | None, AfterValidator(lambda v: v if v is None else _image_size(v))]
ImageSide = Annotated[int, Field(ge=1, le=16384)]
Settings = list[dict[str, Any]]  # lora_settings, control_net_settings, custom_settings: passed through


class TaskInput(BaseModel):
    """Base of every input model: unknown fields pass through to the provider."""

    model_config = ConfigDict(extra="allow")


def require_one(model: BaseModel, *fields: str) -> None:
    """At least one of ``fields`` is set, else an error naming the first."""
    if all(getattr(model, name, None) in (None, "", []) for name in fields):
        names = " or ".join(fields)
        raise field_error(fields[0], f"is required (one of {names})")
