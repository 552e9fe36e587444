"""Scenes with labels known by construction: procedural faces, re-posed photo faces, small
crops, on procedural or photo backgrounds, and the writer of labelled sets."""
