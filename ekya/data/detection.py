"""Detection stages: object boxes (and labels) from raw video frames, for clips without sample lists.

A :class:`~ekya.data.video.VideoSource` with ``detector`` set runs one of these on the frames
of each clip instead of reading a sample list (``conf/dataset/video.yaml``, ``dataset.detector``):

- ``torchvision`` (:class:`TorchvisionDetector`): a torchvision detection model (Faster R-CNN
  MobileNetV3-Large FPN by default, or SSDlite320 MobileNetV3-Large, ...) with COCO weights
  from a local file (``detection.weights``) or, when that is null, from torchvision's own cache
  (``$TORCH_HOME/hub/checkpoints``) if the user has the file there. Nothing is downloaded. Its
  COCO labels map onto the platform's classes (the video dataset's ``class_map``), so they can
  serve as golden labels (``labeler=detector``).
- ``mog2`` (:class:`MOG2Detector`): OpenCV's MOG2 background subtraction for fixed cameras, no
  weights: every decoded frame updates the background model, and the moving foreground blobs
  of the sampled frames become boxes *without* labels; a crop classifier (a golden model,
  ``detection.classifier``) labels their crops.

Detectors see RGB uint8 frames (H, W, 3) and return :class:`Detections` in pixels. Each has
:meth:`Detector.params` (what its output depends on, for cache keys). The time they take is
measured by the caller and charged to the window as labeling GPU-seconds.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from ekya.errors import EkyaError

#: Label of a box whose class is unknown (a MOG2 proposal, to be classified).
UNLABELED = -1

#: The torchvision detection models accepted (builder names in ``torchvision.models.detection``),
#: each with the weights enum whose COCO_V1 file torchvision's cache would hold.
TORCHVISION_MODELS: dict[str, str] = {
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "retinanet_resnet50_fpn": "RetinaNet_ResNet50_FPN_Weights",
}
#: COCO categories of torchvision's detection models (91-id numbering, 0 = background).
COCO_NUM_CLASSES = 91

DETECTOR_NAMES: tuple[str, ...] = ("mog2", "torchvision")


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame.

    Attributes:
        boxes: float64 (K, 4) ``[x0, y0, x1, y1]`` pixels.
        labels: int64 (K,) COCO category ids, or :data:`UNLABELED`.
        scores: float64 (K,) confidence in [0, 1] (1 for MOG2 proposals).
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))


class CropClassifier(Protocol):
    """Labels crops (a golden model): what a MOG2 detection stage needs for its unlabeled boxes."""

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class indices (N,) into :data:`ekya.data.base.CLASSES` of uint8 crops (N, 3, H, W)."""

    def params(self) -> dict:
        """What the labels depend on (e.g. the checkpoint's digest), for cache keys."""


class Detector(abc.ABC):
    """A detection stage run on a clip's frames, in order, from the first."""

    name: str = ""
    #: Whether :meth:`observe` must see every decoded frame (a background model), not only the sampled ones.
    observes_every_frame: bool = False
    #: Whether the boxes carry COCO labels (else a crop classifier labels them).
    labels_boxes: bool = True

    def start_clip(self) -> None:
        """Forget the previous clip (a background model starts anew)."""

    def observe(self, frame: np.ndarray) -> None:
        """See a frame that is not detected on (only called when :attr:`observes_every_frame`)."""

    @abc.abstractmethod
    def detect(self, frame: np.ndarray) -> Detections:
        """Boxes in one RGB uint8 frame (H, W, 3), in pixels."""

    @abc.abstractmethod
    def params(self) -> dict:
        """Everything the detections depend on, for cache keys."""


# ---------------------------------------------------------------------------- MOG2


class MOG2Detector(Detector):
    """Moving-object proposals on a fixed camera: OpenCV's MOG2 background subtractor.

    Every frame updates the background model; on a detected frame, the foreground mask
    (shadows dropped, opened and closed with a ``kernel_pixels`` square) is cut into
    connected blobs, and each blob of at least ``min_area_pixels`` becomes a box, grown by
    ``padding`` of its size on each side. Frames in the first ``warmup_frames`` of a clip,
    while the background is still being learned, give no boxes. Frames larger than
    ``max_side_pixels`` are shrunk for the background model (its cost grows with the pixels:
    ~33 ms for a 768x576 frame on this project's CPU, ~13 ms at half size); boxes are scaled back.

    Args:
        history: frames the background model remembers (OpenCV's ``history``).
        var_threshold: squared Mahalanobis distance above which a pixel is foreground (``varThreshold``).
        min_area_pixels: smallest blob kept, pixels of area.
        kernel_pixels: side of the morphological opening/closing kernel, pixels (odd, >= 1).
        padding: fraction of a blob's width/height added on each side of its box.
        warmup_frames: frames at a clip's start that only train the background model.
        max_side_pixels: longest side of the frames the background model sees (None: full size).
    """

    name = "mog2"
    observes_every_frame = True
    labels_boxes = False

    def __init__(self, history: int = 300, var_threshold: float = 25.0, min_area_pixels: float = 400.0, kernel_pixels: int = 5,
                 padding: float = 0.1, warmup_frames: int = 25, max_side_pixels: int | None = 384) -> None:
        try:
            import cv2
        except ImportError as error:  # pragma: no cover - a dependency of the project
            raise EkyaError(f"detector mog2 needs OpenCV (opencv-python-headless): {error}") from error
        checks = [("history", history, 1), ("kernel_pixels", kernel_pixels, 1), ("warmup_frames", warmup_frames, 0)]
        if max_side_pixels is not None:
            checks.append(("max_side_pixels", max_side_pixels, 16))
        for key, value, low in checks:
            if isinstance(value, bool) or int(value) != value or value < low:
                raise EkyaError(f"dataset.detection.{key} must be a whole number >= {low}, got {value!r}")
        for key, value in (("var_threshold", var_threshold), ("min_area_pixels", min_area_pixels), ("padding", padding)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise EkyaError(f"dataset.detection.{key} must be a number >= 0, got {value!r}")
        self._cv2 = cv2
        self.history, self.var_threshold, self.min_area_pixels = int(history), float(var_threshold), float(min_area_pixels)
        self.kernel_pixels, self.padding, self.warmup_frames = int(kernel_pixels), float(padding), int(warmup_frames)
        self.max_side_pixels = None if max_side_pixels is None else int(max_side_pixels)
        self._kernel = np.ones((self.kernel_pixels, self.kernel_pixels), np.uint8)
        self.start_clip()

    def start_clip(self) -> None:
        self._subtractor = self._cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=self.var_threshold, detectShadows=True)
        self._frames_seen = 0

    def _scale(self, frame: np.ndarray) -> float:
        """Factor the background model's frames are shrunk by (1: full size)."""
        side = max(frame.shape[:2])
        return 1.0 if self.max_side_pixels is None or side <= self.max_side_pixels else self.max_side_pixels / side

    def _foreground(self, frame: np.ndarray) -> np.ndarray:
        self._frames_seen += 1
        bgr = np.ascontiguousarray(frame[:, :, ::-1])  # OpenCV wants BGR
        scale = self._scale(frame)
        if scale < 1:
            size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
            bgr = self._cv2.resize(bgr, size, interpolation=self._cv2.INTER_AREA)
        return self._subtractor.apply(bgr)

    def observe(self, frame: np.ndarray) -> None:
        self._foreground(frame)

    def detect(self, frame: np.ndarray) -> Detections:
        cv2 = self._cv2
        mask = self._foreground(frame)
        if self._frames_seen <= self.warmup_frames:
            return Detections.empty()
        mask = np.where(mask == 255, 255, 0).astype(np.uint8)  # 127 marks shadows
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._kernel, iterations=2)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = []
        height, width = frame.shape[:2]
        scale = self._scale(frame)
        for x, y, w, h, area in stats[1:count].astype(np.float64) / np.array([scale, scale, scale, scale, scale * scale]):
            if area < self.min_area_pixels:
                continue
            dx, dy = self.padding * w, self.padding * h
            boxes.append([max(0.0, x - dx), max(0.0, y - dy), min(float(width), x + w + dx), min(float(height), y + h + dy)])
        if not boxes:
            return Detections.empty()
        return Detections(np.asarray(boxes, dtype=np.float64), np.full(len(boxes), UNLABELED, dtype=np.int64), np.ones(len(boxes)))

    def params(self) -> dict:
        return {"detector": self.name, "history": self.history, "var_threshold": self.var_threshold,
                "min_area_pixels": self.min_area_pixels, "kernel_pixels": self.kernel_pixels, "padding": self.padding,
                "warmup_frames": self.warmup_frames, "max_side_pixels": self.max_side_pixels}


# ---------------------------------------------------------------------------- torchvision


def torchvision_cache_file(model: str) -> Path:
    """Where torchvision's cache keeps ``model``'s COCO weights (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    import torch
    from torchvision.models import detection

    weights = getattr(detection, TORCHVISION_MODELS[model]).COCO_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_detection_weights(path: Path) -> dict:
    """The state dict in ``path``: a state dict, a dict holding one under ``state_dict``/``model``, or a
    whole model saved with ``torch.save(model)``.

    Raises:
        EkyaError: naming the file, if it is missing or holds none of those.
    """
    import torch

    if not path.is_file():
        raise EkyaError(f"dataset.detection.weights: {path} does not exist")
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a pickled whole model is not weights-only; try it as one
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
            raise EkyaError(f"dataset.detection.weights: {path} is not a torch weights file ({type(error).__name__}: {error})") from None
    if isinstance(loaded, torch.nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model"):
            inner = loaded.get(key)
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict()
            if isinstance(inner, Mapping):
                return dict(inner)
        if all(isinstance(value, torch.Tensor) for value in loaded.values()):
            return dict(loaded)
    raise EkyaError(f"dataset.detection.weights: {path} holds a {type(loaded).__name__}, not a state dict or a model")


class TorchvisionDetector(Detector):
    """A torchvision detection model with COCO weights from a local file (or torchvision's cache).

    Args:
        model: a key of :data:`TORCHVISION_MODELS`.
        weights: weights file (state dict, or a model saved with ``torch.save``); None: the
            file torchvision's cache holds for the model's COCO weights, if any.
        score_threshold: detections scoring below this are dropped, in [0, 1].
        device: torch device to run on.

    Raises:
        EkyaError: unknown model, no weights (naming the key and the cache file looked for),
            or a weights file that does not fit the model (naming the file).
    """

    name = "torchvision"

    def __init__(self, model: str = "fasterrcnn_mobilenet_v3_large_fpn", weights: str | os.PathLike | None = None,
                 score_threshold: float = 0.5, device: str = "cpu") -> None:
        import torch
        from torchvision.models import detection

        if model not in TORCHVISION_MODELS:
            raise EkyaError(f"dataset.detection.model: unknown detection model {model!r}; valid: {', '.join(TORCHVISION_MODELS)}")
        if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)) or not 0 <= score_threshold <= 1:
            raise EkyaError(f"dataset.detection.score_threshold must be in [0, 1], got {score_threshold!r}")
        if weights is None:
            path = torchvision_cache_file(model)
            if not path.is_file():
                raise EkyaError(
                    f"dataset.detection.weights is null and torchvision's cache has no {path.name} (looked in {path.parent}); "
                    f"set dataset.detection.weights=PATH to a local {model} COCO weights file (nothing is downloaded), "
                    "or use dataset.detector=mog2 (no weights) or a sample list per clip (dataset.detector=null)"
                )
        else:
            path = Path(weights)
        state = load_detection_weights(path)
        with torch.random.fork_rng(devices=[]):
            network = getattr(detection, model)(weights=None, weights_backbone=None, num_classes=COCO_NUM_CLASSES)
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()
            raise EkyaError(f"dataset.detection.weights: {path} does not fit {model} ({' '.join(first[:2])[:300]})") from None
        self.model_name = model
        self.weights_path = path
        self.score_threshold = float(score_threshold)
        self.device = device
        self.network = network.to(device).eval()
        from ekya.data.cache import file_digest

        self._digest = file_digest(path)

    def detect(self, frame: np.ndarray) -> Detections:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255).to(self.device)
        with torch.inference_mode():
            output = self.network([image])[0]
        keep = output["scores"] >= self.score_threshold
        return Detections(output["boxes"][keep].double().cpu().numpy().reshape(-1, 4),
                          output["labels"][keep].cpu().numpy().astype(np.int64),
                          output["scores"][keep].double().cpu().numpy())

    def params(self) -> dict:
        return {"detector": self.name, "model": self.model_name, "weights": self._digest, "score_threshold": self.score_threshold}


def build_detector(name: str, options: Mapping[str, Any]) -> Detector:
    """The detector ``name`` (``mog2`` or ``torchvision``) with its ``dataset.detection`` options.

    Options of the other detector, and the source's own (``fps``, ``classifier``, ...), are ignored here.
    """
    if name == "mog2":
        keys = ("history", "var_threshold", "min_area_pixels", "kernel_pixels", "padding", "warmup_frames", "max_side_pixels")
        return MOG2Detector(**{key: options[key] for key in keys if key in options and (options[key] is not None or key == "max_side_pixels")})
    if name == "torchvision":
        keys = ("model", "weights", "score_threshold", "device")
        return TorchvisionDetector(**{key: options[key] for key in keys if key in options and options[key] is not None})
    raise EkyaError(f"dataset.detector: unknown detector {name!r}; valid: {', '.join(DETECTOR_NAMES)}, or null (sample lists)")
