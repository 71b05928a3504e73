"""Compiled (numba) kernels of the MUGEN renderer: :func:`tile_ops` lists the reference's paste operations with its
float expressions; :func:`paste_rgb` / :func:`paste_labels` run them with PIL's paste semantics. Images are
``(H, W * 3)`` uint8 rows so inner loops are byte loops LLVM vectorises; row views are sliced before indexing so
indices are provably non-negative (numba otherwise adds negative-index checks that block vectorisation)."""

from __future__ import annotations

import math

import numpy as np

from .jit import (
    STREAM_BYTES,
    address,
    copy8,
    copy16,
    copy32,
    data_pointer,
    select8,
    select16,
    select32,
    store_fence,
    stream_store,
    unowned,
)
from .jit import jit as _jit
from .jit import jit_inline as _inline

#: ``source`` of a paste operation: the background image (opaque).
BACKGROUND = -1
#: ``source`` of a label operation: fill the ``w x h`` rect with ``value`` (the reference's bounding boxes).
FILL = -2
#: ``source`` of an RGB operation: set the frame to black (where the background tiles leave gaps).
CLEAR = -3
#: Lava halves are written with ``source = -(LAVA_BASE + key)``.
LAVA_BASE = 16
#: Sprite kinds in the atlas table.
OPAQUE, BINARY, BLENDED = 0, 1, 2
#: Fields of a lava key (crop columns, width and height) must be below 2 ** 12.
LAVA_KEY_LIMIT = 1 << 12


# CoinRun's animation constants and rules live here, beside the kernels that compile them in: numba's cache checks
# only the file of each cached function, so what a kernel inlines must not change in another file.
AGENT_ANIM_FREQ = 5  # CoinRun hard-codes the agent's animation period
DEATH_ANIM_LENGTH = 30
MONSTER_DEATH_ANIM_LENGTH = 3
#: The fields the renderer reads, in the column order of :class:`~.game.FrameColumns`.
AGENT_FIELDS = ("x", "y", "vx", "vy", "time_alive", "ladder", "spring", "is_killed", "killed_animation_frame_cnt",
                "power_up_mode")
MONSTER_FIELDS = ("x", "y", "vx", "vy", "theme", "is_jumping", "is_dead", "time", "anim_freq",
                  "monster_dying_frame_cnt")


#: The agent poses CoinRun draws, indexed by :func:`agent_pose_index`.
AGENT_POSES = ("hit", "climb1", "climb2", "jump", "duck", "stand", "walk1", "walk2")


@_jit
def walk1_phase(time: int, anim_freq: int) -> bool:
    """Whether an animation of period ``anim_freq`` steps (at least 1) shows its first image at step ``time``."""
    return (time // max(anim_freq, 1)) % 2 == 0


@_jit
def agent_pose_index(is_killed: bool, ladder: bool, walk1: bool, vy: float, spring: float, vx: float) -> int:
    """The agent's pose as an index into :data:`AGENT_POSES`, in CoinRun's priority order (a killed agent shows "hit"
    even on a ladder or mid-jump)."""
    if is_killed:
        return 0
    if ladder:
        return 1 if walk1 else 2
    if vy != 0:
        return 3
    if spring != 0:
        return 4
    if vx == 0:
        return 5
    return 6 if walk1 else 7


@_jit
def monster_walk1(is_jumping: bool, vy: float, time: int, anim_freq: int) -> bool:
    """Whether a monster shows its first sprite (else its "move" one): jumping monsters show "move" while airborne,
    the others alternate every ``anim_freq`` steps."""
    return vy == 0 if is_jumping else walk1_phase(time, anim_freq)


@_jit
def lava_key(kind: int, crop_x0: int, crop_x1: int, w: int, h: int) -> int:
    """One integer naming a lava half: lava sprite ``kind`` (1 or 2), its crop columns and the paste size."""
    return (((kind * LAVA_KEY_LIMIT + crop_x0) * LAVA_KEY_LIMIT + crop_x1) * LAVA_KEY_LIMIT + w) * LAVA_KEY_LIMIT + h


def decode_lava_key(key: int):
    """``(kind, crop_x0, crop_x1, w, h)`` of :func:`lava_key`."""
    return tuple(key // LAVA_KEY_LIMIT**p % LAVA_KEY_LIMIT for p in range(4, -1, -1))


@_jit
def _intersect(ax, ay, aw, ah, bx, by, bw, bh):
    """The reference's ``intersect_rects`` (xywh in, xywh out; ``ok`` False when empty)."""
    x0 = max(ax, bx)
    y0 = max(ay, by)
    x1 = min(ax + aw, bx + bw)
    y1 = min(ay + ah, by + bh)
    w = x1 - x0
    h = y1 - y0
    return x0, y0, w, h, w > 0 and h > 0


@_jit
def _emit(ops, n, frame, source, x, y, w, h, value):
    """Write operation ``n``; returns ``n + 1``."""
    ops[n, 0], ops[n, 1], ops[n, 2], ops[n, 3] = frame, source, x, y
    ops[n, 4], ops[n, 5], ops[n, 6] = w, h, value
    return n + 1


@_jit
def tile_ops(agent_x, agent_y, state_time, eaten_ptr, eaten_xy, tile_src, tile_value, lava_kind, lava_size,
             res, zoom, kx, ky, dy_ratio, bgzoom, bg_w, bg_h, with_background):
    """The reference's paste sequence for the background and the maze tiles of each frame.

    Args:
        agent_x, agent_y, state_time: float64 arrays, one value per output frame.
        eaten_ptr, eaten_xy: eaten coins, CSR style (frame ``f`` owns ``eaten_xy[eaten_ptr[f]:eaten_ptr[f + 1]]``).
        tile_src, tile_value: ``(maze_h, maze_w)`` atlas id of each tile's sprite (-1: empty) and its label.
        lava_kind: ``(maze_h, maze_w)`` 0, or 1 / 2 for the two lava sprites; lava_size: their ``(w, h)`` by kind.
        res, zoom, kx, ky, dy_ratio, bgzoom: the camera (see ``render._Camera``); bg_w, bg_h: the background's size.
        with_background: also emit the background pastes (RGB frames), after a CLEAR unless one covers the frame.

    Returns:
        int64 array ``(n, 7)``: ``(frame, source, x, y, w, h, value)`` in paste order.
    """
    n_frames = agent_x.shape[0]
    maze_h, maze_w = tile_src.shape
    center = (res - 1) // 2
    dy = -center + dy_ratio * ky
    tile_w = kx + 0.5 + 0.2
    tile_h = ky + 0.5 + 0.2
    zx = res * zoom
    zy = zx
    radius = int(1 + maze_w / zoom)
    ops = np.empty((n_frames * (13 + 2 * maze_h * maze_w), 7), np.int64)
    eaten = np.zeros((maze_h, maze_w), np.bool_)
    n = 0
    for f in range(n_frames):
        dx = -agent_x[f] * kx + center - 0.5 * kx
        if with_background:
            first = n
            n = _emit(ops, n, f, CLEAR, 0, 0, 0, 0, 0)  # unless one background tile covers the frame (below)
            for tile_x in range(-1, 3):
                for tile_y in range(-1, 2):
                    bx = zx * tile_x + center + bgzoom * (dx + kx * maze_h / 2) - zx * 0.5
                    by = zy * tile_y + center + bgzoom * (dy - ky * maze_h / 2) - zy * 0.5
                    if bx + zx < 0 or bx > res or by + zy < 0 or by > res:
                        continue
                    n = _emit(ops, n, f, BACKGROUND, math.floor(bx), math.floor(by), 0, 0, 0)
            if n - first == 2 and ops[first + 1, 2] <= 0 and ops[first + 1, 3] <= 0 \
                    and ops[first + 1, 2] + bg_w >= res and ops[first + 1, 3] + bg_h >= res:
                ops[first] = ops[first + 1]
                n -= 1
        ix = int(agent_x[f] + 0.5)
        iy = int(agent_y[f] + 0.5)
        x_start, x_end = max(ix - radius, 0), min(ix + radius + 1, maze_w)
        y_start, y_end = max(iy - radius, 0), min(iy + radius + 1, maze_h)
        for k in range(eaten_ptr[f], eaten_ptr[f + 1]):
            ex, ey = eaten_xy[k, 0], eaten_xy[k, 1]
            if 0 <= ex < maze_w and 0 <= ey < maze_h:
                eaten[ey, ex] = True
        tr = state_time[f] * 0.1
        tr -= int(tr)
        tr *= -1
        for y in range(y_start, y_end):
            for x in range(x_start, x_end):
                src = tile_src[y, x]
                if src < 0 or eaten[y, x]:
                    continue
                tx = kx * x + dx - 0.1
                ty = res - ky * y + dy - 0.1
                if tx + tile_w < 0 or tx > res or ty + tile_h < 0 or ty > res:
                    continue
                kind = lava_kind[y, x]
                if kind == 0:
                    n = _emit(ops, n, f, src, math.floor(tx), math.floor(ty), 0, 0, tile_value[y, x])
                    continue
                aw, ah = lava_size[kind, 0], lava_size[kind, 1]
                # the two halves of the animated lava, shifted by the animation phase tr
                for half in range(2):
                    if half == 0:
                        sx = 0 + -tr * aw
                        px = tx + tr * tile_w
                    else:
                        sx = 0 + -aw - tr * aw
                        px = tx + (tile_w + tr * tile_w)
                    s0, _, sw, _, s_ok = _intersect(sx, 0.0, aw, ah, 0.0, 0.0, aw, ah)
                    d0, d_y, dw, dh, d_ok = _intersect(px, ty, tile_w, tile_h, tx, ty, tile_w, tile_h)
                    if not (s_ok and d_ok):
                        continue
                    if half == 1:
                        d0 -= 0.5
                    w = math.ceil(dw + 0.5)
                    h = math.ceil(dh)
                    crop_x0, crop_x1 = math.floor(s0), math.ceil(s0 + sw)
                    if not (0 <= crop_x0 < LAVA_KEY_LIMIT and 0 <= crop_x1 < LAVA_KEY_LIMIT
                            and 0 <= w < LAVA_KEY_LIMIT and 0 <= h < LAVA_KEY_LIMIT):
                        continue  # cannot happen for validated games; a key out of range would name another crop
                    key = lava_key(kind, crop_x0, crop_x1, w, h)
                    n = _emit(ops, n, f, -(LAVA_BASE + key), math.floor(d0), math.floor(d_y), w, h, tile_value[y, x])
        for k in range(eaten_ptr[f], eaten_ptr[f + 1]):
            ex, ey = eaten_xy[k, 0], eaten_xy[k, 1]
            if 0 <= ex < maze_w and 0 <= ey < maze_h:
                eaten[ey, ex] = False
    return ops[:n]


@_jit
def _in_atlas(atlas, table, src):
    """Whether sprite `src` is a row of `table` whose bytes lie inside `atlas`: the pastes run without bounds checks,
    so an operation naming anything else is skipped rather than allowed to read outside the arrays."""
    if src < 0 or src >= table.shape[0]:
        return False
    offset, h, w, kind = table[src, 0], table[src, 1], table[src, 2], table[src, 3]
    size = h * w * 3 * (1 if kind == OPAQUE else 2)
    return offset >= 0 and h >= 0 and w >= 0 and offset + size <= atlas.shape[0]


@_jit
def _clip(x, y, w, h, size):
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, size), min(y + h, size)
    return x0, y0, x1, y1, x0 < x1 and y0 < y1


@_inline
def _copy_row(dst, d, src, s, n):
    """``dst[d:d + n] = src[s:s + n]`` (uint8 pointers) in vector blocks (see :func:`.jit.copy32`)."""
    if n >= 32:
        for j in range(0, n - 32, 32):
            copy32(dst, d + j, src, s + j)
        copy32(dst, d + n - 32, src, s + n - 32)
    elif n >= 16:
        copy16(dst, d, src, s)
        copy16(dst, d + n - 16, src, s + n - 16)
    elif n >= 8:
        copy8(dst, d, src, s)
        copy8(dst, d + n - 8, src, s + n - 8)
    else:
        for j in range(n):
            dst[d + j] = src[s + j]


@_inline
def _select_row(dst, d, src, s, mask, m, n):
    """``dst[d:d + n] = (dst & ~mask) | (src & mask)`` over ``n`` bytes, ``mask`` from ``m``, in vector blocks."""
    if n >= 32:
        for j in range(0, n - 32, 32):
            select32(dst, d + j, src, s + j, mask, m + j)
        select32(dst, d + n - 32, src, s + n - 32, mask, m + n - 32)
    elif n >= 16:
        select16(dst, d, src, s, mask, m)
        select16(dst, d + n - 16, src, s + n - 16, mask, m + n - 16)
    elif n >= 8:
        select8(dst, d, src, s, mask, m)
        select8(dst, d + n - 8, src, s + n - 8, mask, m + n - 8)
    else:
        for j in range(n):
            dst[d + j] = (dst[d + j] & ~mask[m + j]) | (src[s + j] & mask[m + j])


@_inline
def _paste_rgb_one(canvas, res, atlas, table, background, bg_h, bg_row, src, x, y):
    """One paste on the flat ``(res, res * 3)`` frame ``canvas``; ``background`` the flat image of ``bg_h`` rows of
    ``bg_row`` bytes."""
    if src == CLEAR:
        canvas[:] = 0
        return
    if src == BACKGROUND:
        h, w, kind, offset, image = bg_h, bg_row // 3, OPAQUE, 0, background
    elif not _in_atlas(atlas, table, src):
        return
    else:
        offset, h, w, kind, image = table[src, 0], table[src, 1], table[src, 2], table[src, 3], atlas
    x0, y0, x1, y1, ok = _clip(x, y, w, h, res)
    if not ok:
        return
    n3, sx3, row3 = (x1 - x0) * 3, (x0 - x) * 3, w * 3
    alpha_offset = offset + h * row3
    frame, pixels = data_pointer(canvas), data_pointer(image)
    for i in range(y1 - y0):
        d = (y0 + i) * res * 3 + x0 * 3
        start = offset + (y0 - y + i) * row3 + sx3
        if kind == OPAQUE:
            _copy_row(frame, d, pixels, start, n3)
        elif kind == BINARY:
            _select_row(frame, d, pixels, start, pixels, start - offset + alpha_offset, n3)
        else:
            alpha = start - offset + alpha_offset
            for j in range(n3):
                a = np.int32(pixels[alpha + j])
                t = np.int32(frame[d + j]) * (255 - a) + np.int32(pixels[start + j]) * a + 128
                frame[d + j] = ((t >> 8) + t) >> 8  # PIL's DIV255 rounding


@_jit
def _stream_copy(dst, start, src):
    """``dst[start:start + len(src)] = src`` for flat uint8 arrays, the aligned middle with :func:`.jit.stream_store`
    (the caller fences)."""
    n = src.shape[0]
    head = min(n, (-(address(dst) + start)) % STREAM_BYTES)
    body_end = head + (n - head) // STREAM_BYTES * STREAM_BYTES
    for j in range(head):
        dst[start + j] = src[j]
    for j in range(head, body_end, STREAM_BYTES):
        stream_store(dst, start + j, src, j)
    for j in range(body_end, n):
        dst[start + j] = src[j]


@_jit
def paste_rgb(out, atlas, table, background, tile_ops, sprite_ops, canvas):
    """Run paste operations on RGB frames ``out`` ``(T, R, R * 3)`` (PIL's ``paste`` with the sprite as mask):
    each frame's ``tile_ops``, then its ``sprite_ops`` (both sorted by frame). ``table[i] = (offset, h, w, kind)``
    locates sprite ``i`` in ``atlas``: ``h * w * 3`` RGB bytes, then (unless OPAQUE) as many alpha bytes, each
    pixel's alpha repeated per channel. ``background`` is an ``(H, W * 3)`` image pasted opaque. Each frame is drawn
    on ``canvas`` (``(R, R * 3)`` scratch, which stays in the CPU's cache) and then streamed to ``out`` without
    reading it (:func:`.jit.stream_store`): drawing in ``out`` itself read each cache line of the frames from memory
    before writing it. All C-contiguous.
    """
    frames, sprites, locations = unowned(out.reshape(-1)), unowned(atlas), unowned(table)
    image, drawn, res = unowned(background.reshape(-1)), unowned(canvas.reshape(-1)), canvas.shape[0]
    bg_h, bg_row = background.shape[0], background.shape[1]
    a = b = 0
    for f in range(out.shape[0]):
        while a < tile_ops.shape[0] and tile_ops[a, 0] == f:
            _paste_rgb_one(drawn, res, sprites, locations, image, bg_h, bg_row, tile_ops[a, 1], tile_ops[a, 2],
                           tile_ops[a, 3])
            a += 1
        while b < sprite_ops.shape[0] and sprite_ops[b, 0] == f:
            _paste_rgb_one(drawn, res, sprites, locations, image, bg_h, bg_row, sprite_ops[b, 1], sprite_ops[b, 2],
                           sprite_ops[b, 3])
            b += 1
        _stream_copy(frames, f * drawn.shape[0], drawn)
    store_fence()


@_jit
def _paste_label_one(frame, atlas, table, op):
    res = frame.shape[0]
    src, x, y, value = op[1], op[2], op[3], np.uint8(op[6])
    if src == FILL:
        w, h, kind, offset = op[4], op[5], OPAQUE, 0
    elif not _in_atlas(atlas, table, src):
        return
    else:
        offset, h, w, kind = table[src, 0], table[src, 1], table[src, 2], table[src, 3]
    x0, y0, x1, y1, ok = _clip(x, y, w, h, res)
    if not ok:
        return
    row3, sx3 = w * 3, (x0 - x) * 3
    alpha_offset = offset + h * row3
    for i in range(y1 - y0):
        dst = frame[y0 + i, x0:x1]
        if kind == OPAQUE:
            dst[:] = value
            continue
        start = alpha_offset + (y0 - y + i) * row3 + sx3
        alpha = atlas[start:start + (x1 - x0) * 3]
        for j in range(x1 - x0):
            if alpha[3 * j] != 0:
                dst[j] = value


@_jit
def paste_labels(out, atlas, table, tile_ops, sprite_ops):
    """Run label operations on zero-initialised maps ``out`` ``(T, R, R)`` in :func:`paste_rgb`'s order: ``value``
    where the sprite's alpha is non-zero (everywhere for OPAQUE sprites), or over the whole ``w x h`` rect for FILL.
    All C-contiguous."""
    frames, sprites, locations = unowned(out), unowned(atlas), unowned(table)
    tile_rows, sprite_rows = unowned(tile_ops), unowned(sprite_ops)
    a = b = 0
    for f in range(frames.shape[0]):
        frame = frames[f]
        while a < tile_rows.shape[0] and tile_rows[a, 0] == f:
            _paste_label_one(frame, sprites, locations, tile_rows[a])
            a += 1
        while b < sprite_rows.shape[0] and sprite_rows[b, 0] == f:
            _paste_label_one(frame, sprites, locations, sprite_rows[b])
            b += 1


# column indices, in the order of AGENT_FIELDS and MONSTER_FIELDS
_AX, _AY, _AVX, _AVY, _TIME_ALIVE, _LADDER, _SPRING, _KILLED, _KILLED_CNT, _POWER_UP = range(len(AGENT_FIELDS))
_MX, _MY, _MVX, _MVY, _THEME, _JUMPING, _DEAD, _TIME, _ANIM_FREQ, _DYING_CNT = range(len(MONSTER_FIELDS))
#: Fade steps of the dying agent's sprite: 0 unfaded, else 1 + transparency / 12.
AGENT_FADES = DEATH_ANIM_LENGTH + 2
_DUCK = AGENT_POSES.index("duck")


@_jit
def sprite_ops(agent, monsters, monster_ptr, kx, ky, res, center, dy, labels, monster_boxes, person_boxes,
               person_label, monster_src, monster_label, agent_src, agent_aspect, agent_height, shield_src, shield_w,
               shield_h):
    """The reference's paste sequence for the sprites of each frame: its monsters (shrinking while dying), the agent
    (fading while dying) and, in power-up mode, the shield, with its float expressions.

    Args:
        agent, monsters, monster_ptr: a :class:`~.game.FrameColumns`' arrays.
        kx, ky, res, center, dy: the camera (see ``render._Camera``).
        labels: segmentation maps; monster_boxes, person_boxes: draw monsters / agent and shield as boxes there;
            person_label: the agent's and the shield's label.
        monster_src: atlas id by monster look ``[theme, pose, flipped, slot]`` (-1: not made yet), pose 0 / 1 / 2
            for first / move / dead, ``slot`` 0 for a live monster, else 1 + its dying count; monster_label: label
            by theme.
        agent_src: atlas id by agent look ``[pose, flipped, fade]`` (see :data:`AGENT_FADES`); agent_aspect,
            agent_height: by ``[pose, flipped]`` (NaN: not loaded yet).
        shield_src, shield_w, shield_h: the shield's atlas id and size.

    Returns:
        ``(ops, missing_monsters, missing_agent)``: int64 ``(n, 7)`` operations as :func:`tile_ops`'; when a look
        is not in the tables, ``ops`` is incomplete and the looks are listed: monsters as ``(theme, pose, flipped,
        slot, w, h)`` rows, the agent as ``(pose, flipped, fade)`` rows.
    """
    n = agent.shape[0]
    slots = monster_src.shape[3]
    ops = np.empty((monsters.shape[0] + 2 * n, 7), np.int64)
    missing_monsters = np.empty((monsters.shape[0], 6), np.int64)
    missing_agent = np.empty((n, 3), np.int64)
    k = n_monsters = n_agent = 0
    w = math.ceil(kx)
    for f in range(n):
        ax, ay = agent[f, _AX], agent[f, _AY]
        dx = -ax * kx + center - 0.5 * kx  # the reference's camera offset
        for m in range(monster_ptr[f], monster_ptr[f + 1]):
            theme = int(monsters[m, _THEME])
            shrink, slot = 0.0, 0  # adding 0.0 leaves a live monster's rect as the reference's
            if monsters[m, _DEAD] != 0:
                count = max(0.0, monsters[m, _DYING_CNT])
                shrink = (MONSTER_DEATH_ANIM_LENGTH - count) * 0.8 / MONSTER_DEATH_ANIM_LENGTH
                slot = 1 + int(count)
                pose = 2
            elif monster_walk1(monsters[m, _JUMPING] != 0, monsters[m, _MVY], int(monsters[m, _TIME]),
                               int(monsters[m, _ANIM_FREQ])):
                pose = 0
            else:
                pose = 1
            x = math.floor(kx * monsters[m, _MX] + dx)
            y = math.floor(res - ky * monsters[m, _MY] + dy + ky * shrink)
            h = math.ceil(ky * (1 - shrink))
            if labels and monster_boxes:
                k = _emit(ops, k, f, FILL, x, y, w, h, monster_label[theme])
                continue
            flipped, slot = 1 if monsters[m, _MVX] > 0 else 0, min(slot, slots - 1)
            src = monster_src[theme, pose, flipped, slot]
            if src < 0:
                row = missing_monsters[n_monsters]
                row[0], row[1], row[2], row[3], row[4], row[5] = theme, pose, flipped, slot, w, h
                n_monsters += 1
            k = _emit(ops, k, f, src, x, y, 0, 0, monster_label[theme] if labels else 0)
        killed = agent[f, _KILLED] != 0
        pose = agent_pose_index(killed, agent[f, _LADDER] != 0, walk1_phase(int(agent[f, _TIME_ALIVE]),
                                AGENT_ANIM_FREQ), agent[f, _AVY], agent[f, _SPRING], agent[f, _AVX])
        flipped = 1 if agent[f, _AVX] < 0 else 0
        transparency = (DEATH_ANIM_LENGTH + 1 - int(agent[f, _KILLED_CNT])) * 12 if killed else 0
        if transparency <= 255:
            fade = 1 + transparency // 12 if killed and not labels else 0
            src = agent_src[pose, flipped, fade]
            if src < 0 or np.isnan(agent_aspect[pose, flipped]):
                row = missing_agent[n_agent]
                row[0], row[1], row[2] = pose, flipped, fade
                n_agent += 1
            else:
                aspect, h = agent_aspect[pose, flipped], agent_height[pose, flipped]
                x = math.floor(kx * ax + dx)
                y = math.floor(res - ky * (ay + aspect - 1) + dy)
                k = _emit_person(ops, k, f, src, x, y, w, h, labels, person_boxes, person_label, 0.8)
        if agent[f, _POWER_UP] != 0:
            x = math.floor(kx * ax + dx - 7 * res / 1024)
            y = math.floor(res - ky * (ay + 1) + dy + 8 * res / 1024)
            if pose == _DUCK:
                y += math.floor(8 * res / 1024)
            k = _emit_person(ops, k, f, shield_src, x, y, shield_w, shield_h, labels, person_boxes, person_label,
                             0.45)
    return ops[:k], missing_monsters[:n_monsters], missing_agent[:n_agent]


@_jit
def _emit_person(ops, k, f, src, x, y, w, h, labels, boxes, label, cut_ratio):
    """The agent's or the shield's operation: its sprite, or in segmentation maps its label, as a box when `boxes`
    (the sprite's top part is empty: the box starts ``cut_ratio * w`` rows lower)."""
    if not labels:
        return _emit(ops, k, f, src, x, y, 0, 0, 0)
    if boxes:
        cut = int(cut_ratio * w)
        return _emit(ops, k, f, FILL, x, y + cut, w, h - cut, label)
    return _emit(ops, k, f, src, x, y, 0, 0, label)
