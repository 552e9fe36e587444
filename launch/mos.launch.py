"""Start mos_detector on a camera topic, and optionally face_selector and rviz2.

    ros2 launch mos_ros mos.launch.py image:=/camera/image_raw use_rviz:=true

Parameters come from config/mos.yaml (``params_file``); only the model and backend, which
differ per robot, are launch arguments as well.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "mos_ros"


def generate_launch_description() -> LaunchDescription:
    """Launch description of the face detection pipeline."""
    share = FindPackageShare(PACKAGE)
    arg = LaunchConfiguration
    image = arg("image")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the nodes and their topics"),
        DeclareLaunchArgument("image", default_value="image",
                              description="Camera image topic (sensor_msgs/Image); its "
                                          "/compressed sibling is used when input is compressed"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic used to place the pose markers"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "mos.yaml"]),
                              description="Parameter file of the nodes"),
        DeclareLaunchArgument("model", default_value="",
                              description="Model file; empty: the shipped default model"),
        DeclareLaunchArgument("backend", default_value="",
                              description="torch, onnxruntime or ncnn; empty: from the model "
                                          "file's suffix"),
        DeclareLaunchArgument("start_selector", default_value="true",
                              description="Also start face_selector (best shots per person)"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Start rviz2 with the annotated image and pose "
                                          "markers (turns on publish_annotated)"),
    ]
    detector = Node(
        package=PACKAGE, executable="mos_detector", name="mos_detector",
        namespace=arg("namespace"), output="screen",
        parameters=[arg("params_file"), {
            "model_path": arg("model"), "backend": arg("backend"),
            "publish_annotated": ParameterValue(arg("use_rviz"), value_type=bool)}],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"]),
                    ("camera_info", arg("camera_info"))])
    selector = Node(
        package=PACKAGE, executable="face_selector", name="face_selector",
        namespace=arg("namespace"), output="screen", parameters=[arg("params_file")],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"])],
        condition=IfCondition(arg("start_selector")))
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", namespace=arg("namespace"),
        arguments=["-d", PathJoinSubstitution([share, "config", "mos.rviz"])],
        condition=IfCondition(arg("use_rviz")))
    return LaunchDescription(arguments + [detector, selector, rviz])
