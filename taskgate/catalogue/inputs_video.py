"""Input models of the video families: Kling, Luma, Hailuo, Hunyuan, WanX, Skyreels, Framepack,
AI Hug and the video toolkit.

Each class cites the public page its constraints come from (GoAPI and PiAPI serve the same API; the
field inventory was checked against the PiAPI catalogue shipped by the public ``piapi-mcp-server`` and
the request shapes of the public n8n PiAPI nodes). Anything the pages leave open passes through.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BeforeValidator, Field, model_validator

from taskgate.catalogue.input_fields import (
    MediaUrl,
    OptionalMediaUrl,
    OptionalPrompt,
    Prompt,
    Settings,
    TaskInput,
    VideoAspectRatio,
    _lower,
    _optional_prompt,
    _to_int,
    field_error,
    require_one,
)

# Hailuo: "Maximum length: 2000 characters" (piapi.ai/docs/hailuo-api/generate-video)
HAILUO_PROMPT_MAX = 2000
HAILUO_TEXT_MODELS = frozenset({"t2v-01", "t2v-01-director", "t2v-02"})
HAILUO_SUBJECT_MODELS = frozenset({"s2v-01"})
# "10 seconds ... not available with 1080p" (t2v-02 / i2v-02, n8n-nodes-piapi Hailuo nodes)
HAILUO_NO_1080_10S = frozenset({"t2v-02", "i2v-02"})
Seconds5or10 = Annotated[Literal[5, 10], BeforeValidator(_to_int)]
HailuoPrompt = Annotated[
    Annotated[str, Field(max_length=HAILUO_PROMPT_MAX)] | None, BeforeValidator(_optional_prompt)
]
WanRatio = Annotated[Literal["16:9", "9:16", "1:1"], BeforeValidator(_lower)]


# --- Kling (piapi.ai/docs/kling-api/create-task, lipsync-examples, kling-effects-api, virtual-try-on) ---


class KlingVideo(TaskInput):
    prompt: OptionalPrompt = None
    negative_prompt: OptionalPrompt = None
    image_url: OptionalMediaUrl = None
    image_tail_url: OptionalMediaUrl = None
    duration: Seconds5or10 = 5
    aspect_ratio: VideoAspectRatio | None = None
    mode: Annotated[Literal["std", "pro"], BeforeValidator(_lower)] = "std"
    cfg_scale: Annotated[float, Field(ge=0, le=1)] | None = None
    elements: list[dict[str, Any]] | None = None  # Kling Elements: up to four reference pictures

    @model_validator(mode="after")
    def _prompt_or_image(self) -> KlingVideo:
        if self.prompt is None and self.image_url is None and not self.elements:
            raise field_error("prompt", "a prompt (or an image_url) is required")
        return self


class KlingExtend(TaskInput):
    origin_task_id: UUID
    prompt: OptionalPrompt = None


class KlingLipSync(TaskInput):
    """Either the task's own video (``origin_task_id``) or a ``video_url``; speech from ``tts_text``
    (with ``tts_timbre``) or an audio file (``local_dubbing_url``)."""

    origin_task_id: UUID | None = None
    video_url: OptionalMediaUrl = None
    tts_text: OptionalPrompt = None
    tts_timbre: str | None = None
    tts_speed: Annotated[float, Field(gt=0)] | None = None
    local_dubbing_url: OptionalMediaUrl = None

    @model_validator(mode="after")
    def _video_and_speech(self) -> KlingLipSync:
        require_one(self, "origin_task_id", "video_url")
        require_one(self, "tts_text", "local_dubbing_url")
        return self


class KlingEffects(TaskInput):
    image_url: MediaUrl
    effect: Annotated[str, Field(min_length=1, max_length=100)]
    prompt: OptionalPrompt = None


class KlingTryOn(TaskInput):
    model_input: MediaUrl
    dress_input: OptionalMediaUrl = None
    upper_input: OptionalMediaUrl = None
    lower_input: OptionalMediaUrl = None
    batch_size: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _garment(self) -> KlingTryOn:
        require_one(self, "dress_input", "upper_input", "lower_input")
        return self


# --- Luma Dream Machine (piapi.ai/docs/dream-machine/create-task; legacy video-extend) ----------------


class LumaVideo(TaskInput):
    prompt: OptionalPrompt = None
    image_url: OptionalMediaUrl = None
    start_image: OptionalMediaUrl = None
    end_image: OptionalMediaUrl = None
    key_frames: dict[str, Any] | None = None
    duration: Seconds5or10 | None = None
    aspect_ratio: Annotated[str, Field(min_length=3, max_length=10)] | None = None
    loop: bool | None = None

    @model_validator(mode="after")
    def _prompt_or_frame(self) -> LumaVideo:
        if self.prompt is None and not (self.image_url or self.start_image or self.key_frames):
            raise field_error("prompt", "a prompt (or a key frame) is required")
        return self


class LumaExtend(TaskInput):
    """Extend a generation: ``origin_task_id`` (legacy) or ``key_frames.frame0`` of type generation."""

    origin_task_id: UUID | None = None
    key_frames: dict[str, Any] | None = None
    prompt: OptionalPrompt = None

    @model_validator(mode="after")
    def _what_to_extend(self) -> LumaExtend:
        require_one(self, "origin_task_id", "key_frames")
        return self


# --- Hailuo (piapi.ai/docs/hailuo-api/generate-video) ------------------------------------------------


class HailuoVideo(TaskInput):
    """t2v models need a prompt; i2v an image_url; s2v both (a detectable face). 6 or 10 s."""

    model: Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_lower)] = "t2v-01"
    prompt: HailuoPrompt = None
    image_url: OptionalMediaUrl = None
    expand_prompt: bool | None = None
    duration: Annotated[Literal[6, 10], BeforeValidator(_to_int)] = 6
    resolution: Annotated[Literal[768, 1080], BeforeValidator(_to_int)] | None = None

    @model_validator(mode="after")
    def _per_model(self) -> HailuoVideo:
        needs_prompt = self.model in HAILUO_TEXT_MODELS or self.model in HAILUO_SUBJECT_MODELS
        if needs_prompt and self.prompt is None:
            raise field_error("prompt", f"is required for model {self.model}")
        if self.model.startswith(("i2v", "s2v")) and self.image_url is None:
            raise field_error("image_url", f"is required for model {self.model}")
        if self.model in HAILUO_NO_1080_10S and self.duration == 10 and self.resolution == 1080:
            raise field_error("resolution", "1080 is not available with a 10 s duration")
        return self


# --- Qubico video models (piapi.ai/docs/hunyuan-video, wanx-api, skyreels-api, framepack-api, ai-hug) --


class HunyuanText(TaskInput):
    prompt: Prompt
    negative_prompt: OptionalPrompt = None
    aspect_ratio: WanRatio | None = None
    lora_settings: Settings | None = None


class HunyuanImage(HunyuanText):
    image: MediaUrl


class WanText(HunyuanText):
    pass


class WanImage(HunyuanText):
    image: MediaUrl


class WanKeyframe(TaskInput):
    prompt: Prompt
    start_image: MediaUrl
    end_image: MediaUrl


class Skyreels(TaskInput):
    prompt: Prompt
    image: MediaUrl
    negative_prompt: OptionalPrompt = None
    aspect_ratio: WanRatio | None = None
    guidance_scale: float | None = None


class Framepack(TaskInput):
    prompt: Prompt
    start_image: MediaUrl
    end_image: OptionalMediaUrl = None
    negative_prompt: OptionalPrompt = None
    duration: Annotated[int, Field(ge=1)] | None = None


class HugVideo(TaskInput):
    image_url: MediaUrl


# --- video toolkit (piapi.ai/docs/faceswap-api/video-faceswap, tools/video-upscale-api) ------------


class VideoFaceSwap(TaskInput):
    swap_image: MediaUrl
    target_video: MediaUrl


class VideoUpscale(TaskInput):
    video: MediaUrl


VIDEO_INPUTS: dict[str, type[TaskInput]] = {
    "kling_video": KlingVideo,
    "kling_extend": KlingExtend,
    "kling_lip_sync": KlingLipSync,
    "kling_effects": KlingEffects,
    "kling_try_on": KlingTryOn,
    "luma_video": LumaVideo,
    "luma_extend": LumaExtend,
    "hailuo_video": HailuoVideo,
    "hunyuan_text": HunyuanText,
    "hunyuan_image": HunyuanImage,
    "wan_text": WanText,
    "wan_image": WanImage,
    "wan_keyframe": WanKeyframe,
    "skyreels": Skyreels,
    "framepack": Framepack,
    "hug_video": HugVideo,
    "video_face_swap": VideoFaceSwap,
    "video_upscale": VideoUpscale,
}
