"""Generated blocks of README.md: the headline numbers are written by a report, never typed by hand.

A block sits between two marker lines, e.g.::

    <!-- headline:begin -->
    ... generated text ...
    <!-- headline:end -->

:func:`replace_block` swaps what lies between them and leaves the rest of the file alone;
:func:`rewrite_block` does it in place, atomically, and only when the text changes (re-running
with the same numbers leaves the file untouched). :func:`headline_markdown` renders the numbers of
a reproduction: Ekya's gain over the best Uniform at the highest contention, the GPU saving factor,
and optionally the simulator-vs-local differences, with the command that regenerates them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ekya.data.cache import write_text_atomically
from ekya.errors import EkyaError
from ekya_studies.report import ContentionGain, GpuSaving

HEADLINE = "headline"


def markers(name: str) -> tuple[str, str]:
    """The begin and end marker lines of block ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(text: str, content: str, name: str = HEADLINE, where: str = "the text") -> str:
    """``text`` with the lines between block ``name``'s markers replaced by ``content``.

    The marker lines stay; ``content`` is placed between them with one trailing newline.

    Raises:
        EkyaError: a marker is missing, appears more than once, or the end comes first.
    """
    begin, end = markers(name)
    for marker in (begin, end):
        count = sum(line.strip() == marker for line in text.splitlines())
        if count != 1:
            problem = "no" if count == 0 else f"{count}"
            raise EkyaError(
                f"{where} has {problem} `{marker}` line(s); it needs exactly one `{begin}` line and, below it, one `{end}` line "
                "around the generated block"
            )
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == begin)
    stop = next(i for i, line in enumerate(lines) if line.strip() == end)
    if stop < start:
        raise EkyaError(f"{where}: `{end}` comes before `{begin}`")
    body = content.rstrip("\n") + "\n" if content.strip() else ""
    head = lines[: start + 1]
    if not head[-1].endswith("\n"):
        head[-1] += "\n"
    return "".join(head) + body + "".join(lines[stop:])


def rewrite_block(path: str | os.PathLike, content: str, name: str = HEADLINE) -> bool:
    """Replace block ``name`` of the file at ``path`` (atomically); returns whether the file changed.

    Raises:
        EkyaError: the file is missing or its markers are (see :func:`replace_block`); the file
            is then left as it was.
    """
    path = Path(path)
    if not path.is_file():
        raise EkyaError(f"{path} does not exist; the generated block `{name}` needs a file with its markers")
    text = path.read_text()
    updated = replace_block(text, content, name, where=str(path))
    if updated == text:
        return False
    write_text_atomically(path, updated)
    return True


def _saving_sentence(savings: Sequence[GpuSaving]) -> str:
    finite = [s for s in savings if s.factor is not None]
    if finite:
        top = max(finite, key=lambda s: s.factor)
        return (f"**{top.factor:.2f}x**: {top.baseline} needs {top.baseline_gpus:.2f} GPUs to match Ekya's "
                f"{100 * top.accuracy:.2f}% with {top.gpus:g} GPU(s) (the paper: 4x)")
    if savings:
        bound = max(s.factor_above for s in savings if s.factor_above is not None)
        return f"**> {bound:.2f}x**: no baseline matches Ekya within the swept GPU counts"
    return "not available (the study has no Ekya and baseline runs over several GPU counts)"


def headline_markdown(
    gain: ContentionGain | None,
    savings: Sequence[GpuSaving],
    setting: str,
    command: str,
    study: str,
    agreement: Sequence[str] = (),
    wall_seconds: float | None = None,
) -> str:
    """The README's headline block.

    Args:
        gain: Ekya vs the best Uniform at the study's highest contention (None: not available).
        savings: the study's GPU saving factors (see :func:`ekya_studies.report.gpu_saving`).
        setting: one line saying what was run (data, trace, executor).
        command: the command that regenerates the block.
        study: the study the numbers come from (its report is ``reports/<study>/summary.md``).
        agreement: lines on the simulator-vs-local comparison (empty: not run).
        wall_seconds: wall-clock time of the run that produced the numbers, seconds.
    """
    if gain is not None:
        where = ", ".join(f"{k}={v:g}" for k, v in gain.point.items())
        gain_text = (f"**{gain.gain_points:+.2f} accuracy points** at {where} ({gain.streams_per_gpu:g} streams per GPU): "
                     f"Ekya {100 * gain.accuracy:.2f}% vs {gain.best_uniform} {100 * gain.best_uniform_accuracy:.2f}%")
    else:
        gain_text = "not available (the study has no Ekya and Uniform runs at a common point)"
    lines = [
        f"Headline numbers ({setting}; details in `reports/{study}/summary.md`):",
        "",
        f"- Ekya vs the best Uniform configuration at the highest contention: {gain_text}.",
        f"- GPU saving factor: {_saving_sentence(savings)}.",
    ]
    lines += [f"- {line}" for line in agreement]
    took = f" (this one took {wall_seconds / 60:.1f} min)" if wall_seconds is not None else ""
    lines += ["", f"Generated by `{command}`{took}; do not edit by hand."]
    return "\n".join(lines)
