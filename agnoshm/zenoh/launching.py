"""What ``launch/zenoh_bridge.launch.py`` starts, kept out of it so that it is testable without ROS.

The launch file's arguments (``config``, ``connect``, ``listen``, ``mode``,
``topics``, ``on_demand``, ``agnoshm_config``) become one command line,
``python -m agnoshm.zenoh ...``, by :func:`plan`, which first checks everything
as the bridge would (the YAML file, the endpoints, the topic names, the agnoshm
configuration): a problem raises :class:`~agnoshm.zenoh.errors.ZenohConfigError`
(or :class:`agnoshm.config.ConfigError`) and no process starts.  ``connect``,
``listen`` and ``topics`` are lists written as one text, separated by commas or
spaces (``topics:="/chatter:std_msgs/msg/String /image"``).
"""

from __future__ import annotations

import os
import re
import sys

from agnoshm.demo.launching import _fail_fast, check_agnoshm_config, process_env

PROCESS_NAME = "zenoh_bridge"


def split_list(text: str) -> list[str]:
    """A launch argument's list: items separated by commas or whitespace."""
    return [item for item in re.split(r"[,\s]+", text or "") if item]


def plan(config: str | os.PathLike | None = None, *, connect: str = "", listen: str = "",
         mode: str = "", topics: str = "", on_demand: bool = False,
         agnoshm_config: str | os.PathLike | None = None,
         python: str | None = None) -> list[str]:
    """Check the arguments as the bridge would and return its command line.

    Empty texts mean "not given" (the YAML file's value, else the bridge's default).

    :raises ZenohConfigError: bad YAML file, endpoint, mode or topic, or nothing to bridge.
    :raises ConfigError: a bad agnoshm configuration.  Nothing has started then.
    """
    from agnoshm.zenoh.config import load_options

    check_agnoshm_config(agnoshm_config)
    config = os.fspath(config) if config else None
    connect_list, listen_list, topic_list = (split_list(connect), split_list(listen),
                                             split_list(topics))
    load_options(config, topics=topic_list, connect=connect_list or None,
                 listen=listen_list or None, mode=mode or None,
                 on_demand=on_demand or None)
    command = [python or sys.executable, "-m", "agnoshm.zenoh"]
    if config:
        command += ["--config", config]
    for flag, values in (("--connect", connect_list), ("--listen", listen_list),
                         ("--topic", topic_list)):
        for value in values:
            command += [flag, value]
    if mode:
        command += ["--mode", mode]
    if on_demand:
        command.append("--on-demand")
    return command


# -- launch (imported only inside this function) -----------------------------------------------

def launch_setup(context) -> list:
    """``OpaqueFunction`` body of ``zenoh_bridge.launch.py``: check, then one ExecuteProcess."""
    from launch.actions import ExecuteProcess

    from agnoshm.config import ConfigError
    from agnoshm.zenoh.errors import ZenohBridgeError

    config = context.launch_configurations
    agnoshm_config = config.get("agnoshm_config", "") or None
    on_demand = config.get("on_demand", "false").strip().lower()
    if on_demand not in ("true", "false"):
        raise ConfigError(f"ConfigError: on_demand must be true or false, not {on_demand!r}")
    try:
        command = plan(config.get("config", ""), connect=config.get("connect", ""),
                       listen=config.get("listen", ""), mode=config.get("mode", ""),
                       topics=config.get("topics", ""), on_demand=on_demand == "true",
                       agnoshm_config=agnoshm_config)
    except (ConfigError, ZenohBridgeError) as err:  # launch prints only str(err): name the type
        raise type(err)(f"{type(err).__name__}: {err}") from None
    return [ExecuteProcess(cmd=command, name=PROCESS_NAME, output="screen",
                           additional_env=process_env(agnoshm_config),
                           on_exit=_fail_fast(PROCESS_NAME))]
