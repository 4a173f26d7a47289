"""Start rfnet_feature_node with the full RF-Net detector (config/full.yaml), for comparison with lite.

    ros2 launch rfnet_ros full.launch.py image_topic:=/camera/image_raw
    ros2 launch rfnet_ros full.launch.py params_file:=/path/to/my.yaml

Takes the arguments of lite.launch.py (cameras, image_topic, camera_info_topic, namespace, device, ...); only
the default parameters file differs. `params_file` is declared here, before lite.launch.py is included, so
that `--show-args` shows full.yaml as its default (the first declaration of an argument is the one shown), and
it is passed on as the launch configuration: a `params_file:=` given on the command line replaces full.yaml.
"""
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('rfnet_ros')
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'full.yaml']),
            description='ROS 2 parameters file of the node (every parameter with its value)'),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch', 'lite.launch.py'])),
            launch_arguments={'params_file': LaunchConfiguration('params_file')}.items(),
        ),
    ])
