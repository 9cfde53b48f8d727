"""A learnable toy window: each class is a distinct colour pattern plus noise (training and predict tests)."""

import numpy as np

from ekya.data.base import Window

# class -> (red, green, blue) mean intensity and whether it is striped
_PATTERNS = [((200, 40, 40), False), ((40, 200, 40), False), ((40, 40, 200), False),
             ((200, 40, 40), True), ((40, 200, 40), True), ((40, 40, 200), True)]


def colour_pattern_window(num_crops: int, seed: int, size: int = 16, index: int = 0) -> Window:
    """``num_crops`` crops of ``size`` pixels, 3 per frame; class c = colour c % 3, striped if c >= 3."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_crops, dtype=np.int64) % 6
    rng.shuffle(labels)
    colours = np.array([colour for colour, _ in _PATTERNS], dtype=np.float64)[labels]
    images = np.broadcast_to(colours[:, :, None, None], (num_crops, 3, size, size)).copy()
    striped = np.array([stripes for _, stripes in _PATTERNS])[labels]
    images[striped, :, ::4, :] = 255.0
    images += rng.normal(0, 20, size=images.shape)
    frames = np.arange(num_crops, dtype=np.int64) // 3
    return Window(
        stream="toy", index=index, start_seconds=0.0, end_seconds=float(frames[-1] + 1),
        images=np.clip(images, 0, 255).astype(np.uint8), labels=labels,
        frame_ids=frames, timestamps=frames.astype(np.float64),
    )


def model_settings(name="shufflenet_v2_x0_5", hidden_size=64, base_epochs=1, base_batch_size=32, base_learning_rate=0.05):
    """Edge-model settings for tests (small and fast unless told otherwise)."""
    from ekya.training.config import ModelSettings

    return ModelSettings(name, hidden_size, base_epochs, base_batch_size, base_learning_rate)


def random_window(seed: int, n: int = 12) -> Window:
    """``n`` random 16-px crops with random labels, as a hold-out window."""
    rng = np.random.default_rng(seed)
    return Window(
        stream="holdout0", index=seed, start_seconds=0.0, end_seconds=1.0,
        images=rng.integers(0, 256, size=(n, 3, 16, 16), dtype=np.uint8),
        labels=rng.integers(0, 6, size=n).astype(np.int64),
        frame_ids=np.arange(n, dtype=np.int64), timestamps=np.zeros(n),
    )


def drifting_trace(root, streams: int = 3, windows: int = 5, seed: int = 0):
    """A trace of ``streams`` cameras x ``windows`` 200-s windows whose models age: a model retrained in window
    w loses accuracy in later windows, so what serves each window depends on every earlier decision."""
    from ekya.profiling.trace import write_trace

    rng = np.random.default_rng(seed)
    names = [f"cam{s}" for s in range(streams)]
    rows = []
    for stream in names:
        start = float(rng.uniform(0.4, 0.6))
        rows += [{"stream": stream, "window": -1, "config": "base", "gpu_seconds": 0.0, "accuracy": round(max(0.05, start - 0.05 * k), 4),
                  "eval_window": k} for k in range(windows)]
        for window in range(windows):
            for c, (cost, gain) in enumerate([(40.0, 0.15), (90.0, 0.25), (150.0, 0.32)]):
                accuracy = min(0.99, start + gain + float(rng.uniform(-0.05, 0.05)))
                rows += [{"stream": stream, "window": window, "config": f"c{c}", "gpu_seconds": round(cost * float(rng.uniform(0.8, 1.2)), 3),
                          "accuracy": round(max(0.05, accuracy - 0.06 * (k - window)), 4), "eval_window": k} for k in range(window, windows)]
    inference = [{"stream": "*", "config": "i0", "demand_gpu": 0.2, "accuracy_factor": 0.85},
                 {"stream": "*", "config": "i1", "demand_gpu": 0.5, "accuracy_factor": 1.0}]
    return write_trace(root, 200.0, names, rows, inference, gpus=2.0, delta=0.1, min_accuracy=0.0)
