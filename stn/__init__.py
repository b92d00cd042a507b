"""stn-bench: compare ways of reducing large images to a small network input.

The library is plain PyTorch/NumPy: no Hydra, no wandb. Entry points live in
``experiments/`` (Hydra) and ``scripts/`` (command-line tools).
"""

__version__ = "0.1.0"
