"""Start rfnet_feature_node with the full RF-Net detector (config/full.yaml), for comparison with lite.

    ros2 launch rfnet_ros full.launch.py image_topic:=/camera/image_raw

Takes the arguments of lite.launch.py (cameras, image_topic, camera_info_topic, namespace, device, ...); only
the parameters file differs.
"""
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('rfnet_ros')
    return LaunchDescription([
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch', 'lite.launch.py'])),
            launch_arguments={'params_file': PathJoinSubstitution([share, 'config', 'full.yaml'])}.items(),
        ),
    ])
