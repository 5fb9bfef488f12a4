"""Check the YAML files in ``config/`` before anything is built, installed or launched.

    python3 -m agnoshm.demo.check_config [DIR_OR_FILE ...]     # default: config

* ``agnoshm.yaml`` (and any file whose name starts with ``agnoshm``) is loaded
  exactly as a process loads ``$AGNOSHM_CONFIG`` (unknown keys, bad values);
* the parameter files of the launch files (``image_pipeline.yaml``,
  ``latency_bench.yaml``, ``talker_listener.yaml``) are checked node by node
  against the parameters the console scripts declare;
* any other ``.yaml`` must at least be valid YAML.

Prints ``ok: FILE`` per file; on the first problem prints one line
``check_config: error: ConfigError: ...`` (or ``ParamsError``) naming the file,
the key and the fix, and exits 2. :func:`check_paths` raises instead: setup.py
calls it so that ``colcon build`` refuses a broken configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterable

from agnoshm.config import ConfigError
from agnoshm.demo.launching import PIPELINES, check_agnoshm_config, parameters_of
from agnoshm.demo.params import ParamsError, check_params_file

_PARAMS_FILES = {params: nodes for params, nodes in PIPELINES.values()}


def check_file(path: Path) -> None:
    """Check one YAML file according to its name; raise ConfigError / ParamsError."""
    import yaml

    if path.name.startswith("agnoshm"):
        check_agnoshm_config(path)
    elif path.name in _PARAMS_FILES:
        check_params_file(path, {name: parameters_of(exe) for name, exe in _PARAMS_FILES[path.name]})
    else:
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None


def yaml_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The ``.yaml``/``.yml`` files named by ``paths`` (directories are listed, not recursed)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return found


def check_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Check every YAML file under ``paths``; return them. Raises at the first problem."""
    files = yaml_files(paths)
    for path in files:
        check_file(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=["config"], metavar="DIR_OR_FILE")
    args = parser.parse_args(argv)
    try:
        for path in yaml_files(args.paths):
            check_file(path)
            print(f"ok: {path}")
    except ConfigError as err:  # also ParamsError
        print(f"check_config: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 0


__all__ = ["ConfigError", "ParamsError", "check_file", "check_paths", "main", "yaml_files"]

if __name__ == "__main__":
    sys.exit(main())
