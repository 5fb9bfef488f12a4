/* agnoshm._native._ring: the per-message steps of transport/ring.py's protocol in C.
 *
 * One concept: the lock-free message path, word for word as ring.py describes it
 * and publish.py / receive.py implement it in Python (the reference).  Nothing
 * here is stored anywhere the Python path cannot read: it writes the same words
 * of the same registry layout.  Private bookkeeping (free entry lists, loans,
 * mapping pools) stays in Python objects: a bound Writer's send works on its
 * port's own lists under the port's own lock; a received message's Lease, and
 * the view over it, are built and released here, as receive.py's are there.
 *
 *   Region  the registry's mapping (closed before it is unmapped: later calls raise)
 *   Writer  one publisher's channel: publish (steps a-f), finish (e-f); bound to its
 *           port, send (the port's whole publish())
 *   Reader  one subscription's receipts: has_data, take (steps 1-5, handing out Leases,
 *           or the views over them)
 *   Lease   a received message's hold: released exactly once, when it dies (or release())
 *   ReceivedArray the getter of a received sequence of primitives over a Lease
 *   PoolSpan a message's bytes as a buffer holding its owner (arrays over loans, nested fields)
 *   Mapping another process's pool as this process maps it, counting the Leases into it
 *   Futex   one process's doorbell word: wait (FUTEX_WAIT without the GIL), ring
 *   BlockCache (blocks.c) the pool allocator's kept blocks, memory/spares.py's twin
 *   Loan    (loan.c) a message being written, loan.py's Loan's twin; Writer.loan makes them
 *   full_fence()
 *
 * Memory ordering: C11 atomics.  Stores that publish (entry seq, log, head) are
 * release stores and the loads that find them acquire loads, which is what
 * ring.py's store_fence/load_fence stand for; Dekker's steps (d) and (4) are
 * atomic_thread_fence(memory_order_seq_cst).  Correct on aarch64 as on x86-64.
 *
 * Shared words are untrusted: every index computed from one (an entry index
 * from a log word, a hold count's place) is bounds-checked before use, every
 * offset handed in from Python is checked against the mapping's size, and
 * arithmetic on sequence numbers never wraps where Python's ints would not.
 * Where the Python path skips a hostile word, this code skips it too; where
 * it raises, this raises the same exception with the same message.
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030A0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* blocks.c: adds the BlockCache type (-1 with an exception set on failure) */
int agnoshm_add_block_cache(PyObject *module);

#include "loan.h"

#define LOG_SHIFT 16
#define ENTRY_MASK ((1u << LOG_SHIFT) - 1)
#define ENTRY_SIZE 32 /* seq, address, size, timestamp_ns */
#define HOLD_MAX 255  /* a count another process scribbled on stays where it is */
#define WAKE_OP_ADD_ONE ((FUTEX_OP_ADD << 28) | (FUTEX_OP_CMP_EQ << 24) | (1 << 12) | 0)

typedef _Atomic uint64_t a64;
typedef _Atomic uint32_t a32;
typedef _Atomic uint8_t a8;

#define W64(base, off) ((a64 *)((base) + (off)))
#define W32(base, off) ((a32 *)((base) + (off)))
#define W8(base, off) ((a8 *)((base) + (off)))
#define LOAD(p, order) atomic_load_explicit((p), memory_order_##order)
#define STORE(p, v, order) atomic_store_explicit((p), (v), memory_order_##order)

/* The buffer protocol.  The 3.10 limited API does not declare Py_buffer, but PyType_FromSpec
 * takes the buffer slots since 3.9 and the struct's layout is that of every CPython since 3.3
 * (part of the stable ABI from 3.11, where the header declares it). */
#if Py_LIMITED_API + 0 >= 0x030B0000
typedef Py_buffer Buffer;
#else
typedef struct {
    void *buf;
    PyObject *obj;
    Py_ssize_t len, itemsize;
    int readonly, ndim;
    char *format;
    Py_ssize_t *shape, *strides, *suboffsets;
    void *internal;
} Buffer;
#define PyBUF_WRITABLE 0x0001
#define PyBUF_FORMAT 0x0004
#define PyBUF_ND 0x0008
#define PyBUF_STRIDES (0x0010 | PyBUF_ND)
#define Py_bf_getbuffer 1
#endif

/* agnoshm.faults, set once by agnoshm._native: each call checks its ARMED once. */
static PyObject *faults_module;
static PyObject *str_armed;
/* a message view's slots (msg/message.py's MessageView), and a pool's buffer */
static PyObject *str_view_owner, *str_view_address, *str_view_buf, *str_view_base,
    *str_view_end, *str_buffer;

static int
faults_armed(void)
{
    if (faults_module == NULL)
        return 0;
    PyObject *armed = PyObject_GetAttr(faults_module, str_armed);
    if (armed == NULL) {
        PyErr_Clear();
        return 0;
    }
    int on = PyObject_IsTrue(armed);
    Py_DECREF(armed);
    return on > 0;
}

/* faults.hit(name): may SIGKILL this process; -1 with an exception set if it raised. */
static int
hit(int armed, const char *name)
{
    if (!armed)
        return 0;
    PyObject *r = PyObject_CallMethod(faults_module, "hit", "s", name);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* A message view of class cls (msg/message.py's MessageView subclass) over `address`, its
 * five slots stored as message.py's _NewView stores them (the class forbids assignment). */
static PyObject *
new_view(PyTypeObject *cls, PyObject *owner, uint64_t address, PyObject *buf, PyObject *start,
         PyObject *end)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot(cls, Py_tp_alloc);
    Py_INCREF(cls); /* a collection inside alloc may drop the caller's class */
    PyObject *view = alloc(cls, 0);
    Py_DECREF(cls);
    if (view == NULL)
        return NULL;
    PyObject *at = PyLong_FromUnsignedLongLong(address);
    if (at == NULL || PyObject_GenericSetAttr(view, str_view_owner, owner) < 0 ||
        PyObject_GenericSetAttr(view, str_view_address, at) < 0 ||
        PyObject_GenericSetAttr(view, str_view_buf, buf) < 0 ||
        PyObject_GenericSetAttr(view, str_view_base, start) < 0 ||
        PyObject_GenericSetAttr(view, str_view_end, end) < 0) {
        Py_XDECREF(at);
        Py_DECREF(view);
        return NULL;
    }
    Py_DECREF(at);
    return view;
}

static void
futex_ring(a32 *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_OP, INT_MAX, NULL, word, WAKE_OP_ADD_ONE);
}

/* An offset of `length` bytes at `offset`, aligned to `align`, inside a mapping of `size`. */
static int
check_span(const char *what, uint64_t offset, uint64_t length, uint64_t align, uint64_t size)
{
    if (offset % align || offset > size || length > size - offset) {
        PyErr_Format(PyExc_ValueError, "%s: offset %llu (+%llu) lies outside the registry "
                     "(%llu bytes) or is misaligned", what, (unsigned long long)offset,
                     (unsigned long long)length, (unsigned long long)size);
        return -1;
    }
    return 0;
}

/* A list (or any sequence) of Python ints as a malloc'd uint64 array. */
static int
u64_array(PyObject *seq, uint64_t **out, Py_ssize_t *n)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of ints");
    if (fast == NULL)
        return -1;
    Py_ssize_t len = PySequence_Size(fast);
    uint64_t *a = PyMem_Malloc(sizeof(uint64_t) * (len ? len : 1));
    if (a == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PySequence_GetItem(fast, i);
        if (item == NULL)
            goto fail;
        a[i] = PyLong_AsUnsignedLongLong(item);
        Py_DECREF(item);
        if (PyErr_Occurred())
            goto fail;
    }
    Py_DECREF(fast);
    PyMem_Free(*out);
    *out = a;
    *n = len;
    return 0;
fail:
    Py_DECREF(fast);
    PyMem_Free(a);
    return -1;
}

static int
arg_u64(PyObject *const *args, Py_ssize_t i, uint64_t *out)
{
    *out = PyLong_AsUnsignedLongLong(args[i]);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static int
arg_i64(PyObject *const *args, Py_ssize_t i, int64_t *out)
{
    *out = PyLong_AsLongLong(args[i]);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
nargs_ok(const char *name, Py_ssize_t nargs, Py_ssize_t lo, Py_ssize_t hi)
{
    if (nargs < lo || nargs > hi) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)", name, lo,
                     hi, nargs);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------ Region */

/* The registry's mapping as the C path sees it: one per runtime, closed (base = NULL) before
 * the registry is unmapped, so a port used after shutdown raises what the Python path's
 * released memoryviews raise instead of touching memory that may hold something else now. */
typedef struct {
    PyObject_HEAD
    char *base;
    uint64_t size;
} Region;

static PyObject *Region_type;

static PyObject *
Region_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    unsigned long long base, size;
    static char *names[] = {"base", "size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK", names, &base, &size))
        return NULL;
    if (base == 0 || base % 8) {
        PyErr_SetString(PyExc_ValueError, "a region starts at a non-null 8-byte aligned address");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Region *self = (Region *)alloc(type, 0);
    if (self != NULL) {
        self->base = (char *)(uintptr_t)base;
        self->size = size;
    }
    return (PyObject *)self;
}

static void
Region_dealloc(Region *self)
{
    PyTypeObject *type = Py_TYPE(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *
Region_close(Region *self, PyObject *unused)
{
    self->base = NULL;
    Py_RETURN_NONE;
}

static PyObject *
Region_get_closed(Region *self, void *closure)
{
    return PyBool_FromLong(self->base == NULL);
}

/* The base address, or NULL with the Python path's error (its memoryviews are released). */
static inline char *
region_base(Region *region)
{
    char *base = region->base;
    if (base == NULL)
        PyErr_SetString(PyExc_ValueError, "operation forbidden on released memoryview object");
    return base;
}

static PyMethodDef Region_methods[] = {
    {"close", (PyCFunction)Region_close, METH_NOARGS,
     "forget the mapping (before it is unmapped): every later use raises ValueError"},
    {NULL}};

static PyGetSetDef Region_getset[] = {
    {"closed", (getter)Region_get_closed, NULL, "whether close() was called", NULL},
    {NULL}};

static PyType_Slot Region_slots[] = {
    {Py_tp_new, Region_new},
    {Py_tp_dealloc, Region_dealloc},
    {Py_tp_methods, Region_methods},
    {Py_tp_getset, Region_getset},
    {Py_tp_doc, "Region(base, size): the registry's mapping, shared by Writers and Readers."},
    {0, NULL}};

static PyType_Spec Region_spec = {"agnoshm._native._ring.Region", sizeof(Region), 0,
                                  Py_TPFLAGS_DEFAULT, Region_slots};

/* ------------------------------------------------------------------------------ Writer */

static PyObject *str_address, *str_size, *str_destroyed, *str_held, *str_withdrawn,
    *str_unpinned, *str_pinned, *str_pinned_blocks, *str_spare_roots, *str_root_size,
    *str_root_address, *str_publish_checked, *str_refresh_subscriptions, *str_free_blocks;

/* 1 if obj.name is expected (identity), 0 if not, -1 with an exception set. */
static int
attr_is(PyObject *obj, PyObject *name, PyObject *expected)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    Py_DECREF(v);
    return v == expected;
}

static int
attr_u64_of(PyObject *obj, PyObject *name, uint64_t *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static int
call_one(PyObject *callable, PyObject *arg)
{
    PyObject *r = PyObject_CallFunctionObjArgs(callable, arg, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

typedef struct {
    PyObject_HEAD
    Region *region;
    uint64_t size;
    uint64_t capacity;
    uint64_t entries, log, head, published, generation_at; /* byte offsets */
    uint64_t generation;
    int known; /* generation holds the topic's generation read at the last refresh */
    uint64_t *holds; /* per listed subscription: where it counts holds on our entries */
    Py_ssize_t n_holds;
    uint64_t *sleepers; /* per subscribing process: its doorbell word (sleeping at +4) */
    Py_ssize_t n_sleepers;
    /* send(): the port's bookkeeping (bind()), which publish.py's PublisherPort keeps */
    uint64_t seq; /* the publisher's count: the port's _seq */
    Py_ssize_t depth;
    PyObject *port, *acquire, *release, *free_entries, *live, *live_append, *live_popleft,
        *blocks, *allocator, *allocator_free, *pool;
    /* set_loaned(): borrow() hands out views of loaned_class over loaned_size bytes, their
     * defaults written by loaned_defaults (NULL: all zero); bind(): the pool's buffer and
     * bounds */
    PyObject *loaned_class, *loaned_size, *loaned_defaults, *pool_buffer, *pool_start, *pool_end;
    uint64_t pool_address, pool_size;
    PyObject *publish_fallback; /* set_front(): what publish_message() hands other messages */
} Writer;

enum { FREE_OR_NONE = 0, HELD = 1, MOVED = 2 };

static PyObject *
Writer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *region;
    unsigned long long capacity, entries, log, head, published, generation_at;
    static char *names[] = {"region", "capacity", "entries", "log", "head", "published",
                            "generation", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!KKKKKK", names, (PyTypeObject *)Region_type,
                                     &region, &capacity, &entries, &log, &head, &published,
                                     &generation_at))
        return NULL;
    uint64_t size = ((Region *)region)->size;
    if (capacity < 1 || capacity > ENTRY_MASK + 1) {
        PyErr_Format(PyExc_ValueError, "capacity %llu is not 1..%u", capacity, ENTRY_MASK + 1);
        return NULL;
    }
    if (check_span("entries", entries, capacity * ENTRY_SIZE, 8, size) ||
        check_span("log", log, capacity * 8, 8, size) || check_span("head", head, 8, 8, size) ||
        check_span("published", published, 8, 8, size) ||
        check_span("generation", generation_at, 8, 8, size))
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Writer *self = (Writer *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(region);
    self->region = (Region *)region;
    self->size = size;
    self->capacity = capacity;
    self->entries = entries;
    self->log = log;
    self->head = head;
    self->published = published;
    self->generation_at = generation_at;
    return (PyObject *)self;
}

/* A bound Writer and its port hold each other (the port's publish is this send): a cycle
 * that the collector must see. */
static int
Writer_traverse(Writer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->port);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->free_entries);
    Py_VISIT(self->live);
    Py_VISIT(self->live_append);
    Py_VISIT(self->live_popleft);
    Py_VISIT(self->blocks);
    Py_VISIT(self->allocator);
    Py_VISIT(self->allocator_free);
    Py_VISIT(self->pool);
    Py_VISIT(self->loaned_class);
    Py_VISIT(self->loaned_defaults);
    Py_VISIT(self->pool_buffer);
    Py_VISIT(self->publish_fallback);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
Writer_clear(Writer *self)
{
    Py_CLEAR(self->port);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->free_entries);
    Py_CLEAR(self->live);
    Py_CLEAR(self->live_append);
    Py_CLEAR(self->live_popleft);
    Py_CLEAR(self->blocks);
    Py_CLEAR(self->allocator);
    Py_CLEAR(self->allocator_free);
    Py_CLEAR(self->pool);
    Py_CLEAR(self->loaned_class);
    Py_CLEAR(self->loaned_size);
    Py_CLEAR(self->loaned_defaults);
    Py_CLEAR(self->pool_buffer);
    Py_CLEAR(self->pool_start);
    Py_CLEAR(self->pool_end);
    Py_CLEAR(self->publish_fallback);
    return 0;
}

static void
Writer_dealloc(Writer *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Writer_clear(self);
    PyMem_Free(self->holds);
    PyMem_Free(self->sleepers);
    Py_XDECREF(self->region);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

/* set_subscriptions(generation, hold_offsets, doorbells): what the topic lists now. */
static PyObject *
Writer_set_subscriptions(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t generation, *holds = NULL, *sleepers = NULL;
    Py_ssize_t n_holds = 0, n_sleepers = 0;
    if (nargs_ok("set_subscriptions", nargs, 3, 3) || arg_u64(args, 0, &generation))
        return NULL;
    if (u64_array(args[1], &holds, &n_holds) || u64_array(args[2], &sleepers, &n_sleepers))
        goto fail;
    for (Py_ssize_t i = 0; i < n_holds; i++)
        if (check_span("hold counts", holds[i], self->capacity, 1, self->size))
            goto fail;
    for (Py_ssize_t i = 0; i < n_sleepers; i++)
        if (check_span("doorbell", sleepers[i], 8, 8, self->size))
            goto fail;
    PyMem_Free(self->holds);
    PyMem_Free(self->sleepers);
    self->holds = holds, self->n_holds = n_holds;
    self->sleepers = sleepers, self->n_sleepers = n_sleepers;
    self->generation = generation;
    self->known = 1;
    Py_RETURN_NONE;
fail:
    PyMem_Free(holds);
    PyMem_Free(sleepers);
    return NULL;
}

/* Steps (e) and (f): ring sleeping processes, read the withdrawn entry's holds.  Returns
 * HELD or FREE_OR_NONE, or -1 with an exception set. */
static int
writer_finish(Writer *self, char *base, int armed, int64_t withdrawn)
{
    if (hit(armed, "publish.after"))
        return -1;
    for (Py_ssize_t i = 0; i < self->n_sleepers; i++) { /* (e) */
        a32 *doorbell = W32(base, self->sleepers[i]);
        if (LOAD(W32(base, self->sleepers[i] + 4), relaxed)) /* the process's sleeping flag */
            futex_ring(doorbell);
    }
    if (withdrawn >= 0) { /* (f) */
        for (Py_ssize_t i = 0; i < self->n_holds; i++)
            if (LOAD(W8(base, self->holds[i] + (uint64_t)withdrawn), acquire)) /* drop_hold's */
                return HELD;
    }
    return FREE_OR_NONE;
}

/* Steps (a)-(f) for an entry < capacity and a withdrawn entry < capacity (-1: none): HELD,
 * FREE_OR_NONE or MOVED (refresh, then writer_finish), or -1 with an exception set. */
static int
writer_commit(Writer *self, char *base, int armed, uint64_t entry, uint64_t seq,
              uint64_t address, uint64_t size, int64_t withdrawn)
{
    uint64_t at = self->entries + entry * ENTRY_SIZE;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* time.monotonic_ns() */
    STORE(W64(base, at + 8), address, relaxed);
    STORE(W64(base, at + 16), size, relaxed);
    STORE(W64(base, at + 24), (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
          relaxed);
    STORE(W64(base, at), seq, release); /* (a) the entry is complete */
    if (hit(armed, "publish.inside"))
        return -1;
    STORE(W64(base, self->log + (seq % self->capacity) * 8), seq << LOG_SHIFT | entry, release);
    if (hit(armed, "publish.logged"))
        return -1;
    STORE(W64(base, self->head), seq, release); /* (b) */
    STORE(W64(base, self->published), seq, relaxed);
    if (withdrawn >= 0) { /* (c) */
        STORE(W64(base, self->entries + (uint64_t)withdrawn * ENTRY_SIZE), 0, relaxed);
        if (hit(armed, "reclaim.inside"))
            return -1;
    }
    atomic_thread_fence(memory_order_seq_cst); /* (d) */
    if (!self->known || LOAD(W64(base, self->generation_at), relaxed) != self->generation)
        return MOVED;
    return writer_finish(self, base, armed, withdrawn);
}

static PyObject *
state_or_null(int state)
{
    return state < 0 ? NULL : PyLong_FromLong(state);
}

/* publish(entry, seq, address, size, withdrawn) -> 0 (withdrawn freed, or none: -1),
 * 1 (withdrawn still held), 2 (the topic's generation moved: refresh, then finish()). */
static PyObject *
Writer_publish(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t entry, seq, address, size;
    int64_t withdrawn;
    if (nargs_ok("publish", nargs, 5, 5) || arg_u64(args, 0, &entry) ||
        arg_u64(args, 1, &seq) || arg_u64(args, 2, &address) || arg_u64(args, 3, &size) ||
        arg_i64(args, 4, &withdrawn))
        return NULL;
    if (entry >= self->capacity || withdrawn >= (int64_t)self->capacity) {
        PyErr_Format(PyExc_ValueError, "entry %llu or %lld past the channel's %llu entries",
                     (unsigned long long)entry, (long long)withdrawn,
                     (unsigned long long)self->capacity);
        return NULL;
    }
    char *base = region_base(self->region);
    if (base == NULL)
        return NULL;
    return state_or_null(
        writer_commit(self, base, faults_armed(), entry, seq, address, size, withdrawn));
}

/* finish(withdrawn): publish's steps (e) and (f) after a refresh. */
static PyObject *
Writer_finish(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t withdrawn;
    if (nargs_ok("finish", nargs, 1, 1) || arg_i64(args, 0, &withdrawn))
        return NULL;
    if (withdrawn >= (int64_t)self->capacity) {
        PyErr_SetString(PyExc_ValueError, "entry past the channel");
        return NULL;
    }
    char *base = region_base(self->region);
    if (base == NULL)
        return NULL;
    return state_or_null(writer_finish(self, base, faults_armed(), withdrawn));
}

/* bind(port): the PublisherPort whose publish() send() is (publish.py's bookkeeping). */
static PyObject *
Writer_bind(Writer *self, PyObject *port)
{
    PyObject *lock = NULL, *allocator = NULL, *depth = NULL, *pool = NULL;
    PyObject *pool_buffer = NULL, *pool_start = NULL, *pool_end = NULL;
    PyObject *acquire = NULL, *release = NULL, *free_entries = NULL, *live = NULL;
    PyObject *live_append = NULL, *live_popleft = NULL, *blocks = NULL, *allocator_free = NULL;
    if ((lock = PyObject_GetAttrString(port, "_lock")) == NULL ||
        (acquire = PyObject_GetAttrString(lock, "acquire")) == NULL ||
        (release = PyObject_GetAttrString(lock, "release")) == NULL ||
        (free_entries = PyObject_GetAttrString(port, "_free_entries")) == NULL ||
        (live = PyObject_GetAttrString(port, "_live")) == NULL ||
        (live_append = PyObject_GetAttrString(live, "append")) == NULL ||
        (live_popleft = PyObject_GetAttrString(live, "popleft")) == NULL ||
        (blocks = PyObject_GetAttrString(port, "_blocks")) == NULL ||
        (allocator = PyObject_GetAttrString(port, "allocator")) == NULL ||
        (allocator_free = PyObject_GetAttrString(allocator, "free")) == NULL ||
        (pool = PyObject_GetAttrString(port, "_pool")) == NULL ||
        (depth = PyObject_GetAttrString(port, "depth")) == NULL)
        goto fail;
    if (!PyList_Check(free_entries) || !PyDict_Check(blocks)) {
        PyErr_SetString(PyExc_TypeError, "bind(): the port's _free_entries is not a list or "
                                         "its _blocks not a dict");
        goto fail;
    }
    Py_ssize_t n = PyLong_AsSsize_t(depth);
    if (n == -1 && PyErr_Occurred())
        goto fail;
    uint64_t pool_address, pool_size;
    if (attr_u64_of(pool, str_address, &pool_address) < 0 ||
        attr_u64_of(pool, str_size, &pool_size) < 0 ||
        (pool_buffer = PyObject_GetAttr(pool, str_buffer)) == NULL ||
        (pool_start = PyLong_FromUnsignedLongLong(pool_address)) == NULL ||
        (pool_end = PyLong_FromUnsignedLongLong(pool_address + pool_size)) == NULL)
        goto fail;
    Writer_clear(self);
    self->pool_buffer = pool_buffer, self->pool_start = pool_start, self->pool_end = pool_end;
    self->pool_address = pool_address, self->pool_size = pool_size;
    Py_INCREF(port);
    self->port = port;
    self->acquire = acquire, self->release = release;
    self->free_entries = free_entries, self->live = live;
    self->live_append = live_append, self->live_popleft = live_popleft;
    self->blocks = blocks, self->allocator_free = allocator_free;
    self->allocator = allocator, self->pool = pool;
    self->depth = n;
    Py_DECREF(lock);
    Py_DECREF(depth);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(lock);
    Py_XDECREF(allocator);
    Py_XDECREF(pool);
    Py_XDECREF(pool_buffer);
    Py_XDECREF(pool_start);
    Py_XDECREF(pool_end);
    Py_XDECREF(depth);
    Py_XDECREF(acquire);
    Py_XDECREF(release);
    Py_XDECREF(free_entries);
    Py_XDECREF(live);
    Py_XDECREF(live_append);
    Py_XDECREF(live_popleft);
    Py_XDECREF(blocks);
    Py_XDECREF(allocator_free);
    return NULL;
}

/* publish.py's PublisherPort._free_blocks(blocks) for a message that is not pinned: the
 * root serves a next loan (at most 8 kept), the other blocks go back to the allocator. */
static int
free_blocks(Writer *self, PyObject *blocks)
{
    Py_ssize_t n = PyList_Check(blocks) ? PyList_Size(blocks) : -1;
    PyObject *pinned = PyObject_GetAttr(self->port, str_pinned);
    if (pinned == NULL)
        return -1;
    int kept = (n < 1 || !PySet_Check(pinned)) ? 1
                                               : PySet_Contains(pinned, PyList_GetItem(blocks, 0));
    Py_DECREF(pinned);
    if (kept < 0)
        return -1;
    if (kept) { /* arrays the publisher kept still read these bytes: the Python method */
        PyObject *r = PyObject_CallMethodObjArgs(self->port, str_free_blocks, blocks, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    PyObject *spare = PyObject_GetAttr(self->port, str_spare_roots);
    if (spare == NULL)
        return -1;
    PyObject *root = PyList_GetItem(blocks, 0);
    int r = (PyList_Check(spare) && PyList_Size(spare) < 8) ? PyList_Append(spare, root)
                                                          : call_one(self->allocator_free, root);
    Py_DECREF(spare);
    for (Py_ssize_t i = 1; r == 0 && i < n; i++)
        r = call_one(self->allocator_free, PyList_GetItem(blocks, i));
    return r;
}

/* The locked part of send(): publish.py's PublisherPort.publish from "loan.valid = False"
 * to the lock's release, for a loan with a free entry; returns the seq. */
static PyObject *
send_locked(Writer *self, char *base, Loan *loan, PyObject *loan_blocks)
{
    PyObject *entry_obj = NULL, *withdrawn_obj = NULL, *r;
    int64_t withdrawn = -1;
    PyObject *result = NULL;
    uint64_t address = loan->address, size = loan->size;
    Py_ssize_t n_free = PyList_Size(self->free_entries);
    loan->valid = 0;
    entry_obj = PyList_GetItem(self->free_entries, n_free - 1);
    Py_INCREF(entry_obj);
    if (PyList_SetSlice(self->free_entries, n_free - 1, n_free, NULL) < 0)
        goto done;
    uint64_t entry = PyLong_AsUnsignedLongLong(entry_obj);
    if (PyErr_Occurred())
        goto done;
    if (entry >= self->capacity) {
        PyErr_SetString(PyExc_ValueError, "a free entry past the channel");
        goto done;
    }
    uint64_t seq = ++self->seq;
    if (call_one(self->live_append, entry_obj) < 0 ||
        PyDict_SetItem(self->blocks, entry_obj, loan_blocks) < 0)
        goto done;
    if (PyObject_Size(self->live) > self->depth) { /* (c) left the depth */
        withdrawn_obj = PyObject_CallNoArgs(self->live_popleft);
        if (withdrawn_obj == NULL)
            goto done;
        withdrawn = PyLong_AsLongLong(withdrawn_obj);
        if (PyErr_Occurred())
            goto done;
        if (withdrawn < 0 || withdrawn >= (int64_t)self->capacity) {
            PyErr_SetString(PyExc_ValueError, "a live entry past the channel");
            goto done;
        }
    }
    int state = writer_commit(self, base, 0, entry, seq, address, size, withdrawn);
    if (state == MOVED) { /* the topic's subscriptions changed: refresh, then ring */
        r = PyObject_CallMethodObjArgs(self->port, str_refresh_subscriptions, NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
        state = writer_finish(self, base, 0, withdrawn);
    }
    if (state < 0)
        goto done;
    if (state == HELD) { /* freed once no subscription holds it */
        PyObject *held = PyObject_GetAttr(self->port, str_held);
        if (held == NULL || PyList_Append(held, withdrawn_obj) < 0) {
            Py_XDECREF(held);
            goto done;
        }
        Py_DECREF(held);
    } else if (withdrawn >= 0) { /* (g) no one can reach it any more: free its blocks now */
        PyObject *blocks = PyDict_GetItemWithError(self->blocks, withdrawn_obj);
        if (blocks == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "a withdrawn entry without blocks");
            goto done;
        }
        Py_INCREF(blocks);
        if (PyDict_DelItem(self->blocks, withdrawn_obj) < 0 ||
            PyList_Append(self->free_entries, withdrawn_obj) < 0 ||
            free_blocks(self, blocks) < 0) {
            Py_DECREF(blocks);
            goto done;
        }
        Py_DECREF(blocks);
    }
    result = PyLong_FromUnsignedLongLong(seq);
done:
    Py_XDECREF(entry_obj);
    Py_XDECREF(withdrawn_obj);
    return result;
}

/* What publish() does after the lock: the arrays handed out over the loan become read-only
 * (the bytes are the subscribers' now); if any is still alive, the loan is pinned, its
 * blocks kept until the last one is gone. */
static int
freeze_arrays(Writer *self, Loan *loan)
{
    int alive = agnoshm_loan_freeze_arrays(loan);
    if (alive <= 0)
        return alive;
    PyObject *pinned = PyObject_GetAttr(self->port, str_pinned);
    PyObject *address = pinned == NULL ? NULL : PyLong_FromUnsignedLongLong(loan->address);
    int r = (address == NULL || PySet_Add(pinned, address) < 0) ? -1 : 0;
    if (r == 0)
        loan->pinned = 1;
    Py_XDECREF(address);
    Py_XDECREF(pinned);
    return r;
}

/* Release the port's lock; an exception already set stays set.  -1 (with the release's
 * exception instead) if the release raised. */
static int
release_lock(Writer *self)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *released = PyObject_CallNoArgs(self->release);
    if (released == NULL) {
        Py_XDECREF(exc_type), Py_XDECREF(exc_value), Py_XDECREF(exc_tb);
        return -1;
    }
    Py_DECREF(released);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    return 0;
}

/* send(loan) -> seq: the bound port's publish(loan), in C where nothing needs Python (no
 * armed faults, a free entry, the port's lock free); anything else is the port's
 * _publish_checked(loan), which raises what publish() raises. */
static PyObject *
Writer_send(Writer *self, PyObject *loan_obj)
{
    PyObject *port = self->port;
    if (port == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "send() before bind()");
        return NULL;
    }
    int r;
    if (faults_armed() || !PyObject_TypeCheck(loan_obj, (PyTypeObject *)agnoshm_loan_type))
        goto checked;
    Loan *loan = (Loan *)loan_obj;
    if (loan->port != port || !loan->valid || loan->blocks == NULL)
        goto checked;
    if ((r = attr_is(port, str_destroyed, Py_False)) <= 0) {
        if (r < 0)
            return NULL;
        goto checked;
    }
    char *base = region_base(self->region);
    if (base == NULL)
        return NULL;
    PyObject *loan_blocks = loan->blocks;
    Py_INCREF(loan_blocks);
    /* acquire(False): the GIL alone would not do, a thread may be inside a locked section
     * of the port's Python code, between two of its bytecodes */
    PyObject *got = PyObject_CallFunctionObjArgs(self->acquire, Py_False, NULL);
    if (got != Py_True) {
        Py_DECREF(loan_blocks);
        if (got == NULL)
            return NULL;
        Py_DECREF(got);
        goto checked;
    }
    Py_DECREF(got);
    if (PyList_Size(self->free_entries) < 1) { /* reclaim, or the error: the Python method */
        Py_DECREF(loan_blocks);
        PyObject *released = PyObject_CallNoArgs(self->release);
        if (released == NULL)
            return NULL;
        Py_DECREF(released);
        goto checked;
    }
    PyObject *seq = send_locked(self, base, loan, loan_blocks);
    Py_DECREF(loan_blocks);
    if (release_lock(self) < 0) {
        Py_XDECREF(seq);
        return NULL;
    }
    if (seq != NULL && freeze_arrays(self, loan) < 0)
        Py_CLEAR(seq);
    return seq;
checked:
    return PyObject_CallMethodObjArgs(port, str_publish_checked, loan_obj, NULL);
}

/* publish.py's PublisherPort._free_unpinned, under the port's lock if it is free (1), or
 * nothing done (0: the Python path does it), or -1 with an exception set. */
static int
free_unpinned(Writer *self, PyObject *unpinned)
{
    PyObject *got = PyObject_CallFunctionObjArgs(self->acquire, Py_False, NULL);
    if (got != Py_True) {
        Py_XDECREF(got);
        return got == NULL ? -1 : 0;
    }
    Py_DECREF(got);
    PyObject *pinned = PyObject_GetAttr(self->port, str_pinned);
    PyObject *pinned_blocks = pinned == NULL ? NULL
                                             : PyObject_GetAttr(self->port, str_pinned_blocks);
    int r = (pinned_blocks == NULL || !PySet_Check(pinned) || !PyDict_Check(pinned_blocks) ||
             !PyList_Check(unpinned)) ? -1 : 1;
    if (r < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "the port's pinned bookkeeping is not a set, a dict "
                                         "and a list");
    while (r > 0 && PyList_Size(unpinned) > 0) { /* the last array kept from it is gone */
        Py_ssize_t n = PyList_Size(unpinned);
        PyObject *root = PyList_GetItem(unpinned, n - 1);
        Py_INCREF(root);
        PyObject *blocks = NULL;
        if (PyList_SetSlice(unpinned, n - 1, n, NULL) < 0 || PySet_Discard(pinned, root) < 0) {
            r = -1;
        } else if ((blocks = PyDict_GetItemWithError(pinned_blocks, root)) != NULL) {
            Py_INCREF(blocks); /* withdrawn already: its blocks wait for us */
            if (PyDict_DelItem(pinned_blocks, root) < 0 || free_blocks(self, blocks) < 0)
                r = -1;
            Py_DECREF(blocks);
        } else if (PyErr_Occurred()) {
            r = -1;
        }
        Py_DECREF(root);
    }
    Py_XDECREF(pinned);
    Py_XDECREF(pinned_blocks);
    return release_lock(self) < 0 ? -1 : r;
}

/* loan(size) -> Loan: the bound port's loan(size) (publish.py's PublisherPort.loan), in C
 * when a kept root of that size is at hand and nothing but pinned messages' ends waits to
 * be freed; anything else asks the port's _root_address(size), which raises what loan()
 * raises. */
static PyObject *
Writer_loan(Writer *self, PyObject *size_obj)
{
    PyObject *port = self->port;
    if (port == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loan() before bind()");
        return NULL;
    }
    uint64_t size = PyLong_AsUnsignedLongLong(size_obj);
    if (size == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    PyObject *address = NULL;
    int fast = attr_is(port, str_destroyed, Py_False);
    PyObject *names[] = {str_withdrawn, str_held};
    for (size_t i = 0; fast > 0 && i < sizeof(names) / sizeof(names[0]); i++) {
        PyObject *pending = PyObject_GetAttr(port, names[i]);
        fast = pending == NULL ? -1 : !PyObject_IsTrue(pending);
        Py_XDECREF(pending);
    }
    if (fast > 0) {
        PyObject *unpinned = PyObject_GetAttr(port, str_unpinned);
        fast = unpinned == NULL ? -1 : !PyObject_IsTrue(unpinned);
        if (fast == 0 && !faults_armed()) /* the usual one: a kept array of the last loan */
            fast = free_unpinned(self, unpinned);
        Py_XDECREF(unpinned);
    }
    if (fast > 0) {
        uint64_t root_size;
        fast = attr_u64_of(port, str_root_size, &root_size) < 0 ? -1 : root_size == size;
    }
    if (fast > 0) { /* a root of an earlier message: a list pop, no allocator */
        PyObject *spare = PyObject_GetAttr(port, str_spare_roots);
        if (spare == NULL)
            return NULL;
        Py_ssize_t n = PyList_Check(spare) ? PyList_Size(spare) : 0;
        if (n > 0) {
            address = PyList_GetItem(spare, n - 1);
            Py_INCREF(address);
            if (PyList_SetSlice(spare, n - 1, n, NULL) < 0) {
                Py_CLEAR(address);
                fast = -1;
            }
        }
        Py_DECREF(spare);
    }
    if (fast < 0)
        return NULL;
    if (address == NULL) {
        address = PyObject_CallMethodObjArgs(port, str_root_address, size_obj, NULL);
        if (address == NULL)
            return NULL;
    }
    uint64_t at = PyLong_AsUnsignedLongLong(address);
    Py_DECREF(address);
    if (at == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    PyObject *loan = agnoshm_new_loan(port, self->pool, self->allocator, self->pool_address,
                                      self->pool_size, at, size);
    if (loan != NULL && hit(faults_armed(), "borrow")) /* the loan dies: its root goes back */
        Py_CLEAR(loan);
    return loan;
}

static PyObject *
Writer_forget(Writer *self, PyObject *unused)
{
    self->known = 0; /* the next publish returns MOVED: the Python side refreshes */
    Py_RETURN_NONE;
}

/* set_loaned(view_class, struct_size, apply_defaults or None): the publisher's type, for
 * borrow() (the views' buffer and bounds are the bound port's pool's). */
static PyObject *
Writer_set_loaned(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t size;
    if (nargs_ok("set_loaned", nargs, 3, 3) || arg_u64(args, 1, &size))
        return NULL;
    if (!PyType_Check(args[0]) || (args[2] != Py_None && !PyCallable_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "set_loaned(view_class, struct_size, apply_defaults):"
                                         " a class, an int, and a function or None");
        return NULL;
    }
    if (self->pool == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_loaned() before bind()");
        return NULL;
    }
    Py_CLEAR(self->loaned_class);
    Py_CLEAR(self->loaned_size);
    Py_CLEAR(self->loaned_defaults);
    Py_INCREF(args[0]), Py_INCREF(args[1]);
    self->loaned_class = args[0], self->loaned_size = args[1];
    if (args[2] != Py_None) {
        Py_INCREF(args[2]);
        self->loaned_defaults = args[2];
    }
    Py_RETURN_NONE;
}

/* borrow() -> view: Publisher.borrow_loaned_message on the native path, the port's loan and
 * message.py's MessageType.loaned over it: the root struct zeroed, then its defaults. */
static PyObject *
Writer_borrow(Writer *self, PyObject *unused)
{
    if (self->loaned_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "borrow() before set_loaned()");
        return NULL;
    }
    PyObject *loan_obj = Writer_loan(self, self->loaned_size);
    if (loan_obj == NULL)
        return NULL;
    Loan *loan = (Loan *)loan_obj;
    if (loan->address < self->pool_address || loan->size > self->pool_size ||
        loan->address - self->pool_address > self->pool_size - loan->size) {
        PyErr_Format(PyExc_ValueError, "a loan at 0x%llx (%llu bytes) outside the pool",
                     (unsigned long long)loan->address, (unsigned long long)loan->size);
        Py_DECREF(loan_obj);
        return NULL;
    }
    memset((void *)(uintptr_t)loan->address, 0, loan->size); /* this process's own pool */
    PyObject *view = new_view((PyTypeObject *)self->loaned_class, loan_obj, loan->address,
                              self->pool_buffer, self->pool_start, self->pool_end);
    Py_DECREF(loan_obj);
    if (view != NULL && self->loaned_defaults != NULL) {
        PyObject *r = PyObject_CallFunctionObjArgs(self->loaned_defaults, view, NULL);
        if (r == NULL)
            Py_CLEAR(view);
        Py_XDECREF(r);
    }
    return view;
}

/* set_front(fallback or None): what publish_message() calls for anything but a root loan of
 * this port's type (Publisher.publish, bound). */
static PyObject *
Writer_set_front(Writer *self, PyObject *fallback)
{
    if (fallback != Py_None && !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "set_front(fallback): a callable or None");
        return NULL;
    }
    PyObject *old = self->publish_fallback;
    Py_XINCREF(fallback == Py_None ? NULL : fallback);
    self->publish_fallback = fallback == Py_None ? NULL : fallback;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* publish_message(msg): Publisher.publish on the native path.  A root loan of this port's
 * type (the class set_loaned() gave) loaned by this port is send() at once, as the Python
 * method's first branch does; anything else is the fallback's (the Python method). */
static PyObject *
Writer_publish_message(Writer *self, PyObject *msg)
{
    if (self->publish_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "publish_message() before set_front()");
        return NULL;
    }
    if (self->loaned_class != NULL && (PyObject *)Py_TYPE(msg) == self->loaned_class) {
        PyObject *owner = PyObject_GenericGetAttr(msg, str_view_owner);
        if (owner == NULL)
            return NULL;
        if (Py_TYPE(owner) == (PyTypeObject *)agnoshm_loan_type &&
            ((Loan *)owner)->port == self->port) {
            PyObject *seq = Writer_send(self, owner);
            Py_DECREF(owner);
            if (seq == NULL)
                return NULL;
            Py_DECREF(seq);
            Py_RETURN_NONE;
        }
        Py_DECREF(owner);
    }
    PyObject *fallback = self->publish_fallback;
    Py_INCREF(fallback);
    PyObject *r = PyObject_CallFunctionObjArgs(fallback, msg, NULL);
    Py_DECREF(fallback);
    return r;
}

static PyMethodDef Writer_methods[] = {
    {"forget", (PyCFunction)Writer_forget, METH_NOARGS,
     "forget the subscriptions: the next publish() returns 2 (refresh, then finish())"},
    {"publish", (PyCFunction)(void (*)(void))Writer_publish, METH_FASTCALL,
     "publish(entry, seq, address, size, withdrawn): ring.py's steps (a)-(f)"},
    {"finish", (PyCFunction)(void (*)(void))Writer_finish, METH_FASTCALL,
     "finish(withdrawn): steps (e)-(f), after publish() returned 2 and the lists were refreshed"},
    {"set_subscriptions", (PyCFunction)(void (*)(void))Writer_set_subscriptions, METH_FASTCALL,
     "set_subscriptions(generation, hold_offsets, doorbell_offsets)"},
    {"bind", (PyCFunction)Writer_bind, METH_O,
     "bind(port): the PublisherPort whose publish() send() is"},
    {"loan", (PyCFunction)Writer_loan, METH_O,
     "loan(size) -> Loan: the bound port's loan(size), in C where it needs no Python"},
    {"set_loaned", (PyCFunction)(void (*)(void))Writer_set_loaned, METH_FASTCALL,
     "set_loaned(view_class, struct_size, apply_defaults): the views borrow() makes"},
    {"borrow", (PyCFunction)Writer_borrow, METH_NOARGS,
     "borrow() -> view: loan(struct_size) and MessageType.loaned over it, in one call"},
    {"set_front", (PyCFunction)Writer_set_front, METH_O,
     "set_front(fallback): what publish_message() hands anything but this port's loans"},
    {"publish_message", (PyCFunction)Writer_publish_message, METH_O,
     "publish_message(msg): Publisher.publish, in C for this port's own loans"},
    {"send", (PyCFunction)Writer_send, METH_O,
     "send(loan) -> seq: the bound port's publish(loan), in C where it needs no Python"},
    {NULL}};

static PyMemberDef Writer_members[] = {
    {"seq", T_ULONGLONG, offsetof(Writer, seq), 0, "the publisher's count (the port's _seq)"},
    {NULL}};

static PyType_Slot Writer_slots[] = {
    {Py_tp_new, Writer_new},
    {Py_tp_dealloc, Writer_dealloc},
    {Py_tp_traverse, Writer_traverse},
    {Py_tp_clear, Writer_clear},
    {Py_tp_methods, Writer_methods},
    {Py_tp_members, Writer_members},
    {Py_tp_doc, "One publisher's channel (byte offsets into the registry mapped at base)."},
    {0, NULL}};

static PyType_Spec Writer_spec = {"agnoshm._native._ring.Writer", sizeof(Writer), 0,
                                  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Writer_slots};

/* ------------------------------------------------------------------------------ Reader */

typedef struct Mapping Mapping;

typedef struct {
    uint64_t ident_at, ident, head, log, entries, cursor, cursor_at, holds, publisher;
    Mapping *mapping; /* its publisher's pool, once a take needed it (strong; NULL: not yet) */
} Channel;

typedef struct {
    uint64_t stamp, seq, entry, address, size;
    Py_ssize_t channel, order;
} Found;

typedef struct {
    PyObject_HEAD
    Region *region;
    uint64_t size;
    uint64_t capacity, depth;
    uint64_t generation_at, received_at, held_at, incarnation_at, incarnation;
    uint64_t generation;
    int known;
    int64_t held;
    uint64_t received;
    uint64_t corrupted; /* messages dropped because they pointed outside their pool */
    int destroyed;      /* the subscription was destroyed: its last release unlists it */
    Channel *channels;
    Py_ssize_t n;
    PyObject *objects; /* the Python channel objects (receive._Channel), for _mapping_of */
    /* set_view(): take(..., views=True) hands out instances of view_class (a received
     * MessageView class) over messages of view_size bytes, or view_fallback(lease)'s */
    PyObject *view_class, *view_fallback;
    uint64_t view_size;
} Reader;

static void
free_channels(Channel *channels, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF((PyObject *)channels[i].mapping);
    PyMem_Free(channels);
}

static PyObject *
Reader_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *region;
    unsigned long long capacity, depth, generation_at, received_at, held_at, incarnation_at,
        incarnation;
    static char *names[] = {"region", "capacity", "depth", "generation", "received", "held",
                            "incarnation_at", "incarnation", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!KKKKKKK", names, (PyTypeObject *)Region_type,
                                     &region, &capacity, &depth, &generation_at, &received_at,
                                     &held_at, &incarnation_at, &incarnation))
        return NULL;
    uint64_t size = ((Region *)region)->size;
    if (depth < 1) {
        PyErr_Format(PyExc_ValueError, "depth %llu is not >= 1", depth);
        return NULL;
    }
    if (capacity < 1 || capacity > ENTRY_MASK + 1) {
        PyErr_Format(PyExc_ValueError, "capacity %llu is not 1..%u", capacity, ENTRY_MASK + 1);
        return NULL;
    }
    if (check_span("generation", generation_at, 8, 8, size) ||
        check_span("received", received_at, 8, 8, size) ||
        check_span("held", held_at, 4, 4, size) ||
        check_span("incarnation", incarnation_at, 8, 8, size))
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Reader *self = (Reader *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(region);
    self->region = (Region *)region;
    self->size = size;
    self->capacity = capacity;
    self->depth = depth;
    self->generation_at = generation_at;
    self->received_at = received_at;
    self->held_at = held_at;
    self->incarnation_at = incarnation_at;
    self->incarnation = incarnation;
    return (PyObject *)self;
}

static void
Reader_dealloc(Reader *self)
{
    PyTypeObject *type = Py_TYPE(self);
    free_channels(self->channels, self->n);
    Py_XDECREF(self->objects);
    Py_XDECREF(self->view_class);
    Py_XDECREF(self->view_fallback);
    Py_XDECREF(self->region);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

/* attr_u64_of by a C string's name, times scale (the cold paths: construction, refresh) */
static int
attr_u64(PyObject *obj, const char *name, uint64_t scale, uint64_t *out)
{
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL)
        return -1;
    int r = attr_u64_of(obj, key, out);
    Py_DECREF(key);
    *out *= scale;
    return r;
}

/* set_channels(generation, channels): the publishers the topic lists now (receive._Channel:
 * *_word attributes are u64 word indices, entries and holds byte offsets). */
static PyObject *
Reader_set_channels(Reader *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t generation;
    if (nargs_ok("set_channels", nargs, 2, 2) || arg_u64(args, 0, &generation))
        return NULL;
    PyObject *list = PySequence_List(args[1]);
    if (list == NULL)
        return NULL;
    Py_ssize_t n = PyList_Size(list);
    Channel *channels = PyMem_Calloc(n ? n : 1, sizeof(Channel));
    if (channels == NULL) {
        Py_DECREF(list);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyList_GetItem(list, i); /* borrowed */
        Channel *c = &channels[i];
        if (attr_u64(o, "ident_word", 8, &c->ident_at) || attr_u64(o, "ident", 1, &c->ident) ||
            attr_u64(o, "head_word", 8, &c->head) || attr_u64(o, "log_word", 8, &c->log) ||
            attr_u64(o, "entries", 1, &c->entries) || attr_u64(o, "cursor", 1, &c->cursor) ||
            attr_u64(o, "cursor_word", 8, &c->cursor_at) || attr_u64(o, "holds", 1, &c->holds) ||
            attr_u64(o, "publisher", 1, &c->publisher))
            goto fail;
        if (check_span("ident", c->ident_at, 8, 8, self->size) ||
            check_span("head", c->head, 8, 8, self->size) ||
            check_span("log", c->log, self->capacity * 8, 8, self->size) ||
            check_span("entries", c->entries, self->capacity * ENTRY_SIZE, 8, self->size) ||
            check_span("cursor", c->cursor_at, 8, 8, self->size) ||
            check_span("holds", c->holds, self->capacity, 1, self->size))
            goto fail;
    }
    free_channels(self->channels, self->n);
    PyObject *old = self->objects;
    self->objects = list;
    Py_XDECREF(old);
    self->channels = channels;
    self->n = n;
    self->generation = generation;
    self->known = 1;
    Py_RETURN_NONE;
fail:
    free_channels(channels, n);
    Py_DECREF(list);
    return NULL;
}

/* sync_cursors(): write each channel's cursor back to its Python object's ``cursor``. */
static PyObject *
Reader_sync_cursors(Reader *self, PyObject *unused)
{
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(self->channels[i].cursor);
        if (v == NULL)
            return NULL;
        int r = PyObject_SetAttrString(PyList_GetItem(self->objects, i), "cursor", v);
        Py_DECREF(v);
        if (r < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Reader_has_data(Reader *self, PyObject *unused)
{
    char *base = region_base(self->region);
    if (base == NULL)
        return NULL;
    if (!self->known || LOAD(W64(base, self->generation_at), relaxed) != self->generation)
        Py_RETURN_TRUE;
    for (Py_ssize_t i = 0; i < self->n; i++)
        if (LOAD(W64(base, self->channels[i].head), relaxed) > self->channels[i].cursor)
            Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static int
by_time(const void *a, const void *b)
{
    const Found *x = a, *y = b;
    if (x->stamp != y->stamp)
        return x->stamp < y->stamp ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order; /* stable, as list.sort */
}

static void
drop_hold(a8 *hold)
{
    uint8_t count = LOAD(hold, relaxed);
    if (count) /* release: every read of the message lands before the publisher may reuse it */
        STORE(hold, count - 1, release);
}

/* ----------------------------------------------------------------------------- Mapping */

/* Another process's pool as this process maps it (transport/peers.py's PeerMapping, which
 * the pure path uses): Leases count themselves in `leases`; peers.py retires a mapping
 * (retire(): only while no Lease points into it) before it unmaps the pool, and a take
 * never counts a Lease into a retired one.  Both run under the GIL, without a Python call
 * between the check and the change, so no unmap can slip between them. */
struct Mapping {
    PyObject_HEAD
    PyObject *pool;
    PyObject *buffer, *start, *end; /* pool.buffer, its address and end: a view's _buf, _base,
                                     * _end (NULL until a take made a view into the pool) */
    uint64_t incarnation, pool_address, pool_size;
    long long leases;
    int retired;
};

static PyObject *Mapping_type;

static PyObject *
Mapping_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    unsigned long long incarnation;
    PyObject *pool;
    static char *names[] = {"incarnation", "pool", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KO", names, &incarnation, &pool))
        return NULL;
    uint64_t address, size;
    if (attr_u64(pool, "address", 1, &address) || attr_u64(pool, "size", 1, &size))
        return NULL;
    if (size > (uint64_t)PY_SSIZE_T_MAX || address > UINT64_MAX - size) {
        PyErr_Format(PyExc_ValueError, "a pool of %llu bytes at 0x%llx does not fit in memory",
                     (unsigned long long)size, (unsigned long long)address);
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Mapping *self = (Mapping *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(pool);
    self->pool = pool;
    self->incarnation = incarnation;
    self->pool_address = address;
    self->pool_size = size;
    return (PyObject *)self;
}

static void
Mapping_dealloc(Mapping *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->pool);
    Py_XDECREF(self->buffer);
    Py_XDECREF(self->start);
    Py_XDECREF(self->end);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *
Mapping_retire(Mapping *self, PyObject *unused)
{
    if (self->leases == 0)
        self->retired = 1;
    return PyBool_FromLong(self->retired);
}

/* count() and uncount(): what a pure-Python port (receive.py) does with it, as with
 * peers.PeerMapping (one runtime may run both kinds, e.g. the differential tests) */
static PyObject *
Mapping_count(Mapping *self, PyObject *unused)
{
    if (self->retired)
        Py_RETURN_FALSE;
    self->leases += 1;
    Py_RETURN_TRUE;
}

static PyObject *
Mapping_uncount(Mapping *self, PyObject *unused)
{
    self->leases -= 1;
    Py_RETURN_NONE;
}

static PyObject *
Mapping_get_retired(Mapping *self, void *closure)
{
    return PyBool_FromLong(self->retired);
}

/* pool.contains(address, size), as memory/pool.py says it (Python ints do not wrap) */
static int
mapping_contains(Mapping *m, uint64_t address, uint64_t size)
{
    return m->pool_address <= address && address - m->pool_address <= m->pool_size &&
           size <= m->pool_size - (address - m->pool_address);
}

static PyMethodDef Mapping_methods[] = {
    {"retire", (PyCFunction)Mapping_retire, METH_NOARGS,
     "retire(): True (and no Lease is counted in it from now on) if no Lease points into it"},
    {"count", (PyCFunction)Mapping_count, METH_NOARGS,
     "count(): count one more lease; False (nothing counted) if retired"},
    {"uncount", (PyCFunction)Mapping_uncount, METH_NOARGS, "uncount(): one lease fewer"},
    {NULL}};

static PyMemberDef Mapping_members[] = {
    {"pool", T_OBJECT, offsetof(Mapping, pool), READONLY, "the mapped pool"},
    {"incarnation", T_ULONGLONG, offsetof(Mapping, incarnation), READONLY,
     "the incarnation of the process whose pool it is"},
    {"leases", T_LONGLONG, offsetof(Mapping, leases), 0, "Leases pointing into the pool"},
    {NULL}};

static PyGetSetDef Mapping_getset[] = {
    {"retired", (getter)Mapping_get_retired, NULL, "whether retire() succeeded", NULL},
    {NULL}};

static PyType_Slot Mapping_slots[] = {
    {Py_tp_new, Mapping_new},
    {Py_tp_dealloc, Mapping_dealloc},
    {Py_tp_methods, Mapping_methods},
    {Py_tp_members, Mapping_members},
    {Py_tp_getset, Mapping_getset},
    {Py_tp_doc, "Mapping(incarnation, pool): a peer's pool and the Leases into it."},
    {0, NULL}};

static PyType_Spec Mapping_spec = {"agnoshm._native._ring.Mapping", sizeof(Mapping), 0,
                                   Py_TPFLAGS_DEFAULT, Mapping_slots};

/* ------------------------------------------------------------------------------- Lease */

/* A received message's hold (receive.py's Lease, the owner of a received view): made by
 * Reader.take, released exactly once, by release() or when the last reference dies. */
typedef struct {
    PyObject_HEAD
    Reader *reader;
    Mapping *mapping;
    PyObject *port; /* the subscription's port, as receive.Lease.port */
    uint64_t publisher, hold, seq, address, size, timestamp_ns;
    Py_ssize_t extent; /* the pool's size, as the buffer's shape */
    int released;
} Lease;

static PyObject *Lease_type;

/* What receive.SubscriberPort.release does for a hold at byte `hold` of the receipts, counted
 * in `mapping` (NULL: never counted): take it back, and unlist a destroyed subscription
 * whose last message this was.  Nothing once agnoshm shut down here (the region closed with
 * the runtime). */
static int
reader_drop(Reader *self, uint64_t hold, Mapping *mapping, PyObject *port)
{
    char *base = self->region->base;
    if (base == NULL)
        return 0;
    drop_hold(W8(base, hold));
    if (hit(faults_armed(), "release.inside"))
        return -1;
    self->held -= 1;
    if (LOAD(W64(base, self->incarnation_at), relaxed) == self->incarnation) /* still ours */
        STORE(W32(base, self->held_at), (uint32_t)self->held, relaxed);
    if (mapping != NULL)
        mapping->leases -= 1;
    if (self->destroyed && self->held == 0) {
        PyObject *r = PyObject_CallMethod(port, "_drained", NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

static PyObject *
Lease_release(Lease *self, PyObject *unused)
{
    if (!self->released) {
        self->released = 1;
        if (reader_drop(self->reader, self->hold, self->mapping, self->port))
            return NULL;
    }
    Py_RETURN_NONE;
}

static void
Lease_dealloc(Lease *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (!self->released && self->reader != NULL) { /* as receive.Lease.__del__: errors
                                                      here have nowhere to go */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        self->released = 1;
        if (reader_drop(self->reader, self->hold, self->mapping, self->port))
            PyErr_Clear();
        PyErr_Restore(et, ev, tb);
    }
    Py_XDECREF((PyObject *)self->reader);
    Py_XDECREF((PyObject *)self->mapping);
    Py_XDECREF(self->port);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *
Lease_get_pool(Lease *self, void *closure)
{
    Py_INCREF(self->mapping->pool);
    return self->mapping->pool;
}

static PyObject *
Lease_get_valid(Lease *self, void *closure)
{
    return PyBool_FromLong(!self->released);
}

static PyObject *
Lease_get_closed(Lease *self, void *closure)
{
    return PyBool_FromLong(self->reader->region->base == NULL);
}

/* The buffer protocol: the publisher's whole pool, read-only, one byte per item.  An array
 * over it (numpy.frombuffer(lease, dtype, count, offset)) keeps the lease, so its message,
 * alive as long as it lives (invariant 3), and costs a fraction of __array_interface__. */
static int
Lease_getbuffer(Lease *self, Buffer *view, int flags)
{
    static Py_ssize_t one = 1;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "a received message is read-only");
        return -1;
    }
    if (self->released || self->reader->region->base == NULL) {
        PyErr_SetString(PyExc_BufferError, "the message was released (or agnoshm shut down)");
        return -1;
    }
    view->buf = (void *)(uintptr_t)self->mapping->pool_address;
    Py_INCREF(self);
    view->obj = (PyObject *)self;
    view->len = self->extent;
    view->itemsize = 1;
    view->readonly = 1;
    view->ndim = 1;
    view->format = (flags & PyBUF_FORMAT) ? "B" : NULL;
    view->shape = (flags & PyBUF_ND) ? &self->extent : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &one : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyMethodDef Lease_methods[] = {
    {"release", (PyCFunction)Lease_release, METH_NOARGS, "take the hold back (once)"},
    {NULL}};

static PyMemberDef Lease_members[] = {
    {"port", T_OBJECT, offsetof(Lease, port), READONLY, "the subscription's port"},
    {"mapping", T_OBJECT, offsetof(Lease, mapping), READONLY, "the publisher's pool mapping"},
    {"publisher", T_ULONGLONG, offsetof(Lease, publisher), READONLY, "its publisher record"},
    {"hold", T_ULONGLONG, offsetof(Lease, hold), READONLY, "its hold count's offset"},
    {"seq", T_ULONGLONG, offsetof(Lease, seq), READONLY, "its sequence number"},
    {"address", T_ULONGLONG, offsetof(Lease, address), READONLY, "its root struct's address"},
    {"size", T_ULONGLONG, offsetof(Lease, size), READONLY, "its root struct's size"},
    {"timestamp_ns", T_ULONGLONG, offsetof(Lease, timestamp_ns), READONLY,
     "when it was published (CLOCK_MONOTONIC ns)"},
    {NULL}};

static PyGetSetDef Lease_getset[] = {
    {"pool", (getter)Lease_get_pool, NULL, "the pool that holds the message", NULL},
    {"valid", (getter)Lease_get_valid, NULL, "True until the message is released", NULL},
    {"closed", (getter)Lease_get_closed, NULL, "whether agnoshm shut down in this process",
     NULL},
    {NULL}};

static PyType_Slot Lease_slots[] = {
    {Py_bf_getbuffer, Lease_getbuffer},
    {Py_tp_dealloc, Lease_dealloc},
    {Py_tp_methods, Lease_methods},
    {Py_tp_members, Lease_members},
    {Py_tp_getset, Lease_getset},
    {Py_tp_doc, "A received message's hold (made by Reader.take)."},
    {0, NULL}};

static PyType_Spec Lease_spec = {"agnoshm._native._ring.Lease", sizeof(Lease), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                 Lease_slots};

/* ---------------------------------------------------------------------------- PoolSpan */

/* [address, address + nbytes) of a pool mapped in this process, through the buffer protocol,
 * holding the message's owner (msg/arrays.py's PoolBytes, which hands the same bytes to
 * numpy through __array_interface__ at three times the cost): an array
 * numpy.frombuffer(span, dtype) keeps the owner alive while it lives (invariant 3).  The
 * caller vouches for the range; a read-only span refuses a writable buffer. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;
    uint64_t address;
    Py_ssize_t nbytes;
    int writable;
} PoolSpan;

static PyObject *PoolSpan_type;

static PyObject *
new_span(PyTypeObject *type, PyObject *owner, uint64_t address, Py_ssize_t nbytes, int writable)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    PoolSpan *self = (PoolSpan *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(owner);
    self->owner = owner;
    self->address = address, self->nbytes = nbytes, self->writable = writable;
    return (PyObject *)self;
}

static PyObject *
PoolSpan_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *owner;
    unsigned long long address;
    Py_ssize_t nbytes;
    int writable;
    static char *names[] = {"owner", "address", "nbytes", "writable", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OKnp", names, &owner, &address, &nbytes,
                                     &writable))
        return NULL;
    if (address == 0 || nbytes < 1 || address > UINT64_MAX - (uint64_t)nbytes) {
        PyErr_Format(PyExc_ValueError, "PoolSpan: %zd bytes at 0x%llx is no range", nbytes,
                     address);
        return NULL;
    }
    return new_span(type, owner, address, nbytes, writable);
}

PyObject *
agnoshm_pool_span(PyObject *owner, uint64_t address, Py_ssize_t nbytes, int writable)
{
    return new_span((PyTypeObject *)PoolSpan_type, owner, address, nbytes, writable);
}

static int
PoolSpan_traverse(PoolSpan *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
PoolSpan_clear(PoolSpan *self)
{
    Py_CLEAR(self->owner);
    return 0;
}

static void
PoolSpan_dealloc(PoolSpan *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    PoolSpan_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static int
PoolSpan_getbuffer(PoolSpan *self, Buffer *view, int flags)
{
    static Py_ssize_t one = 1;
    if ((flags & PyBUF_WRITABLE) && !self->writable) {
        PyErr_SetString(PyExc_BufferError, "a read-only span of a message");
        return -1;
    }
    view->buf = (void *)(uintptr_t)self->address;
    Py_INCREF(self);
    view->obj = (PyObject *)self;
    view->len = self->nbytes;
    view->itemsize = 1;
    view->readonly = !self->writable;
    view->ndim = 1;
    view->format = (flags & PyBUF_FORMAT) ? "B" : NULL;
    view->shape = (flags & PyBUF_ND) ? &self->nbytes : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &one : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyMemberDef PoolSpan_members[] = {
    {"owner", T_OBJECT, offsetof(PoolSpan, owner), READONLY, "the message's owner it holds"},
    {NULL}};

static PyType_Slot PoolSpan_slots[] = {
    {Py_tp_new, PoolSpan_new},
    {Py_tp_dealloc, PoolSpan_dealloc},
    {Py_tp_traverse, PoolSpan_traverse},
    {Py_tp_clear, PoolSpan_clear},
    {Py_bf_getbuffer, PoolSpan_getbuffer},
    {Py_tp_members, PoolSpan_members},
    {Py_tp_doc, "PoolSpan(owner, address, nbytes, writable): a message's bytes in a mapped "
                "pool as a buffer that holds its owner"},
    {0, NULL}};

static PyType_Spec PoolSpan_spec = {"agnoshm._native._ring.PoolSpan", sizeof(PoolSpan), 0,
                                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, PoolSpan_slots};

/* ----------------------------------------------------------------------- ReceivedArray */

/* The getter of a received view's sequence of primitives (msg/fields.py's
 * _received_array_sequence_property, the hot path of every image and point cloud) for a
 * view whose owner is this module's Lease: numpy.frombuffer(lease, dtype, size, offset)
 * over the sequence, read from the struct in place.  Anything else, an empty sequence and
 * every error (agnoshm shut down, released, a sequence outside the pool) is the Python
 * getter's, the fallback, which raises what the pure path raises. */
typedef struct {
    PyObject_HEAD
    uint64_t offset, element_size; /* the sequence's (data, size, capacity) in the struct */
    PyObject *dtype, *frombuffer, *fallback;
} ReceivedArray;

static PyObject *
ReceivedArray_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    unsigned long long offset, element_size;
    PyObject *dtype, *frombuffer, *fallback;
    static char *names[] = {"offset", "element_size", "dtype", "frombuffer", "fallback", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KKOOO", names, &offset, &element_size, &dtype,
                                     &frombuffer, &fallback))
        return NULL;
    if (element_size < 1 || !PyCallable_Check(frombuffer) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_ValueError, "ReceivedArray: element_size >= 1, frombuffer and "
                                          "fallback callable");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    ReceivedArray *self = (ReceivedArray *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->offset = offset, self->element_size = element_size;
    Py_INCREF(dtype), Py_INCREF(frombuffer), Py_INCREF(fallback);
    self->dtype = dtype, self->frombuffer = frombuffer, self->fallback = fallback;
    return (PyObject *)self;
}

static int
ReceivedArray_traverse(ReceivedArray *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dtype);
    Py_VISIT(self->frombuffer);
    Py_VISIT(self->fallback);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
ReceivedArray_clear(ReceivedArray *self)
{
    Py_CLEAR(self->dtype);
    Py_CLEAR(self->frombuffer);
    Py_CLEAR(self->fallback);
    return 0;
}

static void
ReceivedArray_dealloc(ReceivedArray *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ReceivedArray_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *
received_array(ReceivedArray *self, PyObject *view)
{
    PyObject *owner = PyObject_GetAttr(view, str_view_owner);
    if (owner == NULL)
        return NULL;
    Py_DECREF(owner); /* the view holds it */
    if (Py_TYPE(owner) != (PyTypeObject *)Lease_type)
        return NULL; /* the fallback's */
    Lease *lease = (Lease *)owner;
    if (lease->released || lease->reader->region->base == NULL)
        return NULL;
    uint64_t address;
    if (attr_u64_of(view, str_view_address, &address) < 0) {
        PyErr_Clear();
        return NULL;
    }
    uint64_t base = lease->mapping->pool_address, extent = lease->mapping->pool_size;
    /* the view was made over [address, address + its struct) inside the pool, and the
     * sequence's triple lies in that struct: still, never read outside the pool */
    if (address < base || address - base > extent || extent - (address - base) < self->offset ||
        extent - (address - base) - self->offset < 24)
        return NULL;
    uint64_t triple[2];
    memcpy(triple, (const void *)(uintptr_t)(address + self->offset), sizeof(triple));
    uint64_t data = triple[0], size = triple[1];
    if (size == 0 || size > extent / self->element_size || data < base ||
        data - base > extent || extent - (data - base) < size * self->element_size)
        return NULL; /* empty, or outside the pool: the fallback answers (or raises) */
    PyObject *count = PyLong_FromUnsignedLongLong(size);
    PyObject *at = PyLong_FromUnsignedLongLong(data - base);
    PyObject *array = NULL;
    if (count != NULL && at != NULL)
        array = PyObject_CallFunctionObjArgs(self->frombuffer, owner, self->dtype, count, at,
                                             NULL);
    Py_XDECREF(count);
    Py_XDECREF(at);
    return array;
}

static PyObject *
ReceivedArray_call(ReceivedArray *self, PyObject *args, PyObject *kw)
{
    if (kw != NULL || PyTuple_Size(args) != 1) {
        PyErr_SetString(PyExc_TypeError, "a ReceivedArray takes one argument, the view");
        return NULL;
    }
    PyObject *view = PyTuple_GetItem(args, 0);
    PyObject *array = received_array(self, view);
    if (array != NULL || PyErr_Occurred())
        return array;
    return PyObject_CallFunctionObjArgs(self->fallback, view, NULL);
}

static PyMemberDef ReceivedArray_members[] = {
    {"fallback", T_OBJECT, offsetof(ReceivedArray, fallback), READONLY,
     "the Python getter, for everything this one leaves"},
    {NULL}};

static PyType_Slot ReceivedArray_slots[] = {
    {Py_tp_new, ReceivedArray_new},
    {Py_tp_dealloc, ReceivedArray_dealloc},
    {Py_tp_traverse, ReceivedArray_traverse},
    {Py_tp_clear, ReceivedArray_clear},
    {Py_tp_call, ReceivedArray_call},
    {Py_tp_members, ReceivedArray_members},
    {Py_tp_doc, "ReceivedArray(offset, element_size, dtype, frombuffer, fallback): the getter "
                "of a received sequence of primitives, for views over this module's Leases"},
    {0, NULL}};

static PyType_Spec ReceivedArray_spec = {"agnoshm._native._ring.ReceivedArray",
                                         sizeof(ReceivedArray), 0,
                                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                                         ReceivedArray_slots};

/* Count one more Lease in a channel's pool mapping (take's first pass resolved it): the
 * mapping, or NULL (nothing counted) when its publisher's process is gone, its pool may not
 * be read, or peers.py retired it since. */
static Mapping *
counted_mapping(Channel *c)
{
    Mapping *m = c->mapping;
    if (m == NULL || m->retired)
        return NULL;
    m->leases += 1;
    return m;
}

/* set_view(view_class, struct_size, fallback): what take(..., views=True) hands out. */
static PyObject *
Reader_set_view(Reader *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t size;
    if (nargs_ok("set_view", nargs, 3, 3) || arg_u64(args, 1, &size))
        return NULL;
    if (!PyType_Check(args[0]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "set_view(view_class, struct_size, fallback): a class "
                                         "and a callable");
        return NULL;
    }
    PyObject *old_class = self->view_class, *old_fallback = self->view_fallback;
    Py_INCREF(args[0]);
    Py_INCREF(args[2]);
    self->view_class = args[0];
    self->view_fallback = args[2];
    Py_XDECREF(old_class);
    Py_XDECREF(old_fallback);
    self->view_size = size;
    Py_RETURN_NONE;
}

/* message.py's MessageType.received(lease), for a lease into mapping: a view of the class
 * set_view() gave, its five slots stored as _NewView stores them (the class forbids
 * assignment); one whose struct would reach past the pool is the fallback's (it raises). */
static PyObject *
view_of(Reader *self, Mapping *mapping, PyObject *lease, uint64_t address)
{
    if (address - mapping->pool_address > mapping->pool_size ||
        self->view_size > mapping->pool_size - (address - mapping->pool_address)) {
        PyObject *fallback = self->view_fallback;
        Py_INCREF(fallback);
        PyObject *view = PyObject_CallFunctionObjArgs(fallback, lease, NULL);
        Py_DECREF(fallback);
        return view;
    }
    if (mapping->buffer == NULL) {
        PyObject *buffer = PyObject_GetAttr(mapping->pool, str_buffer);
        if (buffer == NULL)
            return NULL;
        mapping->start = PyLong_FromUnsignedLongLong(mapping->pool_address);
        mapping->end = PyLong_FromUnsignedLongLong(mapping->pool_address + mapping->pool_size);
        mapping->buffer = buffer;
        if (mapping->start == NULL || mapping->end == NULL) {
            Py_CLEAR(mapping->buffer);
            Py_CLEAR(mapping->start);
            Py_CLEAR(mapping->end);
            return NULL;
        }
    }
    /* (new_view holds the class: a collection inside may run set_view() in another thread) */
    return new_view((PyTypeObject *)self->view_class, lease, address, mapping->buffer,
                    mapping->start, mapping->end);
}

/* take(port, max_count, check=True, resolve=True, views=False) -> [Lease] (views: the views
 * over them, made once the take is whole), or None (without touching
 * anything) when check is true and the topic's generation moved.  receive.SubscriberPort.take's
 * _take_locked and _leases.
 *
 * With resolve, the caller holds the port's lock: a channel with new messages and no usable
 * pool mapping gets one from port._mapping_of(channel) (Python) before anything is touched.
 * Without resolve, it runs no Python at all, so it needs no lock: it returns None instead
 * (nothing touched) when that would be needed, when the subscription was destroyed, or when
 * faults are armed; the result list is allocated first, so no garbage collection (whose
 * finalizers could let another thread refresh the channels) runs in the middle, and Leases
 * are not tracked by the collector. */
static PyObject *
Reader_take(Reader *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t max_count;
    int check = 1, resolve = 1, views = 0;
    if (nargs_ok("take", nargs, 2, 5) || arg_i64(args, 1, &max_count))
        return NULL;
    PyObject *port = args[0];
    if ((nargs > 2 && (check = PyObject_IsTrue(args[2])) < 0) ||
        (nargs > 3 && (resolve = PyObject_IsTrue(args[3])) < 0) ||
        (nargs > 4 && (views = PyObject_IsTrue(args[4])) < 0))
        return NULL;
    if (views && self->view_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "take(..., views=True) before set_view()");
        return NULL;
    }
    if (max_count < 0) {
        PyErr_SetString(PyExc_ValueError, "max_count must be >= 0");
        return NULL;
    }
    char *base = region_base(self->region);
    if (base == NULL)
        return NULL;
    if (check && (!self->known ||
                  LOAD(W64(base, self->generation_at), relaxed) != self->generation))
        Py_RETURN_NONE;
    int armed = faults_armed();
    if (!resolve && (self->destroyed || armed))
        Py_RETURN_NONE;
    const uint64_t capacity = self->capacity, depth = self->depth;
    uint64_t heads_stack[64], *heads = heads_stack;
    Found stack[64], *found = stack;
    Py_ssize_t nfound = 0, room = 64;
    PyObject *result = PyList_New(0);
    if (result == NULL)
        return NULL;
    if (self->n > 64 && (heads = PyMem_Malloc(sizeof(uint64_t) * self->n)) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < self->n; i++) { /* (1): each head, and a mapping where new */
        heads[i] = LOAD(W64(base, self->channels[i].head), acquire);
        Mapping *m = self->channels[i].mapping;
        if (heads[i] <= self->channels[i].cursor || (m != NULL && !m->retired))
            continue;
        if (!resolve) {
            Py_CLEAR(result);
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        PyObject *got = PyObject_CallMethod(port, "_mapping_of", "O",
                                            PyList_GetItem(self->objects, i));
        if (got == NULL)
            goto fail;
        if (got != Py_None && !PyObject_TypeCheck(got, (PyTypeObject *)Mapping_type)) {
            PyErr_Format(PyExc_TypeError, "_mapping_of returned %R, not a Mapping", got);
            Py_DECREF(got);
            goto fail;
        }
        self->channels[i].mapping = got == Py_None ? NULL : (Mapping *)got;
        Py_XDECREF((PyObject *)m);
        if (got == Py_None) /* its process is gone: its messages are taken and dropped */
            Py_DECREF(got);
    }
    for (Py_ssize_t i = 0; i < self->n; i++) { /* (1) and (2) */
        Channel *c = &self->channels[i];
        uint64_t head = heads[i];
        if (head <= c->cursor)
            continue;
        /* max(cursor + 1, head - depth + 1, head - capacity + 1) without wrapping: a head
         * another process scribbled on may be 2**64 - 1 (Python's ints do not wrap) */
        uint64_t first = c->cursor + 1; /* cursor < head: no wrap */
        if (head >= depth - 1 && head - (depth - 1) > first)
            first = head - (depth - 1);
        if (head >= capacity - 1 && head - (capacity - 1) > first)
            first = head - (capacity - 1);
        uint64_t count = head - first + 1; /* at most min(depth, capacity) */
        if (nfound + (Py_ssize_t)count > room) {
            Py_ssize_t want = nfound + (Py_ssize_t)count;
            Found *grown = PyMem_Malloc(sizeof(Found) * want);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            memcpy(grown, found, sizeof(Found) * nfound);
            if (found != stack)
                PyMem_Free(found);
            found = grown, room = want;
        }
        for (uint64_t k = 0; k < count; k++) {
            uint64_t seq = first + k;
            uint64_t word = LOAD(W64(base, c->log + (seq % capacity) * 8), acquire);
            if (word >> LOG_SHIFT != seq)
                continue; /* overwritten: it left the depth */
            uint64_t entry = word & ENTRY_MASK;
            if (entry >= capacity)
                continue; /* a scribbled log word: no entry of this channel */
            uint64_t at = c->entries + entry * ENTRY_SIZE;
            if (LOAD(W64(base, at), acquire) != seq)
                continue;
            Found *f = &found[nfound];
            f->address = LOAD(W64(base, at + 8), relaxed);
            f->size = LOAD(W64(base, at + 16), relaxed);
            f->stamp = LOAD(W64(base, at + 24), relaxed);
            f->seq = seq, f->entry = entry, f->channel = i, f->order = nfound;
            nfound++;
        }
        c->cursor = head;
    }
    if (nfound == 0)
        goto done;
    if (nfound > 1 && self->n > 1)
        qsort(found, nfound, sizeof(Found), by_time); /* several publishers: publish order */
    Py_ssize_t start = nfound > (Py_ssize_t)depth ? nfound - (Py_ssize_t)depth : 0;
    Py_ssize_t wlen = nfound - start;
    if (wlen > max_count) { /* the rest stays new for the next take */
        for (Py_ssize_t j = start + max_count; j < nfound; j++) {
            Channel *c = &self->channels[found[j].channel];
            if (c->cursor >= found[j].seq)
                c->cursor = found[j].seq - 1;
        }
        wlen = max_count;
    }
    Found *window = found + start;
    for (Py_ssize_t j = 0; j < wlen; j++) { /* (3) */
        a8 *hold = W8(base, self->channels[window[j].channel].holds + window[j].entry);
        uint8_t count = LOAD(hold, relaxed);
        if (count < HOLD_MAX)
            STORE(hold, count + 1, relaxed);
    }
    if (hit(armed, "take.claimed"))
        goto fail;
    atomic_thread_fence(memory_order_seq_cst); /* (4) */
    Py_ssize_t taken = 0;
    for (Py_ssize_t j = 0; j < wlen; j++) { /* (5) */
        Channel *c = &self->channels[window[j].channel];
        if (LOAD(W64(base, c->entries + window[j].entry * ENTRY_SIZE), relaxed) == window[j].seq
            && LOAD(W64(base, c->ident_at), relaxed) == c->ident)
            window[taken++] = window[j];
        else /* withdrawn meanwhile: it left the depth */
            drop_hold(W8(base, c->holds + window[j].entry));
    }
    if (hit(armed, "take.inside"))
        goto fail;
    for (Py_ssize_t i = 0; i < self->n; i++) /* how far this subscription read (linger) */
        STORE(W64(base, self->channels[i].cursor_at), self->channels[i].cursor, relaxed);
    if (taken) {
        self->held += taken;
        self->received += taken;
        STORE(W32(base, self->held_at), (uint32_t)self->held, relaxed);
        STORE(W64(base, self->received_at), self->received, relaxed);
    }
    for (Py_ssize_t j = 0; j < taken; j++) { /* receive.py's _leases */
        Found *f = &window[j];
        uint64_t hold = self->channels[f->channel].holds + f->entry;
        Mapping *mapping = counted_mapping(&self->channels[f->channel]);
        int mapped = mapping != NULL;
        if (mapped && !mapping_contains(mapping, f->address, f->size ? f->size : 1)) {
            /* The entry points outside its publisher's pool: a corrupted or hostile
             * registry.  Never build a view over it; drop it and count it. */
            self->corrupted += 1;
            mapped = 0;
        }
        if (!mapped) { /* the publisher is gone (its message went with it), or corrupted */
            if (reader_drop(self, hold, mapping, port))
                goto fail;
            continue;
        }
        Lease *lease = (Lease *)PyType_GenericAlloc((PyTypeObject *)Lease_type, 0);
        if (lease == NULL) {
            reader_drop(self, hold, mapping, port);
            goto fail;
        }
        Py_INCREF(self);
        lease->reader = self;
        lease->mapping = mapping; /* counted in it above */
        Py_INCREF((PyObject *)mapping);
        Py_INCREF(port);
        lease->port = port;
        lease->publisher = self->channels[f->channel].publisher;
        lease->hold = hold;
        lease->seq = f->seq;
        lease->address = f->address;
        lease->size = f->size;
        lease->timestamp_ns = f->stamp;
        lease->extent = (Py_ssize_t)mapping->pool_size;
        int appended = PyList_Append(result, (PyObject *)lease);
        Py_DECREF((PyObject *)lease); /* on failure its dealloc releases it */
        if (appended < 0)
            goto fail;
    }
    /* The views, once the take is whole: making one may run a collection (a view is tracked
     * by the collector, a Lease is not), whose finalizers may let another thread refresh the
     * channels, and the fallback is Python.  Nothing below reads the channels. */
    for (Py_ssize_t j = 0; views && j < PyList_Size(result); j++) {
        Lease *lease = (Lease *)PyList_GetItem(result, j);
        PyObject *view = view_of(self, lease->mapping, (PyObject *)lease, lease->address);
        if (view == NULL || PyList_SetItem(result, j, view) < 0) /* the view holds the lease */
            goto fail;
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    if (found != stack)
        PyMem_Free(found);
    if (heads != heads_stack)
        PyMem_Free(heads);
    return result;
}

/* take_views(port, max_count): take(port, max_count, True, False, True), the take that needs
 * no lock, and where it returns None, port.take(max_count, True) (receive.py's port). */
static PyObject *
Reader_take_views(Reader *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs_ok("take_views", nargs, 2, 2))
        return NULL;
    PyObject *full[5] = {args[0], args[1], Py_True, Py_False, Py_True};
    PyObject *taken = Reader_take(self, full, 5);
    if (taken != Py_None)
        return taken;
    Py_DECREF(taken);
    return PyObject_CallMethod(args[0], "take", "OO", args[1], Py_True);
}

static PyObject *
Reader_get_held(Reader *self, void *closure)
{
    return PyLong_FromLongLong(self->held);
}

static PyObject *
Reader_get_received(Reader *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->received);
}

static PyObject *
Reader_get_corrupted(Reader *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->corrupted);
}

static PyObject *
Reader_mark_destroyed(Reader *self, PyObject *unused)
{
    self->destroyed = 1;
    Py_RETURN_NONE;
}

static PyObject *
Reader_forget(Reader *self, PyObject *unused)
{
    self->known = 0; /* the next checked take returns None: the Python side refreshes */
    Py_RETURN_NONE;
}

static PyMethodDef Reader_methods[] = {
    {"forget", (PyCFunction)Reader_forget, METH_NOARGS,
     "forget the channels: the next take(n) returns None (refresh, then take(n, False))"},
    {"take", (PyCFunction)(void (*)(void))Reader_take, METH_FASTCALL,
     "take(port, max_count, check=True, resolve=True, views=False): ring.py's steps (1)-(5), "
     "a Lease per message (views: a view over it, as set_view() says); None if the "
     "generation moved"},
    {"take_views", (PyCFunction)(void (*)(void))Reader_take_views, METH_FASTCALL,
     "take_views(port, max_count): the views of a take that needs no lock, else "
     "port.take(max_count, True)"},
    {"set_view", (PyCFunction)(void (*)(void))Reader_set_view, METH_FASTCALL,
     "set_view(view_class, struct_size, fallback): the views take(..., views=True) makes"},
    {"mark_destroyed", (PyCFunction)Reader_mark_destroyed, METH_NOARGS,
     "the subscription was destroyed: the release of its last message calls port._drained()"},
    {"has_data", (PyCFunction)Reader_has_data, METH_NOARGS,
     "whether a take may find something (a new message, or the generation moved)"},
    {"set_channels", (PyCFunction)(void (*)(void))Reader_set_channels, METH_FASTCALL,
     "set_channels(generation, channels)"},
    {"sync_cursors", (PyCFunction)Reader_sync_cursors, METH_NOARGS,
     "copy each channel's cursor to its Python object"},
    {NULL}};

static PyGetSetDef Reader_getset[] = {
    {"held", (getter)Reader_get_held, NULL, "messages this subscription holds", NULL},
    {"received", (getter)Reader_get_received, NULL, "messages it took", NULL},
    {"corrupted", (getter)Reader_get_corrupted, NULL,
     "messages dropped because they pointed outside their pool", NULL},
    {NULL}};

static PyType_Slot Reader_slots[] = {
    {Py_tp_new, Reader_new},
    {Py_tp_dealloc, Reader_dealloc},
    {Py_tp_methods, Reader_methods},
    {Py_tp_getset, Reader_getset},
    {Py_tp_doc, "One subscription's receipts and the channels of its topic."},
    {0, NULL}};

static PyType_Spec Reader_spec = {"agnoshm._native._ring.Reader", sizeof(Reader), 0,
                                  Py_TPFLAGS_DEFAULT, Reader_slots};

/* ------------------------------------------------------------------------------- Futex */

/* One process's doorbell word and, for transport/doorbell.py's NativeDoorbell, its
 * sleeping flag and the threads armed on it: arm, disarm, armed and sleep do what
 * Doorbell's do, with the threads kept in a set of idents (no threading.local, no lock:
 * each call runs no Python code, so the GIL makes it whole). */
typedef struct {
    PyObject_HEAD
    a32 *word;
    a32 *sleeping; /* the process's sleeping flag (NULL: arm() refuses) */
    PyObject *armed; /* set: idents of the threads armed now */
    long long sleepers; /* len(armed): the flag is set while it is above 0 */
} Futex;

static PyObject *
Futex_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    unsigned long long address, sleeping = 0;
    static char *names[] = {"address", "sleeping", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "K|K", names, &address, &sleeping))
        return NULL;
    if (address == 0 || address % 4 || sleeping % 4) {
        PyErr_SetString(PyExc_ValueError, "a futex word is a non-null 4-byte aligned address");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Futex *self = (Futex *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->word = (a32 *)(uintptr_t)address;
    self->sleeping = (a32 *)(uintptr_t)sleeping;
    self->armed = PySet_New(NULL);
    if (self->armed == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
Futex_dealloc(Futex *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->armed);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

/* 1 if the calling thread is armed, 0 if not, -1 on error; *ident: its ident, new */
static int
thread_armed(Futex *self, PyObject **ident)
{
    *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (*ident == NULL)
        return -1;
    int found = PySet_Contains(self->armed, *ident);
    if (found < 0)
        Py_CLEAR(*ident);
    return found;
}

/* arm(): count this thread as one that may sleep; publishers ring from now on */
static PyObject *
Futex_arm(Futex *self, PyObject *unused)
{
    if (self->sleeping == NULL) {
        PyErr_SetString(PyExc_ValueError, "this Futex was made without a sleeping flag");
        return NULL;
    }
    PyObject *ident;
    int found = thread_armed(self, &ident);
    if (found < 0)
        return NULL;
    if (!found) {
        if (PySet_Add(self->armed, ident) < 0) {
            Py_DECREF(ident);
            return NULL;
        }
        self->sleepers++;
        STORE(self->sleeping, 1, relaxed);
    }
    Py_DECREF(ident);
    /* the flag before the caller's next look (ring.py's Dekker step, the waiter's side) */
    atomic_thread_fence(memory_order_seq_cst);
    Py_RETURN_NONE;
}

/* the calling thread is awake: publishers need not ring for it any more */
static int
disarm_thread(Futex *self)
{
    if (self->sleepers == 0) /* no thread is armed: the usual case when work is found */
        return 0;
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL)
        return -1;
    int removed = PySet_Discard(self->armed, ident);
    Py_DECREF(ident);
    if (removed < 0)
        return -1;
    if (removed && --self->sleepers == 0)
        STORE(self->sleeping, 0, relaxed);
    return 0;
}

static PyObject *
Futex_disarm(Futex *self, PyObject *unused)
{
    if (disarm_thread(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Futex_armed(Futex *self, PyObject *unused)
{
    if (self->sleepers == 0)
        Py_RETURN_FALSE;
    PyObject *ident;
    int found = thread_armed(self, &ident);
    if (found < 0)
        return NULL;
    Py_DECREF(ident);
    return PyBool_FromLong(found);
}

static PyObject *
Futex_ring(Futex *self, PyObject *unused)
{
    futex_ring(self->word);
    Py_RETURN_NONE;
}

/* wait(expected, timeout_sec): as _libc.futex_waiter's wait; the GIL is released. */
static PyObject *
Futex_wait(Futex *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs_ok("wait", nargs, 2, 2))
        return NULL;
    unsigned long expected = PyLong_AsUnsignedLongMask(args[0]);
    if (PyErr_Occurred())
        return NULL;
    struct timespec timeout, *limit = NULL;
    if (args[1] != Py_None) {
        double sec = PyFloat_AsDouble(args[1]);
        if (sec == -1.0 && PyErr_Occurred())
            return NULL;
        /* as _libc.futex_waiter: max(0, int(timeout_sec * 1e9)) nanoseconds */
        if (isnan(sec)) {
            PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
            return NULL;
        }
        if (isinf(sec)) {
            PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
            return NULL;
        }
        if (sec <= 0) {
            timeout.tv_sec = 0, timeout.tv_nsec = 0;
        } else if (sec >= 9e9) { /* past what a long long of nanoseconds holds: whole seconds */
            timeout.tv_sec = sec < 9e18 ? (time_t)sec : (time_t)9e18;
            timeout.tv_nsec = 0;
        } else {
            long long ns = (long long)(sec * 1e9);
            timeout.tv_sec = ns / 1000000000;
            timeout.tv_nsec = ns % 1000000000;
        }
        limit = &timeout;
    }
    long r;
    int err;
    Py_BEGIN_ALLOW_THREADS
    r = syscall(SYS_futex, self->word, FUTEX_WAIT, (uint32_t)expected, limit, NULL, 0);
    err = errno;
    Py_END_ALLOW_THREADS
    if (r == -1 && err != EAGAIN && err != ETIMEDOUT && err != EINTR) {
        errno = err;
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "futex(FUTEX_WAIT)");
    }
    Py_RETURN_NONE;
}

/* sleep(seen, timeout_sec): Doorbell.wait: arm and return if this thread is not armed
 * (the caller looks once more); else wait while the word equals seen, then disarm. */
static PyObject *
Futex_sleep(Futex *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs_ok("sleep", nargs, 2, 2))
        return NULL;
    int found = 0;
    if (self->sleepers) {
        PyObject *ident;
        found = thread_armed(self, &ident);
        if (found < 0)
            return NULL;
        Py_DECREF(ident);
    }
    if (!found)
        return Futex_arm(self, NULL);
    PyObject *result = Futex_wait(self, args, nargs);
    if (disarm_thread(self) < 0) /* also after an error, as Doorbell.wait's finally */
        Py_CLEAR(result);
    return result;
}

static PyObject *
Futex_value(Futex *self, PyObject *unused)
{
    return PyLong_FromUnsignedLong(LOAD(self->word, acquire));
}

static PyMethodDef Futex_methods[] = {
    {"ring", (PyCFunction)Futex_ring, METH_NOARGS, "add one to the word and wake every waiter"},
    {"wait", (PyCFunction)(void (*)(void))Futex_wait, METH_FASTCALL,
     "wait(expected, timeout_sec): sleep while the word equals expected"},
    {"value", (PyCFunction)Futex_value, METH_NOARGS, "the word"},
    {"arm", (PyCFunction)Futex_arm, METH_NOARGS,
     "arm(): count this thread as one that may sleep (sets the sleeping flag), then fence"},
    {"disarm", (PyCFunction)Futex_disarm, METH_NOARGS, "disarm(): this thread is awake"},
    {"armed", (PyCFunction)Futex_armed, METH_NOARGS, "armed(): whether this thread is armed"},
    {"sleep", (PyCFunction)(void (*)(void))Futex_sleep, METH_FASTCALL,
     "sleep(seen, timeout_sec): arm and return if not armed, else wait and disarm"},
    {NULL}};

static PyMemberDef Futex_members[] = {
    {"sleepers", T_LONGLONG, offsetof(Futex, sleepers), READONLY, "threads armed now"},
    {NULL}};

static PyType_Slot Futex_slots[] = {
    {Py_tp_new, Futex_new},
    {Py_tp_dealloc, Futex_dealloc},
    {Py_tp_methods, Futex_methods},
    {Py_tp_members, Futex_members},
    {Py_tp_doc, "Futex(address, sleeping=0): a shared 32-bit futex word (a process's doorbell) "
                "and its sleeping flag."},
    {0, NULL}};

static PyType_Spec Futex_spec = {"agnoshm._native._ring.Futex", sizeof(Futex), 0,
                                 Py_TPFLAGS_DEFAULT, Futex_slots};

/* ------------------------------------------------------------------------------ module */

static PyObject *
full_fence(PyObject *module, PyObject *unused)
{
    atomic_thread_fence(memory_order_seq_cst);
    Py_RETURN_NONE;
}

static PyObject *
set_faults(PyObject *module, PyObject *faults)
{
    PyObject *old = faults_module;
    Py_INCREF(faults);
    faults_module = faults;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"full_fence", full_fence, METH_NOARGS, "order every earlier store before every later load"},
    {"set_faults", set_faults, METH_O, "set_faults(agnoshm.faults): the fault points' module"},
    {NULL}};

static int
add_type(PyObject *module, PyType_Spec *spec)
{
    PyObject *type = PyType_FromSpec(spec);
    if (type == NULL)
        return -1;
    const char *name = strrchr(spec->name, '.') + 1;
    int r = PyModule_AddObject(module, name, type);
    if (r < 0)
        Py_DECREF(type);
    return r;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "agnoshm._native._ring",
    "The per-message steps of agnoshm/transport/ring.py's protocol, in C.", -1, module_methods};

PyMODINIT_FUNC
PyInit__ring(void)
{
    struct {
        PyObject **at;
        const char *text;
    } names[] = {{&str_armed, "ARMED"}, {&str_address, "address"}, {&str_size, "size"},
                 {&str_destroyed, "destroyed"}, {&str_held, "_held"},
                 {&str_withdrawn, "_withdrawn"}, {&str_unpinned, "unpinned"},
                 {&str_pinned, "_pinned"}, {&str_pinned_blocks, "_pinned_blocks"},
                 {&str_spare_roots, "_spare_roots"}, {&str_root_size, "_root_size"}, {&str_root_address, "_root_address"},
                 {&str_publish_checked, "_publish_checked"},
                 {&str_refresh_subscriptions, "_refresh_subscriptions"},
                 {&str_free_blocks, "_free_blocks"}, {&str_view_owner, "_owner"},
                 {&str_view_address, "_address"}, {&str_view_buf, "_buf"},
                 {&str_view_base, "_base"}, {&str_view_end, "_end"}, {&str_buffer, "buffer"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].at = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Region_type = PyType_FromSpec(&Region_spec);
    if (Region_type == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(Region_type);
    if (PyModule_AddObject(module, "Region", Region_type) < 0) {
        Py_DECREF(Region_type);
        Py_DECREF(module);
        return NULL;
    }
    Mapping_type = PyType_FromSpec(&Mapping_spec);
    Lease_type = PyType_FromSpec(&Lease_spec);
    if (Mapping_type == NULL || Lease_type == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(Mapping_type);
    Py_INCREF(Lease_type);
    /* receive.Lease says False: numpy reads a received array through this one's buffer */
    if (PyObject_SetAttrString(Lease_type, "exports_pool", Py_True) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddObject(module, "Mapping", Mapping_type) < 0 ||
        PyModule_AddObject(module, "Lease", Lease_type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (add_type(module, &Writer_spec) || add_type(module, &Reader_spec) ||
        add_type(module, &Futex_spec) || add_type(module, &ReceivedArray_spec) ||
        (PoolSpan_type = PyType_FromSpec(&PoolSpan_spec)) == NULL ||
        agnoshm_add_block_cache(module) || agnoshm_add_loan(module) ||
        PyModule_AddIntConstant(module, "HELD", HELD) ||
        PyModule_AddIntConstant(module, "MOVED", MOVED)) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(PoolSpan_type); /* kept: Loan.alloc_sequence makes them */
    if (PyModule_AddObject(module, "PoolSpan", PoolSpan_type) < 0) {
        Py_DECREF(PoolSpan_type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
