"""Training MOS: the synthetic face set, anchor targets, the multi-task loss and the loop.

``python -m mos_ros.train train config/train_synth.yaml`` runs a training; importing this
package does not import torch (the submodules that need it do).
"""
