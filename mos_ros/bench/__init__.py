"""``mos bench``: MOS latency per backend, and the sequential detector + head-pose baseline."""
