"""Proof: agnoshm's layouts equal the structs rosidl_generator_c generates, compiled by gcc.

The ``.msg`` definitions of builtin_interfaces, std_msgs, geometry_msgs,
sensor_msgs and nav_msgs come from the rosbags type store, plus
the two test packages of roundtrip_workers.py (every field kind), which
test_roundtrip.py also round-trips. They are translated with
``rosidl translate --to idl`` and turned into C headers with
``rosidl generate -t c``; a C program prints ``sizeof``, ``_Alignof``, and each
member's ``offsetof``/``sizeof``; the test compares them, the member names and
the member C types with :func:`agnoshm.msg.layout.layout_of`. The headers come
from the session fixture ``rosidl_c`` (test/msg/conftest.py), shared with
test_c_reader.py.

Needs Debian's ROS 2 tooling (skipped, with the reason, only where it is absent)::

    apt-get install -y rosidl-tools rosidl-generator-c-cpp librosidl-runtime-c-cpp-dev \\
        python3-ament-index gcc
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agnoshm.msg.layout import StructLayout, layout_of
from agnoshm.msg.types import TypeRegistry

sys.path.insert(0, str(Path(__file__).parent))
import roundtrip_workers as rw  # noqa: E402

STANDARD_PACKAGES = ["builtin_interfaces", "std_msgs", "geometry_msgs", "sensor_msgs", "nav_msgs"]
MUST_COMPARE = [
    "sensor_msgs/msg/Image", "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/LaserScan", "sensor_msgs/msg/Imu", "sensor_msgs/msg/JointState",
    "nav_msgs/msg/Odometry", "nav_msgs/msg/OccupancyGrid", "nav_msgs/msg/Path",
]

def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def _struct_members(header: str, c_name: str) -> list[tuple[str, str]]:
    """(C type, member name) of ``typedef struct c_name {...}`` in a generated header."""
    match = re.search(rf"typedef struct {c_name}\n{{\n(.*?)\n}} {c_name};", header, re.S)
    assert match, f"no struct {c_name} in the generated header"
    members = []
    for line in match.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        found = re.fullmatch(r"(.+?)\s+(\w+)(\[\d+\])?;", line)
        assert found, f"cannot read member line {line!r} of {c_name}"
        members.append((found.group(1), found.group(2)))
    return members


class Generated:
    """Output of the C side: sizes, alignments, offsets and member lists per type."""

    def __init__(self) -> None:
        self.structs: dict[str, tuple[int, int]] = {}
        self.members: dict[str, list[tuple[str, int, int]]] = {}
        self.c_members: dict[str, list[tuple[str, str]]] = {}


@pytest.fixture(scope="module")
def registry() -> TypeRegistry:
    registry = TypeRegistry(use_rclpy=False)
    rw.register_test_package(registry)
    return registry


@pytest.fixture(scope="module")
def generated(registry: TypeRegistry, rosidl_c, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    # 1.-3. .msg → rosidl translate → rosidl generate -t c (conftest.py; skips without the tools)
    c_headers = rosidl_c.generate(registry, STANDARD_PACKAGES + list(rw.TEST_PACKAGES))
    packages, include = c_headers.packages, c_headers.include
    root = tmp_path_factory.mktemp("layouts")

    # 4. a C program printing sizeof/_Alignof/offsetof of everything
    result = Generated()
    headers = sorted(h for package in packages
                     for h in (include / package).glob("msg/detail/*__struct.h"))
    all_headers = "\n".join(h.read_text() for h in headers)
    lines = ["#include <stddef.h>", "#include <stdio.h>"]
    lines += [f'#include "{h.relative_to(include)}"' for h in headers]
    lines += ["int main(void) {"]
    for names in packages.values():
        for name in names:
            c_name = name.replace("/", "__")
            result.c_members[name] = _struct_members(all_headers, c_name)
            lines.append(f'  printf("T {name} %zu %zu\\n", sizeof({c_name}), _Alignof({c_name}));')
            for _, member in result.c_members[name]:
                lines.append(f'  printf("F {name} {member} %zu %zu\\n", offsetof({c_name}, {member}), '
                             f'sizeof((({c_name} *)0)->{member}));')
    lines += ["  return 0;", "}"]
    (root / "layouts.c").write_text("\n".join(lines) + "\n")
    _run(["gcc", "-std=c11", "-Wall", "-Werror", "-o", "layouts", "layouts.c",
          f"-I{include}", f"-I{rosidl_c.runtime_include}"], root)
    output = subprocess.run([str(root / "layouts")], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        kind, name, *rest = line.split()
        if kind == "T":
            result.structs[name] = (int(rest[0]), int(rest[1]))
        else:
            result.members.setdefault(name, []).append((rest[0], int(rest[1]), int(rest[2])))
    return result


def _differences(layout: StructLayout, generated: Generated) -> list[str]:
    name = layout.type_name
    problems = []
    if (layout.size, layout.alignment) != generated.structs[name]:
        problems.append(f"sizeof/_Alignof: agnoshm {(layout.size, layout.alignment)}, "
                        f"C {generated.structs[name]}")
    ours = [(f.name, f.offset, f.size) for f in layout.fields]
    if ours != generated.members.get(name, []):
        problems.append(f"members (name, offsetof, sizeof): agnoshm {ours}, C {generated.members.get(name)}")
    c_types = [c_type for c_type, _ in generated.c_members[name]]
    our_types = [f.value.c_type for f in layout.fields]
    if our_types != c_types:
        problems.append(f"member C types: agnoshm {our_types}, C {c_types}")
    return problems


def test_every_generated_struct_matches(generated: Generated, registry: TypeRegistry) -> None:
    compared, failures = [], {}
    for name in sorted(generated.structs):
        problems = _differences(layout_of(name, registry=registry), generated)
        compared.append(name)
        if problems:
            failures[name] = problems
    assert not failures, "\n".join(f"{n}: {'; '.join(p)}" for n, p in failures.items())
    assert len(compared) >= 40, compared
    assert set(MUST_COMPARE) <= set(compared)
    print(f"{len(compared)} types equal to rosidl_generator_c's structs")


TEST_TYPES = [f"{package}/msg/{name}" for package, messages in rw.TEST_PACKAGES.items()
              for name in messages]


@pytest.mark.parametrize("name", MUST_COMPARE + TEST_TYPES)
def test_named_type_matches(name: str, generated: Generated, registry: TypeRegistry) -> None:
    assert name in generated.structs
    assert _differences(layout_of(name, registry=registry), generated) == []


def test_test_package_covers_every_field_kind(registry: TypeRegistry) -> None:
    """Each test package holds each kind the issue lists, so the proof covers them."""
    for package, messages in rw.TEST_PACKAGES.items():
        _check_every_field_kind(registry, [f"{package}/msg/{name}" for name in messages])
    empty = registry.get(f"{rw.LAYOUT_PACKAGE}/msg/Empty")
    assert empty.fields == ()
    primitives_def = registry.get(f"{rw.LAYOUT_PACKAGE}/msg/Primitives")
    assert primitives_def.constants and primitives_def.field("flag").default is True


def _check_every_field_kind(registry: TypeRegistry, names: list[str]) -> None:
    kinds = set()
    for name in names:
        for field in registry.get(name).fields:
            t = field.type
            shape = "array" if t.is_array else "bounded_seq" if t.sequence_bound else \
                "seq" if t.is_sequence else "scalar"
            base = t.base if t.is_primitive else ("message" if t.is_message else t.base)
            kinds.add((base + ("<=" if t.string_bound else ""), shape))
    primitives = {"bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                  "int64", "uint64", "float32", "float64"}
    needed = {(p, "scalar") for p in primitives} | {
        ("string", "scalar"), ("string<=", "scalar"), ("wstring", "scalar"), ("wstring<=", "scalar"),
        ("message", "scalar"), ("message", "array"), ("message", "seq"), ("message", "bounded_seq"),
        ("string", "array"), ("string<=", "array"), ("wstring", "array"), ("wstring<=", "array"),
        ("string", "seq"), ("string", "bounded_seq"), ("string<=", "seq"), ("string<=", "bounded_seq"),
        ("wstring", "seq"), ("wstring<=", "bounded_seq"),
        ("int32", "seq"), ("float64", "bounded_seq"), ("bool", "array"), ("float64", "array"),
    }
    assert needed <= kinds, (names[0], needed - kinds)
