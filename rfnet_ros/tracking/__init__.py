"""Feature tracks for visual odometry: track ids (tracks), geometric check (geometry), camera model and
camera_info pairing (camera), the VINS feature layout (vins), drawing (drawing), and the front end that
puts them around the pipeline (tracker). Import from the modules: camera and geometry stay light (no torch)
for the launch files and bag tools."""
