"""The two on-disk formats of a frame cache entry, and the checked, lazy view of one entry.

* ``npy`` (``<key>.npy``): the uint8 ``(N, H, W, 3)`` array as NumPy's ``.npy``, memory-mapped
  on read, followed by a trailer: one CRC-32 per frame, then ``N, H, W`` and a magic string.
  ``np.load`` ignores trailing bytes, so an entry is still a plain ``.npy`` for any tool, and
  ``.npy`` files written before the trailer existed (same key) still read.
* ``jpeg`` (``<key>.jpgs``): a header (magic, ``N, H, W``, JPEG quality), an index of
  ``N + 1`` byte offsets and ``N`` CRC-32s of the frames' JPEG bytes, then the JPEG frames
  back to back. A chunk decodes only its ``T`` frames.

Either way a read returns :class:`CachedFrames`: ``len``, ``shape`` and indexing like the
array (``frames[[3, 4]]`` -> ``(2, H, W, 3)``), reading and checking only the indexed frames:
a frame whose CRC differs from the one stored at write time raises :class:`CacheEntryError`,
as does a file whose size, header and trailer disagree. A frame source then decodes the video
again (see :class:`~rrn.data.source.FrameSource`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from rrn.data.jpeg import decode_jpeg, encode_jpeg
from rrn.errors import UserError

SUFFIX = {"npy": ".npy", "jpeg": ".jpgs"}


def entry_format(file: Path) -> str:
    """The format of an entry file (``"npy"`` or ``"jpeg"``), from its suffix."""
    return next(fmt for fmt, suffix in SUFFIX.items() if file.name.endswith(suffix))


_NPY_TAIL = struct.Struct("<8sIII")  # magic, N, H, W (after N uint32 CRCs)
_NPY_MAGIC = b"RRNCRC01"
_JPG_HEAD = struct.Struct("<8sIIII")  # magic, N, H, W, quality
_JPG_MAGIC = b"RRNJPG01"


class CacheEntryError(UserError, ValueError):
    """A cache entry does not hold what its key promises (wrong size, shape or checksum).

    Reading data, rrn decodes the video again and rewrites the entry (a warning); where it
    reaches a person it is theirs to fix (remove the entry, or let ``rrn cache`` rewrite it), so
    a user error, and a ``ValueError`` as before for callers.
    """

    def __init__(self, file, reason: str):
        self.file = Path(file)
        self.reason = reason
        super().__init__(f"frame cache entry {self.file}: {reason}")


def frame_crcs(frames: np.ndarray) -> np.ndarray:
    """CRC-32 of each frame's bytes: uint32 ``(N,)``."""
    return np.array([zlib.crc32(np.ascontiguousarray(f)) for f in frames], dtype=np.uint32)


# ------------------------------------------------------------------------------------ writing
def write_npy(fh, frames: np.ndarray) -> None:
    """Write ``frames`` (uint8 ``(N, H, W, 3)``) and the trailer to an open binary file."""
    np.save(fh, frames, allow_pickle=False)
    n, h, w, _ = frames.shape
    fh.write(frame_crcs(frames).astype("<u4").tobytes())
    fh.write(_NPY_TAIL.pack(_NPY_MAGIC, n, h, w))


def write_jpeg(fh, frames: Iterable[np.ndarray], quality: int) -> None:
    """Write ``frames`` as one ``.jpgs`` entry (header, index, JPEG frames) to an open file.

    ``frames``: a uint8 ``(N, H, W, 3)`` array, or any iterable of ``(H, W, 3)`` frames of one
    size, encoded one at a time as they come: only their JPEG bytes are held until the index
    is written (a long video's decoded frames never sit in memory together).
    """
    blobs, shape = [], None
    for f in frames:
        shape = shape or f.shape
        if f.shape != shape:
            raise ValueError(f"frame {len(blobs)} is {f.shape}, the first was {shape}")
        blobs.append(encode_jpeg(f, quality))
    if shape is None:
        raise ValueError("no frame to write")
    (n, (h, w, _)) = len(blobs), shape
    offsets = np.cumsum([0] + [len(b) for b in blobs], dtype=np.uint64)
    crcs = np.array([zlib.crc32(b) for b in blobs], dtype=np.uint32)
    fh.write(_JPG_HEAD.pack(_JPG_MAGIC, n, h, w, quality))
    fh.write(offsets.astype("<u8").tobytes())
    fh.write(crcs.astype("<u4").tobytes())
    for b in blobs:
        fh.write(b)


# ------------------------------------------------------------------------------------ reading
class CachedFrames:
    """The frames of one cache entry, read and checked only where indexed.

    ``fallback`` (set by the frame source) is what to serve instead when a read fails its
    check: the frames decoded again (and rewritten to the cache). Without it the
    :class:`CacheEntryError` propagates.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, file: Path, shape: tuple[int, int, int, int]):
        self.file = file
        self.shape = shape
        self.fallback: Callable[[CacheEntryError], np.ndarray] | None = None
        self._replaced: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, index) -> np.ndarray:
        idx = np.arange(self.shape[0])[index]  # int, slice, list or array -> frame numbers
        single = np.ndim(idx) == 0
        idx = np.atleast_1d(idx)
        if self._replaced is None:
            try:
                out = self._read(idx)  # (n, H, W, 3)
            except CacheEntryError as err:
                if self.fallback is None:
                    raise
                self._replaced = self.fallback(err)
        if self._replaced is not None:
            out = np.array(self._replaced[idx])
        return out[0] if single else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def verify(self) -> None:
        """Read and check every frame (``rrn cache`` counts an entry as done only after this)."""
        self._read(np.arange(self.shape[0]))

    def _read(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # each format reads its own way


class NpyFrames(CachedFrames):
    """An ``.npy`` entry: a memory map, the stored CRCs (None for an entry without trailer)."""

    def __init__(self, file: Path, array: np.ndarray, crcs: np.ndarray | None):
        super().__init__(file, tuple(array.shape))
        self._array = array
        self._crcs = crcs

    @property
    def legacy(self) -> bool:
        """Written before checksums existed: checked against the video's container instead."""
        return self._crcs is None

    def _read(self, idx: np.ndarray) -> np.ndarray:
        out = np.array(self._array[idx])  # (n, H, W, 3): only these frames are read from disk
        if self._crcs is not None:
            bad = [int(i) for i, f in zip(idx, out) if zlib.crc32(f) != self._crcs[i]]
            if bad:
                raise CacheEntryError(
                    self.file, f"frame(s) {bad} differ from their checksum (overwritten or damaged)"
                )
        elif not out.any():
            # no checksum (written before they existed): all-zero frames are what a zeroed
            # file looks like; a truly black video is decoded once more and then checksummed
            raise CacheEntryError(self.file, f"frame(s) {idx.tolist()} are all zero")
        return out


class JpegFrames(CachedFrames):
    """A ``.jpgs`` entry: the file memory-mapped, its index, frames decoded on demand."""

    def __init__(
        self,
        file: Path,
        data: np.ndarray,
        shape,
        *,
        start: int,
        offsets: np.ndarray,
        crcs: np.ndarray,
        quality: int,
    ):
        super().__init__(file, shape)
        self.quality = quality
        self._data, self._start, self._offsets, self._crcs = data, start, offsets, crcs

    def _blob(self, i: int) -> bytes:
        """The checked JPEG bytes of frame ``i`` (only they are read from disk)."""
        lo, hi = self._start + int(self._offsets[i]), self._start + int(self._offsets[i + 1])
        blob = self._data[lo:hi].tobytes()
        if zlib.crc32(blob) != self._crcs[i]:
            raise CacheEntryError(
                self.file, f"frame {i} differs from its checksum (overwritten or damaged)"
            )
        return blob

    def verify(self) -> None:
        """Check every frame's checksum (without decoding: the JPEG bytes are what was written)."""
        for i in range(self.shape[0]):
            self._blob(i)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.shape[1:]), np.uint8)  # (n, H, W, 3)
        for j, i in enumerate(idx):
            try:
                frame = decode_jpeg(self._blob(int(i)))
            except OSError as err:
                raise CacheEntryError(
                    self.file, f"frame {int(i)} is not a readable JPEG ({err})"
                ) from None
            if frame.shape != out.shape[1:]:
                raise CacheEntryError(
                    self.file, f"frame {int(i)} is {frame.shape}, the index says {self.shape[1:]}"
                )
            out[j] = frame
        return out


def open_npy(file: Path) -> NpyFrames:
    """Open an ``.npy`` entry; its size, header and trailer must agree.

    Raises:
        FileNotFoundError: no such entry.
        CacheEntryError: not an ``(N, H, W, 3)`` uint8 array, or a trailer that disagrees.
    """
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as err:  # EOFError: an empty file
        raise CacheEntryError(file, f"not a readable .npy ({err})") from None
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] < 1:
        raise CacheEntryError(
            file, f"holds {array.dtype} {array.shape}, not uint8 (N, H, W, 3) frames"
        )
    size = file.stat().st_size
    end = array.offset + array.nbytes
    if size == end:
        return NpyFrames(file, array, None)  # written before checksums: checked by the caller
    n, h, w, _ = array.shape
    with open(file, "rb") as fh:
        fh.seek(end)
        tail = fh.read()
    if len(tail) != 4 * n + _NPY_TAIL.size or _NPY_TAIL.unpack(tail[-_NPY_TAIL.size :]) != (
        _NPY_MAGIC,
        n,
        h,
        w,
    ):
        raise CacheEntryError(
            file, f"its header says {array.shape} but its size and trailer do not match"
        )
    return NpyFrames(file, array, np.frombuffer(tail, dtype="<u4", count=n))


def open_jpeg(file: Path) -> JpegFrames:
    """Open a ``.jpgs`` entry; header, index and file size must agree.

    Raises:
        FileNotFoundError: no such entry.
        CacheEntryError: a damaged or foreign file.
    """
    data = (
        np.memmap(file, dtype=np.uint8, mode="r") if file.stat().st_size else np.zeros(0, np.uint8)
    )
    if data.size < _JPG_HEAD.size:
        raise CacheEntryError(file, f"{data.size} bytes: too short for a header")
    magic, n, h, w, quality = _JPG_HEAD.unpack(data[: _JPG_HEAD.size].tobytes())
    index_end = _JPG_HEAD.size + 8 * (n + 1) + 4 * n
    if magic != _JPG_MAGIC or n < 1 or min(h, w) < 1 or data.size < index_end:
        raise CacheEntryError(file, "not a frame cache JPEG entry (bad header)")
    offsets = np.frombuffer(
        data[_JPG_HEAD.size : _JPG_HEAD.size + 8 * (n + 1)].tobytes(), dtype="<u8"
    )
    crcs = np.frombuffer(data[_JPG_HEAD.size + 8 * (n + 1) : index_end].tobytes(), dtype="<u4")
    if (
        offsets[0] != 0
        or np.any(np.diff(offsets.astype(np.int64)) <= 0)
        or index_end + int(offsets[-1]) != data.size
    ):
        raise CacheEntryError(
            file, f"its index says {index_end + int(offsets[-1])} bytes, the file has {data.size}"
        )
    return JpegFrames(
        file, data, (n, h, w, 3), start=index_end, offsets=offsets, crcs=crcs, quality=quality
    )


OPENERS = {"npy": open_npy, "jpeg": open_jpeg}
