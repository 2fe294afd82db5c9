"""Output of ``chatctl bench``: plain text lines (piped), a rich table and live progress (on a
terminal), or one JSON object (``--json``). rich is imported only for a terminal."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(_finite(result), separators=(",", ":"))


def _finite(obj: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _ms(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def step_line(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    return (
        f"step {s['step']}: rate {s['rate']:g}/s x {s['senders']} senders: "
        f"offered {s['offered_per_s']:,.0f} deliveries/s, delivered {s['delivered_per_s']:,.0f}/s; "
        f"latency ms p50 {_ms(lat['p50'])} p90 {_ms(lat['p90'])} p99 {_ms(lat['p99'])} "
        f"max {_ms(lat['max'])}; lost {s['lost']} ({s['loss_ratio']:.2%}), "
        f"duplicates {s['duplicates']}, out of order {s['out_of_order']}, "
        f"disconnects {s['disconnects']}; client CPU "
        + "/".join(f"{c:.0%}" for c in s["client_cpu"])
        + _server_part(s.get("server") or {})
        + ("" if s["ok"] else "  [over the bound]")
    )


def _server_part(server: dict[str, Any]) -> str:
    out = ""
    if "cpu" in server:
        out += f"; server CPU {server['cpu']:.0%}, {server['cpu_us_per_delivery']} µs per delivery"
    lag = server.get("loop_lag")
    if lag:
        out += (
            f"; loop lag p99 <= {_ms(lag['p99_le_ms'])} ms, max <= {_ms(lag['max_le_ms'])} ms, "
            f"{lag['over_50ms']} of {lag['samples']} samples over 50 ms"
        )
    return out


def text_lines(result: dict[str, Any]) -> list[str]:
    c = result["connect"]
    t = c["time_ms"]
    lines = [
        f"server {result['server']}  load: {result['client']['procs']} process(es), "
        f"{result['client']['loop']} loop",
        f"connect: {c['connected']}/{c['attempted']} in {c['wall_s']:.2f} s, failed {c['failed']}"
        + (f" {c['failures']}" if c["failures"] else "")
        + f"; time ms p50 {_ms(t.get('p50'))} p99 {_ms(t.get('p99'))} max {_ms(t.get('max'))}",
    ]
    w = c.get("welcome_ms") or {}
    if w:
        lines.append(
            f"welcomes: {c['welcomed']}/{c['connected']}, all within {_ms(w.get('max'))} ms "
            f"(p50 {_ms(w.get('p50'))}, p99 {_ms(w.get('p99'))}); settled after "
            f"{c.get('settle_s', 0):.2f} s more, {c.get('frames', 0)} frames received"
        )
    mem = result.get("memory")
    if mem:
        lines.append(
            f"server memory: RSS {mem['rss_before_kib']} -> {mem['rss_after_kib']} KiB, "
            f"{mem['per_connection_kib']} KiB per connection"
        )
    warm = result.get("warmup")
    if warm:
        lines.append(
            f"warm-up (not counted): {warm['duration']:g} s, {warm['sent']} sent, "
            f"{warm['lost']} lost, p99 {_ms(warm['latency_ms']['p99'])} ms"
        )
    lines += [step_line(s) for s in result.get("steps", [])]
    knee = result.get("knee")
    if knee:
        lines.append(
            f"knee: rate {knee['rate']:g}/s per sender, {knee['delivered_per_s']:,.0f} "
            f"deliveries/s, p99 {_ms(knee['p99_ms'])} ms"
            + ("" if knee["reached"] else " (bound not reached)")
        )
    at = result.get("at_knee")
    if at:
        lines.append(f"at {at['fraction']:g} of the knee: " + step_line(at["step"]))
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    return lines


def print_text(result: dict[str, Any], out: TextIO = sys.stdout) -> None:
    for line in text_lines(result):
        print(line, file=out)


def print_rich(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = text_lines({**result, "steps": [], "knee": None, "at_knee": None, "warnings": []})
    for line in head:
        console.print(line, highlight=False)
    table = Table(title="steps", show_lines=False)
    for col in (
        "rate/s",
        "offered/s",
        "delivered/s",
        "p50",
        "p90",
        "p99",
        "max",
        "lost",
        "dup",
        "ooo",
        "client CPU",
        "",
    ):
        table.add_column(col, justify="right")
    for s in result.get("steps", []):
        lat = s["latency_ms"]
        table.add_row(
            f"{s['rate']:g}",
            f"{s['offered_per_s']:,.0f}",
            f"{s['delivered_per_s']:,.0f}",
            _ms(lat["p50"]),
            _ms(lat["p90"]),
            _ms(lat["p99"]),
            _ms(lat["max"]),
            str(s["lost"]),
            str(s["duplicates"]),
            str(s["out_of_order"]),
            "/".join(f"{c:.0%}" for c in s["client_cpu"]),
            "[green]ok[/]" if s["ok"] else "[red]over[/]",
        )
    if result.get("steps"):
        console.print(table)
        console.print("latency in ms", style="dim")
    for line in text_lines({**result, "steps": [], "connect": result["connect"]})[len(head) :]:
        console.print(line, style="yellow" if line.startswith("warning") else None, highlight=False)


class LiveProgress:
    """A rich live line on stderr: the phase, a countdown of the step, the steps done."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.phase = "starting"
        self.until = 0.0
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=True)

    def __rich__(self) -> str:
        left = self.until - time.time()
        tail = f"  {left:4.1f} s" if left > 0 else ""
        return f"[bold]chatctl bench[/] {self.phase}{tail}"

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __call__(self, event: str, **data: Any) -> None:
        if event == "connect":
            self.phase = f"connecting {data['total']} clients"
        elif event == "connected":
            c = data["connect"]
            self.console.print(
                f"connected {c['connected']}/{c['attempted']} in {c['wall_s']:.2f} s",
                highlight=False,
            )
        elif event == "step":
            self.phase = f"step {data['step']}: {data['rate']:g} msg/s per sender"
            self.until = time.time() + data["duration"]
        elif event == "step_done":
            self.until = 0.0
            self.phase = "next step"
            self.console.print(step_line(data["step"]), highlight=False)
        elif event == "hold":
            self.phase = "holding idle connections"
            self.until = time.time() + data["duration"]
