"""Running and measuring: the downstream networks, the training loop, the plateau verdict,
throughput timing and the environment a figure was taken in."""
