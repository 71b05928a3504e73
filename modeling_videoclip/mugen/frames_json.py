"""Compiled (numba) reading of game JSONs: :func:`split_frames` validates a whole document and finds each frame's
bytes; :meth:`FrameBytes.drawn` decodes the fields the renderer draws straight from those bytes, with Python's float
values (correctly rounded: Clinger's exact cases, else Eisel-Lemire). Both take only a plain subset of JSON (ASCII
strings without escapes, nesting up to :data:`MAX_DEPTH`) and answer None for anything else, which the caller then
reads with orjson as before: what these kernels accept is valid JSON that orjson reads to the same
values, and every message about a bad file still comes from the one checked path in :mod:`.game`.

A game JSON of 96 frames is ~80 KB; orjson makes ~10k Python objects of it, of which a clip draws a third. Reading
the drawn numbers from the bytes instead is what makes a dataset row of a few hundred microseconds possible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from numba import types
from numba.extending import intrinsic

from .jit import jit as _jit
from .jit import jit_inline as _inline
from .jit import load_word, trailing_zeros
from .jit import unowned as _unowned

#: Field kinds: a number (int or float), an integer, a flag (bool or int), as :mod:`.game`'s specs name them.
NUM, INT, FLAG = 0, 1, 2
#: Deepest nesting the kernels read (CoinRun's game JSONs nest 4 deep); deeper documents go to orjson.
MAX_DEPTH = 64

_OK, _UNHANDLED, _FULL = 0, 1, 2
_QUOTE, _BACKSLASH, _COMMA, _COLON = ord('"'), ord("\\"), ord(","), ord(":")
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = ord("{"), ord("}"), ord("["), ord("]")
_MINUS, _PLUS, _DOT, _ZERO, _NINE = ord("-"), ord("+"), ord("."), ord("0"), ord("9")
_LOWER_E, _UPPER_E, _T, _F, _N = ord("e"), ord("E"), ord("t"), ord("f"), ord("n")
_FRAMES_KEY, _AGENT_KEY, _MONSTERS_KEY, _COINS_KEY, _TRUE, _FALSE, _NULL = (
    np.array(list(word), np.uint8) for word in (b"frames", b"agent", b"monsters", b"coins_eaten", b"true", b"false",
                                                b"null"))
_ONES, _HIGH_BITS = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)  # each byte's 1 and 0x80
_M32 = np.uint64(0xFFFFFFFF)
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_EXACT_POWERS = np.array([10.0**k for k in range(23)])  # 10**22 is the largest power of ten a double holds exactly
_MIN_Q, _MAX_Q = -342, 308  # decimal exponents of the table below


def _power_of_five_table() -> np.ndarray:
    """``(651, 2)`` uint64: ``5**q`` for ``q`` in ``[-342, 308]`` normalised to 128 bits (high, low word), truncated
    for ``q >= 0`` and rounded up for ``q < 0``: the table of Lemire's "Number Parsing at a Gigabyte per Second"
    (2021), computed here with Python's exact integers."""
    rows = []
    for q in range(_MIN_Q, _MAX_Q + 1):
        if q >= 0:
            value = 5**q
            value <<= max(0, 127 - value.bit_length() + 1)
            value >>= max(0, value.bit_length() - 128)
        else:
            power = 5**-q
            z = (power - 1).bit_length()  # smallest z with 2**z >= power
            value = (1 << (z + 127 if q >= -27 else 2 * z + 128)) // power + 1
            value >>= max(0, value.bit_length() - 128)
        rows.append((value >> 64, value & ((1 << 64) - 1)))
    return np.array(rows, np.uint64)


_POWERS_OF_FIVE = _power_of_five_table()


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the uint64 ``bits``."""
    if bits != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.uint64), codegen


@_inline
def _skip_space(buf, i, n):
    while i < n:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        i += 1
    return i


@_inline
def _bytes_below(word, limit):
    """Bit 7 set in the lowest byte of ``word`` below ``limit`` (at most 128), and perhaps in later bytes: only the
    lowest flag is exact (a borrow may flag bytes after it), which is all the scans use."""
    return (word - _ONES * np.uint64(limit)) & ~word & _HIGH_BITS


@_inline
def _string_specials(word):
    """Bit 7 set in the lowest byte of ``word`` (8 string bytes) that ends the plain subset's string or leaves it: a
    quote, a backslash, a control byte or one above 126 (see :func:`_bytes_below`)."""
    quote, backslash = word ^ (_ONES * np.uint64(_QUOTE)), word ^ (_ONES * np.uint64(_BACKSLASH))
    high = (word | ((word & ~_HIGH_BITS) + _ONES)) & _HIGH_BITS  # bytes >= 127, exact per byte
    return _bytes_below(quote, 1) | _bytes_below(backslash, 1) | _bytes_below(word, 32) | high


@_inline
def _string_end(buf, i, n):
    """The index after the string opening at ``i`` (a quote), or -1 for a string outside the plain subset (escapes,
    control or non-ASCII bytes) or one left open. Eight bytes at a time while they last."""
    i += 1
    while i + 8 <= n:
        specials = _string_specials(load_word(buf, i))
        if specials:
            i += np.int64(trailing_zeros(specials) >> np.uint64(3))
            return i + 1 if buf[i] == _QUOTE else -1
        i += 8
    while i < n:
        c = buf[i]
        if c == _QUOTE:
            return i + 1
        if c == _BACKSLASH or c < 32 or c > 126:
            return -1
        i += 1
    return -1


@_inline
def _digits_end(buf, i, n):
    """The index of the first byte from ``i`` that is not a decimal digit (or ``n``); eight bytes at a time."""
    while i + 8 <= n:
        x = load_word(buf, i) ^ (_ONES * np.uint64(_ZERO))  # digits become 0..9
        # a byte is not a digit where its high nibble is set or its low nibble exceeds 9 (+6 carries into bit 4);
        # carries out of a byte happen only above a non-digit, so the lowest flag is exact
        other = (x & (_ONES * np.uint64(0xF0))) | ((x + _ONES * np.uint64(6)) & (_ONES * np.uint64(0x10)))
        if other:
            return i + np.int64(trailing_zeros(other) >> np.uint64(3))
        i += 8
    while i < n and _ZERO <= buf[i] <= _NINE:
        i += 1
    return i


@_inline
def _number_end(buf, i, n):
    """The index after the JSON number starting at ``i``, or -1 where the grammar is broken (leading zeros, a bare
    sign or point, an empty exponent)."""
    if i < n and buf[i] == _MINUS:
        i += 1
    if i >= n or not _ZERO <= buf[i] <= _NINE:
        return -1
    i = i + 1 if buf[i] == _ZERO else _digits_end(buf, i, n)
    if i < n and buf[i] == _DOT:
        j = _digits_end(buf, i + 1, n)
        if j == i + 1:
            return -1
        i = j
    if i < n and (buf[i] == _LOWER_E or buf[i] == _UPPER_E):
        i += 1
        if i < n and (buf[i] == _PLUS or buf[i] == _MINUS):
            i += 1
        j = _digits_end(buf, i, n)
        if j == i:
            return -1
        i = j
    if i < n and (buf[i] == _DOT or buf[i] == _LOWER_E or buf[i] == _UPPER_E or _ZERO <= buf[i] <= _NINE):
        return -1  # e.g. "01", "1.2.3"
    return i


@_inline
def _word_end(buf, i, n, word):
    """The index after ``word`` if the bytes at ``i`` spell it, else -1."""
    if i + word.shape[0] > n:
        return -1
    for j in range(word.shape[0]):
        if buf[i + j] != word[j]:
            return -1
    return i + word.shape[0]


@_inline
def _literal_end(buf, i, n):
    """The index after ``true``, ``false`` or ``null`` at ``i``, or -1."""
    c = buf[i]
    return _word_end(buf, i, n, _TRUE if c == _T else _FALSE if c == _F else _NULL)


@_inline
def _scalar_end(buf, i, n):
    """The index after the string, number or literal at ``i``, or -1."""
    c = buf[i]
    if c == _QUOTE:
        return _string_end(buf, i, n)
    if c == _MINUS or _ZERO <= c <= _NINE:
        return _number_end(buf, i, n)
    return _literal_end(buf, i, n)


@_jit
def _key_is(buf, start, end, key):
    """Whether the string ``buf[start:end]`` (quotes included) is ``key``."""
    return end - start == key.shape[0] + 2 and _word_end(buf, start + 1, end, key) > 0


@_inline
def _member_key(buf, i, n, depth):
    """``(index, is_frames)`` for the member key at ``i`` of an object at ``depth``: the index past its colon (-1
    where there is no key and colon) and whether it is the top-level ``"frames"``."""
    if i >= n or buf[i] != _QUOTE:
        return -1, False
    j = _string_end(buf, i, n)
    if j < 0:
        return -1, False
    is_frames = depth == 1 and _key_is(buf, i, j, _FRAMES_KEY)
    i = _skip_space(buf, j, n)
    if i >= n or buf[i] != _COLON:
        return -1, False
    return i + 1, is_frames


@_jit
def _locate_frames(document, spans_out, containers):
    """``(status, count)``: ``spans_out[:count]`` the ``(start, end)`` bytes of each element of the top-level
    object's ``"frames"`` array (its last, as JSON readers keep the last of repeated keys), after checking the whole
    document; status _FULL where ``spans_out`` has too few rows. ``containers`` is scratch of MAX_DEPTH + 1 bytes.
    Arrays made here would cost reference counting in the loop: the caller makes them."""
    buf, n = _unowned(document), document.shape[0]
    stack, spans = _unowned(containers), _unowned(spans_out)  # 1 object, 2 array
    count = 0
    depth = 0
    frames_depth = -1  # depth of the "frames" array while inside it
    frames_found = False
    next_is_frames = False
    i = _skip_space(buf, 0, n)
    if i >= n or buf[i] != _LBRACE:
        return _UNHANDLED, 0
    while True:
        # a value starts at i
        i = _skip_space(buf, i, n)
        if i >= n:
            return _UNHANDLED, 0
        if depth == frames_depth:  # an element of "frames" starts
            if count == spans.shape[0]:
                return _FULL, count
            spans[count, 0] = i
        c = buf[i]
        if c == _LBRACE or c == _LBRACKET:
            if depth == MAX_DEPTH:
                return _UNHANDLED, 0
            depth += 1
            stack[depth] = 1 if c == _LBRACE else 2
            if next_is_frames:  # the last "frames" decides, as readers keep the last of repeated keys
                next_is_frames = False
                frames_found = c == _LBRACKET
                if frames_found:
                    frames_depth, count = depth, 0
            i = _skip_space(buf, i + 1, n)
            if i < n and buf[i] == (_RBRACE if c == _LBRACE else _RBRACKET):
                depth -= 1
                i += 1
            elif c == _LBRACKET:
                continue
            else:  # the object's first key
                i, next_is_frames = _member_key(buf, i, n, depth)
                if i < 0:
                    return _UNHANDLED, 0
                continue
        else:
            frames_found = frames_found and not next_is_frames
            next_is_frames = False
            i = _scalar_end(buf, i, n)
            if i < 0:
                return _UNHANDLED, 0
        # a value ended at i: close containers, or go on to the next element
        while True:
            if depth == frames_depth:  # an element of "frames" ended
                spans[count, 1] = i
                count += 1
            elif depth == frames_depth - 1 and frames_depth > 0:  # "frames" itself ended
                frames_depth = -1
            if depth == 0:
                if _skip_space(buf, i, n) != n:
                    return _UNHANDLED, 0
                if not frames_found:
                    return _UNHANDLED, 0
                return _OK, count
            i = _skip_space(buf, i, n)
            if i >= n:
                return _UNHANDLED, 0
            c = buf[i]
            is_object = stack[depth] == 1
            if c == _COMMA:
                i += 1
                if is_object:
                    i, next_is_frames = _member_key(buf, _skip_space(buf, i, n), n, depth)
                    if i < 0:
                        return _UNHANDLED, 0
                break
            if c != (_RBRACE if is_object else _RBRACKET):
                return _UNHANDLED, 0
            depth -= 1
            i += 1


@_jit
def _mul128(a, b):
    """The 128-bit product of uint64 ``a`` and ``b`` as ``(high, low)``."""
    a_lo, a_hi, b_lo, b_hi = a & _M32, a >> np.uint64(32), b & _M32, b >> np.uint64(32)
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (p0 >> np.uint64(32)) + (p1 & _M32) + (p2 & _M32)
    low = (mid << np.uint64(32)) | (p0 & _M32)
    high = p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32))
    return high, low


@_jit
def _leading_zeros(w):
    count = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if w >> np.uint64(64 - shift) == np.uint64(0):
            w <<= np.uint64(shift)
            count += shift
    return count


@_jit
def _decimal_to_float(w, q, negative, powers):
    """``(ok, value)``: the double nearest to ``w * 10**q`` (ties to even), as Python's ``float()`` of the decimal
    gives it; ``ok`` False where this cannot tell (subnormal or overflowing results, Eisel-Lemire's rare undecided
    case), which the caller hands to orjson."""
    if w == np.uint64(0):
        return True, -0.0 if negative else 0.0
    if w <= np.uint64(1 << 53) and -22 <= q <= 22:  # Clinger: both operands exact, one correctly rounded operation
        value = float(w) / _EXACT_POWERS[-q] if q < 0 else float(w) * _EXACT_POWERS[q]
        return True, -value if negative else value
    if q < -300 or q > _MAX_Q:
        return False, 0.0
    lz = _leading_zeros(w)
    w <<= np.uint64(lz)
    high, low = _mul128(w, powers[q - _MIN_Q, 0])
    if high & np.uint64(0x1FF) == np.uint64(0x1FF):  # the truncated product may be off in the bits kept
        high2, low2 = _mul128(w, powers[q - _MIN_Q, 1])
        low += high2
        if high2 > low:
            high += np.uint64(1)
        if low == _M64 and (q < -27 or q > 55):
            return False, 0.0
    upper = np.int64(high >> np.uint64(63))
    mantissa = high >> np.uint64(upper + 9)
    power2 = ((217706 * q) >> 16) + 63 + upper - lz + 1023  # 217706 / 2**16 ~ log2(10); 1023 the bias
    if power2 <= 0:
        return False, 0.0
    if low <= np.uint64(1) and -4 <= q <= 23 and mantissa & np.uint64(3) == np.uint64(1):
        if mantissa << np.uint64(upper + 9) == high:  # exactly halfway: round to even
            mantissa &= ~np.uint64(1)
    mantissa += mantissa & np.uint64(1)
    mantissa >>= np.uint64(1)
    if mantissa >= np.uint64(1 << 53):
        mantissa = np.uint64(1 << 52)
        power2 += 1
    mantissa &= ~np.uint64(1 << 52)
    if power2 >= 0x7FF:
        return False, 0.0
    bits = mantissa | (np.uint64(power2) << np.uint64(52))
    if negative:
        bits |= np.uint64(1) << np.uint64(63)
    return True, _bits_to_float(bits)


@_inline
def _significand(buf, i, n, w, digits):
    """``(end, w, digits)``: the digits from ``i`` appended to the significand ``w`` of ``digits`` significant
    digits (leading zeros not counted; ``w`` wraps beyond 19, which the caller checks)."""
    while i < n and _ZERO <= buf[i] <= _NINE:
        if digits or buf[i] != _ZERO:
            w = w * np.uint64(10) + np.uint64(buf[i] - _ZERO)
            digits += 1
        i += 1
    return i, w, digits


@_jit
def _number_value(buf, i, kind, powers):
    """``(end, ok, value)`` of the number at ``i`` (valid per :func:`_number_end`) for a field of ``kind``: an integer
    token for any kind (exact up to 18 digits), a token with a fraction or exponent only for NUM."""
    n = buf.shape[0]
    negative = buf[i] == _MINUS
    if negative:
        i += 1
    i, w, digits = _significand(buf, i, n, np.uint64(0), 0)
    if i >= n or (buf[i] != _DOT and buf[i] != _LOWER_E and buf[i] != _UPPER_E):
        if digits > 18:
            return i, False, 0.0
        value = float(np.int64(w))
        return i, True, -value if negative and digits else value  # -0 is the integer 0
    if kind != NUM:
        return i, False, 0.0
    q = 0
    if buf[i] == _DOT:
        end, w, digits = _significand(buf, i + 1, n, w, digits)
        q, i = i + 1 - end, end  # one power of ten less per fraction digit
    if i < n and (buf[i] == _LOWER_E or buf[i] == _UPPER_E):
        i += 1
        exponent_negative = buf[i] == _MINUS
        if buf[i] == _MINUS or buf[i] == _PLUS:
            i += 1
        exponent = 0
        while i < n and _ZERO <= buf[i] <= _NINE:
            if exponent < 100000:
                exponent = exponent * 10 + (buf[i] - _ZERO)
            i += 1
        q += -exponent if exponent_negative else exponent
    if digits > 19:
        return i, False, 0.0
    ok, value = _decimal_to_float(w, q, negative, powers)
    return i, ok, value


@_inline
def _value_end(buf, i, n):
    """The index after the value at ``i`` of a document :func:`_locate_frames` accepted."""
    c = buf[i]
    if c != _LBRACE and c != _LBRACKET:
        return _scalar_end(buf, i, n)
    depth = 0
    while True:
        c = buf[i]
        if c == _QUOTE:
            i = _string_end(buf, i, n)
            continue
        if c == _LBRACE or c == _LBRACKET:
            depth += 1
        elif c == _RBRACE or c == _RBRACKET:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


@_inline
def _member_value(buf, key_end, n):
    """The index of the value of the member whose key ends at ``key_end``, in a checked document (past the colon)."""
    return _skip_space(buf, _skip_space(buf, key_end, n) + 1, n)


@_inline
def _next_member(buf, i, n):
    """After a value at ``i`` inside a container of a checked document: ``(index, more)``, the index past the comma
    (more True) or past the closing bracket."""
    i = _skip_space(buf, i, n)
    if buf[i] == _COMMA:
        return _skip_space(buf, i + 1, n), True
    return i + 1, False


@_jit
def _field_index(buf, start, end, names, name_ptr, first, last):
    """The field among ``first:last`` of the name table whose name is the string ``buf[start:end]``, or -1."""
    size = end - start - 2
    for f in range(first, last):
        if name_ptr[f + 1] - name_ptr[f] == size:
            match = True
            for j in range(size):
                if buf[start + 1 + j] != names[name_ptr[f] + j]:
                    match = False
                    break
            if match:
                return f - first
    return -1


@_inline
def _read_object(buf, i, n, row, names, name_ptr, first, kinds, powers):
    """Read the object at ``i`` into ``row`` (the fields ``first:first + len(row)`` of the name table; NaN for those
    absent, the last of repeated keys kept); ``(end, ok)``, ok False for a value of a type the field does not take
    as it is."""
    row[:] = np.nan
    i = _skip_space(buf, i + 1, n)
    if buf[i] == _RBRACE:
        return i + 1, True
    while True:
        j = _string_end(buf, i, n)
        f = _field_index(buf, i, j, names, name_ptr, first, first + row.shape[0])
        i = _member_value(buf, j, n)
        if f < 0:
            i = _value_end(buf, i, n)
        else:
            i, ok, row[f] = _read_scalar(buf, i, kinds[first + f], powers)
            if not ok:
                return i, False
        i, more = _next_member(buf, i, n)
        if not more:
            return i, True


@_inline
def _read_scalar(buf, i, kind, powers):
    """``(end, ok, value)`` of the value at ``i`` for a field of ``kind``: a number (see :func:`_number_value`), or
    for a FLAG also ``true`` / ``false``; anything else is not ok."""
    c = buf[i]
    if c == _MINUS or _ZERO <= c <= _NINE:
        return _number_value(buf, i, kind, powers)
    if kind == FLAG and (c == _T or c == _F):
        return _literal_end(buf, i, buf.shape[0]), True, 1.0 if c == _T else 0.0
    return i, False, 0.0


@_jit
def _filled(row, defaults, first):
    """Put defaults into the absent (NaN) fields of ``row``; False where a required one (NaN default) is absent."""
    for f in range(row.shape[0]):
        if row[f] != row[f]:
            if defaults[first + f] != defaults[first + f]:
                return False
            row[f] = defaults[first + f]
    return True


@_inline
def _read_coin(buf, i, n, coin, powers):
    """Read ``[x, y]`` (two integers of up to 18 digits) at ``i`` into ``coin``; ``(end, ok)``."""
    if buf[i] != _LBRACKET:
        return i, False
    i = _skip_space(buf, i + 1, n)
    for axis in range(2):
        i, ok, value = _read_scalar(buf, i, INT, powers)
        if not ok:
            return i, False
        coin[axis] = np.int64(value)
        i, more = _next_member(buf, i, n)
        if more != (axis == 0):
            return i, False
    return i, True


@_jit
def _drawn_values(document, spans, ids, table_names, table_name_ptr, table_kinds, table_defaults, sizes,
                  power_table, frame_out, agent_out, monster_ptr_out, monster_out, coin_ptr_out, coin_out):
    """The drawn fields of frames ``ids`` (see :meth:`FrameBytes.drawn`) into the ``*_out`` arrays: ``(status,
    monster_count, coin_count)``, status _FULL where ``monster_out`` or ``coin_out`` has too few rows; ``sizes`` the
    field counts of frame, agent and monster in the name table."""
    buf, n = _unowned(document), document.shape[0]
    names, name_ptr, kinds = _unowned(table_names), _unowned(table_name_ptr), _unowned(table_kinds)
    defaults, powers = _unowned(table_defaults), _unowned(power_table)
    frame, agent, monsters, coins = _unowned(frame_out), _unowned(agent_out), _unowned(monster_out), _unowned(coin_out)
    monster_ptr, coin_ptr = _unowned(monster_ptr_out), _unowned(coin_ptr_out)
    agent_first, monster_first = sizes[0], sizes[0] + sizes[1]
    m = c = 0
    failed = (_UNHANDLED, 0, 0)
    monster_ptr[0] = coin_ptr[0] = 0
    for r in range(ids.shape[0]):
        i = spans[ids[r], 0]
        if buf[i] != _LBRACE:
            return failed
        first_m, first_c = m, c
        has_agent = False
        frame[r, :] = np.nan
        i = _skip_space(buf, i + 1, n)
        more = buf[i] != _RBRACE
        if not more:
            i += 1
        while more:
            j = _string_end(buf, i, n)
            is_agent, is_monsters = _key_is(buf, i, j, _AGENT_KEY), _key_is(buf, i, j, _MONSTERS_KEY)
            is_coins = _key_is(buf, i, j, _COINS_KEY)
            f = -1 if is_agent or is_monsters or is_coins else _field_index(buf, i, j, names, name_ptr, 0, sizes[0])
            i = _member_value(buf, j, n)
            ok = True
            if is_agent:
                if buf[i] != _LBRACE:
                    return failed
                i, ok = _read_object(buf, i, n, agent[r], names, name_ptr, agent_first, kinds, powers)
                has_agent = ok and _filled(agent[r], defaults, agent_first)
                ok = has_agent
            elif is_monsters or is_coins:  # a list; a repeated key replaces the earlier list
                if buf[i] != _LBRACKET:
                    return failed
                if is_monsters:
                    m = first_m
                else:
                    c = first_c
                i = _skip_space(buf, i + 1, n)
                items = buf[i] != _RBRACKET
                if not items:
                    i += 1
                while items and ok:
                    if is_monsters:
                        if buf[i] != _LBRACE:
                            return failed
                        if m == monsters.shape[0]:
                            return _FULL, m, c
                        i, ok = _read_object(buf, i, n, monsters[m], names, name_ptr, monster_first, kinds, powers)
                        ok = ok and _filled(monsters[m], defaults, monster_first)
                        m += 1
                    else:
                        if c == coins.shape[0]:
                            return _FULL, m, c
                        i, ok = _read_coin(buf, i, n, coins[c], powers)
                        c += 1
                    i, items = _next_member(buf, i, n)
            elif f >= 0:
                i, ok, frame[r, f] = _read_scalar(buf, i, kinds[f], powers)
            else:
                i = _value_end(buf, i, n)
            if not ok:
                return failed
            i, more = _next_member(buf, i, n)
        if not (has_agent and _filled(frame[r], defaults, 0)):
            return failed
        monster_ptr[r + 1], coin_ptr[r + 1] = m, c
    return _OK, m, c


@_jit
def within_bounds(frame, agent, monsters, coins, low, high, maze_w, maze_h):
    """Whether every value of the ``frame``, ``agent`` and ``monsters`` blocks of :meth:`FrameBytes.drawn` lies in
    its column's ``[low, high]`` (``low``/``high``: the three blocks' columns one after another, as in
    :class:`FieldTable`; NaN is in no range) and every ``(x, y)`` of ``coins`` is a cell of a ``maze_w x maze_h``
    maze. One compiled pass instead of ~20 numpy calls of a microsecond each."""
    first = 0
    for block in (frame, agent, monsters):
        for r in range(block.shape[0]):
            for c in range(block.shape[1]):
                if not low[first + c] <= block[r, c] <= high[first + c]:
                    return False
        first += block.shape[1]
    for r in range(coins.shape[0]):
        if not (0 <= coins[r, 0] < maze_w and 0 <= coins[r, 1] < maze_h):
            return False
    return True


class FrameBytes(Sequence):
    """The frames of a game JSON as their bytes in the document: a frame is decoded (by orjson) when first asked
    for; :meth:`drawn` reads the drawn fields of many at once without making Python objects.

    Args:
        document: the game JSON's bytes.
        spans: ``(n, 2)`` int64, frame ``k`` is ``document[spans[k, 0]:spans[k, 1]]``.
    """

    def __init__(self, document: bytes, spans: np.ndarray):
        self._buffer, self._spans, self._decoded = np.frombuffer(document, np.uint8), spans, {}

    def __len__(self) -> int:
        return len(self._spans)

    def __getitem__(self, k: int) -> Any:
        frame = self._decoded.get(k)
        if frame is None:
            start, end = self._spans[k]
            frame = self._decoded[k] = orjson.loads(memoryview(self._buffer)[start:end])
        return frame

    def drawn(self, frame_ids: Sequence[int], table: FieldTable) -> tuple[np.ndarray, ...] | None:
        """The fields of ``table`` of frames ``frame_ids`` (valid indices): ``(frame, agent, monster_ptr, monsters,
        coin_ptr, coins)``, float64 blocks of one row per frame / agent / monster (columns in the table's order,
        defaults for absent fields), monster ``monster_ptr[i]:monster_ptr[i + 1]`` of frame ``i``, and the eaten
        coins likewise as ``(c, 2)`` int64; None where a frame holds anything else than values of the types the
        fields take as they are (then read the frames through orjson, whose checks name the problem)."""
        ids = np.asarray(frame_ids, np.int64)
        rows, (frame_size, agent_size, monster_size) = len(ids), table.sizes
        frame, agent = np.empty((rows, frame_size)), np.empty((rows, agent_size))
        monster_ptr, coin_ptr = np.empty(rows + 1, np.int64), np.empty(rows + 1, np.int64)
        capacity = 16 * rows
        while True:
            monsters, coins = np.empty((capacity, monster_size)), np.empty((capacity, 2), np.int64)
            status, m, c = _drawn_values(self._buffer, self._spans, ids, table.names, table.name_ptr, table.kinds,
                                         table.defaults, table.sizes, _POWERS_OF_FIVE, frame, agent, monster_ptr,
                                         monsters, coin_ptr, coins)
            if status != _FULL:
                return (frame, agent, monster_ptr, monsters[:m], coin_ptr, coins[:c]) if status == _OK else None
            capacity *= 4


class FieldTable:
    """The fields :meth:`FrameBytes.drawn` reads, as the kernels take them.

    Args:
        frame, agent, monster: ``(key, kind, default)`` per field (kind NUM / INT / FLAG, default None = required)
            of a frame object, its ``"agent"`` object and each object of its ``"monsters"`` list.
    """

    def __init__(self, frame: Sequence[tuple[str, int, Any]], agent: Sequence[tuple[str, int, Any]],
                 monster: Sequence[tuple[str, int, Any]]):
        fields = [*frame, *agent, *monster]
        encoded = [key.encode("ascii") for key, _, _ in fields]
        self.names = np.frombuffer(b"".join(encoded), np.uint8).copy()
        self.name_ptr = np.cumsum([0] + [len(key) for key in encoded]).astype(np.int64)
        self.kinds = np.array([kind for _, kind, _ in fields], np.int64)
        self.defaults = np.array([np.nan if default is None else float(default) for _, _, default in fields])
        self.sizes = np.array([len(frame), len(agent), len(monster)], np.int64)


def split_frames(document: bytes) -> tuple[bytes, FrameBytes] | None:
    """``(rest, frames)``: the game JSON ``document`` with an empty ``"frames"`` list (to decode as usual), and its
    frames; None where the kernels do not handle the document (not the plain subset, no non-empty ``"frames"`` list
    in a top-level object, or not valid JSON), which orjson then reads or rejects with its message."""
    buffer, containers, capacity = np.frombuffer(document, np.uint8), np.empty(MAX_DEPTH + 1, np.uint8), 1024
    while True:
        spans = np.empty((capacity, 2), np.int64)
        status, count = _locate_frames(buffer, spans, containers)
        if status != _FULL:
            break
        capacity *= 4
    if status != _OK or not count:
        return None
    spans = spans[:count]
    start, end = spans[0, 0], spans[-1, 1]  # the list's brackets are the nearest ones outside
    start, end = document.rindex(b"[", 0, start), document.index(b"]", end)
    return document[:start] + b"[]" + document[end + 1:], FrameBytes(document, spans)
