/* agnoshm._native._ring.BlockCache: the pool allocator's fast path in C.
 *
 * The twin of agnoshm/memory/spares.py's BlockCache (the reference): the same
 * methods, the same results, the same KeyError for a block freed twice.  It
 * keeps freed blocks by requested size for the next message of that size, and
 * knows every live block's requested size.
 *
 * No lock: each step on the kept blocks runs no Python code (dict and list
 * operations on ints), so it holds the GIL from start to end and other threads
 * see it whole.  Python runs only in the allocator's own functions, called after
 * the step (allocate_new, give_back), and in PyList_New (a collection may run
 * finalizers, which may free blocks into this cache): that is called before
 * anything is read, or the state is read again after it.
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030A0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *sizes; /* dict: address -> requested size, of live blocks */
    PyObject *spare; /* dict: requested size -> list of kept addresses */
    PyObject *allocate_new; /* allocate_new(nbytes) -> address: the allocator's own block */
    PyObject *give_back;    /* give_back(address): a block the cache has no room for */
    long long spare_bytes;
    Py_ssize_t per_size;
    long long max_bytes;
} BlockCache;

static PyObject *
BlockCache_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"per_size", "max_bytes", "allocate_new", "give_back", NULL};
    Py_ssize_t per_size;
    long long max_bytes;
    PyObject *allocate_new, *give_back;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nLOO", names, &per_size, &max_bytes,
                                     &allocate_new, &give_back))
        return NULL;
    if (!PyCallable_Check(allocate_new) || !PyCallable_Check(give_back)) {
        PyErr_SetString(PyExc_TypeError, "allocate_new and give_back must be callable");
        return NULL;
    }
    if (per_size < 0 || max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "per_size and max_bytes must not be negative");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    BlockCache *self = (BlockCache *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->sizes = PyDict_New();
    self->spare = PyDict_New();
    if (self->sizes == NULL || self->spare == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(allocate_new);
    self->allocate_new = allocate_new;
    Py_INCREF(give_back);
    self->give_back = give_back;
    self->per_size = per_size;
    self->max_bytes = max_bytes;
    return (PyObject *)self;
}

/* The allocator holds its cache, and the cache the allocator's bound methods: a cycle
 * that the collector must see. */
static int
BlockCache_traverse(BlockCache *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sizes);
    Py_VISIT(self->spare);
    Py_VISIT(self->allocate_new);
    Py_VISIT(self->give_back);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
BlockCache_clear(BlockCache *self)
{
    Py_CLEAR(self->allocate_new);
    Py_CLEAR(self->give_back);
    return 0;
}

static void
BlockCache_dealloc(BlockCache *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_XDECREF(self->sizes);
    Py_XDECREF(self->spare);
    Py_XDECREF(self->allocate_new);
    Py_XDECREF(self->give_back);
    freefunc free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free(self);
    Py_DECREF(type);
}

/* a kept block of exactly ``nbytes``, now live; NULL without an exception: none kept */
static PyObject *
take_kept(BlockCache *self, PyObject *nbytes)
{
    PyObject *spare = PyDict_GetItemWithError(self->spare, nbytes);
    if (spare == NULL)
        return NULL;
    Py_ssize_t n = PyList_Size(spare);
    if (n <= 0)
        return NULL;
    long long size = PyLong_AsLongLong(nbytes);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    PyObject *address = PyList_GetItem(spare, n - 1);
    if (address == NULL)
        return NULL;
    Py_INCREF(address);
    /* live first: if that fails (no memory) the block stays kept, nothing is lost */
    if (PyDict_SetItem(self->sizes, address, nbytes) < 0 ||
        PySequence_DelItem(spare, n - 1) < 0) {
        Py_DECREF(address);
        return NULL;
    }
    self->spare_bytes -= size;
    return address;
}

static PyObject *
BlockCache_allocate(BlockCache *self, PyObject *nbytes)
{
    PyObject *address = take_kept(self, nbytes);
    if (address != NULL || PyErr_Occurred())
        return address;
    /* none kept: the allocator's own block (Python, under its lock; it may drain) */
    address = PyObject_CallFunctionObjArgs(self->allocate_new, nbytes, NULL);
    if (address == NULL)
        return NULL;
    if (PyDict_SetItem(self->sizes, address, nbytes) < 0) {
        Py_DECREF(address);
        return NULL;
    }
    return address;
}

static PyObject *
BlockCache_free(BlockCache *self, PyObject *address)
{
    PyObject *nbytes = PyDict_GetItemWithError(self->sizes, address);
    if (nbytes == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, address);
        return NULL;
    }
    Py_INCREF(nbytes);
    long long size = PyLong_AsLongLong(nbytes);
    if (size == -1 && PyErr_Occurred())
        goto fail;
    PyObject *spare = PyDict_GetItemWithError(self->spare, nbytes);
    if (spare == NULL) {
        if (PyErr_Occurred())
            goto fail;
        PyObject *fresh = PyList_New(0); /* may collect: read the dict again after it */
        if (fresh == NULL)
            goto fail;
        spare = PyDict_GetItemWithError(self->spare, nbytes);
        if (spare == NULL) {
            if (PyErr_Occurred() || PyDict_SetItem(self->spare, nbytes, fresh) < 0) {
                Py_DECREF(fresh);
                goto fail;
            }
            spare = fresh;
        }
        Py_DECREF(fresh); /* the dict holds it (or an equal list made meanwhile) */
    }
    if (PyDict_DelItem(self->sizes, address) < 0)
        goto fail;
    if (PyList_Size(spare) < self->per_size && self->spare_bytes + size <= self->max_bytes) {
        if (PyList_Append(spare, address) < 0) {
            PyDict_SetItem(self->sizes, address, nbytes); /* still live: the caller may retry */
            goto fail;
        }
        self->spare_bytes += size;
        Py_DECREF(nbytes);
        Py_RETURN_NONE;
    }
    Py_DECREF(nbytes);
    return PyObject_CallFunctionObjArgs(self->give_back, address, NULL); /* no room */
fail:
    Py_DECREF(nbytes);
    return NULL;
}

/* every kept address, in one new list; forget them too when ``drain`` */
static PyObject *
kept_addresses(BlockCache *self, int drain)
{
    PyObject *addresses = PyList_New(0); /* before reading: it may collect */
    if (addresses == NULL)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *size, *spare;
    while (PyDict_Next(self->spare, &pos, &size, &spare)) {
        Py_ssize_t n = PyList_Size(spare);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyList_Append(addresses, PyList_GetItem(spare, i)) < 0) {
                Py_DECREF(addresses);
                return NULL;
            }
        }
    }
    if (drain) {
        PyDict_Clear(self->spare);
        self->spare_bytes = 0;
    }
    return addresses;
}

static PyObject *
BlockCache_drain(BlockCache *self, PyObject *unused)
{
    return kept_addresses(self, 1);
}

static PyObject *
BlockCache_kept(BlockCache *self, PyObject *unused)
{
    return kept_addresses(self, 0);
}

static PyObject *
BlockCache_size_of(BlockCache *self, PyObject *address)
{
    PyObject *nbytes = PyDict_GetItemWithError(self->sizes, address);
    if (nbytes == NULL)
        return PyErr_Occurred() ? NULL : PyLong_FromLong(0);
    Py_INCREF(nbytes);
    return nbytes;
}

static PyMethodDef BlockCache_methods[] = {
    {"allocate", (PyCFunction)BlockCache_allocate, METH_O,
     "allocate(nbytes): a kept block of exactly nbytes, else allocate_new(nbytes)'s"},
    {"free", (PyCFunction)BlockCache_free, METH_O,
     "free(address): keep a live block for its size, or give_back(address); "
     "KeyError if not live"},
    {"drain", (PyCFunction)BlockCache_drain, METH_NOARGS,
     "drain(): forget every kept block and return their addresses"},
    {"kept", (PyCFunction)BlockCache_kept, METH_NOARGS, "kept(): the kept blocks' addresses"},
    {"size_of", (PyCFunction)BlockCache_size_of, METH_O,
     "size_of(address): a live block's requested size, 0 if not live"},
    {NULL}};

static PyMemberDef BlockCache_members[] = {
    {"spare_bytes", T_LONGLONG, offsetof(BlockCache, spare_bytes), READONLY,
     "bytes of the kept blocks"},
    {"per_size", T_PYSSIZET, offsetof(BlockCache, per_size), READONLY,
     "blocks kept at most for one size"},
    {"max_bytes", T_LONGLONG, offsetof(BlockCache, max_bytes), READONLY,
     "bytes kept at most over all sizes"},
    {NULL}};

static PyType_Slot BlockCache_slots[] = {
    {Py_tp_new, BlockCache_new},
    {Py_tp_dealloc, BlockCache_dealloc},
    {Py_tp_traverse, BlockCache_traverse},
    {Py_tp_clear, BlockCache_clear},
    {Py_tp_methods, BlockCache_methods},
    {Py_tp_members, BlockCache_members},
    {Py_tp_doc, "BlockCache(per_size, max_bytes, allocate_new, give_back): freed blocks kept "
                "by size, live blocks' sizes (memory/spares.py's twin)."},
    {0, NULL}};

static PyType_Spec BlockCache_spec = {"agnoshm._native._ring.BlockCache", sizeof(BlockCache), 0,
                                      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                                      BlockCache_slots};

int
agnoshm_add_block_cache(PyObject *module)
{
    PyObject *type = PyType_FromSpec(&BlockCache_spec);
    if (type == NULL)
        return -1;
    if (PyModule_AddObject(module, "BlockCache", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}
