"""Self-supervised training of RF-Net on homography-warped photographs."""
