# cython: language_level=3
"""A caching memory handler for numpy's large blocks (NEP 49).

Blocks of at least ``threshold`` bytes come from a process-wide cache: when numpy
frees one, the handler keeps it (up to ``limit`` cached bytes, the least recently
freed block evicted first) and hands it back for a later request of the same size
class. A fresh block of that size is mmapped by the C library and page-faults on
first touch, a cost that scales with the size and, for a training step's outputs
and temporaries, recurs every step; a reused block is already mapped. Smaller
blocks go straight to ``malloc``, where the C library reuses them.

Size classes: a large request is rounded up to a multiple of one eighth of the
largest power of two below it (and of 4 KiB), so at most 12.5% more than asked, and
arrays of the same shape (or of nearly the same size) share blocks.

Every block carries a small header before its data recording its kind and size,
so ``free`` and ``realloc`` never depend on the size numpy passes, and blocks
allocated here are freed correctly whenever numpy frees them: after the cache was
emptied or disabled (``limit`` 0) or after another handler replaced this one (an
array keeps the handler that allocated it). Large blocks are 64-byte aligned, small
ones as ``malloc`` aligns (16 bytes on 64-bit systems), which covers every numpy
dtype. ``calloc`` zeroes a reused block. One mutex guards the cache; numpy may
allocate and free from several threads, with or without the GIL. On POSIX systems
``pthread_atfork`` holds the mutex across ``fork`` so that a forked child (which has
a copy of the cache) never inherits it locked.

New blocks of 4 MiB and more are marked for transparent huge pages (Linux
``madvise``), as numpy's default handler marks its own; ``configure(hugepages=...)``
follows numpy's switch.

numpy keeps the current handler in a context variable: :func:`install` sets it for
the calling context, which for the main thread at import is the one every later
call in that thread sees. A new thread starts from the default context and
allocates with numpy's default handler (its arrays are then freed by that handler,
whichever thread frees them) until it calls ``minidl.runtime.use_block_cache()``.

``minidl.runtime`` installs the handler at import (opt-out
``MINIDL_CACHE_LARGE_BLOCKS=0``) and reports :func:`stats`.
"""

from cpython.pycapsule cimport PyCapsule_IsValid

cdef extern from *:
    """
    #include <stdint.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <numpy/arrayobject.h>

    #if defined(_WIN32)
    #include <windows.h>
    static SRWLOCK mdl_mutex = SRWLOCK_INIT;
    #define MDL_LOCK() AcquireSRWLockExclusive(&mdl_mutex)
    #define MDL_UNLOCK() ReleaseSRWLockExclusive(&mdl_mutex)
    static int mdl_register_fork_handlers(void) { return 0; }
    #else
    #include <pthread.h>
    static pthread_mutex_t mdl_mutex = PTHREAD_MUTEX_INITIALIZER;
    #define MDL_LOCK() pthread_mutex_lock(&mdl_mutex)
    #define MDL_UNLOCK() pthread_mutex_unlock(&mdl_mutex)
    /* fork copies only the calling thread: hold the mutex across it, so that no
       other thread is inside the cache at that moment, and release it in both
       processes afterwards (the forking thread owns it in the child too). */
    static void mdl_before_fork(void) { MDL_LOCK(); }
    static void mdl_after_fork(void) { MDL_UNLOCK(); }
    static int mdl_register_fork_handlers(void) {
        return pthread_atfork(mdl_before_fork, mdl_after_fork, mdl_after_fork);
    }
    #endif

    #if defined(__linux__)
    #include <sys/mman.h>
    #endif

    #define MDL_ALIGN 64
    #define MDL_PAGE 4096
    #define MDL_HUGEPAGE_MIN ((size_t)1 << 22)
    /* Tags written right before the data: which header a block carries. */
    #define MDL_SMALL_TAG ((uint64_t)0x6d646c536d616c6cULL)
    #define MDL_LARGE_TAG ((uint64_t)0x6d646c4c61726765ULL)

    typedef struct {
        size_t size;
        uint64_t tag;
    } mdl_small;  /* 16 bytes: the data keeps malloc's alignment */

    typedef struct mdl_large {
        void *base;  /* what malloc or calloc returned */
        struct mdl_large *prev, *next;  /* the cache's list, while cached */
        size_t capacity;  /* usable bytes (the size class) */
        size_t size;  /* bytes asked for */
        uint64_t tag;
    } mdl_large;

    typedef struct {
        size_t threshold;  /* requests of at least this many bytes are large */
        size_t limit;  /* most bytes kept cached; 0: none */
        size_t cached_bytes, cached_blocks;
        unsigned long long hits, misses, evictions;
    } mdl_stats;

    /* The cache: a list of freed large blocks, the most recently freed first. */
    static mdl_large *mdl_head = NULL, *mdl_tail = NULL;
    static mdl_stats mdl_state = {(size_t)32 << 20, (size_t)1 << 30, 0, 0, 0, 0, 0};

    /* As numpy's default handler does (numpy._core.multiarray._set_madvise_hugepage):
       ask Linux for transparent huge pages on blocks of 4 MiB and more, which then
       fault in 2 MiB at a time and take fewer TLB entries. Set from numpy's switch. */
    static int mdl_hugepages = 1;

    static void mdl_advise_hugepages(void *data, size_t size) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (mdl_hugepages && size >= MDL_HUGEPAGE_MIN) {
            uintptr_t start = ((uintptr_t)data + MDL_PAGE - 1) & ~(uintptr_t)(MDL_PAGE - 1);
            uintptr_t end = ((uintptr_t)data + size) & ~(uintptr_t)(MDL_PAGE - 1);
            if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
        }
    #else
        (void)data;
        (void)size;
    #endif
    }

    static void mdl_corrupt(void *ptr) {
        fprintf(stderr, "minidl._alloc: %p was not allocated by minidl's memory handler "
                        "(its header is overwritten)\\n", ptr);
        abort();
    }

    static void mdl_unlink(mdl_large *block) {
        if (block->prev) block->prev->next = block->next; else mdl_head = block->next;
        if (block->next) block->next->prev = block->prev; else mdl_tail = block->prev;
        block->prev = block->next = NULL;
        mdl_state.cached_bytes -= block->capacity;
        mdl_state.cached_blocks -= 1;
    }

    static void mdl_release_list(mdl_large *block) {
        while (block) {
            mdl_large *next = block->next;
            free(block->base);
            block = next;
        }
    }

    /* Drop cached blocks, least recently freed first, until at most `keep` bytes stay.
       Called with the mutex held; returns the dropped blocks, chained by `next`, for
       the caller to free after releasing the mutex (munmap takes a while). */
    static mdl_large *mdl_evict_to(size_t keep) {
        mdl_large *dropped = NULL;
        while (mdl_tail && mdl_state.cached_bytes > keep) {
            mdl_large *block = mdl_tail;
            mdl_unlink(block);
            block->next = dropped;
            dropped = block;
            if (keep > 0) mdl_state.evictions += 1;  /* emptying is not evicting */
        }
        return dropped;
    }

    /* The size class of a large request; 0 when it would overflow. */
    static size_t mdl_size_class(size_t size) {
        size_t step = MDL_PAGE;
        while (step <= SIZE_MAX / 16 && step * 16 <= size) step *= 2;
        if (size > SIZE_MAX - step - sizeof(mdl_large) - MDL_ALIGN) return 0;
        return (size + step - 1) / step * step;
    }

    static void *mdl_large_new(size_t size, int zero) {
        size_t capacity = mdl_size_class(size);
        mdl_large *block;
        if (capacity == 0) return NULL;
        MDL_LOCK();
        for (block = mdl_head; block && block->capacity != capacity; block = block->next) {}
        if (block) {
            mdl_unlink(block);
            mdl_state.hits += 1;
        } else {
            mdl_state.misses += 1;
        }
        MDL_UNLOCK();
        if (!block) {
            size_t total = capacity + sizeof(mdl_large) + MDL_ALIGN - 1;
            /* calloc of a fresh mapping skips the memset: the kernel zeroes the pages */
            char *base = zero ? calloc(1, total) : malloc(total);
            if (!base) {
                /* cached blocks may be what is missing: give them back and retry */
                MDL_LOCK();
                mdl_large *dropped = mdl_evict_to(0);
                MDL_UNLOCK();
                mdl_release_list(dropped);
                base = zero ? calloc(1, total) : malloc(total);
                if (!base) return NULL;
            }
            uintptr_t data = ((uintptr_t)base + sizeof(mdl_large) + MDL_ALIGN - 1)
                             & ~(uintptr_t)(MDL_ALIGN - 1);
            block = (mdl_large *)(data - sizeof(mdl_large));
            block->base = base;
            block->prev = block->next = NULL;
            block->capacity = capacity;
            block->tag = MDL_LARGE_TAG;
            mdl_advise_hugepages((void *)(block + 1), capacity);
        } else if (zero) {
            memset((char *)(block + 1), 0, size);
        }
        block->size = size;
        return (void *)(block + 1);
    }

    static void mdl_large_free(mdl_large *block) {
        mdl_large *dropped = NULL;
        MDL_LOCK();
        if (block->capacity <= mdl_state.limit) {
            block->prev = NULL;
            block->next = mdl_head;
            if (mdl_head) mdl_head->prev = block; else mdl_tail = block;
            mdl_head = block;
            mdl_state.cached_bytes += block->capacity;
            mdl_state.cached_blocks += 1;
            dropped = mdl_evict_to(mdl_state.limit);
            block = NULL;
        }
        MDL_UNLOCK();
        if (block) free(block->base);
        mdl_release_list(dropped);
    }

    static void *mdl_small_new(size_t size, int zero) {
        mdl_small *header;
        if (size > SIZE_MAX - sizeof(mdl_small)) return NULL;
        header = zero ? calloc(1, sizeof(mdl_small) + size) : malloc(sizeof(mdl_small) + size);
        if (!header) return NULL;
        header->size = size;
        header->tag = MDL_SMALL_TAG;
        mdl_advise_hugepages((void *)(header + 1), size);
        return (void *)(header + 1);
    }

    /* The threshold is read without the mutex: it changes only through configure(),
       and a request that sees the old value is still served correctly (each block
       records its own kind). */
    static void *mdl_malloc(void *ctx, size_t size) {
        (void)ctx;
        return size >= mdl_state.threshold ? mdl_large_new(size, 0) : mdl_small_new(size, 0);
    }

    static void *mdl_calloc(void *ctx, size_t nelem, size_t elsize) {
        size_t size;
        (void)ctx;
        if (elsize != 0 && nelem > SIZE_MAX / elsize) return NULL;
        size = nelem * elsize;
        return size >= mdl_state.threshold ? mdl_large_new(size, 1) : mdl_small_new(size, 1);
    }

    static void mdl_free(void *ctx, void *ptr, size_t size) {
        uint64_t tag;
        (void)ctx;
        (void)size;  /* the header knows; numpy's figure is not needed */
        if (!ptr) return;
        tag = ((uint64_t *)ptr)[-1];
        if (tag == MDL_SMALL_TAG) free((mdl_small *)ptr - 1);
        else if (tag == MDL_LARGE_TAG) mdl_large_free((mdl_large *)ptr - 1);
        else mdl_corrupt(ptr);
    }

    static void *mdl_realloc(void *ctx, void *ptr, size_t new_size) {
        uint64_t tag;
        size_t old_size;
        void *fresh;
        if (!ptr) return mdl_malloc(ctx, new_size);
        tag = ((uint64_t *)ptr)[-1];
        if (tag == MDL_SMALL_TAG) {
            mdl_small *header = (mdl_small *)ptr - 1;
            if (new_size < mdl_state.threshold) {
                if (new_size > SIZE_MAX - sizeof(mdl_small)) return NULL;
                header = realloc(header, sizeof(mdl_small) + new_size);
                if (!header) return NULL;
                header->size = new_size;
                return (void *)(header + 1);
            }
            old_size = header->size;
        } else if (tag == MDL_LARGE_TAG) {
            mdl_large *block = (mdl_large *)ptr - 1;
            /* stay in place while the block fits and is not more than twice too big */
            if (new_size <= block->capacity && new_size >= block->capacity / 2
                    && new_size >= mdl_state.threshold) {
                block->size = new_size;
                return ptr;
            }
            old_size = block->size;
        } else {
            mdl_corrupt(ptr);
            return NULL;
        }
        fresh = mdl_malloc(ctx, new_size);
        if (!fresh) return NULL;  /* realloc's contract: the old block stays valid */
        memcpy(fresh, ptr, old_size < new_size ? old_size : new_size);
        mdl_free(ctx, ptr, old_size);
        return fresh;
    }

    static PyDataMem_Handler mdl_handler = {
        "minidl_block_cache",
        1,
        {NULL, mdl_malloc, mdl_calloc, mdl_realloc, mdl_free}
    };

    static int mdl_init(void) {
        if (_import_array() < 0) return -1;
        if (mdl_register_fork_handlers() != 0) {
            PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
            return -1;
        }
        return 0;
    }

    static PyObject *mdl_new_capsule(void) {
        return PyCapsule_New((void *)&mdl_handler, "mem_handler", NULL);
    }

    static int mdl_is_default(PyObject *handler) {
        return handler == PyDataMem_DefaultHandler;
    }

    static PyObject *mdl_default_handler(void) {
        Py_INCREF(PyDataMem_DefaultHandler);
        return PyDataMem_DefaultHandler;
    }

    static size_t mdl_empty(void) {
        size_t freed;
        mdl_large *dropped;
        MDL_LOCK();
        freed = mdl_state.cached_bytes;
        dropped = mdl_evict_to(0);
        MDL_UNLOCK();
        mdl_release_list(dropped);
        return freed;
    }

    static void mdl_configure(size_t threshold, size_t limit, int hugepages) {
        mdl_large *dropped;
        MDL_LOCK();
        mdl_hugepages = hugepages;
        mdl_state.threshold = threshold;
        mdl_state.limit = limit;
        dropped = mdl_evict_to(limit);
        MDL_UNLOCK();
        mdl_release_list(dropped);
    }

    static mdl_stats mdl_get_stats(void) {
        mdl_stats copy;
        MDL_LOCK();
        copy = mdl_state;
        MDL_UNLOCK();
        return copy;
    }
    """
    ctypedef struct mdl_stats:
        size_t threshold
        size_t limit
        size_t cached_bytes
        size_t cached_blocks
        unsigned long long hits
        unsigned long long misses
        unsigned long long evictions

    int mdl_init() except -1
    object mdl_new_capsule()
    bint mdl_is_default(object handler)
    object mdl_default_handler()
    size_t mdl_empty() nogil
    void mdl_configure(size_t threshold, size_t limit, int hugepages) nogil
    int mdl_hugepages
    mdl_stats mdl_get_stats() nogil
    object PyDataMem_GetHandler()
    object PyDataMem_SetHandler(object handler)

mdl_init()

#: The name numpy reports for arrays this handler allocated
#: (``numpy._core.multiarray.get_handler_name(array)``).
HANDLER_NAME = "minidl_block_cache"

# One capsule for the process: numpy compares handlers by identity.
_HANDLER = mdl_new_capsule()


def handler():
    """This module's handler: a ``PyCapsule`` named ``"mem_handler"``, as numpy expects."""
    return _HANDLER


def set_handler(capsule):
    """Make ``capsule`` numpy's handler in the calling context; returns the previous one.

    ``None`` restores numpy's default handler. Arrays keep the handler that allocated
    them, so blocks allocated before are still freed by their own handler.
    """
    if capsule is None:
        capsule = mdl_default_handler()  # numpy would store None itself as the handler
    elif not PyCapsule_IsValid(capsule, "mem_handler"):
        raise TypeError(f"set_handler: expected a 'mem_handler' PyCapsule, got {capsule!r}")
    return PyDataMem_SetHandler(capsule)


def install():
    """Make the block cache numpy's handler in the calling context, unless someone chose another.

    Returns whether it is the handler now: True when numpy's default handler (or
    this one) was current, False when another handler was installed, which is left
    in place.
    """
    current = PyDataMem_GetHandler()
    if current is _HANDLER:
        return True
    if not mdl_is_default(current):
        return False
    PyDataMem_SetHandler(_HANDLER)
    return True


def configure(threshold=None, limit=None, hugepages=None):
    """Set the size from which blocks are cached, the most bytes kept cached, huge pages.

    ``limit=0`` disables caching (blocks are freed at once); lowering the limit
    evicts the least recently freed blocks until the cache fits. ``hugepages``:
    whether new blocks of 4 MiB and more are marked for transparent huge pages
    (Linux ``madvise``), as numpy's ``_set_madvise_hugepage`` does for its handler.
    """
    state = mdl_get_stats()
    new_threshold = state.threshold if threshold is None else _byte_count(threshold, "threshold")
    new_limit = state.limit if limit is None else _byte_count(limit, "limit")
    if new_threshold < 1:
        raise ValueError("configure: threshold must be at least 1 byte")
    new_hugepages = mdl_hugepages if hugepages is None else bool(hugepages)
    mdl_configure(new_threshold, new_limit, new_hugepages)


def _byte_count(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"configure: {name} must be a non-negative integer, got {value!r}")
    return value


def empty_cache():
    """Free every cached block; returns the number of bytes given back."""
    return mdl_empty()


def stats():
    """The cache's settings and counters, as a dict.

    ``hits``/``misses`` count large requests served from the cache or not,
    ``evictions`` blocks dropped to stay within ``limit``.
    """
    state = mdl_get_stats()
    return {
        "threshold": state.threshold,
        "limit": state.limit,
        "cached bytes": state.cached_bytes,
        "cached blocks": state.cached_blocks,
        "hits": state.hits,
        "misses": state.misses,
        "evictions": state.evictions,
        "huge pages": bool(mdl_hugepages),
    }
