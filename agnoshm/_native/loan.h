/* agnoshm._native._ring.Loan, shared by ring.c (which makes and publishes loans) and loan.c
 * (the type).  See loan.c. */
#ifndef AGNOSHM_LOAN_H
#define AGNOSHM_LOAN_H

#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    PyObject *port;      /* the PublisherPort that loaned it */
    PyObject *pool;      /* the pool that holds it */
    PyObject *allocator; /* the port's allocator (allocate, free) */
    PyObject *blocks;    /* list: the root, then every further block */
    PyObject *arrays;    /* NULL (None), or a list of weak references to writable arrays */
    PyObject *weakrefs;
    uint64_t address, size;
    uint64_t pool_address, pool_size; /* the pool's bounds */
    char valid;  /* not yet published nor discarded */
    char pinned; /* published while arrays over it lived */
} Loan;

extern PyObject *agnoshm_loan_type;

/* Adds the Loan type to the module (-1 with an exception set on failure). */
int agnoshm_add_loan(PyObject *module);

/* A new loan of [address, address + size) (a new reference, or NULL with an exception). */
PyObject *agnoshm_new_loan(PyObject *port, PyObject *pool, PyObject *allocator,
                           uint64_t pool_address, uint64_t pool_size, uint64_t address,
                           uint64_t size);

/* ring.c: a PoolSpan over [address, address + nbytes) holding owner (a new reference). */
PyObject *agnoshm_pool_span(PyObject *owner, uint64_t address, Py_ssize_t nbytes, int writable);

/* Loan._freeze_arrays: 1 if an array is still alive, 0 if none, -1 with an exception. */
int agnoshm_loan_freeze_arrays(Loan *loan);

#endif
