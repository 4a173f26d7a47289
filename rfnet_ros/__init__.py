"""rfnet_ros: RF-Net keypoint detector with a HardNet descriptor, as a library and a ROS 2 node."""

# The ROS 2 build installs this package merged with the message classes that rosidl generates
# (rfnet_ros.msg), and the installed copy's __init__.py is rosidl's. When this source tree comes
# first on sys.path (Python started in the repository root), the path is extended with the other
# `rfnet_ros` directories on sys.path, so that rfnet_ros.msg is still found in the installed copy.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
