"""minidl._alloc: numpy's memory handler that caches large blocks (NEP 49)."""

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import minidl
from minidl import _alloc

try:
    from numpy._core.multiarray import get_handler_name  # numpy 2
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import get_handler_name

MiB = 1024 * 1024
# Small settings keep the tests light: blocks from 1 MiB are cached, at most 16 MiB.
THRESHOLD = 1 * MiB
LIMIT = 16 * MiB


@pytest.fixture
def cache():
    """The handler current in this thread, with a small threshold and limit and an empty cache."""
    before = _alloc.stats()
    previous = _alloc.set_handler(_alloc.handler())
    _alloc.empty_cache()
    _alloc.configure(threshold=THRESHOLD, limit=LIMIT)
    try:
        yield _alloc
    finally:
        _alloc.configure(
            threshold=before["threshold"], limit=before["limit"], hugepages=before["huge pages"]
        )
        _alloc.empty_cache()
        _alloc.set_handler(previous)


def _address(array):
    return array.__array_interface__["data"][0]


def _counts():
    stats = _alloc.stats()
    return stats["hits"], stats["misses"]


def test_importing_minidl_installs_it_in_the_main_thread():
    # tests/test_runtime.py checks the same in a fresh interpreter, with the opt-out
    assert minidl.runtime.CACHE_LARGE_BLOCKS
    assert get_handler_name() == _alloc.HANDLER_NAME
    assert minidl.runtime.config()["heap"]["numpy's handler"] == _alloc.HANDLER_NAME


def test_large_and_small_arrays_carry_the_handler_and_are_aligned(cache):
    large = np.empty(THRESHOLD, np.uint8)
    small = np.empty(100, np.float64)
    for array in (large, small):
        assert get_handler_name(array) == "minidl_block_cache"
    assert _address(large) % 64 == 0, "large blocks are 64-byte aligned"
    assert _address(small) % 16 == 0, "small blocks keep malloc's 16-byte alignment"
    complex_array = np.arange(7, dtype=np.complex128)
    assert np.array_equal(complex_array * 2, np.arange(0, 14, 2, dtype=np.complex128))


def test_a_freed_block_is_handed_back_for_the_same_size(cache):
    hits, misses = _counts()
    first = np.empty((3, MiB), np.uint8)
    address = _address(first)
    del first
    assert _alloc.stats()["cached blocks"] == 1
    second = np.empty((3, MiB), np.uint8)
    assert _address(second) == address
    assert _counts() == (hits + 1, misses + 1)
    assert _alloc.stats()["cached blocks"] == 0


def test_a_nearly_equal_size_shares_the_size_class(cache):
    first = np.empty(3 * MiB, np.uint8)
    address = _address(first)
    del first
    slightly_smaller = np.empty(3 * MiB - 4096 * 5 - 3, np.uint8)  # within the same eighth
    assert _address(slightly_smaller) == address
    del slightly_smaller
    much_smaller = np.empty(2 * MiB, np.uint8)
    assert _address(much_smaller) != address, "a block 1.5x too big must not be handed out"


def test_calloc_zeroes_a_reused_block(cache):
    dirty = np.empty(2 * MiB + 12345, np.uint8)
    dirty.fill(0xAB)
    address = _address(dirty)
    del dirty
    zeros = np.zeros(2 * MiB + 12345, np.uint8)
    assert _address(zeros) == address, "np.zeros should reuse the cached block"
    assert not zeros.any(), "a reused block must be zeroed for calloc"
    small_dirty = np.empty(1000, np.uint8)
    small_dirty.fill(0xCD)
    del small_dirty
    assert not np.zeros(1000, np.uint8).any()


def test_realloc_through_resize_keeps_the_contents(cache):
    # small -> large: the block changes kind
    array = np.arange(1000, dtype=np.float64)
    array.resize(300_000, refcheck=False)  # 2.4 MB
    assert np.array_equal(array[:1000], np.arange(1000.0))
    assert not array[1000:].any(), "numpy zero-fills what resize adds"
    # large -> slightly smaller stays in place (it still fits its block)
    address = _address(array)
    array.resize(290_000, refcheck=False)
    assert _address(array) == address
    assert np.array_equal(array[:1000], np.arange(1000.0))
    # large -> larger moves to a bigger block, contents copied
    array[-1] = 7.0
    array.resize(1_000_000, refcheck=False)
    assert np.array_equal(array[:1000], np.arange(1000.0))
    assert array[289_999] == 7.0
    # large -> much smaller leaves its block (back to the cache) for a small one
    array.resize(10, refcheck=False)
    assert np.array_equal(array, np.arange(10.0))
    # small -> small
    array.resize(20, refcheck=False)
    assert np.array_equal(array[:10], np.arange(10.0))
    assert get_handler_name(array) == "minidl_block_cache"


def _vm_flags(address):
    """The VmFlags of the mapping that holds ``address``, from /proc/self/smaps."""
    flags, inside = None, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                start, end = (int(part, 16) for part in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
    return flags


@pytest.mark.skipif(
    not os.path.isdir("/sys/kernel/mm/transparent_hugepage"), reason="Linux huge pages"
)
@pytest.mark.parametrize("hugepages", [True, False])
def test_blocks_of_4_mib_are_marked_for_huge_pages_as_numpy_does(cache, hugepages):
    _alloc.configure(hugepages=hugepages, threshold=32 * MiB, limit=64 * MiB)
    # a large (cached) block, fresh from mmap, and a small one from malloc (whose heap
    # may carry the mark from an earlier block, so only its presence is checked)
    for size in (40 * MiB, 8 * MiB) if hugepages else (40 * MiB,):
        block = np.empty(size, np.uint8)
        inside = (_address(block) + 4096 - 1) // 4096 * 4096 + 4096
        flags = _vm_flags(inside)
        assert flags is not None
        assert ("hg" in flags) == hugepages, (size, flags)
        del block
    assert _alloc.stats()["huge pages"] is hugepages


def test_many_sizes_never_overlap(cache):
    rng = np.random.default_rng(0)
    live = {}
    for step in range(300):
        size = int(rng.choice([rng.integers(1, 5000), rng.integers(THRESHOLD // 2, 5 * MiB)]))
        block = np.empty(size, np.uint8)
        block.fill(step % 251)
        live[step] = block
        if len(live) > 12:  # free a random one: blocks of all kinds go back and come again
            del live[int(rng.choice(list(live)))]
        for key, kept in live.items():
            assert kept[0] == kept[-1] == key % 251, f"block {key} was overwritten"
    for key, kept in live.items():
        assert (kept == key % 251).all(), f"block {key} was overwritten"


def test_the_least_recently_freed_block_is_evicted_at_the_limit(cache):
    sizes = [5 * MiB, 6 * MiB, 7 * MiB, 4 * MiB]  # distinct size classes; 22 MiB > 16 MiB
    blocks = [np.empty(size, np.uint8) for size in sizes]
    addresses = [_address(block) for block in blocks]
    evictions = _alloc.stats()["evictions"]
    for index in range(len(blocks)):  # free them in order: the 5 MiB block goes first
        blocks[index] = None
    stats = _alloc.stats()
    assert stats["cached bytes"] <= LIMIT
    assert stats["cached bytes"] == (7 + 4) * MiB  # 5 MiB evicted, then 6 MiB
    assert stats["evictions"] == evictions + 2
    assert _address(np.empty(4 * MiB, np.uint8)) == addresses[3], "the newest is kept"
    hits, misses = _counts()
    np.empty(5 * MiB, np.uint8)
    assert _counts() == (hits, misses + 1), "the oldest was evicted"


def test_a_block_larger_than_the_limit_is_never_cached(cache):
    np.empty(LIMIT + MiB, np.uint8)
    assert _alloc.stats()["cached blocks"] == 0


def test_lowering_the_limit_evicts_and_zero_disables(cache):
    kept = [np.empty(size * MiB, np.uint8) for size in (2, 3, 4)]
    for index in range(3):  # freed in order: the 4 MiB block is the most recent
        kept[index] = None
    assert _alloc.stats()["cached bytes"] == 9 * MiB
    _alloc.configure(limit=5 * MiB)
    assert _alloc.stats()["cached bytes"] == 4 * MiB, "the most recently freed block stays"
    _alloc.configure(limit=0)
    assert _alloc.stats()["cached bytes"] == 0
    block = np.empty(2 * MiB, np.uint8)
    block[:] = 1
    del block  # freed at once, not cached
    assert _alloc.stats()["cached bytes"] == 0


def test_configure_rejects_bad_values(cache):
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError, match="configure: limit must be a non-negative integer"):
            _alloc.configure(limit=bad)
    with pytest.raises(ValueError, match="threshold must be at least 1 byte"):
        _alloc.configure(threshold=0)
    with pytest.raises(TypeError, match="expected a 'mem_handler' PyCapsule"):
        _alloc.set_handler(object())


def test_empty_cache_gives_the_cached_bytes_back(cache):
    blocks = [np.empty(size * MiB, np.uint8) for size in (2, 3)]
    del blocks
    assert minidl.runtime.empty_cache() == 5 * MiB
    stats = _alloc.stats()
    assert stats["cached bytes"] == stats["cached blocks"] == 0
    assert minidl.runtime.empty_cache() == 0


def test_blocks_are_freed_by_their_handler_after_it_was_replaced(cache):
    ours = np.empty(3 * MiB, np.uint8)
    small = np.ones(10)
    previous = _alloc.set_handler(None)  # numpy's default handler from here on
    try:
        assert previous is _alloc.handler()
        theirs = np.empty(3 * MiB, np.uint8)
        assert get_handler_name(theirs) == "default_allocator"
        assert get_handler_name(ours) == "minidl_block_cache"
        ours.resize(4 * MiB, refcheck=False)  # realloc goes to the array's own handler
        assert get_handler_name(ours) == "minidl_block_cache"
        del ours, small, theirs
        # the 3 MiB block came back when resize moved the data, the 4 MiB one now
        assert _alloc.stats()["cached bytes"] == 7 * MiB, "ours came back to its cache"
    finally:
        _alloc.set_handler(previous)


# A handler someone else installed: a copy of numpy's default handler under another
# name (a distinct capsule, as a user's handler would be). The copy lives as long as
# the process, since arrays keep a reference to their handler's capsule.
_USER_HANDLER_STRUCT = []


def _user_handler():
    capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    capsule_pointer.restype = ctypes.c_void_p
    capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    previous = _alloc.set_handler(None)
    default = _alloc.set_handler(previous)
    size = 128 + 5 * ctypes.sizeof(ctypes.c_void_p)  # name[127], version, 5 pointers
    copy = ctypes.create_string_buffer(size)
    ctypes.memmove(copy, capsule_pointer(default, b"mem_handler"), size)
    copy[:13] = b"user_handler\0"
    _USER_HANDLER_STRUCT.append(copy)
    return new_capsule(ctypes.addressof(copy), b"mem_handler", None)


def test_install_leaves_a_handler_someone_else_installed():
    user = _user_handler()
    previous = _alloc.set_handler(user)
    try:
        assert get_handler_name() == "user_handler"
        assert _alloc.install() is False
        assert get_handler_name() == "user_handler"
        array = np.ones(2 * MiB)
        assert get_handler_name(array) == "user_handler"
        del array
    finally:
        _alloc.set_handler(previous)
    assert _alloc.install() is True


def test_new_threads_start_with_numpys_default_handler_until_they_ask(cache):
    # numpy keeps the handler in a context variable; a new thread has a fresh context
    names = []

    def report():
        names.append(get_handler_name())
        names.append(minidl.runtime.use_block_cache())
        names.append(get_handler_name())

    thread = threading.Thread(target=report)
    thread.start()
    thread.join()
    assert names == ["default_allocator", True, "minidl_block_cache"]


def test_threads_allocate_and_free_concurrently(cache):
    errors = []
    handoff = queue.Queue()

    def work(seed):
        try:
            assert _alloc.install()
            rng = np.random.default_rng(seed)
            for step in range(150):
                size = int(rng.integers(THRESHOLD, 3 * MiB))
                block = np.zeros(size, np.uint8) if step % 3 else np.empty(size, np.uint8)
                value = (seed * 31 + step) % 251
                if step % 3:
                    assert not block[::4096].any(), "calloc gave a dirty block"
                block.fill(value)
                handoff.put((block, value))  # freed by whichever thread takes it
                other, other_value = handoff.get()
                assert (other[::997] == other_value).all(), "a block was shared"
                del other, block
        except Exception as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    stats = _alloc.stats()
    assert stats["cached bytes"] <= LIMIT
    assert stats["hits"] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_threads_allocate_can_allocate(cache):
    # pthread_atfork holds the cache's mutex across fork and releases it in parent and
    # child; a child left with it locked would wait forever on its first large block.
    # (numpy calls the handler with the GIL held, so today another thread cannot be
    # inside the cache at the fork; the handlers cover callers without the GIL too.)
    stop = threading.Event()

    def churn():
        _alloc.install()
        while not stop.is_set():
            block = np.empty(2 * MiB, np.uint8)
            block[::4096] = 1
            del block

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for thread in threads:
        thread.start()
    children = []
    try:
        for _ in range(10):
            time.sleep(0.005)
            with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the child: allocate from the (copied) cache, then leave at once
                status = 1
                try:
                    blocks = [np.zeros(MiB, np.uint8) for _ in range(4)]
                    del blocks
                    _alloc.empty_cache()
                    status = 0 if _alloc.stats()["cached bytes"] == 0 else 2
                finally:
                    os._exit(status)
            children.append(pid)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    hung = 0
    deadline = time.monotonic() + 20
    for pid in children:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                hung += 1
                break
            time.sleep(0.01)
    assert hung == 0, f"{hung} of {len(children)} forked children hung in the allocator"


def _in_subprocess(code, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDL_")}
    env.update(settings)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


_REPORT = """
import numpy as np
import minidl
from minidl import _alloc
try:
    from numpy._core.multiarray import get_handler_name
except ImportError:
    from numpy.core.multiarray import get_handler_name
print(minidl.runtime.CACHE_LARGE_BLOCKS, get_handler_name(np.empty(64 << 20, np.uint8)),
      _alloc.stats()["limit"])
"""


def test_the_opt_out_leaves_numpys_handler():
    default_limit = str(minidl.runtime.BLOCK_CACHE_LIMIT_MB * MiB)
    assert _in_subprocess(_REPORT) == ["True", "minidl_block_cache", default_limit]
    assert _in_subprocess(_REPORT, MINIDL_CACHE_LARGE_BLOCKS="0") == [
        "False",
        "default_allocator",
        default_limit,
    ]
    assert _in_subprocess(_REPORT, MINIDL_BLOCK_CACHE_MB="64")[2] == str(64 * MiB)
