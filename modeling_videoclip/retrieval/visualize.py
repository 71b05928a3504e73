"""Pictures of retrieval results with PIL and numpy: `similarity_heatmap` (the text x video matrix) and
`contact_sheet` (queries and what they retrieved). With `random_weights` the title says RANDOM WEIGHTS in red, so
that a picture made with an untrained model cannot be mistaken for a result."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["RANDOM_WEIGHTS_LABEL", "SheetEntry", "SheetSection", "contact_sheet", "save_png", "similarity_heatmap"]

RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS (untrained model: scores are meaningless)"  # on every random-weights output

_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
_MUTED = (110, 110, 110)
_RED = (200, 20, 20)
_MATCH = (30, 150, 60)
_QUERY_TINT = (232, 240, 252)
_MATCH_LABEL = "= true pair"  # ASCII: Pillow's bundled font has no check mark
# Viridis at 0, 0.25, 0.5, 0.75, 1: a perceptually even, colour-blind-safe ramp.
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def _font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at `size` pixels (its bitmap font where Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _wrap(text: str, font: ImageFont.ImageFont, width: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _colormap(values: np.ndarray) -> np.ndarray:
    """Viridis colours (uint8 RGB) for `values` in [0, 1]."""
    positions = np.clip(values, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    low = np.floor(positions).astype(int).clip(0, len(_VIRIDIS) - 2)
    fraction = (positions - low)[..., None]
    return np.round(_VIRIDIS[low] * (1 - fraction) + _VIRIDIS[low + 1] * fraction).astype(np.uint8)


def _title_block(title: str, subtitle: str | None, random_weights: bool, width: int) -> Image.Image:
    """The heading of a picture: title, optional subtitle, and the RANDOM WEIGHTS warning when random."""
    title_font, small_font = _font(18), _font(13)
    lines = [(line, title_font, _INK) for line in _wrap(title, title_font, width - 20)]
    if subtitle:
        lines += [(line, small_font, _MUTED) for line in _wrap(subtitle, small_font, width - 20)]
    if random_weights:
        lines += [(line, title_font, _RED) for line in _wrap(RANDOM_WEIGHTS_LABEL, title_font, width - 20)]
    heights = [22 if font is title_font else 17 for _, font, _ in lines]
    block = Image.new("RGB", (width, sum(heights) + 16), _BACKGROUND)
    draw = ImageDraw.Draw(block)
    y = 8
    for (line, font, colour), height in zip(lines, heights):
        draw.text((10, y), line, fill=colour, font=font)
        y += height
    return block


def _stack(parts: Sequence[Image.Image], width: int) -> Image.Image:
    out = Image.new("RGB", (width, sum(part.height for part in parts)), _BACKGROUND)
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height
    return out


def similarity_heatmap(
    similarity: np.ndarray, title: str = "VideoCLIP text-video similarity", subtitle: str | None = None,
    random_weights: bool = False, row_label: str = "text", column_label: str = "video", cell_size: int | None = None,
) -> Image.Image:
    """Draws a similarity matrix (rows: texts, columns: videos): colours span its minimum to maximum (the colour
    bar), the diagonal (true pairs) is outlined in red and each row's best column carries a dot.

    Args:
        similarity: `(texts, videos)` scores, e.g. cosine similarities.
        title: first line of the heading. Defaults to "VideoCLIP text-video similarity".
        subtitle: a grey line under the title (model, data), none by default.
        random_weights: add the red RANDOM WEIGHTS warning to the heading. Defaults to `False`.
        row_label / column_label: axis names; defaults "text" and "video".
        cell_size: cell side in pixels. Defaults to `None`: 80, less to keep the matrix about 560 pixels wide
            (values are written in cells of >= 40 pixels, with 3 decimals from 56).

    Returns:
        An RGB `PIL.Image.Image`.
    """
    scores = np.asarray(similarity, dtype=np.float64)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"similarity must be a non-empty 2-D matrix, got shape {scores.shape}")
    rows, columns = scores.shape
    cell = cell_size or max(6, min(80, 560 // max(rows, columns)))
    font, label_font = _font(max(9, min(14, cell // 3))), _font(13)
    left = int(max(label_font.getlength(f"{row_label} {rows - 1}"), 40)) + 14
    top, bar_width, bar_gap = 26, 16, 18
    grid_w, grid_h = columns * cell, rows * cell
    low, high = float(scores.min()), float(scores.max())
    span = high - low if high > low else 1.0
    width = max(left + grid_w + bar_gap + bar_width + 60, 420)
    body = Image.new("RGB", (width, top + grid_h + 46), _BACKGROUND)
    draw = ImageDraw.Draw(body)
    colours = _colormap((scores - low) / span)
    grid = Image.fromarray(np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1), "RGB")
    body.paste(grid, (left, top))
    best = scores.argmax(axis=1)
    for i in range(rows):
        for j in range(columns):
            x0, y0 = left + j * cell, top + i * cell
            if i == j:
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=_RED, width=max(1, cell // 20))
            luminance = colours[i, j] @ np.array([0.299, 0.587, 0.114])
            ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
            if cell >= 40:
                value = f"{scores[i, j]:.{3 if cell >= 56 else 2}f}"
                draw.text((x0 + (cell - font.getlength(value)) / 2, y0 + cell / 2 - 8), value, fill=ink, font=font)
            if j == best[i]:
                r = max(2, cell // 12)
                cx, cy = x0 + cell / 2, y0 + (cell - r * 3 if cell >= 40 else cell / 2)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=ink)
    step = max(1, int(np.ceil(16 / cell)))  # keep labels from overlapping on large matrices
    for i in range(0, rows, step):
        label = f"{row_label} {i}"
        position = (left - 6 - label_font.getlength(label), top + i * cell + cell / 2 - 8)
        draw.text(position, label, fill=_INK, font=label_font)
    for j in range(0, columns, step):
        label = str(j)
        position = (left + j * cell + (cell - label_font.getlength(label)) / 2, top - 18)
        draw.text(position, label, fill=_INK, font=label_font)
    draw.text((left, top + grid_h + 6), f"columns: {column_label} 0..{columns - 1}", fill=_INK, font=label_font)
    legend = f"red outline: true pair ({row_label} i, {column_label} i)   dot: best {column_label} for the {row_label}"
    draw.text((left, top + grid_h + 24), legend, fill=_MUTED, font=_font(11))
    bar_x = left + grid_w + bar_gap
    ramp = _colormap(np.linspace(1.0, 0.0, max(grid_h, 2)))[:, None, :].repeat(bar_width, axis=1)
    body.paste(Image.fromarray(ramp, "RGB"), (bar_x, top))
    draw.rectangle([bar_x, top, bar_x + bar_width - 1, top + grid_h - 1], outline=_MUTED)
    draw.text((bar_x + bar_width + 4, top - 2), f"{high:.2f}", fill=_INK, font=label_font)
    draw.text((bar_x + bar_width + 4, top + grid_h - 14), f"{low:.2f}", fill=_INK, font=label_font)
    return _stack([_title_block(title, subtitle, random_weights, width), body], width)


@dataclass
class SheetEntry:
    """One row of a contact sheet: a video (frames) or a text, with its label.

    Args:
        label: what the row is, e.g. "query: video 0" or "#1  video 3  score 0.812".
        frames: `(T, H, W, 3)` uint8 frames of a video; a strip of evenly spaced frames is shown.
        text: a caption, shown wrapped (when there are no frames).
        is_match / is_query: the query's true pair (marked "= true pair" in green) / the query (tinted background).
    """

    label: str
    frames: np.ndarray | None = None
    text: str | None = None
    is_match: bool = False
    is_query: bool = False


@dataclass
class SheetSection:
    """A query and what it retrieved, under a heading (e.g. "Text for video 0")."""

    heading: str
    query: SheetEntry
    results: Sequence[SheetEntry]


def _strip(frames: np.ndarray, count: int, thumb: int) -> Image.Image:
    """`count` evenly spaced frames of `frames`, each resized to `thumb` pixels high, side by side."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got shape {frames.shape}")
    picks = np.linspace(0, frames.shape[0] - 1, num=min(count, frames.shape[0])).round().astype(int)
    pictures = [Image.fromarray(np.ascontiguousarray(frames[i]).astype(np.uint8), "RGB") for i in picks]
    thumb_w = max(1, round(thumb * pictures[0].width / pictures[0].height))
    strip = Image.new("RGB", (len(pictures) * (thumb_w + 2) - 2, thumb), _BACKGROUND)
    for k, picture in enumerate(pictures):
        strip.paste(picture.resize((thumb_w, thumb), Image.BILINEAR), (k * (thumb_w + 2), 0))
    return strip


def _entry_row(entry: SheetEntry, label_width: int, content_width: int, frames: int, thumb: int) -> Image.Image:
    label_font, text_font = _font(13), _font(15)
    background = _QUERY_TINT if entry.is_query else _BACKGROUND
    label_lines = _wrap(entry.label, label_font, label_width - 16)
    if entry.is_match:
        label_lines.append(_MATCH_LABEL)
    if entry.frames is not None:
        content = _strip(entry.frames, frames, thumb)
    else:
        lines = _wrap(entry.text or "", text_font, content_width - 8)
        content = Image.new("RGB", (content_width, 20 * len(lines) + 4), background)
        content_draw = ImageDraw.Draw(content)
        for k, line in enumerate(lines):
            content_draw.text((4, 2 + 20 * k), line, fill=_INK, font=text_font)
    height = max(content.height, 17 * len(label_lines)) + 12
    row = Image.new("RGB", (label_width + content_width + 10, height), background)
    draw = ImageDraw.Draw(row)
    if entry.is_match:
        draw.rectangle([0, 0, 4, height - 1], fill=_MATCH)
    for k, line in enumerate(label_lines):
        draw.text((10, 6 + 17 * k), line, fill=_MATCH if line == _MATCH_LABEL else _INK, font=label_font)
    row.paste(content, (label_width, 6))
    return row


def contact_sheet(
    sections: Sequence[SheetSection], title: str = "VideoCLIP retrieval", subtitle: str | None = None,
    random_weights: bool = False, frames_per_clip: int = 6, thumb_size: int = 88,
) -> Image.Image:
    """Draws queries and their retrieved items, one row per item, sections one under the other.

    Args:
        sections: what to show; each has a heading, a query row and result rows.
        title: first line of the heading. Defaults to "VideoCLIP retrieval".
        subtitle / random_weights: as `similarity_heatmap` (defaults: none, `False`).
        frames_per_clip: frames per video, evenly spaced. Defaults to 6 (every ~0.5 s of a 32-frame MUGEN clip).
        thumb_size: frame height in pixels. Defaults to 88, which keeps the sheet about 800 pixels wide.

    Returns:
        An RGB `PIL.Image.Image`.
    """
    if not sections:
        raise ValueError("contact_sheet needs at least one section")
    label_width = 210
    content_width = frames_per_clip * (thumb_size + 2) - 2
    width = label_width + content_width + 10
    heading_font = _font(16)
    parts: list[Image.Image] = [_title_block(title, subtitle, random_weights, width)]
    for section in sections:
        heading = Image.new("RGB", (width, 30), _BACKGROUND)
        heading_draw = ImageDraw.Draw(heading)
        heading_draw.line([0, 2, width, 2], fill=_MUTED)
        heading_draw.text((10, 8), section.heading, fill=_INK, font=heading_font)
        parts += [heading] + [_entry_row(entry, label_width, content_width, frames_per_clip, thumb_size)
                              for entry in [section.query, *section.results]]
    return _stack(parts, width)


def save_png(image: Image.Image, path: str | os.PathLike, max_colors: int | None = None) -> Path:
    """Saves `image` as an optimised PNG, creating the folder, and returns the path written.

    Args:
        max_colors: quantise to at most this many colours (a palette PNG, several times smaller, for the docs).
            Defaults to `None`: full RGB.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if max_colors is not None:
        image = image.quantize(colors=max_colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, format="PNG", optimize=True)
    return path
