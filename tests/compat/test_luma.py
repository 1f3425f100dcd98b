"""Dream Machine / Luma (GoAPI index: Dream Machine / Create Task; legacy Video Extend). Request shape:
piapi-mcp-server ``generate_video_luma`` (prompt, duration 5|10, aspect_ratio, key_frames.frame0); extend:
key_frames.frame0 of type generation (mcp-catalog ``luma::extend_video``). Output read by that client:
``video_raw`` and ``last_frame`` as ``{url, width, height}``. Price: seed 003, 30 luma quotas a video."""

from __future__ import annotations

from tests.compat.harness import customer, is_url, round_trip


def assert_luma_output(output: dict) -> None:
    for field in ("video_raw", "last_frame"):
        frame = output[field]
        assert is_url(frame["url"]) and frame["width"] > 0 and frame["height"] > 0


async def test_generate_then_extend(system) -> None:
    key = await customer(system)
    video = await round_trip(
        system,
        key,
        {
            "model": "luma",
            "task_type": "video_generation",
            "input": {
                "prompt": "a koi pond",
                "duration": 5,
                "aspect_ratio": "16:9",
                "key_frames": {"frame0": {"type": "", "url": None}},
            },
        },
    )
    assert_luma_output(video["output"])
    assert video["meta"]["usage"] == {"type": "luma_quota", "frozen": 30, "consume": 30}
    extended = await round_trip(
        system,
        key,
        {
            "model": "luma",
            "task_type": "extend_video",
            "input": {
                "prompt": "the koi jump",
                "key_frames": {"frame0": {"type": "generation", "id": video["task_id"]}},
            },
        },
    )
    assert_luma_output(extended["output"])
