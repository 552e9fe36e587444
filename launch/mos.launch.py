"""Start mos_detector on a camera topic, and optionally face_selector and rviz2.

    ros2 launch mos_ros mos.launch.py image:=/camera/image_raw namespace:=robot use_rviz:=true

Both nodes are lifecycle nodes that configure and activate themselves (autostart). Their
parameters come from config/mos.yaml (``params_file``, keys that match any namespace); the
launch arguments model, backend, input, use_rviz and use_sim_time override the file only when
given, as does ros4hri (false turns face_selector's ROS4HRI output off). The nodes get the
Fast DDS profile named by ``dds_profile`` (default: the one already set, else the package's
camera-frames profile), or Fast DDS's defaults with MOS_FASTDDS_PROFILE=0 (README, "On a
robot"); nothing else the launch starts is affected.
"""
import inspect
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from mos_ros.ros.dds import PROFILE_VARIABLES, launch_environment
from mos_ros.ros.launch_args import parameter_overrides

PACKAGE = "mos_ros"
#: launch_ros drives the lifecycle transitions where it can (Jazzy and newer); elsewhere the
#: nodes' own ``autostart`` parameter (true in config/mos.yaml) does.
LAUNCH_AUTOSTART = "autostart" in inspect.signature(LifecycleNode.__init__).parameters


def lifecycle_node(name: str, executable: str, overrides: dict, context,
                   **kwargs) -> LifecycleNode:
    """A mos_ros lifecycle node: the params file first, then only the given arguments; the
    DDS profile in its environment."""
    if LAUNCH_AUTOSTART:
        kwargs["autostart"] = True
        overrides = dict(overrides, autostart=False)
    return LifecycleNode(package=PACKAGE, executable=executable, name=name,
                         namespace=LaunchConfiguration("namespace"), output="screen",
                         parameters=[LaunchConfiguration("params_file"), overrides],
                         additional_env=launch_environment(
                             LaunchConfiguration("dds_profile").perform(context), os.environ),
                         **kwargs)


def nodes(context, *args, **kwargs) -> list:
    """The nodes, configured from the launch arguments as given."""
    arguments = context.launch_configurations
    image = LaunchConfiguration("image")
    images = [("image", image), ("image/compressed", [image, "/compressed"])]
    detector = lifecycle_node(
        "mos_detector", "mos_detector", parameter_overrides(arguments, "mos_detector"), context,
        remappings=images + [("camera_info", LaunchConfiguration("camera_info"))])
    selector = lifecycle_node(
        "face_selector", "face_selector", parameter_overrides(arguments, "face_selector"),
        context,
        remappings=images, condition=IfCondition(LaunchConfiguration("start_selector")))
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", PathJoinSubstitution([FindPackageShare(PACKAGE), "config",
                                               "mos.rviz"]),
                   "--fixed-frame", LaunchConfiguration("fixed_frame")],
        condition=IfCondition(LaunchConfiguration("use_rviz")))
    return [detector, selector, rviz]


def generate_launch_description() -> LaunchDescription:
    """Launch description of the face detection pipeline."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the nodes and their topics"),
        DeclareLaunchArgument("image", default_value="image",
                              description="Camera image topic (sensor_msgs/Image); its "
                                          "/compressed sibling is used when input is compressed"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic (head positions and pose markers)"),
        DeclareLaunchArgument("input", default_value="",
                              description="raw or compressed; empty: the params file's value"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "mos.yaml"]),
                              description="Parameter file of the nodes"),
        DeclareLaunchArgument("model", default_value="",
                              description="Model file; empty: the params file's model_path"),
        DeclareLaunchArgument("backend", default_value="",
                              description="torch, onnxruntime or ncnn; empty: the params "
                                          "file's backend"),
        DeclareLaunchArgument("use_sim_time", default_value="",
                              description="true: follow /clock (bag playback, simulation); "
                                          "empty: the params file's value"),
        DeclareLaunchArgument("start_selector", default_value="true",
                              description="Also start face_selector (best shots per person)"),
        DeclareLaunchArgument("ros4hri", default_value="",
                              description="false: no ROS4HRI (REP-155) humans/faces/... topics "
                                          "from face_selector; empty: the params file's value "
                                          "(on by default)"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Start rviz2 with the annotated image and pose "
                                          "markers (turns on publish_annotated)"),
        DeclareLaunchArgument("fixed_frame", default_value="camera_optical_frame",
                              description="rviz2's fixed frame: the camera's optical frame, or "
                                          "a robot frame when tf connects the two"),
        DeclareLaunchArgument("dds_profile",
                              default_value=EnvironmentVariable(
                                  PROFILE_VARIABLES[0], default_value=PathJoinSubstitution(
                                      [share, "config", "fastdds_camera_frames.xml"])),
                              description="Fast DDS profile of the nodes (default: the one "
                                          "already set, else the package's camera-frames one)"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=nodes)])
