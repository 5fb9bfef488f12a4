"""The libc boundary: the signature table, the errcheck helpers, futexes, robust mutexes."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import threading

import pytest
from workers import TIMEOUT, wait_until

from agnoshm import _libc
from agnoshm.registry.lock import RobustLock, initialize_mutex


def _address_of(buffer) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


# -- the signature table ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_libc._SIGNATURES))
def test_signature_is_applied_to_the_loaded_function(name):
    argtypes, restype, errcheck = _libc._SIGNATURES[name]
    sut = getattr(_libc.libc, name)
    assert sut.restype is restype
    if argtypes is not None:
        assert list(sut.argtypes) == list(argtypes)
    if errcheck is not None:
        assert sut.errcheck is errcheck


def test_every_function_returning_a_pointer_has_a_pointer_restype():
    assert _libc._SIGNATURES["mmap"][1] is ctypes.c_void_p
    assert _libc.mmap.restype is ctypes.c_void_p


def test_loader_turns_a_missing_symbol_into_import_error():
    with pytest.raises(ImportError, match="glibc"):
        _libc._load({"agnoshm_no_such_symbol": ([], ctypes.c_int, None)})


# -- errcheck helpers, with a faked errno ------------------------------------------------


@pytest.fixture
def fake_errno(monkeypatch):
    """Make ``ctypes.get_errno`` return a chosen value (pyudev's stale-errno trick)."""

    def set_errno(value: int) -> None:
        monkeypatch.setattr(ctypes, "get_errno", lambda: value)

    return set_errno


def test_check_minus_one_raises_the_errno_subclass_with_the_object_named(fake_errno):
    fake_errno(errno.ENOENT)
    with pytest.raises(FileNotFoundError) as info:
        _libc._check_minus_one(-1, _libc.shm_open, (b"/agnoshm-test-name", 0, 0))
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "shm_open(/agnoshm-test-name)"


@pytest.mark.parametrize("err,exception", [
    (errno.EEXIST, FileExistsError),
    (errno.EACCES, PermissionError),
    (errno.EINTR, InterruptedError),
    (errno.EAGAIN, BlockingIOError),
    (errno.ENOSPC, OSError),
])
def test_check_minus_one_maps_each_errno_to_its_builtin_exception(fake_errno, err, exception):
    fake_errno(err)
    with pytest.raises(exception) as info:
        _libc._check_minus_one(-1, _libc.mq_close, (3,))
    assert info.value.errno == err
    assert info.value.strerror == os.strerror(err)
    assert info.value.filename == "mq_close"


def test_check_minus_one_ignores_a_stale_errno_on_success(fake_errno):
    fake_errno(errno.ENOENT)
    assert _libc._check_minus_one(0, _libc.shm_unlink, (b"/x",)) == 0
    assert _libc._check_minus_one(7, _libc.shm_open, (b"/x", 0, 0)) == 7


def test_check_map_failed_raises_on_map_failed_with_the_address_named(fake_errno):
    fake_errno(errno.ENOMEM)
    with pytest.raises(OSError) as info:
        _libc._check_map_failed(_libc.MAP_FAILED, _libc.mmap, (0x200000, 4096, 0, 0, -1, 0))
    assert info.value.errno == errno.ENOMEM
    assert info.value.filename == "mmap(0x200000)"


def test_check_map_failed_treats_null_as_failure(fake_errno):
    fake_errno(errno.EINVAL)
    with pytest.raises(OSError) as info:
        _libc._check_map_failed(None, _libc.mmap, (None, 4096, 0, 0, -1, 0))
    assert info.value.errno == errno.EINVAL
    assert info.value.filename == "mmap"


def test_check_map_failed_returns_an_address_despite_a_stale_errno(fake_errno):
    fake_errno(errno.ENOMEM)
    assert _libc._check_map_failed(0x7F0000000000, _libc.mmap, (None, 4096, 0, 0, -1, 0)) \
        == 0x7F0000000000


def test_check_errno_return_passes_zero_and_eownerdead(fake_errno):
    fake_errno(errno.EINVAL)  # pthread functions never look at errno
    assert _libc._check_errno_return(0, _libc.pthread_mutex_lock, (0,)) == 0
    assert _libc._check_errno_return(errno.EOWNERDEAD, _libc.pthread_mutex_lock, (0,)) \
        == errno.EOWNERDEAD


@pytest.mark.parametrize("err,exception", [
    (errno.EINVAL, OSError), (errno.EPERM, PermissionError), (errno.ETIMEDOUT, TimeoutError),
])
def test_check_errno_return_raises_the_returned_error_number(fake_errno, err, exception):
    fake_errno(0)  # the result is the error, errno is irrelevant
    with pytest.raises(exception) as info:
        _libc._check_errno_return(err, _libc.pthread_mutex_unlock, (0,))
    assert info.value.errno == err
    assert info.value.filename == "pthread_mutex_unlock"


# -- real failing calls -------------------------------------------------------------------


def test_shm_open_of_a_missing_name_raises_file_not_found_naming_it():
    name = f"/agnoshm-test-missing-{os.getpid()}"
    with pytest.raises(FileNotFoundError) as info:
        _libc.shm_open(name.encode(), os.O_RDONLY, 0)
    assert info.value.errno == errno.ENOENT
    assert name in info.value.filename
    assert name in str(info.value)


def test_shm_unlink_of_a_missing_name_raises_file_not_found():
    with pytest.raises(FileNotFoundError):
        _libc.shm_unlink(f"/agnoshm-test-missing-{os.getpid()}".encode())


def test_mmap_over_an_existing_mapping_with_noreplace_raises_file_exists_naming_the_address():
    page = mmap.mmap(-1, mmap.PAGESIZE)
    address = _address_of(page)
    flags = _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS | _libc.MAP_FIXED_NOREPLACE
    try:
        with pytest.raises(FileExistsError) as info:
            _libc.mmap(address, mmap.PAGESIZE, _libc.PROT_READ, flags, -1, 0)
        assert info.value.filename == f"mmap(0x{address:x})"
    finally:
        page.close()


def test_pthread_call_with_a_bad_argument_raises_instead_of_returning():
    mutex = ctypes.create_string_buffer(_libc.SIZEOF_PTHREAD_MUTEX_T)
    initialize_mutex(ctypes.addressof(mutex))
    with pytest.raises(PermissionError) as info:  # error-checking mutex, not ours to unlock
        _libc.pthread_mutex_unlock(ctypes.addressof(mutex))
    assert info.value.errno == errno.EPERM


def test_mq_timedreceive_returns_minus_one_when_nothing_arrives():
    name = f"/agnoshm-test-mq-{os.getpid()}".encode()
    attr = _libc.mq_attr(mq_flags=0, mq_maxmsg=1, mq_msgsize=16)
    mqd = _libc.mq_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, ctypes.byref(attr))
    try:
        buffer = ctypes.create_string_buffer(16)
        assert _libc.mq_timedreceive(mqd, buffer, 16, 0.0) == -1
        _libc.mq_send(mqd, b"ring", 4, 0)
        assert _libc.mq_timedreceive(mqd, buffer, 16, 0.0) == 4
        assert buffer.raw[:4] == b"ring"
    finally:
        _libc.mq_close(mqd)
        _libc.mq_unlink(name)


# -- futex helpers --------------------------------------------------------------------


def test_futex_ringer_increments_atomically_from_two_threads():
    word = ctypes.c_uint32(0)
    address = ctypes.addressof(word)
    start = threading.Barrier(2)

    def ring_10000_times():
        ring = _libc.futex_ringer(address)
        start.wait(TIMEOUT)
        for _ in range(10000):
            ring()

    threads = [threading.Thread(target=ring_10000_times) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()
    assert word.value == 20000


def test_futex_waiter_returns_at_once_when_the_word_already_differs():
    word = ctypes.c_uint32(5)
    _libc.futex_waiter(ctypes.addressof(word))(4, None)  # would hang if it slept


def test_futex_setter_stores_its_value_whatever_the_word_held():
    word = ctypes.c_uint32(0)
    set_one = _libc.futex_setter(ctypes.addressof(word), 1)
    set_one()
    assert word.value == 1
    set_one()
    assert word.value == 1
    word.value = 7
    set_one()
    assert word.value == 1


def _blocked_in_futex_wait(tid: int, address: int) -> bool:
    """True when thread ``tid`` sits in ``futex(address, FUTEX_WAIT, ...)``."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return (len(fields) > 2 and fields[0] == str(_libc.SYS_futex)
            and int(fields[1], 16) == address and int(fields[2], 16) & 0x7F == _libc.FUTEX_WAIT)


def test_futex_ringer_wakes_a_thread_blocked_in_futex_wait():
    if not os.access(f"/proc/self/task/{threading.get_native_id()}/syscall", os.R_OK):
        pytest.skip("needs /proc/<pid>/task/<tid>/syscall to see that the waiter sleeps")
    word = ctypes.c_uint32(0)
    address = ctypes.addressof(word)
    seen_after_wait = []

    def waiter():
        _libc.futex_waiter(address)(0, 10 * TIMEOUT)  # the timeout is only a watchdog
        seen_after_wait.append(word.value)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    wait_until(lambda: _blocked_in_futex_wait(thread.native_id, address),
               what="the waiter to block in futex_wait")
    _libc.futex_ringer(address)()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "futex_ringer did not wake the waiter"
    assert seen_after_wait == [1]


# -- robust mutexes ----------------------------------------------------------------------


def test_robust_mutex_of_a_dead_owner_is_repaired_exactly_once_by_the_next_locker():
    page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED)
    address = _address_of(page)
    try:
        initialize_mutex(address)
        child = os.fork()
        if child == 0:  # the owner: lock and die without unlocking
            try:
                _libc.pthread_mutex_lock(address)
            finally:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        repairs = []
        sut = RobustLock(address, lambda: repairs.append(1))
        with sut:
            assert repairs == [1]
        with sut:
            pass
        assert repairs == [1], "the mutex was not marked consistent after the repair"
        assert _libc.pthread_mutex_trylock(address) == 0
        _libc.pthread_mutex_unlock(address)
    finally:
        page.close()


def test_robust_lock_without_a_dead_owner_never_repairs():
    mutex = ctypes.create_string_buffer(_libc.SIZEOF_PTHREAD_MUTEX_T)
    repairs = []
    initialize_mutex(ctypes.addressof(mutex))
    sut = RobustLock(ctypes.addressof(mutex), lambda: repairs.append(1))
    for _ in range(3):
        with sut:
            # held by this thread: an error-checking mutex answers EDEADLK
            assert _libc.pthread_mutex_trylock(ctypes.addressof(mutex)) in (errno.EBUSY, errno.EDEADLK)
    assert repairs == []
