"""Starting and ending a node's process: rclpy's initialisation in one error line, signals, spin and teardown."""
from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.logging import LoggingSeverity, get_logger, set_logger_level
from rclpy.node import Node


class StartupError(RuntimeError):
    """The node cannot start; the text is the one line to log."""


def init_rclpy(args: list[str] | None) -> None:
    """rclpy.init; raises StartupError with rcl's reason in one line (a missing or malformed --params-file)."""
    # rcl logs its own "Failed to parse global arguments" line before raising: keep it to our one line.
    set_logger_level("rcl", LoggingSeverity.FATAL)
    try:
        rclpy.init(args=args)
    except _rclpy.RCLError as exc:  # the same class on Humble and later (rclpy.RCLError is newer)
        reason = re.sub(r", at \S+:\d+", "", str(exc)).replace("failed to initialize rcl: ", "")
        raise StartupError(f"cannot start: {reason}") from None
    finally:
        set_logger_level("rcl", LoggingSeverity.UNSET)


def _ignore_signal(signum, frame) -> None:
    """SIGINT/SIGTERM handler of the Python level: does nothing (see install_shutdown_signals)."""


def install_shutdown_signals() -> None:
    """Make SIGINT and SIGTERM shut the node down without ever raising into the Python code.

    Installed before rclpy.init, these handlers are the ones rclpy's own signal handlers chain to after they
    have shut the context down (which ends spin()), and the ones rclpy puts back at shutdown. So the first
    signal stops spinning, and every later one, however close behind, is ignored while the node tears down,
    instead of raising KeyboardInterrupt in the middle of it (a traceback, or an abort).
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_signal)


def run_node(make_node: Callable[..., Node], name: str, args: list[str] | None = None) -> int:
    """Run ``make_node(command_line=...)`` until shutdown, then end the process with status 0; returns 1 when it
    cannot start (one error line, logged as ``name``, says why: the node raises StartupError)."""
    install_shutdown_signals()
    try:
        init_rclpy(args)
    except StartupError as exc:
        get_logger(name).error(str(exc))
        return 1
    node = None
    try:
        node = make_node(command_line=sys.argv if args is None else args)
        # Three threads: input callbacks, diagnostics timer and parameter services each get one.
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        get_logger(name).error(str(exc))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a signal during start-up shuts the context down under the constructor
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None:
        # Teardown is complete: the node is destroyed and the context shut down. The interpreter's own exit
        # would take seconds more on a busy machine (finalising torch and the middleware's libraries), and
        # with a frame still in the model (abandoned by destroy_node) it would tear torch down under it
        # (std::terminate). So the process ends here.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
