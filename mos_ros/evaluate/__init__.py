"""Evaluation as the MOS paper reports it: WIDER FACE AP, AFLW2000 pose MAE, landmark NME.

Modules: :mod:`.widerface` (the official WIDER FACE protocol), :mod:`.widerface_io` (its
``.mat`` ground truth and per-image prediction files), :mod:`.runner` (a detector over a WIDER
image folder), :mod:`.tta` (flip and multi-scale test-time augmentation), :mod:`.pose`
(AFLW2000 / Hopenet protocol), :mod:`.landmarks` (NME, CED, AUC), :mod:`.tables` (CSV/JSON
inputs), :mod:`.plots` and :mod:`.report` (``mos eval``: tables, PNG plots, JSON).
:mod:`.metrics` holds the matching, AP, pose error and NME every evaluation shares.
Nothing here imports torch; matplotlib is imported only when a plot is drawn.
"""
