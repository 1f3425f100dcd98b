"""The ``taskgate demo`` report's output: progress bars while tasks run, the tables at the end, the JSON
file and an HTML page with SVG charts, all from the summary ``demo_report.build_summary`` made."""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from taskgate.dev.demo_report import MAX_PROBLEMS_SHOWN, UserRun


class ProgressBoard:
    """Rich progress bars while tasks run: per user, tasks ended of planned, PPU tasks running vs cap."""

    def __init__(self, console: Console, runs: list[UserRun]) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[running]}"),
            console=console,
        )
        self.bars: dict[str, TaskID] = {
            r.label: self.progress.add_task(f"{r.label} ({r.plan})", total=r.planned, running="")
            for r in runs
        }

    def update(self, runs: list[UserRun], final: Counter[str], running: dict[str, int]) -> None:
        for r in runs:
            self.progress.update(
                self.bars[r.label],
                completed=final[r.label] + sum(r.refused.values()),
                running=f"running {running.get(r.label, 0)}/{r.cap} (peak {r.peak})",
            )


def _refused_text(refused: dict[str, int]) -> str:
    return ", ".join(f"{n}×{code}" for code, n in refused.items()) or "0"


def render(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="tasks per user", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("user", "submitted", "completed", "failed", "refused", "peak/cap", "ledger"):
        table.add_column(
            name, justify="left" if name in ("user", "ledger") else "right", no_wrap=name != "user"
        )
    for u in summary["users"]:
        peak = f"{u['peak_concurrency']}/{u['cap']}" + ("" if u["cap_held"] else " [red]OVER")
        ledger = "matches" if u["ledger_matches"] else "[red]MISMATCH"
        user = u["label"] if u["label"] == u["plan"] else f"{u['label']} ({u['plan']})"
        table.add_row(
            user,
            str(u["submitted"]),
            str(u["completed"]),
            str(u["failed"]),
            _refused_text(u["refused"]),
            peak,
            ledger,
        )
    console.print(table)
    render_money(summary, console)
    cancelled = ", ".join(f"{u['label']} {u['cancelled']}" for u in summary["users"] if u["cancelled"])
    console.print(f"cancelled on request (counted as failed, refunded): {cancelled or 'none'}")
    for u in summary["users"]:
        for problem in u["ledger_problems"][:MAX_PROBLEMS_SHOWN]:
            console.print(f"[red]  {u['label']}: {problem}")
        if u["byoa"]:
            console.print(
                f"{u['label']}: {u['completed_on_own_accounts']} completed on its own accounts, "
                f"{u['failed_over']} failed over to the shared pool (S6)"
            )
    render_accounts(summary, console)
    waits = "; ".join(
        f"{plan} median {w['median_ms']:.0f} ms, p95 {w['p95_ms']:.0f} ms (n={w['n']})"
        for plan, w in summary["waits"].items()
    )
    console.print(f"waits from created to started: {waits}")
    render_verdict(summary, console)


def render_money(summary: dict[str, Any], console: Console) -> None:
    units = sorted({unit for u in summary["users"] for unit in u["units"]})
    table = Table(
        title="charged / refunded per unit (from the ledger)", header_style="bold", box=box.SIMPLE_HEAD
    )
    table.add_column("user")
    for unit in units:
        table.add_column(unit, justify="right")
    for u in summary["users"]:
        cells = []
        for unit in units:
            m = u["units"].get(unit, {})
            penalty = f" (+{m['penalty']} penalty)" if m.get("penalty") else ""
            moved = f"{m.get('charged', 0)} / {m.get('refunded', 0)}{penalty}"
            cells.append(moved if m.get("frozen") else "-")
        table.add_row(u["label"], *cells)
    console.print(table)


def render_accounts(summary: dict[str, Any], console: Console) -> None:
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in summary["accounts"]:
        by_owner[a["owner"]].append(a)
    for owner, accounts in by_owner.items():
        states = Counter(a["state"] for a in accounts)
        peak = max((a["peak"], a["capacity"]) for a in accounts)
        held = all(a["capacity_held"] for a in accounts)
        console.print(
            f"accounts of {owner}: {len(accounts)} "
            f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); busiest ran "
            f"{peak[0]} of {peak[1]} slots; capacity {'held' if held else '[red]EXCEEDED'}"
        )


def render_verdict(summary: dict[str, Any], console: Console) -> None:
    for stuck in summary["stuck"][:MAX_PROBLEMS_SHOWN]:
        console.print(f"[red]stuck: {stuck['user']} task {stuck['task_id']} is {stuck['status']}")
    for problem in summary["problems"]:
        console.print(f"[red]problem: {problem}")
    if summary["ok"]:
        console.print(
            f"[green]OK[/green]: every task final, every cap held, ledger matches ({summary['elapsed_s']} s)"
        )
    else:
        console.print(f"[red]FAILED[/red]: {len(summary['problems'])} problem(s)")


def write_report(summary: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "report.json", directory / "report.html"
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    html_path.write_text(html_page(summary), encoding="utf-8")
    return json_path, html_path


# --- the chart ---------------------------------------------------------------------------------------

BAR_W, GAP, CHART_H, LEFT, TOP = 46, 34, 180, 40, 36
COLOURS = {"completed": "#2e9d57", "failed": "#d1495b", "refused": "#9aa0a6", "peak": "#3978c8"}


BarRow = tuple[str, list[tuple[str, int]], int | None]  # label, [(series, value)], cap marker


def _bars_svg(title: str, rows: Sequence[BarRow], top: int) -> str:
    """Stacked bars per row, scaled to ``top``."""
    width = LEFT + len(rows) * (BAR_W + GAP) + GAP
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{CHART_H + TOP + 50}">',
        f'<text x="{LEFT}" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    scale = CHART_H / max(top, 1)
    base = TOP + CHART_H
    out.append(f'<line x1="{LEFT}" y1="{base}" x2="{width}" y2="{base}" stroke="#444"/>')
    for i, (label, series, cap) in enumerate(rows):
        x, y = LEFT + GAP + i * (BAR_W + GAP), float(base)
        for name, value in series:
            h = value * scale
            y -= h
            out.append(
                f'<rect x="{x}" y="{y:.1f}" width="{BAR_W}" height="{h:.1f}" fill="{COLOURS[name]}">'
                f"<title>{html.escape(name)}: {value}</title></rect>"
            )
        total = sum(v for _, v in series)
        out.append(
            f'<text x="{x + BAR_W / 2}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">{total}</text>'
        )
        if cap is not None:
            cy = base - cap * scale
            out.append(
                f'<line x1="{x - 6}" y1="{cy:.1f}" x2="{x + BAR_W + 6}" y2="{cy:.1f}" stroke="#111" '
                f'stroke-width="2" stroke-dasharray="4 2"><title>cap {cap}</title></line>'
            )
        out.append(
            f'<text x="{x + BAR_W / 2}" y="{base + 16}" text-anchor="middle" font-size="11">'
            f"{html.escape(label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def html_page(summary: dict[str, Any]) -> str:
    users = summary["users"]
    tasks: list[BarRow] = [
        (
            u["label"],
            [("completed", u["completed"]), ("failed", u["failed"]), ("refused", sum(u["refused"].values()))],
            None,
        )
        for u in users
    ]
    top_tasks = max((u["completed"] + u["failed"] + sum(u["refused"].values()) for u in users), default=1)
    conc: list[BarRow] = [(u["label"], [("peak", u["peak_concurrency"])], u["cap"]) for u in users]
    top_conc = max((max(u["cap"], u["peak_concurrency"]) for u in users), default=1)
    legend = " ".join(f'<span style="color:{c}">&#9632;</span> {n}' for n, c in COLOURS.items())
    verdict = "OK" if summary["ok"] else "FAILED: " + "; ".join(summary["problems"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>taskgate demo report</title>"
        "<style>body{font-family:sans-serif;margin:2em}svg{margin:1em 2em 1em 0}</style></head><body>"
        f"<h1>taskgate demo</h1><p>{html.escape(verdict)} &middot; {summary['tasks']} tasks, seed "
        f"{summary['seed']}, {summary['elapsed_s']} s</p><p>{legend}; dashed line: plan cap</p>"
        + _bars_svg("tasks per user", tasks, top_tasks)
        + _bars_svg("highest PPU concurrency vs cap", conc, top_conc)
        + "<h2>summary</h2><pre>"
        + html.escape(json.dumps(summary, indent=2))
        + "</pre></body></html>\n"
    )
