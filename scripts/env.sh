# shellcheck shell=bash
# Source this file in bash to use rfnet_ros from this checkout, after `bash scripts/setup_env.sh`:
#
#     source scripts/env.sh
#
# It activates .venv, makes the ROS 2 wheels in it the underlay when no ROS 2 install is used
# (AMENT_PREFIX_PATH, CMAKE_PREFIX_PATH, RMW_IMPLEMENTATION, discovery on localhost), and
# sources the colcon install tree (install/local_setup.bash: rfnet_ros and its generated messages
# on PYTHONPATH, the ament index, lib/rfnet_ros executables). Sourcing it again changes nothing.
# `source scripts/env.sh --underlay` stops before the install tree: the environment to build in.
#
# On a ROS 2 install, source /opt/ros/<distro>/setup.bash first, as for setup_env.sh.
# The wheels' shared libraries need no LD_LIBRARY_PATH from here: the ros-wheels-bootstrapper
# package (a dependency of ros-rclpy) adds their directories when Python starts.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "scripts/env.sh must be sourced, not run: source ${BASH_SOURCE[0]}" >&2
  exit 1
fi

_rfnet_ros_env() {
  local underlay_only="$1" root venv mode
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  if [[ ! -f "$venv/bin/activate" ]]; then
    echo "rfnet_ros: $venv does not exist: run bash scripts/setup_env.sh first" >&2
    return 1
  fi
  # Written by setup_env.sh: "wheels" or "system" (a sourced ROS 2 install).
  mode="$(cat "$venv/rfnet_ros-mode" 2>/dev/null || echo wheels)"
  if [[ "$mode" == system && -z "${ROS_DISTRO:-}" ]]; then
    echo "rfnet_ros: .venv was set up on a ROS 2 install:" \
      "source /opt/ros/<distro>/setup.bash first" >&2
    return 1
  fi

  # shellcheck disable=SC1091
  source "$venv/bin/activate"

  if [[ "$mode" == wheels ]]; then
    # The wheels install their ament packages (share/<pkg>, lib/, the ament index) into the
    # venv's prefix, so the venv is this workspace's underlay, as /opt/ros/<distro> would be.
    case ":${AMENT_PREFIX_PATH:-}:" in *":$venv:"*) ;; *)
      export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
    esac
    case ":${CMAKE_PREFIX_PATH:-}:" in *":$venv:"*) ;; *)
      export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;;
    esac
    # Fast DDS is the only middleware installed from the wheels.
    export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
    # Without a ROS install this is a development or CI machine: discover nodes on this host only.
    # Export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET before sourcing to reach other machines.
    export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
  fi

  if [[ "$underlay_only" == --underlay ]]; then
    return 0
  elif [[ -f "$root/install/local_setup.bash" ]]; then
    # colcon's scripts read variables that may be unset; allow that even under `set -u`.
    local had_u=0
    [[ $- == *u* ]] && had_u=1 && set +u
    # shellcheck disable=SC1091
    source "$root/install/local_setup.bash"
    ((had_u)) && set -u
  else
    echo "rfnet_ros: $root/install does not exist yet: run bash scripts/setup_env.sh to build" >&2
  fi
  return 0
}
if _rfnet_ros_env "${1:-}"; then
  unset -f _rfnet_ros_env
else
  unset -f _rfnet_ros_env
  return 1
fi
