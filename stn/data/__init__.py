"""Datasets: the embedded digits, readers for files on disk, cluttered canvases."""
