"""Real GPUs: which devices are visible, CUDA MPS clients and daemon, worker processes that run
a window's jobs side by side at their shares, and the throughput table measured under MPS.

Only torch, numpy and the standard library are needed here (the GPU box may have nothing else).
"""
