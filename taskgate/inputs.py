"""Input models (pydantic v2) per task type, named by the catalogue's ``input = "<schema>"`` entries.

Each model checks the fields taskgate relies on and passes any other field through unchanged
(``extra="allow"``), so GoAPI clients that send provider options keep working. ``Catalogue.validate_input``
dumps the model (without ``None`` values) as the task's normalised input and turns the first
validation error into ``InvalidInput("input.<field>", reason)``. Model-level checks raise
``PydanticCustomError`` with ``ctx={"field": ...}`` so the error still names a field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from taskgate.errors import InvalidInput
from taskgate.models import Lane

PROMPT_MAX_CHARS = 4000
URL_MAX_CHARS = 2048
MJ_MAX_RATIO = 8  # the widest aspect ratio accepted for Midjourney, either way (8:1 .. 1:8)
FLUX_MAX_PIXELS = 1024 * 1024
VIDEO_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")

_RATIO = re.compile(r"(\d{1,3})\s*:\s*(\d{1,3})")
_SIZE = re.compile(r"(\d{1,5})\s*[xX*×]\s*(\d{1,5})")
_MJ_VERSION = re.compile(r"(niji\s*)?\d+(\.\d+)?", re.IGNORECASE)


def field_error(field: str, message: str) -> PydanticCustomError:
    """A model-level validation error that still names the field it is about."""
    return PydanticCustomError("invalid_field", message, {"field": field})


def invalid_input_from(error: ValidationError) -> InvalidInput:
    """The first validation error as ``InvalidInput("input.<field>", reason)``."""
    first = error.errors()[0]
    ctx = first.get("ctx") or {}
    loc = [str(part) for part in first["loc"]] or ([str(ctx["field"])] if "field" in ctx else [])
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        reason = "is required"
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


def _url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _mj_ratio(value: str) -> str:
    match = _RATIO.fullmatch(value.strip())
    if not match:
        raise ValueError("must look like W:H, for example 16:9")
    width, height = int(match[1]), int(match[2])
    if not width or not height or max(width / height, height / width) > MJ_MAX_RATIO:
        limits = f"from 1:{MJ_MAX_RATIO} to {MJ_MAX_RATIO}:1"
        raise ValueError(f"unsupported aspect ratio {width}:{height} ({limits})")
    return f"{width}:{height}"


def _to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _to_int(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _bot_id(value: object) -> object:
    if value in (None, "", 0) and not isinstance(value, bool):
        return None  # GoAPI clients send 0 or "" for "no bot"
    return _to_str(value)


def _mj_version(value: object) -> object:
    value = _to_str(value) if not isinstance(value, float) else str(value)
    if isinstance(value, str) and not _MJ_VERSION.fullmatch(value.strip()):
        raise ValueError("must be a Midjourney version such as 5.2, 6 or niji 6")
    return value.strip() if isinstance(value, str) else value


def _image_size(value: str) -> str:
    match = _SIZE.fullmatch(value.strip())
    if not match or not int(match[1]) or not int(match[2]):
        raise ValueError("must look like WIDTHxHEIGHT, for example 1024x768")
    return f"{int(match[1])}x{int(match[2])}"


def _music_version(value: object) -> object:
    aliases = {"3": "v3", "chirp-v3-0": "v3", "3.5": "v3.5", "chirp-v3-5": "v3.5"}
    value = _lower(value)
    return aliases.get(value, value) if isinstance(value, str) else value


Prompt = Annotated[str, Field(max_length=PROMPT_MAX_CHARS), BeforeValidator(_prompt)]
OptionalPrompt = Annotated[
    Annotated[str, Field(max_length=PROMPT_MAX_CHARS)] | None, BeforeValidator(_optional_prompt)
]
HttpUrl = Annotated[str, Field(max_length=URL_MAX_CHARS), AfterValidator(_url)]
MjAspectRatio = Annotated[str, AfterValidator(_mj_ratio)]
VideoAspectRatio = Annotated[Literal[VIDEO_RATIOS], BeforeValidator(_lower)]  # type: ignore[valid-type]
ProcessMode = Annotated[Lane, BeforeValidator(_lower)]
BotId = Annotated[Annotated[str, Field(min_length=1, max_length=64)] | None, BeforeValidator(_bot_id)]
GridIndex = Annotated[Literal["1", "2", "3", "4"], BeforeValidator(_to_str)]
UpscaleIndex = Annotated[
    Literal["1", "2", "3", "4", "light", "beta", "2x", "4x", "subtle", "creative"],
    BeforeValidator(_to_str),
    BeforeValidator(_lower),
]
VariationIndex = Annotated[
    Literal["1", "2", "3", "4", "high_variation", "low_variation"], BeforeValidator(_to_str)
]
FluxSide = Annotated[int, Field(ge=256, le=1536, multiple_of=16)]
ImageSide = Annotated[int, Field(ge=1, le=16384)]


class TaskInput(BaseModel):
    """Base of every input model: unknown fields pass through to the provider."""

    model_config = ConfigDict(extra="allow")


# --- Midjourney ---------------------------------------------------------------------------------------


class MjInput(TaskInput):
    process_mode: ProcessMode = Lane.FAST
    bot_id: BotId = None
    version: Annotated[str | None, BeforeValidator(_mj_version)] = None


class MjImagine(MjInput):
    prompt: Prompt
    aspect_ratio: MjAspectRatio | None = None
    skip_prompt_check: bool | None = None


class MjOrigin(MjInput):
    origin_task_id: UUID


class MjUpscale(MjOrigin):
    index: UpscaleIndex


class MjVariation(MjOrigin):
    index: VariationIndex
    prompt: OptionalPrompt = None
    skip_prompt_check: bool | None = None


class MjReroll(MjOrigin):
    prompt: OptionalPrompt = None
    aspect_ratio: MjAspectRatio | None = None
    skip_prompt_check: bool | None = None


class MjInpaint(MjOrigin):
    mask: Annotated[str, Field(min_length=1)]
    prompt: OptionalPrompt = None
    skip_prompt_check: bool | None = None


class MjOutpaint(MjOrigin):
    zoom_ratio: Annotated[float, Field(gt=1, le=2)] = 2.0
    prompt: OptionalPrompt = None
    skip_prompt_check: bool | None = None


class MjPan(MjOrigin):
    direction: Annotated[Literal["up", "down", "left", "right"], BeforeValidator(_lower)]
    prompt: OptionalPrompt = None
    skip_prompt_check: bool | None = None


class MjSeed(MjOrigin):
    pass


class MjDescribe(MjInput):
    image_url: HttpUrl


class MjBlend(MjInput):
    image_urls: Annotated[list[HttpUrl], Field(min_length=2, max_length=5)]
    dimension: Annotated[Literal["square", "portrait", "landscape"], BeforeValidator(_lower)] = "square"


# --- Flux ---------------------------------------------------------------------------------------------


class FluxTxt2Img(TaskInput):
    prompt: Prompt
    negative_prompt: OptionalPrompt = None
    width: FluxSide | None = None
    height: FluxSide | None = None

    @model_validator(mode="after")
    def _pixels(self) -> FluxTxt2Img:
        if (self.width or 1024) * (self.height or 1024) > FLUX_MAX_PIXELS:
            raise field_error("width", f"width x height must not exceed {FLUX_MAX_PIXELS} pixels")
        return self


class FluxImg2Img(FluxTxt2Img):
    image: HttpUrl


# --- video and music ----------------------------------------------------------------------------------


class Video(TaskInput):
    prompt: OptionalPrompt = None
    negative_prompt: OptionalPrompt = None
    image_url: HttpUrl | None = None
    duration: Annotated[Literal[5, 10], BeforeValidator(_to_int)] = 5
    aspect_ratio: VideoAspectRatio | None = None

    @model_validator(mode="after")
    def _prompt_or_image(self) -> Video:
        if self.prompt is None and self.image_url is None:
            raise field_error("prompt", "a prompt (or an image_url) is required")
        return self


class KlingVideo(Video):
    mode: Annotated[Literal["std", "pro"], BeforeValidator(_lower)] = "std"


class Music(TaskInput):
    prompt: OptionalPrompt = None
    gpt_description_prompt: OptionalPrompt = None
    lyrics_type: Annotated[Literal["generate", "user", "instrumental"], BeforeValidator(_lower)] = "generate"
    model_version: Annotated[Literal["v3", "v3.5"], BeforeValidator(_music_version)] = "v3.5"

    @model_validator(mode="after")
    def _prompt_given(self) -> Music:
        if self.lyrics_type == "user" and self.prompt is None:
            raise field_error("prompt", "lyrics_type 'user' needs the lyrics in prompt")
        if self.prompt is None and self.gpt_description_prompt is None:
            raise field_error("prompt", "a prompt or a gpt_description_prompt is required")
        return self


# --- image toolkit ------------------------------------------------------------------------------------


def image_pixels(data: dict[str, Any]) -> int | None:
    """Pixel count of the input picture from ``image_size`` ("WxH"), else ``width`` x ``height``."""
    size = data.get("image_size")
    if isinstance(size, str) and (match := _SIZE.fullmatch(size.strip())):
        return int(match[1]) * int(match[2])
    width, height = data.get("width"), data.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width * height
    return None


class FaceSwap(TaskInput):
    target_image: HttpUrl
    swap_image: HttpUrl


class BackgroundRemove(TaskInput):
    image: HttpUrl


class SizedImage(TaskInput):
    """A picture whose size class prices the task; bigger than ``max_side`` squared has no price."""

    max_side: ClassVar[int] = 2048
    image: HttpUrl
    image_size: Annotated[str | None, AfterValidator(lambda v: v if v is None else _image_size(v))] = None
    width: ImageSide | None = None
    height: ImageSide | None = None

    @model_validator(mode="after")
    def _size(self) -> SizedImage:
        pixels = image_pixels(self.model_dump())
        if pixels is not None and pixels > self.max_side**2:
            field = "image_size" if self.image_size else "width"
            raise field_error(field, f"images over {self.max_side}x{self.max_side} pixels are not supported")
        return self


class ImageUpscale(SizedImage):
    scale: Annotated[Literal[2, 4, 8], BeforeValidator(_to_int)] = 2


class ImageSegment(SizedImage):
    max_side: ClassVar[int] = 3072
    prompt: Prompt
    negative_prompt: OptionalPrompt = None


INPUT_MODELS: dict[str, type[TaskInput]] = {
    "mj_imagine": MjImagine,
    "mj_upscale": MjUpscale,
    "mj_variation": MjVariation,
    "mj_reroll": MjReroll,
    "mj_describe": MjDescribe,
    "mj_blend": MjBlend,
    "mj_inpaint": MjInpaint,
    "mj_outpaint": MjOutpaint,
    "mj_pan": MjPan,
    "mj_seed": MjSeed,
    "flux_txt2img": FluxTxt2Img,
    "flux_img2img": FluxImg2Img,
    "video": Video,
    "kling_video": KlingVideo,
    "music": Music,
    "face_swap": FaceSwap,
    "background_remove": BackgroundRemove,
    "image_upscale": ImageUpscale,
    "image_segment": ImageSegment,
}
