"""Tests run on one thread: stable on shared 2-core machines (see DESIGN.md)."""

import torch

torch.set_num_threads(1)
