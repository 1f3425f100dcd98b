"""Hypothesis strategies for the route fuzzer (tests/api/test_route_fuzz.py): hostile requests to
every route of the API: random and hostile JSON bodies (deep nesting, huge numbers, lone
surrogates, NaN, invalid UTF-8), mutated valid bodies, odd path parameters and headers."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40)
WIDE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | WIDE_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@dataclass
class FuzzContext:
    """What the fuzzer knows about the system under test: keys, ids, secrets, routes."""

    routes: list[tuple[str, str]]  # (method, path pattern)
    api_keys: list[str]
    admin_token: str
    webhook_secret: str
    ids: dict[str, list[str]] = field(default_factory=dict)  # param name -> known ids


def deep(n: int, opener: str = "[", closer: str = "]") -> str:
    return opener * n + "1" + closer * n


def hostile_texts(ctx: FuzzContext) -> list[str]:
    """Raw JSON texts (not all valid) that used to reach a 5xx or worse; the creates are valid but
    for the one hostile part, so they get past authentication and model validation."""
    create = '{"model":"midjourney","task_type":"imagine","input":{"prompt":"a"%s}%s}'
    config = ',"config":{"webhook_config":{"endpoint":"https://example.com/h","secret":"%s"}%s}'
    return [
        deep(1500),
        deep(40),
        deep(33, '{"a":', "}"),
        create % (',"p":' + deep(300), ""),
        create % (',"p":' + deep(100, '{"a":', "}"), ""),
        create % ("", config % (ctx.webhook_secret, ',"x":' + deep(300))),
        '{"x": ' + "9" * 5000 + "}",
        create % (',"seed":' + "1" * 400, ""),
        create % (',"n":1e999', ""),
        '{"x": NaN}',
        '{"x": -Infinity}',
        '{"x": 1.' + "0" * 100 + "}",
        create % (',"n":NaN', ""),
        '{"x": "\\ud800"}',
        '{"\\udfff": 1}',
        create % (',"p2":"\\ud83d"', ""),
        create % (',"\\udc80":1', ""),
        create % ("", config % ("\\ud800", "")),
        '{"model":"\\ud800","task_type":"imagine","input":{}}',
        '{"task_ids": ["\\ud800"]}',
        '{"plan": "\\udc80free"}',
        '{"webhook_endpoint": "http://\\ud800/"}',
        create % ("," + ",".join(f'"k{i}":{i}' for i in range(600)), ""),
        create % (',"big":"' + "x" * 3000 + '"', ""),
        '{"a":' * 10 + "}" * 10,
        "[]",
        "null",
        '"text"',
        "{",
        "",
        " ",
        "\x00",
        json.dumps(
            {
                "model": "midjourney",
                "task_type": "imagine",
                "input": {"prompt": "a"},
                "config": {
                    "webhook_config": {"endpoint": "http://①②⑦.0.0.1/h", "secret": ctx.webhook_secret}
                },
            }
        ),
    ]


def _templates(ctx: FuzzContext) -> list[dict[str, Any]]:
    hook = {"endpoint": "https://example.com/hook", "secret": ctx.webhook_secret}
    origin = (ctx.ids.get("task_id") or ["00000000-0000-4000-8000-000000000000"])[0]
    return [
        {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": "a cat", "process_mode": "fast"},
            "config": {"webhook_config": hook},
        },
        {"model": "midjourney", "task_type": "upscale", "input": {"origin_task_id": origin, "index": "1"}},
        {"model": "Qubico/flux1-schnell", "task_type": "txt2img", "input": {"prompt": "x", "width": 512}},
        {"model": "kling", "task_type": "video_generation", "input": {"prompt": "x", "duration": 5}},
        {"task_ids": [origin]},
        {"plan": "free", "credits": 1, "name": "fuzz"},
        {"webhook_endpoint": "https://example.com/h", "notify_secret": ctx.webhook_secret},
        {"unit": "credits", "amount": 1, "reason": "fuzz"},
        {"owner": "shared", "provider": "sim", "capacity": 1, "api_key": ctx.webhook_secret + "-acct"},
        {"capacity": 2, "models": ["midjourney"]},
    ]


def _mutate(body: dict[str, Any], rnd: random.Random, value: Any) -> dict[str, Any]:
    """``body`` with one field (top level or in ``input``/``config``) replaced by ``value``."""
    out = json.loads(json.dumps(body))
    target = out
    for nested in ("input", "config"):
        if isinstance(out.get(nested), dict) and rnd.random() < 0.5:
            target = out[nested]
            break
    keys = [*target, "extra"]
    target[rnd.choice(keys)] = value
    return out


@st.composite
def bodies(draw: st.DrawFn, ctx: FuzzContext) -> bytes | None:
    kind = draw(
        st.sampled_from(["none", "json", "template", "mutated", "hostile", "hostile", "hostile", "bytes"])
    )
    templates = _templates(ctx)
    if kind == "none":
        return None
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "template":
        return json.dumps(draw(st.sampled_from(templates))).encode()
    if kind == "mutated":
        rnd = random.Random(draw(st.integers(0, 2**32)))
        return json.dumps(_mutate(draw(st.sampled_from(templates)), rnd, draw(JSON))).encode()
    if kind == "hostile":
        return draw(st.sampled_from(hostile_texts(ctx))).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=64))


def _segment(draw: st.DrawFn, name: str, ctx: FuzzContext) -> str:
    known = ctx.ids.get(name, [])
    choice = draw(st.sampled_from(["known", "text", "wide", "long"] if known else ["text", "wide", "long"]))
    if choice == "known":
        return quote(draw(st.sampled_from(known)), safe="")
    if choice == "long":
        return "a" * draw(st.integers(65, 3000))
    text = draw(HEADER_TEXT if choice == "text" else WIDE_TEXT) or "x"
    return quote(text, safe="")


@st.composite
def requests(draw: st.DrawFn, ctx: FuzzContext) -> tuple[str, str, dict[str, str], bytes | None]:
    create = ("POST", "/api/v1/task")
    method, pattern = create if draw(st.integers(0, 2)) == 0 else draw(st.sampled_from(ctx.routes))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]))
    path = pattern
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + _segment(draw, path[start + 1 : end], ctx) + path[end + 1 :]
    headers: dict[str, str] = {}
    key = draw(st.sampled_from(["own", "own", "own", "other", "garbage", "none"]))
    if key in ("own", "other"):
        headers["x-api-key"] = ctx.api_keys[0 if key == "own" else 1]
    elif key == "garbage":
        headers["x-api-key"] = draw(HEADER_TEXT)
    admin = draw(st.sampled_from(["right", "right", "right", "garbage", "none"]))
    if admin != "none":
        headers["x-admin-token"] = ctx.admin_token if admin == "right" else draw(HEADER_TEXT)
    for name in ("Idempotency-Key", "x-request-id", "content-type"):
        if draw(st.integers(0, 3)) == 0:
            headers[name] = draw(HEADER_TEXT)
    query = ""
    if draw(st.integers(0, 3)) == 0:
        query = "?" + "&".join(f"{n}={quote(draw(WIDE_TEXT), safe='')}" for n in ("page", "size", "owner"))
    return method, path + query, headers, draw(bodies(ctx))
