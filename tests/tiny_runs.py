"""Overrides for a run of a few steps on a few images: the mechanics, not the accuracy."""

TINY = [
    "trainer=smoke",
    "logger=none",
    "dataset.limit_train=32",
    "dataset.limit_test=16",
    "trainer.max_steps_per_epoch=2",
    "throughput.warmup=0",
    "throughput.min_repeats=1",
    "throughput.min_seconds=0",
]
