"""Cross-language zero-copy proof: a C program reads agnoshm messages in place.

This process publishes a ``sensor_msgs/msg/Image`` and a ``nav_msgs/msg/Path``
with agnoshm (shm backend). A C program, compiled with gcc against the headers
that ``rosidl generate -t c`` emits, opens the pool ``/agnocast@<pid>`` with
``shm_open(O_RDONLY)`` and maps it read-only at the pool's own address
(``MAP_FIXED_NOREPLACE``, so it fails instead of landing elsewhere or
clobbering a mapping). It then casts the message address to the generated
struct (``const sensor_msgs__msg__Image *``) and prints what it finds,
following the absolute string and sequence pointers into the pool. Nothing is
serialized or copied: the C side reads the bytes Python wrote, at the same
addresses.

The C program has four modes:

* ``image`` / ``path``: print the message's fields;
* ``write``: write one byte through the message pointer, which must die with
  SIGSEGV because the mapping is read-only;
* ``occupied``: map something at the pool address first; mapping the pool
  there must then fail (``EEXIST``) rather than replace it.

The headers come from the session fixture ``rosidl_c`` (test/msg/conftest.py),
which skips, with the reason, where the tools are missing::

    apt-get install -y rosidl-tools rosidl-generator-c-cpp librosidl-runtime-c-cpp-dev \\
        python3-ament-index gcc
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import agnoshm
from agnoshm.msg.types import default_registry

# The same request as test_layout_against_c.py, so that both share one generation.
PACKAGES = ["builtin_interfaces", "std_msgs", "geometry_msgs", "sensor_msgs", "nav_msgs"]

C_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sensor_msgs/msg/detail/image__struct.h"
#include "nav_msgs/msg/detail/path__struct.h"

static uintptr_t pool_begin, pool_end;

/* Every pointer read from the message must lie in the pool before it is followed. */
static void check(const void *p, size_t n, const char *what) {
  uintptr_t a = (uintptr_t)p;
  if (a < pool_begin || a > pool_end || n > pool_end - a) {
    fprintf(stderr, "%s: [%p, +%zu) is outside the pool\n", what, p, n);
    exit(4);
  }
}

/* A rosidl string: data/size/capacity, NUL-terminated. */
static void print_string(const char *key, const rosidl_runtime_c__String *s) {
  check(s->data, s->size + 1, key);
  printf("%s=%.*s\n", key, (int)s->size, s->data);
  printf("%s.size=%zu\n", key, s->size);
  printf("%s.capacity=%zu\n", key, s->capacity);
  printf("%s.nul=%d\n", key, s->data[s->size] == '\0' && strlen(s->data) == s->size);
}

static void print_image(const sensor_msgs__msg__Image *m) {
  printf("header.stamp.sec=%" PRId32 "\n", m->header.stamp.sec);
  printf("header.stamp.nanosec=%" PRIu32 "\n", m->header.stamp.nanosec);
  print_string("header.frame_id", &m->header.frame_id);
  printf("height=%" PRIu32 "\n", m->height);
  printf("width=%" PRIu32 "\n", m->width);
  print_string("encoding", &m->encoding);
  printf("is_bigendian=%u\n", (unsigned)m->is_bigendian);
  printf("step=%" PRIu32 "\n", m->step);
  printf("data.size=%zu\n", m->data.size);
  printf("data.capacity=%zu\n", m->data.capacity);
  printf("data.ptr=0x%" PRIxPTR "\n", (uintptr_t)m->data.data);
  if (m->data.size == 0) return;
  check(m->data.data, m->data.size, "data");
  printf("data.first=%u\n", (unsigned)m->data.data[0]);
  printf("data.last=%u\n", (unsigned)m->data.data[m->data.size - 1]);
  uint64_t sum = 0;
  for (size_t i = 0; i < m->data.size; i++) sum += (uint64_t)m->data.data[i] * (i % 7 + 1);
  printf("data.sum=%" PRIu64 "\n", sum);
}

static void print_path(const nav_msgs__msg__Path *m) {
  printf("header.stamp.sec=%" PRId32 "\n", m->header.stamp.sec);
  print_string("header.frame_id", &m->header.frame_id);
  printf("poses.size=%zu\n", m->poses.size);
  printf("poses.capacity=%zu\n", m->poses.capacity);
  check(m->poses.data, m->poses.size * sizeof(geometry_msgs__msg__PoseStamped), "poses");
  for (size_t i = 0; i < m->poses.size; i++) {
    const geometry_msgs__msg__PoseStamped *p = &m->poses.data[i];
    char key[64];
    snprintf(key, sizeof key, "poses[%zu].header.frame_id", i);
    print_string(key, &p->header.frame_id);
    printf("poses[%zu].pose.position.x=%a\n", i, p->pose.position.x);
    printf("poses[%zu].pose.position.y=%a\n", i, p->pose.position.y);
    printf("poses[%zu].pose.orientation.w=%a\n", i, p->pose.orientation.w);
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s image|path|write|occupied SHM_NAME POOL_ADDRESS POOL_SIZE MSG_ADDRESS\n",
            argv[0]);
    return 2;
  }
  const char *mode = argv[1], *name = argv[2];
  void *address = (void *)(uintptr_t)strtoull(argv[3], NULL, 0);
  size_t size = (size_t)strtoull(argv[4], NULL, 0);
  const void *message = (const void *)(uintptr_t)strtoull(argv[5], NULL, 0);
  pool_begin = (uintptr_t)address;
  pool_end = pool_begin + size;

  if (strcmp(mode, "occupied") == 0) {  /* take the address first: the pool must not replace it */
    void *taken = mmap(address, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    if (taken != address) {
      fprintf(stderr, "could not occupy %p: %s\n", address, strerror(errno));
      return 5;
    }
  }
  int fd = shm_open(name, O_RDONLY, 0);
  if (fd < 0) {
    fprintf(stderr, "shm_open(%s, O_RDONLY): %s\n", name, strerror(errno));
    return 3;
  }
  void *mapped = mmap(address, size, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (mapped == MAP_FAILED) {
    fprintf(stderr, "mmap(%p, %zu, PROT_READ, MAP_SHARED|MAP_FIXED_NOREPLACE) of %s: %s (%s)\n",
            address, size, name, strerror(errno), errno == EEXIST ? "EEXIST" : "other");
    return 3;
  }
  if (mapped != address) {  /* a kernel without MAP_FIXED_NOREPLACE takes it as a hint */
    fprintf(stderr, "%s was mapped at %p, not at %p\n", name, mapped, address);
    return 3;
  }
  close(fd);
  check(message, 1, "message");
  printf("mapped=%s read-only at %p\n", name, mapped);
  fflush(stdout);

  if (strcmp(mode, "image") == 0) {
    check(message, sizeof(sensor_msgs__msg__Image), "message");
    print_image((const sensor_msgs__msg__Image *)message);
  } else if (strcmp(mode, "path") == 0) {
    check(message, sizeof(nav_msgs__msg__Path), "message");
    print_path((const nav_msgs__msg__Path *)message);
  } else if (strcmp(mode, "write") == 0) {
    struct rlimit no_core = {0, 0};  /* the expected crash leaves no core file behind */
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    const sensor_msgs__msg__Image *m = message;
    check(m->data.data, 1, "data");
    printf("writing=0x%" PRIxPTR "\n", (uintptr_t)m->data.data);
    fflush(stdout);
    *(volatile uint8_t *)m->data.data = 0xEE;  /* must raise SIGSEGV */
    printf("wrote\n");
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  fflush(stdout);
  return 0;
}
"""


@pytest.fixture(scope="module")
def c_reader(rosidl_c, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C program above, compiled against the rosidl-generated headers."""
    headers = rosidl_c.generate(default_registry(), PACKAGES)
    root = tmp_path_factory.mktemp("c_reader")
    (root / "c_reader.c").write_text(C_SOURCE)
    result = subprocess.run(
        ["gcc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-o", "c_reader", "c_reader.c",
         f"-I{headers.include}", f"-I{rosidl_c.runtime_include}"],
        cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, f"gcc failed:\n{result.stdout}\n{result.stderr}"
    return root / "c_reader"


@pytest.fixture
def camera(isolated_domain, monkeypatch):
    """The node ``camera`` in this process, with its pool as a named shm object."""
    monkeypatch.setenv("AGNOSHM_BACKEND", "shm")
    node = agnoshm.Node("camera")
    pool = agnoshm.context.get_runtime().pool
    assert pool.name.startswith("/agnocast@") and Path("/dev/shm", pool.name[1:]).exists(), pool
    yield node
    node.destroy_node()


def _run(exe: Path, mode: str, message_address: int) -> subprocess.CompletedProcess:
    pool = agnoshm.context.get_runtime().pool
    return subprocess.run([str(exe), mode, pool.name, hex(pool.address), str(pool.size),
                           hex(message_address)], capture_output=True, text=True, timeout=60)


def _read(exe: Path, mode: str, message_address: int) -> dict[str, str]:
    result = _run(exe, mode, message_address)
    assert result.returncode == 0, (f"c_reader {mode} exited {result.returncode}:\n"
                                    f"{result.stdout}\n{result.stderr}")
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def _weighted_sum(data: np.ndarray) -> int:
    """The checksum the C program computes: sum of data[i] * (i % 7 + 1)."""
    weights = np.arange(data.size, dtype=np.uint64) % 7 + 1
    return int((data.astype(np.uint64) * weights).sum())


def _publish_image(node, height: int, width: int):
    """Publish an rgb8 Image; return (root struct address, the data array in the pool, pixels)."""
    pub = node.create_publisher("sensor_msgs/msg/Image", "/image", 5)
    m = pub.borrow_loaned_message()
    m.header.stamp.sec = 1_700_000_123
    m.header.stamp.nanosec = 987_654_321
    m.header.frame_id = "camera_optical_frame"
    m.height, m.width, m.encoding, m.step = height, width, "rgb8", width * 3
    d = m.alloc("data", height * width * 3)
    d[:] = (np.arange(d.size) * 31 + 7) % 256
    d[0], d[-1] = 0xA5, 0x5A
    pixels = d.copy()
    address = m._owner.address  # the loan's root struct, before publish invalidates the view
    pub.publish(m)
    return pub, address, d, pixels


def test_c_reads_the_published_image_in_place(camera, c_reader: Path) -> None:
    height, width = 480, 640
    pub, address, d, pixels = _publish_image(camera, height, width)
    pool = agnoshm.context.get_runtime().pool
    assert pool.address <= address < pool.address + pool.size

    out = _read(c_reader, "image", address)

    assert out["mapped"] == f"{pool.name} read-only at 0x{pool.address:x}"
    assert int(out["header.stamp.sec"]) == 1_700_000_123
    assert int(out["header.stamp.nanosec"]) == 987_654_321
    assert out["header.frame_id"] == "camera_optical_frame"
    assert int(out["header.frame_id.size"]) == len("camera_optical_frame")
    assert int(out["header.frame_id.capacity"]) == len("camera_optical_frame") + 1
    assert out["header.frame_id.nul"] == "1"
    assert (int(out["height"]), int(out["width"]), int(out["step"])) == (height, width, width * 3)
    assert out["encoding"] == "rgb8" and out["encoding.nul"] == "1"
    assert int(out["is_bigendian"]) == 0
    assert int(out["data.size"]) == int(out["data.capacity"]) == height * width * 3
    # zero-copy: C follows the pointer to the very bytes the numpy array covers
    assert int(out["data.ptr"], 16) == d.ctypes.data
    assert pool.address <= d.ctypes.data and d.ctypes.data + d.size <= pool.address + pool.size
    assert (int(out["data.first"]), int(out["data.last"])) == (0xA5, 0x5A)
    assert int(out["data.sum"]) == _weighted_sum(pixels)


def test_c_mapping_is_read_only(camera, c_reader: Path) -> None:
    pub, address, d, pixels = _publish_image(camera, 4, 6)

    result = _run(c_reader, "write", address)

    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stdout, result.stderr)
    assert "mapped=" in result.stdout and f"writing=0x{d.ctypes.data:x}" in result.stdout
    assert "wrote" not in result.stdout
    # nothing changed, as seen from here and from a fresh reader
    assert d[0] == 0xA5 and np.array_equal(d, pixels)
    out = _read(c_reader, "image", address)
    assert int(out["data.first"]) == 0xA5 and int(out["data.sum"]) == _weighted_sum(pixels)


def test_c_refuses_an_occupied_address(camera, c_reader: Path) -> None:
    pub, address, d, pixels = _publish_image(camera, 2, 2)

    result = _run(c_reader, "occupied", address)

    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert "EEXIST" in result.stderr and "mapped=" not in result.stdout


def test_c_reads_a_nested_sequence(camera, c_reader: Path) -> None:
    pub = camera.create_publisher("nav_msgs/msg/Path", "/path", 5)
    m = pub.borrow_loaned_message()
    m.header.stamp.sec = 42
    m.header.frame_id = "map"
    poses = m.alloc("poses", 3)
    xs = [1 / 3, -2.75, 1e300 / 7]
    for i, (pose, x) in enumerate(zip(poses, xs)):
        pose.header.frame_id = f"pose_{i}"
        pose.pose.position.x = x
        pose.pose.position.y = float(i)
        pose.pose.orientation.w = 1.0
    address = m._owner.address
    pub.publish(m)

    out = _read(c_reader, "path", address)

    assert int(out["header.stamp.sec"]) == 42
    assert out["header.frame_id"] == "map" and out["header.frame_id.nul"] == "1"
    assert int(out["poses.size"]) == int(out["poses.capacity"]) == 3
    assert float.fromhex(out["poses[2].pose.position.x"]) == xs[2]
    assert out["poses[2].header.frame_id"] == "pose_2"
    for i, x in enumerate(xs):
        assert out[f"poses[{i}].header.frame_id"] == f"pose_{i}"
        assert out[f"poses[{i}].header.frame_id.nul"] == "1"
        assert float.fromhex(out[f"poses[{i}].pose.position.x"]) == x
        assert float.fromhex(out[f"poses[{i}].pose.position.y"]) == float(i)
        assert float.fromhex(out[f"poses[{i}].pose.orientation.w"]) == 1.0
