/* agnoshm._native._ring.Loan: the pool blocks of one message being written, in C.
 *
 * The twin of agnoshm/transport/loan.py's Loan (the reference): the same
 * attributes and methods with the same results and errors.  A native port's
 * loan() (ring.c's Writer.loan) makes these, and its send() reads them in place.
 * What the Python class does in __del__ (report a pinned message's end, give an
 * unpublished loan's blocks back) happens here when the loan is deallocated:
 * one message no longer runs a Python frame for it, nor for allocate() and
 * track(), which every alloc() calls.
 *
 * Not collected by the cycle collector: a loan refers to its port, pool,
 * allocator, and lists of ints and weak references, none of which refers back.
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030A0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "loan.h"

PyObject *agnoshm_loan_type;

static PyObject *str_runtime, *str_closed, *str_unpinned, *str_allocate, *str_free,
    *str_allocate_after_reclaim, *str_remove, *str_flags, *str_writeable;

/* agnoshm.errors.<name> (a new reference), imported on first use; an exception already set
 * stays set. */
static PyObject *
error_class(const char *name)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *errors = PyImport_ImportModule("agnoshm.errors");
    PyObject *cls = errors == NULL ? NULL : PyObject_GetAttrString(errors, name);
    Py_XDECREF(errors);
    if (cls == NULL) {
        Py_XDECREF(et), Py_XDECREF(ev), Py_XDECREF(tb);
        return NULL;
    }
    PyErr_Restore(et, ev, tb);
    return cls;
}

PyObject *
agnoshm_new_loan(PyObject *port, PyObject *pool, PyObject *allocator, uint64_t pool_address,
                 uint64_t pool_size, uint64_t address, uint64_t size)
{
    PyObject *blocks = PyList_New(1);
    if (blocks == NULL)
        return NULL;
    PyObject *root = PyLong_FromUnsignedLongLong(address);
    if (root == NULL) {
        Py_DECREF(blocks);
        return NULL;
    }
    PyList_SetItem(blocks, 0, root);
    PyTypeObject *type = (PyTypeObject *)agnoshm_loan_type;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Loan *self = (Loan *)alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(blocks);
        return NULL;
    }
    Py_INCREF(port), Py_INCREF(pool), Py_INCREF(allocator);
    self->port = port, self->pool = pool, self->allocator = allocator;
    self->blocks = blocks;
    self->address = address, self->size = size;
    self->pool_address = pool_address, self->pool_size = pool_size;
    self->valid = 1;
    return (PyObject *)self;
}

/* discard(): an unpublished loan's blocks go back to the pool. */
static int
loan_discard(Loan *self)
{
    if (!self->valid)
        return 0;
    self->valid = 0;
    PyObject *blocks = self->blocks;
    Py_ssize_t n = (blocks != NULL && PyList_Check(blocks)) ? PyList_Size(blocks) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyObject_CallMethodObjArgs(self->allocator, str_free,
                                                 PyList_GetItem(blocks, i), NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    PyObject *empty = PyList_New(0);
    if (empty == NULL)
        return -1;
    PyObject *old = self->blocks;
    self->blocks = empty;
    Py_XDECREF(old);
    return 0;
}

static PyObject *
Loan_discard(Loan *self, PyObject *unused)
{
    if (loan_discard(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void
Loan_dealloc(Loan *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* loan.py's Loan.__del__: errors here have nowhere to go */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (self->pinned) { /* the last array kept from this message is gone */
        PyObject *unpinned = PyObject_GetAttr(self->port, str_unpinned);
        PyObject *address = PyLong_FromUnsignedLongLong(self->address);
        if (unpinned == NULL || address == NULL || PyList_Append(unpinned, address) < 0)
            PyErr_Clear();
        Py_XDECREF(unpinned);
        Py_XDECREF(address);
    }
    if (self->valid && loan_discard(self) < 0) /* borrowed, never published, dropped */
        PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    Py_XDECREF(self->port);
    Py_XDECREF(self->pool);
    Py_XDECREF(self->allocator);
    Py_XDECREF(self->blocks);
    Py_XDECREF(self->arrays);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

/* 1 if agnoshm shut down in this process (port.runtime.closed), 0 if not, -1 on error. */
static int
loan_closed(Loan *self)
{
    PyObject *runtime = PyObject_GetAttr(self->port, str_runtime);
    if (runtime == NULL)
        return -1;
    PyObject *closed = PyObject_GetAttr(runtime, str_closed);
    Py_DECREF(runtime);
    if (closed == NULL)
        return -1;
    int r = PyObject_IsTrue(closed);
    Py_DECREF(closed);
    return r;
}

static PyObject *
Loan_get_closed(Loan *self, void *closure)
{
    int r = loan_closed(self);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* allocate(nbytes) -> address: a further block of this message. */
static PyObject *
Loan_allocate(Loan *self, PyObject *nbytes)
{
    int closed = self->valid ? loan_closed(self) : 1;
    if (closed < 0)
        return NULL;
    if (closed) {
        PyObject *cls = error_class("MessageInvalidatedError");
        if (cls != NULL) {
            PyErr_SetString(cls, "this loan was published, or agnoshm shut down");
            Py_DECREF(cls);
        }
        return NULL;
    }
    PyObject *address = PyObject_CallMethodObjArgs(self->allocator, str_allocate, nbytes, NULL);
    if (address == NULL) {
        PyObject *exhausted = error_class("PoolExhaustedError");
        if (exhausted == NULL)
            return NULL;
        int matches = PyErr_ExceptionMatches(exhausted);
        Py_DECREF(exhausted);
        if (!matches)
            return NULL;
        PyErr_Clear();
        address = PyObject_CallMethodObjArgs(self->port, str_allocate_after_reclaim, nbytes,
                                             NULL);
        if (address == NULL)
            return NULL;
    }
    if (PyList_Append(self->blocks, address) < 0) {
        Py_DECREF(address);
        return NULL;
    }
    return address;
}

static PyObject *Loan_free(Loan *self, PyObject *address);

/* 0 if a sequence's triple (data, size, capacity) at `at` lies in the pool, else -1 with
 * ValueError naming `who`. */
static int
check_triple(Loan *self, uint64_t at, const char *who)
{
    if (at >= self->pool_address && self->pool_size >= 24 &&
        at - self->pool_address <= self->pool_size - 24)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s: a triple at 0x%llx outside the pool", who,
                 (unsigned long long)at);
    return -1;
}

/* allocate(nbytes) into *address (0), or -1 with an exception set. */
static int
allocate_block(Loan *self, Py_ssize_t nbytes, uint64_t *address)
{
    PyObject *size = PyLong_FromSsize_t(nbytes);
    if (size == NULL)
        return -1;
    PyObject *address_obj = Loan_allocate(self, size);
    Py_DECREF(size);
    if (address_obj == NULL)
        return -1;
    *address = PyLong_AsUnsignedLongLong(address_obj);
    Py_DECREF(address_obj);
    return (*address == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* The triple at `at` points to `count` elements at `address` now; what it pointed to goes
 * back (new before old: a full pool leaves the field as it was).  0, or -1 on error. */
static int
replace_triple(Loan *self, uint64_t at, uint64_t address, Py_ssize_t count)
{
    uint64_t *triple = (uint64_t *)(uintptr_t)at; /* this process's own pool, writable */
    uint64_t old = triple[0];
    triple[0] = address, triple[1] = (uint64_t)count, triple[2] = (uint64_t)count;
    if (!old)
        return 0;
    PyObject *old_obj = PyLong_FromUnsignedLongLong(old);
    PyObject *r = old_obj == NULL ? NULL : Loan_free(self, old_obj);
    Py_XDECREF(old_obj);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* alloc_sequence(triple_at, n, element_size) -> PoolSpan: msg/fields.py's alloc_array for a
 * sequence of pointer-free elements whose rosidl triple (data, size, capacity) lies at
 * triple_at: n elements of new storage, the triple written, the old storage given back (new
 * before old, as replace_storage), and the new bytes as a writable span holding the loan. */
static PyObject *
Loan_alloc_sequence(Loan *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "alloc_sequence(triple_at, n, element_size)");
        return NULL;
    }
    uint64_t at = PyLong_AsUnsignedLongLong(args[0]), address;
    Py_ssize_t n = PyLong_AsSsize_t(args[1]), element_size = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (n < 1 || element_size < 1 || n > PY_SSIZE_T_MAX / element_size) {
        PyErr_Format(PyExc_ValueError, "alloc_sequence: %zd elements of %zd bytes", n,
                     element_size);
        return NULL;
    }
    if (check_triple(self, at, "alloc_sequence") < 0 ||
        allocate_block(self, n * element_size, &address) < 0 ||
        replace_triple(self, at, address, n) < 0)
        return NULL;
    return agnoshm_pool_span((PyObject *)self, address, n * element_size, 1);
}

/* store_sequence(triple_at, data, count): msg/fields.py's sequence setter for bytes or a
 * bytearray of `count` elements: new storage holding a copy of data, the triple at triple_at
 * written, the old storage given back (new before old). */
static PyObject *
Loan_store_sequence(Loan *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "store_sequence(triple_at, data, count)");
        return NULL;
    }
    uint64_t at = PyLong_AsUnsignedLongLong(args[0]), address;
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *data = args[1];
    int is_bytes = PyBytes_Check(data);
    if (!is_bytes && !PyByteArray_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "store_sequence: data must be bytes or a bytearray");
        return NULL;
    }
    Py_ssize_t nbytes = is_bytes ? PyBytes_Size(data) : PyByteArray_Size(data);
    if (nbytes < 1 || count < 1 || count > nbytes) {
        PyErr_Format(PyExc_ValueError, "store_sequence: %zd elements in %zd bytes", count,
                     nbytes);
        return NULL;
    }
    if (check_triple(self, at, "store_sequence") < 0 ||
        allocate_block(self, nbytes, &address) < 0)
        return NULL;
    if (address < self->pool_address || (uint64_t)nbytes > self->pool_size ||
        address - self->pool_address > self->pool_size - (uint64_t)nbytes) {
        PyErr_Format(PyExc_ValueError, "store_sequence: a block at 0x%llx outside the pool",
                     (unsigned long long)address);
        return NULL;
    }
    /* read after allocate, which may run Python: a bytearray may have moved or changed */
    if ((is_bytes ? PyBytes_Size(data) : PyByteArray_Size(data)) != nbytes) {
        PyErr_SetString(PyExc_RuntimeError, "store_sequence: data changed size meanwhile");
        return NULL;
    }
    memcpy((void *)(uintptr_t)address, is_bytes ? PyBytes_AsString(data)
                                                : PyByteArray_AsString(data), (size_t)nbytes);
    if (replace_triple(self, at, address, count) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* free(address): give back one block of this message (re-assigned storage). */
static PyObject *
Loan_free(Loan *self, PyObject *address)
{
    PyObject *r = PyObject_CallMethodObjArgs(self->blocks, str_remove, address, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    return PyObject_CallMethodObjArgs(self->allocator, str_free, address, NULL);
}

/* track(array): remember a writable array over this message; publishing freezes it. */
static PyObject *
Loan_track(Loan *self, PyObject *array)
{
    if (self->arrays == NULL || self->arrays == Py_None) {
        PyObject *arrays = PyList_New(0);
        if (arrays == NULL)
            return NULL;
        PyObject *old = self->arrays;
        self->arrays = arrays;
        Py_XDECREF(old);
    }
    PyObject *ref = PyWeakref_NewRef(array, NULL);
    if (ref == NULL)
        return NULL;
    int r = PyList_Append(self->arrays, ref);
    Py_DECREF(ref);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

int
agnoshm_loan_freeze_arrays(Loan *self)
{
    /* Published bytes belong to the subscribers now: a write through an array the
     * publisher kept would change what they read (invariant 3). */
    PyObject *arrays = self->arrays;
    if (arrays == NULL || arrays == Py_None)
        return 0;
    int alive = 0, r = 0;
    Py_INCREF(arrays);
    Py_ssize_t n = PyList_Check(arrays) ? PyList_Size(arrays) : 0;
    for (Py_ssize_t i = 0; r == 0 && i < n; i++) {
        PyObject *array = PyObject_CallNoArgs(PyList_GetItem(arrays, i)); /* a weakref */
        if (array == NULL) {
            r = -1;
        } else if (array != Py_None) {
            PyObject *flags = PyObject_GetAttr(array, str_flags);
            r = flags == NULL ? -1 : PyObject_SetAttr(flags, str_writeable, Py_False);
            Py_XDECREF(flags);
            alive = 1;
        }
        Py_XDECREF(array);
    }
    Py_DECREF(arrays);
    if (r < 0)
        return -1;
    Py_CLEAR(self->arrays);
    return alive;
}

static PyObject *
Loan_freeze_arrays(Loan *self, PyObject *unused)
{
    int alive = agnoshm_loan_freeze_arrays(self);
    return alive < 0 ? NULL : PyBool_FromLong(alive);
}

static PyMethodDef Loan_methods[] = {
    {"allocate", (PyCFunction)Loan_allocate, METH_O,
     "allocate(nbytes) -> address: a further block; raises once published or shut down"},
    {"free", (PyCFunction)Loan_free, METH_O, "free(address): give back one block"},
    {"alloc_sequence", (PyCFunction)(void (*)(void))Loan_alloc_sequence, METH_FASTCALL,
     "alloc_sequence(triple_at, n, element_size) -> PoolSpan: new storage for a sequence of "
     "pointer-free elements, its triple written, the old storage given back"},
    {"store_sequence", (PyCFunction)(void (*)(void))Loan_store_sequence, METH_FASTCALL,
     "store_sequence(triple_at, data, count): a copy of bytes or a bytearray as a sequence's "
     "new storage, its triple written, the old storage given back"},
    {"track", (PyCFunction)Loan_track, METH_O,
     "track(array): a writable array over the message, read-only once it is published"},
    {"discard", (PyCFunction)Loan_discard, METH_NOARGS,
     "discard(): return an unpublished loan's blocks to the pool"},
    {"_freeze_arrays", (PyCFunction)Loan_freeze_arrays, METH_NOARGS,
     "make the arrays handed out read-only; True if any is still alive"},
    {NULL}};

static PyMemberDef Loan_members[] = {
    {"port", T_OBJECT, offsetof(Loan, port), READONLY, "the publisher port that loaned it"},
    {"pool", T_OBJECT, offsetof(Loan, pool), READONLY, "the pool that holds the message"},
    {"address", T_ULONGLONG, offsetof(Loan, address), READONLY, "its root struct's address"},
    {"size", T_ULONGLONG, offsetof(Loan, size), READONLY, "its root struct's size"},
    {"blocks", T_OBJECT, offsetof(Loan, blocks), 0, "the root and every further block"},
    {"arrays", T_OBJECT, offsetof(Loan, arrays), 0,
     "None, or weak references to the writable arrays handed out"},
    {"valid", T_BOOL, offsetof(Loan, valid), 0, "not yet published nor discarded"},
    {"pinned", T_BOOL, offsetof(Loan, pinned), 0, "published while such arrays lived"},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Loan, weakrefs), READONLY},
    {NULL}};

static PyGetSetDef Loan_getset[] = {
    {"closed", (getter)Loan_get_closed, NULL, "whether agnoshm shut down in this process",
     NULL},
    {NULL}};

static PyType_Slot Loan_slots[] = {
    {Py_tp_dealloc, Loan_dealloc},
    {Py_tp_methods, Loan_methods},
    {Py_tp_members, Loan_members},
    {Py_tp_getset, Loan_getset},
    {Py_tp_doc, "The pool blocks of one message being written (made by Writer.loan)."},
    {0, NULL}};

static PyType_Spec Loan_spec = {"agnoshm._native._ring.Loan", sizeof(Loan), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                Loan_slots};

int
agnoshm_add_loan(PyObject *module)
{
    struct {
        PyObject **at;
        const char *text;
    } names[] = {{&str_runtime, "runtime"}, {&str_closed, "closed"},
                 {&str_unpinned, "unpinned"}, {&str_allocate, "allocate"}, {&str_free, "free"},
                 {&str_allocate_after_reclaim, "allocate_after_reclaim"},
                 {&str_remove, "remove"}, {&str_flags, "flags"}, {&str_writeable, "writeable"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].at = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    agnoshm_loan_type = PyType_FromSpec(&Loan_spec);
    if (agnoshm_loan_type == NULL)
        return -1;
    Py_INCREF(agnoshm_loan_type);
    if (PyModule_AddObject(module, "Loan", agnoshm_loan_type) < 0) {
        Py_DECREF(agnoshm_loan_type);
        return -1;
    }
    return 0;
}
