"""How the MUGEN kernels are compiled (numba), one definition for :mod:`.kernels` and :mod:`.frames_json`.

numba's on-disk cache checks only the file of each cached function: a change here does not recompile the kernels
that use it (delete their ``__pycache__/*.nbi``/``*.nbc`` files after editing this file)."""

from __future__ import annotations

import numba
from numba import types
from numba.extending import intrinsic

#: Compiled, cached, without the GIL, without bounds checks (the kernels check their indices themselves).
jit = numba.njit(cache=True, nogil=True, boundscheck=False)
#: The same, inlined in numba's IR at each call: for helpers with tuple results called in hot loops, which as calls
#: cost the scanning loops 30-60% more.
jit_inline = numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")


@intrinsic
def _data_pointer(typingctx, array):
    """The pointer to the first element of a C-contiguous ``array``."""
    if not isinstance(array, types.Array) or array.layout != "C":
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return types.CPointer(array.dtype)(array), codegen


@jit
def unowned(array):
    """A view of the C-contiguous ``array`` without a reference count. numba counts references to an array (an atomic
    increment and decrement) at each call that takes it or a view of it, and at each view made in a loop; on the
    kernels' per-byte and per-paste loops that costs as much as the work (3x a JSON scan, ~15% of the pastes). The
    caller keeps ``array`` alive while the view is used."""
    return numba.carray(_data_pointer(array), array.shape)
