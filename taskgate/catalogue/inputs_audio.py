"""Input models of the music and audio families: Udio (``music-u``), Suno (``music-s``), F5-TTS,
MMAudio, DiffRhythm and Ace Step.

Sources: piapi.ai/docs/music-api/create-task and song-api/udio-* (Udio), the Suno request shapes of the
public piapi-mcp-server (music-s), piapi.ai/docs/tts-api/f5-tts, mmaudio-api, diffrhythm-api and
ace-step-api. Anything the pages leave open passes through.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from taskgate.catalogue.input_fields import (
    MediaUrl,
    OptionalMediaUrl,
    OptionalPrompt,
    OptionalText,
    Prompt,
    TaskInput,
    Text,
    _lower,
    field_error,
    require_one,
)


def _music_version(value: object) -> object:
    aliases = {"3": "v3", "chirp-v3-0": "v3", "3.5": "v3.5", "chirp-v3-5": "v3.5"}
    value = _lower(value)
    return aliases.get(value, value) if isinstance(value, str) else value


SUNO_PROMPT_MAX = 3000  # "limited to 3000 characters" (piapi-mcp-server generate_music_suno)
LyricsType = Annotated[Literal["generate", "user", "instrumental"], BeforeValidator(_lower)]
MusicVersion = Annotated[Literal["v3", "v3.5"], BeforeValidator(_music_version)]


# --- Udio: music-u ------------------------------------------------------------------------------------


class Music(TaskInput):
    """``generate_music``: a description (``gpt_description_prompt``), or the user's lyrics
    (``lyrics_type: user`` with ``lyrics``, or in ``prompt`` as the older examples do); extend a song
    with ``continue_song_id`` and ``continue_at``."""

    prompt: OptionalText = None  # the user's lyrics, in the older examples
    gpt_description_prompt: OptionalPrompt = None
    lyrics: OptionalText = None
    lyrics_type: LyricsType = "generate"
    model_version: MusicVersion = "v3.5"
    continue_song_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    continue_at: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _prompt_given(self) -> Music:
        if self.lyrics_type == "user" and self.lyrics is None and self.prompt is None:
            raise field_error("lyrics", "lyrics_type 'user' needs the lyrics (in lyrics or prompt)")
        require_one(self, "prompt", "gpt_description_prompt", "lyrics")
        return self


class Lyrics(TaskInput):
    prompt: Prompt


# --- Suno: music-s ------------------------------------------------------------------------------------


class SunoMusic(TaskInput):
    """``generate_music`` (description mode): ``gpt_description_prompt`` or ``prompt``."""

    prompt: OptionalPrompt = None
    gpt_description_prompt: OptionalPrompt = None
    make_instrumental: bool | None = None
    model_version: MusicVersion | None = None

    @model_validator(mode="after")
    def _description(self) -> SunoMusic:
        require_one(self, "gpt_description_prompt", "prompt")
        return self


class SunoCustom(TaskInput):
    """``generate_music_custom``: lyrics in ``prompt``, ``title``, ``tags``; continue a clip with
    ``continue_clip_id`` / ``continue_at``."""

    prompt: Annotated[str, Field(max_length=SUNO_PROMPT_MAX)] | None = None
    title: Annotated[str, Field(max_length=80)] | None = None  # "limited to 80 characters"
    tags: Annotated[str, Field(max_length=200)] | None = None  # "limited to 200 characters"
    negative_tags: Annotated[str, Field(max_length=200)] | None = None
    continue_clip_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    continue_at: Annotated[float, Field(ge=0)] | None = None
    model_version: MusicVersion | None = None

    @model_validator(mode="after")
    def _content(self) -> SunoCustom:
        require_one(self, "prompt", "tags", "continue_clip_id")
        return self


class SunoUpload(TaskInput):
    audio_url: MediaUrl


# --- speech and sound ---------------------------------------------------------------------------------


class Tts(TaskInput):
    gen_text: Text
    ref_audio: MediaUrl
    ref_text: OptionalText = None
    speed: Annotated[float, Field(gt=0)] | None = None
    remove_silence: bool | None = None


class VideoToAudio(TaskInput):
    video: MediaUrl
    prompt: OptionalPrompt = None
    negative_prompt: OptionalPrompt = None
    steps: Annotated[int, Field(ge=1)] | None = None


class DiffRhythm(TaskInput):
    """A style from text (``style_prompt``) or from a reference clip (``style_audio``)."""

    lyrics: OptionalText = None
    style_prompt: OptionalPrompt = None
    style_audio: OptionalMediaUrl = None

    @model_validator(mode="after")
    def _style(self) -> DiffRhythm:
        require_one(self, "style_prompt", "style_audio")
        return self


class AceText(TaskInput):
    style_prompt: Prompt
    lyrics: OptionalText = None
    negative_prompt: OptionalPrompt = None
    duration: Annotated[float, Field(gt=0)] | None = None


class AceAudio(TaskInput):
    style_audio: MediaUrl
    style_prompt: OptionalPrompt = None
    lyrics: OptionalText = None
    negative_prompt: OptionalPrompt = None


class AceEdit(TaskInput):
    audio: MediaUrl
    style_prompt: OptionalPrompt = None
    lyrics: OptionalText = None
    edit_style_prompt: OptionalPrompt = None
    edit_lyrics: OptionalText = None


class AceExtend(TaskInput):
    audio: MediaUrl
    style_prompt: OptionalPrompt = None
    lyrics: OptionalText = None
    negative_prompt: OptionalPrompt = None
    left_extend_duration: Annotated[float, Field(ge=0)] | None = None
    right_extend_duration: Annotated[float, Field(ge=0)] | None = None


AUDIO_INPUTS: dict[str, type[TaskInput]] = {
    "music": Music,
    "lyrics": Lyrics,
    "suno_music": SunoMusic,
    "suno_custom": SunoCustom,
    "suno_upload": SunoUpload,
    "tts": Tts,
    "video_to_audio": VideoToAudio,
    "diffrhythm": DiffRhythm,
    "ace_text": AceText,
    "ace_audio": AceAudio,
    "ace_edit": AceEdit,
    "ace_extend": AceExtend,
}
