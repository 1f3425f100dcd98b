"""Input models (pydantic v2) per task type, named by the catalogue's ``input = "<schema>"`` entries.

Midjourney, Flux, the image toolkit and Trellis (3D) live here; video families in
``taskgate.catalogue.inputs_video``, music and audio in
``taskgate.catalogue.inputs_audio``, shared field types in ``taskgate.catalogue.input_fields``.
``Catalogue.validate_input`` dumps the model (without ``None`` values) as the
task's normalised input and turns the first validation error into ``InvalidInput("input.<field>",
reason)``. Constraints follow GoAPI's public documentation (the catalogue cites the page per entry);
fields the documentation leaves open pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from taskgate.catalogue.input_fields import (
    HttpUrl,
    ImageSide,
    ImageSize,
    MediaOrBase64,
    MediaUrl,
    OptionalPrompt,
    Prompt,
    Settings,
    TaskInput,
    _lower,
    _to_int,
    _to_str,
    field_error,
    image_pixels,
    invalid_input_from,
    require_one,
)
from taskgate.catalogue.inputs_audio import AUDIO_INPUTS
from taskgate.catalogue.inputs_video import VIDEO_INPUTS
from taskgate.models import Lane

__all__ = ["INPUT_MODELS", "TaskInput", "image_pixels", "invalid_input_from"]

MJ_MAX_RATIO = 8  # the widest aspect ratio accepted for Midjourney, either way (8:1 .. 1:8)
# Flux: "width*height cannot exceed 1048576" (piapi.ai/docs/flux-api/text-to-image); no other size rule
FLUX_MAX_PIXELS = 1024 * 1024

_RATIO = re.compile(r"(\d{1,3})\s*:\s*(\d{1,3})")
_MJ_VERSION = re.compile(r"(niji\s*)?\d+(\.\d+)?", re.IGNORECASE)


def _mj_ratio(value: str) -> str:
    match = _RATIO.fullmatch(value.strip())
    if not match:
        raise ValueError("must look like W:H, for example 16:9")
    width, height = int(match[1]), int(match[2])
    if not width or not height or max(width / height, height / width) > MJ_MAX_RATIO:
        limits = f"from 1:{MJ_MAX_RATIO} to {MJ_MAX_RATIO}:1"
        raise ValueError(f"unsupported aspect ratio {width}:{height} ({limits})")
    return f"{width}:{height}"


def _bot_id(value: object) -> object:
    if value in (None, "", 0) and not isinstance(value, bool):
        return None  # GoAPI clients send 0 or "" for "no bot"
    return _to_str(value)


def _mj_version(value: object) -> object:
    value = _to_str(value) if not isinstance(value, float) else str(value)
    if isinstance(value, str) and not _MJ_VERSION.fullmatch(value.strip()):
        raise ValueError("must be a Midjourney version such as 5.2, 6 or niji 6")
    return value.strip() if isinstance(value, str) else value


MjAspectRatio = Annotated[str, AfterValidator(_mj_ratio)]
ProcessMode = Annotated[Lane, BeforeValidator(_lower)]
BotId = Annotated[Annotated[str, Field(min_length=1, max_length=64)] | None, BeforeValidator(_bot_id)]
UpscaleIndex = Annotated[
    Literal["1", "2", "3", "4", "light", "beta", "2x", "4x", "subtle", "creative"],
    BeforeValidator(_to_str),
    BeforeValidator(_lower),
]
VariationIndex = Annotated[
    Literal["1", "2", "3", "4", "high_variation", "low_variation"], BeforeValidator(_to_str)
]
FluxSide = Annotated[int, Field(ge=1)]
TrellisSteps = Annotated[int, Field(ge=10, le=50)]  # "Sampling steps (10-50)"
TrellisGuidance = Annotated[float, Field(ge=0, le=10)]  # "Guidance strength (0-10)"


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


# --- Flux (piapi.ai/docs/flux-api/*, flux-with-lora-and-controlnet, flux-redux-fill-variation-...) ---


class FluxSized(TaskInput):
    width: FluxSide | None = None
    height: FluxSide | None = None

    @model_validator(mode="after")
    def _pixels(self) -> FluxSized:
        if (self.width or 1024) * (self.height or 1024) > FLUX_MAX_PIXELS:
            raise field_error("width", f"width x height must not exceed {FLUX_MAX_PIXELS} pixels")
        return self


class FluxTxt2Img(FluxSized):
    prompt: Prompt
    negative_prompt: OptionalPrompt = None


class FluxImg2Img(FluxTxt2Img):
    image: MediaUrl


class FluxTxt2ImgLora(FluxTxt2Img):
    lora_settings: Settings | None = None


class FluxImg2ImgLora(FluxImg2Img):
    lora_settings: Settings | None = None


class FluxFill(FluxSized):
    """fill-inpaint (the mask travels in the image) and fill-outpaint (``custom_settings``)."""

    image: MediaUrl
    prompt: OptionalPrompt = None
    negative_prompt: OptionalPrompt = None
    custom_settings: Settings | None = None


class FluxRedux(FluxSized):
    image: MediaUrl
    prompt: OptionalPrompt = None


class FluxControlnet(FluxTxt2Img):
    control_net_settings: Annotated[Settings, Field(min_length=1)]
    lora_settings: Settings | None = None

    @model_validator(mode="after")
    def _control_types(self) -> FluxControlnet:
        for i, setting in enumerate(self.control_net_settings):
            if not isinstance(setting.get("control_type"), str) or not setting["control_type"].strip():
                raise field_error(f"control_net_settings.{i}.control_type", "is required")
        return self


# --- image toolkit (seed 003 "Face Swap" and "Image Editing" pricing; piapi.ai/docs/faceswap-api/*) ---


class FaceSwap(TaskInput):
    target_image: MediaUrl
    swap_image: MediaUrl


class MultiFaceSwap(FaceSwap):
    input_faces_index: Annotated[str | None, BeforeValidator(_to_str)] = None
    source_faces_index: Annotated[str | None, BeforeValidator(_to_str)] = None


class BackgroundRemove(TaskInput):
    image: MediaUrl


class SizedImage(TaskInput):
    """A picture whose size class prices the task; bigger than ``max_side`` squared has no price."""

    max_side: ClassVar[int] = 2048
    image: MediaUrl
    image_size: ImageSize = None
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


# --- Trellis 3D (piapi.ai/docs/trellis-api/create-task; steps 10-50, guidance 0-10) -----------------


class Trellis(TaskInput):
    ss_sampling_steps: TrellisSteps | None = None
    slat_sampling_steps: TrellisSteps | None = None
    ss_guidance_strength: TrellisGuidance | None = None
    slat_guidance_strength: TrellisGuidance | None = None


class TrellisImage(Trellis):
    image: MediaOrBase64 | None = None  # "Input image in base64 or URL format"
    images: list[MediaOrBase64] | None = None

    @model_validator(mode="after")
    def _an_image(self) -> TrellisImage:
        require_one(self, "image", "images")
        return self


class TrellisText(Trellis):
    prompt: Prompt


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
    "flux_txt2img_lora": FluxTxt2ImgLora,
    "flux_img2img_lora": FluxImg2ImgLora,
    "flux_fill": FluxFill,
    "flux_redux": FluxRedux,
    "flux_controlnet": FluxControlnet,
    "face_swap": FaceSwap,
    "multi_face_swap": MultiFaceSwap,
    "background_remove": BackgroundRemove,
    "image_upscale": ImageUpscale,
    "image_segment": ImageSegment,
    "trellis_image": TrellisImage,
    "trellis_text": TrellisText,
    **VIDEO_INPUTS,
    **AUDIO_INPUTS,
}
