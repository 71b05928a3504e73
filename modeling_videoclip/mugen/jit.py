"""How the MUGEN kernels are compiled (numba), one definition for :mod:`.kernels` and :mod:`.frames_json`.

numba's on-disk cache checks only the file of each cached function: a change here does not recompile the kernels
that use it (delete their ``__pycache__/*.nbi``/``*.nbc`` files after editing this file)."""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: Compiled, cached, without the GIL, without bounds checks (the kernels check their indices themselves).
jit = numba.njit(cache=True, nogil=True, boundscheck=False)
#: The same, inlined in numba's IR at each call: for helpers with tuple results called in hot loops, which as calls
#: cost the scanning loops 30-60% more.
jit_inline = numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")


@intrinsic
def data_pointer(typingctx, array):
    """The pointer to the first element of a C-contiguous ``array``."""
    if not isinstance(array, types.Array) or array.layout != "C":
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return types.CPointer(array.dtype)(array), codegen


def _offset_pointer(context, builder, pointer, index, index_type, pointee):
    """The LLVM ``pointer`` (to bytes) advanced by the numba integer ``index``, as a pointer to ``pointee``."""
    offset = context.cast(builder, index, index_type, types.intp)
    return builder.bitcast(builder.gep(pointer, [offset]), pointee.as_pointer())


@intrinsic
def address(typingctx, array):
    """The address of the first element of a C-contiguous ``array``, as an integer (for alignment)."""
    if not isinstance(array, types.Array) or array.layout != "C":
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, context.get_value_type(types.intp))

    return types.intp(array), codegen


@intrinsic
def load_word(typingctx, array, index):
    """The 8 bytes of the C-contiguous uint8 ``array`` from flat index ``index`` as a little-endian uint64 (the
    caller checks ``index + 8 <= array.size``), for scanning 8 bytes at a time."""
    if not (isinstance(array, types.Array) and array.layout == "C" and array.dtype == types.uint8
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        word = _offset_pointer(context, builder, data, args[1], signature.args[1], ir.IntType(64))
        return builder.load(word, align=1)

    return types.uint64(array, index), codegen


@intrinsic
def trailing_zeros(typingctx, word):
    """The number of zero bits below the lowest set bit of the non-zero uint64 ``word``."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.uint64(word), codegen


#: Bytes :func:`stream_store` writes at once; its target must be aligned to as many.
STREAM_BYTES = 32


@intrinsic
def stream_store(typingctx, dst, dst_index, src, src_index):
    """Copy ``STREAM_BYTES`` bytes from ``src[src_index:]`` to ``dst[dst_index:]`` (flat indices of C-contiguous uint8
    arrays; the target address aligned to ``STREAM_BYTES``) with a non-temporal store: the bytes go to memory without
    the cache line being read first, which halves the memory traffic of writing an output that will not be read
    again soon. Call :func:`store_fence` after the last one."""
    uint8_arrays = all(isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.uint8 for a in (dst, src))
    if not uint8_arrays or not all(isinstance(i, types.Integer) for i in (dst_index, src_index)):
        return None

    def codegen(context, builder, signature, args):
        vector = ir.VectorType(ir.IntType(8), STREAM_BYTES)
        pointers = []
        for array_type, array, index, index_type in zip(signature.args[::2], args[::2], args[1::2],
                                                        signature.args[1::2]):
            data = context.make_array(array_type)(context, builder, array).data
            pointers.append(_offset_pointer(context, builder, data, index, index_type, vector))
        target, source = pointers
        store = builder.store(builder.load(source, align=1), target, align=STREAM_BYTES)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index), codegen


def _block_intrinsic(width: int, masked: bool):
    """An intrinsic ``(dst, dst_index, src, src_index[, mask, mask_index])`` on uint8 pointers
    (:func:`data_pointer`) writing the ``width`` bytes at ``src + src_index`` to ``dst + dst_index`` with one vector
    load and store (any alignment); ``masked``: only the bits set in the bytes at ``mask + mask_index``, as
    ``(dst & ~mask) | (src & mask)``. LLVM vectorises byte loops in blocks of 64 or more bytes, so a sprite row of
    ~60 bytes ran one byte at a time; both forms are idempotent, so a row's last block may overlap the one before
    it. Pointers, not arrays: numba counts references to arrays at each helper call in the row loops."""
    vector = ir.VectorType(ir.IntType(8), width)

    def typer(typingctx, *args):
        pointers, indices = args[::2], args[1::2]
        if not all(p == types.CPointer(types.uint8) for p in pointers):
            return None
        if not all(isinstance(i, types.Integer) for i in indices):
            return None

        def codegen(context, builder, signature, values):
            blocks = []
            for pointer, index_type, index in zip(values[::2], signature.args[1::2], values[1::2]):
                blocks.append(_offset_pointer(context, builder, pointer, index, index_type, vector))
            block = builder.load(blocks[1], align=1)
            if masked:
                mask = builder.load(blocks[2], align=1)
                kept = builder.and_(builder.load(blocks[0], align=1), builder.not_(mask))
                block = builder.or_(kept, builder.and_(block, mask))
            builder.store(block, blocks[0], align=1)
            return context.get_dummy_value()

        return types.void(*args), codegen

    if masked:
        def masked_block(typingctx, dst, dst_index, src, src_index, mask, mask_index):
            return typer(typingctx, dst, dst_index, src, src_index, mask, mask_index)

        return intrinsic(masked_block)

    def block(typingctx, dst, dst_index, src, src_index):
        return typer(typingctx, dst, dst_index, src, src_index)

    return intrinsic(block)


copy8, copy16, copy32 = (_block_intrinsic(width, False) for width in (8, 16, 32))
select8, select16, select32 = (_block_intrinsic(width, True) for width in (8, 16, 32))


@intrinsic
def store_fence(typingctx):
    """A full memory fence: orders the non-temporal stores of :func:`stream_store` before whatever follows."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@jit
def unowned(array):
    """A view of the C-contiguous ``array`` without a reference count. numba counts references to an array (an atomic
    increment and decrement) at each call that takes it or a view of it, and at each view made in a loop; on the
    kernels' per-byte and per-paste loops that costs as much as the work (3x a JSON scan, ~15% of the pastes). The
    caller keeps ``array`` alive while the view is used."""
    return numba.carray(data_pointer(array), array.shape)
