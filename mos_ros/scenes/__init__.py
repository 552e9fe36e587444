"""Scenes with labels known by construction: procedural faces, re-posed photo faces, small
crops, on procedural or photo backgrounds, with unlabelled hands as negatives and whole scenes
turned in-plane with their labels; and the writer of labelled sets."""
