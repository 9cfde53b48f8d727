"""A built-in, seeded dataset of drifting camera streams: procedurally drawn object crops.

:class:`SyntheticSource` renders multi-camera streams of object crops for the six classes
of :data:`ekya.data.base.CLASSES` with numpy only (vectorised over crops and pixels).
Each crop is a class-specific silhouette made of parts (a person is head + torso + arms +
legs, a bicycle two thin rings + a frame, ...) with a colour palette, texture, pose,
scale, viewpoint, occlusion, lighting, weather and sensor noise.

The data drifts the way the Ekya paper (NSDI'22, §2.3) describes real streams:

- the class mix of each camera changes from window to window, and classes appear and
  disappear;
- time of day advances by a few hours per window (day -> dusk -> night: darker, lower
  contrast, tinted, noisier);
- weather changes (clear, fog, rain, blur) and persists for a few windows;
- appearance changes: the colour palette of every class rotates and sometimes swaps
  between classes, texture, object scale, viewpoint (tilt, stretch, driving direction)
  and occlusion drift.

Consecutive windows of a camera are similar, distant windows are not, so a model trained
on an early window loses accuracy later and retraining on the previous window recovers
most of it. Cameras differ from each other (class mix, palette, background, time of day).

Randomness: the scene sequence of a stream comes from ``SeedSequence([seed, kind,
stream, 0, 0])`` and the crops of window ``k`` from ``SeedSequence([seed, kind, stream,
1, k])`` (kind 0 = camera, 1 = hold-out camera), so every window can be generated on its
own and the same seed always gives bit-identical arrays, cached or not.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ekya.data.base import CLASSES, StreamSource, Window, check_camera_fps
from ekya.data.cache import ArrayCache, cache_key
from ekya.errors import EkyaError

#: Bump when the rendering changes, so cached windows of older versions are not reused.
GENERATOR_VERSION = 1

_CAMERA_KIND = 0
_HOLDOUT_KIND = 1
_SCENE_PURPOSE = 0
_CROPS_PURPOSE = 1
_NUM_CLASSES = len(CLASSES)
_ARRAY_NAMES = ("images", "labels", "frame_ids", "timestamps")
_WEATHERS = ("clear", "fog", "rain", "blur")


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Scene:
    """What the camera sees during one window; drives the crop renderer.

    Attributes:
        class_mix: probability of each class in :data:`CLASSES`, shape (6,), sums to 1.
        hour: time of day at the window, hours in [0, 24).
        daylight: 1 at noon, 0 at night.
        lighting: "day", "dusk" or "night".
        weather: one of "clear", "fog", "rain", "blur".
        weather_strength: 0 (none) to 1 (heavy).
        palette_hues: main body hue of each class, degrees, shape (6,).
        palette_saturation: saturation of body colours, 0..1.
        texture_frequency: stripe frequency on bodies, cycles per object width.
        texture_amplitude: stripe contrast, 0..1.
        object_scale: mean object size, fraction of the crop (1 = fills it).
        aspect: mean horizontal stretch of objects (viewpoint), 1 = none.
        tilt_degrees: mean rotation of objects (camera roll / slope), degrees.
        flip_probability: probability that an object faces left (driving direction).
        occlusion_probability: probability that a crop is partly hidden.
        background_rgb: mean background colour before lighting, 0..1, shape (3,).
        noise_sigma: sensor noise standard deviation, fraction of full scale.
    """

    class_mix: np.ndarray
    hour: float
    daylight: float
    lighting: str
    weather: str
    weather_strength: float
    palette_hues: np.ndarray
    palette_saturation: float
    texture_frequency: float
    texture_amplitude: float
    object_scale: float
    aspect: float
    tilt_degrees: float
    flip_probability: float
    occlusion_probability: float
    background_rgb: np.ndarray
    noise_sigma: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (class mix and hues keyed by class name)."""
        return {
            "class_mix": {name: float(p) for name, p in zip(CLASSES, self.class_mix)},
            "present_classes": [name for name, p in zip(CLASSES, self.class_mix) if p > 0],
            "hour": self.hour,
            "daylight": self.daylight,
            "lighting": self.lighting,
            "weather": self.weather,
            "weather_strength": self.weather_strength,
            "palette_hues_degrees": {name: float(h) for name, h in zip(CLASSES, self.palette_hues)},
            "palette_saturation": self.palette_saturation,
            "texture_frequency": self.texture_frequency,
            "texture_amplitude": self.texture_amplitude,
            "object_scale": self.object_scale,
            "aspect": self.aspect,
            "tilt_degrees": self.tilt_degrees,
            "flip_probability": self.flip_probability,
            "occlusion_probability": self.occlusion_probability,
            "background_rgb": [float(c) for c in self.background_rgb],
            "noise_sigma": self.noise_sigma,
        }


def _daylight(hour: float) -> float:
    """1 around noon, 0 at night, smooth in between (hours)."""
    return float(np.clip(math.cos(2 * math.pi * (hour - 13.0) / 24.0) + 0.3, 0.0, 1.0))


def _lighting_name(daylight: float) -> str:
    if daylight >= 0.65:
        return "day"
    if daylight >= 0.2:
        return "dusk"
    return "night"


def _bounded_walk(rng: np.random.Generator, value: float, step: float, low: float, high: float) -> float:
    """One step of a random walk reflected into [low, high]."""
    value = value + rng.normal(0.0, step)
    if value < low:
        value = 2 * low - value
    if value > high:
        value = 2 * high - value
    return float(np.clip(value, low, high))


class _SceneTrack:
    """The scene sequence of one camera: a fixed camera profile plus a Markov drift."""

    def __init__(self, rng: np.random.Generator, holdout: bool) -> None:
        self._rng = rng
        # Camera profile (constant).
        self._base_logits = rng.normal(0.0, 1.0, _NUM_CLASSES)
        # Hold-out cameras sweep the day faster so a few windows cover day, dusk and night.
        self._hour_step = rng.uniform(6.0, 9.0) if holdout else rng.uniform(2.0, 3.0)
        self._hue_drift = rng.choice([-1.0, 1.0]) * rng.uniform(15.0, 25.0)
        background_hue = rng.uniform(0, 360)
        self._background = _hsv_to_rgb(
            np.array([background_hue]), np.array([rng.uniform(0.05, 0.35)]), np.array([rng.uniform(0.35, 0.7)])
        )[0]
        # Drifting state, window 0.
        self._logit_walk = np.zeros(_NUM_CLASSES)
        self._present = rng.random(_NUM_CLASSES) < 0.85
        self._hour = rng.uniform(8.0, 13.0)
        self._weather = "clear"
        self._weather_strength = 0.0
        self._hues = (rng.permutation(_NUM_CLASSES) * 60.0 + rng.uniform(0, 360) + rng.normal(0, 6, _NUM_CLASSES)) % 360
        self._saturation = rng.uniform(0.6, 0.9)
        self._texture_frequency = rng.uniform(2.0, 5.0)
        self._texture_amplitude = rng.uniform(0.0, 0.25)
        self._scale = rng.uniform(0.65, 0.95)
        self._aspect = rng.uniform(0.85, 1.15)
        self._tilt = rng.normal(0.0, 6.0)
        self._flip = float(rng.choice([0.15, 0.85]))
        self._occlusion = rng.uniform(0.05, 0.25)
        self.scenes: list[Scene] = []
        self._ensure_present()
        self.scenes.append(self._snapshot())

    def extend_to(self, count: int) -> None:
        """Make sure ``self.scenes`` holds at least ``count`` windows."""
        while len(self.scenes) < count:
            self._advance()
            self.scenes.append(self._snapshot())

    def _advance(self) -> None:
        rng = self._rng
        self._logit_walk = self._logit_walk + rng.normal(0.0, 0.7, _NUM_CLASSES)
        was_present = self._present.copy()
        flip_presence = rng.random(_NUM_CLASSES) < np.where(self._present, 0.15, 0.5)
        self._present = self._present ^ flip_presence
        self._ensure_present()
        # A class that (re)appears starts rare and grows over the next windows.
        appeared = self._present & ~was_present
        self._logit_walk[appeared] = np.minimum(self._logit_walk[appeared], self._logit_walk.mean() - 1.0) - 0.5
        self._hour = (self._hour + self._hour_step) % 24.0
        if rng.random() < 0.3:
            self._weather = str(rng.choice(_WEATHERS, p=[0.4, 0.2, 0.2, 0.2]))
            self._weather_strength = 0.0 if self._weather == "clear" else float(rng.uniform(0.4, 1.0))
        self._hues = (self._hues + self._hue_drift + rng.normal(0.0, 8.0, _NUM_CLASSES)) % 360
        if rng.random() < 0.2:
            first, second = rng.choice(_NUM_CLASSES, size=2, replace=False)
            self._hues[[first, second]] = self._hues[[second, first]]
        self._saturation = _bounded_walk(rng, self._saturation, 0.1, 0.35, 0.95)
        self._texture_frequency = _bounded_walk(rng, self._texture_frequency, 0.8, 1.5, 7.0)
        self._texture_amplitude = _bounded_walk(rng, self._texture_amplitude, 0.08, 0.0, 0.35)
        self._scale = _bounded_walk(rng, self._scale, 0.08, 0.5, 1.0)
        self._aspect = _bounded_walk(rng, self._aspect, 0.08, 0.75, 1.3)
        self._tilt = _bounded_walk(rng, self._tilt, 4.0, -15.0, 15.0)
        if rng.random() < 0.25:
            self._flip = 1.0 - self._flip
        self._occlusion = _bounded_walk(rng, self._occlusion, 0.06, 0.0, 0.4)

    def _ensure_present(self) -> None:
        """At least three classes are visible in every window."""
        while self._present.sum() < 3:
            self._present[self._rng.choice(np.flatnonzero(~self._present))] = True

    def _snapshot(self) -> Scene:
        logits = self._base_logits + self._logit_walk
        weights = np.where(self._present, np.exp(logits - logits.max()), 0.0)
        mix = weights / weights.sum()
        mix = np.where(self._present, np.maximum(mix, 0.03), 0.0)
        mix = mix / mix.sum()
        daylight = _daylight(self._hour)
        return Scene(
            class_mix=mix,
            hour=float(self._hour),
            daylight=daylight,
            lighting=_lighting_name(daylight),
            weather=self._weather,
            weather_strength=self._weather_strength,
            palette_hues=self._hues.copy(),
            palette_saturation=self._saturation,
            texture_frequency=self._texture_frequency,
            texture_amplitude=self._texture_amplitude,
            object_scale=self._scale,
            aspect=self._aspect,
            tilt_degrees=self._tilt,
            flip_probability=self._flip,
            occlusion_probability=self._occlusion,
            background_rgb=self._background.copy(),
            noise_sigma=0.015 + 0.035 * (1.0 - daylight),
        )


# --------------------------------------------------------------------------- drawing primitives
# Shapes live in canonical object coordinates: u to the right, v downwards, the object
# roughly filling [-1, 1]^2. Each primitive returns an approximate signed distance
# (negative inside) in canonical units; _coverage turns it into anti-aliased alpha.


def _hsv_to_rgb(hue_degrees: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; inputs shape (N,), output (N, 3) in 0..1."""
    sector = hue_degrees[:, None] / 60.0
    k = (np.array([5.0, 3.0, 1.0]) + sector) % 6.0
    return value[:, None] - value[:, None] * saturation[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _ellipse(u: np.ndarray, v: np.ndarray, cu: Any, cv: Any, ru: Any, rv: Any) -> np.ndarray:
    radius = np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2)
    return (radius - 1.0) * np.minimum(ru, rv)


def _rect(u: np.ndarray, v: np.ndarray, cu: Any, cv: Any, hu: Any, hv: Any) -> np.ndarray:
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _ring(u: np.ndarray, v: np.ndarray, cu: Any, cv: Any, radius: Any, thickness: Any) -> np.ndarray:
    return np.abs(np.sqrt((u - cu) ** 2 + (v - cv) ** 2) - radius) - thickness / 2


def _segment(u: np.ndarray, v: np.ndarray, start: tuple[Any, Any], end: tuple[Any, Any], thickness: Any) -> np.ndarray:
    du, dv = end[0] - start[0], end[1] - start[1]
    length2 = du * du + dv * dv
    t = np.clip(((u - start[0]) * du + (v - start[1]) * dv) / length2, 0.0, 1.0)
    return np.sqrt((u - start[0] - t * du) ** 2 + (v - start[1] - t * dv) ** 2) - thickness / 2


def _coverage(distance: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """Alpha in 0..1 from a signed distance, anti-aliased over one pixel (canonical units)."""
    return np.clip(0.5 - distance / pixel, 0.0, 1.0)


@dataclass
class _Parts:
    """Per-crop inputs of a class drawer: coordinates, pose variables and colours."""

    u: np.ndarray  # (n, H, W) canonical horizontal coordinate
    v: np.ndarray  # (n, H, W) canonical vertical coordinate
    pose: np.ndarray  # (n, 1, 1) uniform in [-1, 1]: stride, cabin shift, lean ...
    body: np.ndarray  # (n, 3, H, W) textured palette colour
    secondary: np.ndarray  # (n, 3, 1, 1)
    dark: np.ndarray  # (n, 3, 1, 1) tyres
    glass: np.ndarray  # (n, 3, 1, 1) windows
    skin: np.ndarray  # (n, 3, 1, 1)


Layers = list[tuple[np.ndarray, np.ndarray]]  # (distance (n,H,W), colour (n,3,*,*)) painted in order


def _person(p: _Parts) -> Layers:
    u, v, stride, swing = p.u, p.v, 0.18 * p.pose, 0.12 * p.pose
    return [
        (_segment(u, v, (-0.12, 0.15), (-0.14 - stride, 0.92), 0.2), p.secondary),
        (_segment(u, v, (0.12, 0.15), (0.14 + stride, 0.92), 0.2), p.secondary),
        (_segment(u, v, (-0.3, -0.38), (-0.42 - swing, 0.15), 0.13), p.body),
        (_segment(u, v, (0.3, -0.38), (0.42 + swing, 0.15), 0.13), p.body),
        (_rect(u, v, 0.0, -0.1, 0.3, 0.32), p.body),
        (_ellipse(u, v, 0.0, -0.66, 0.19, 0.22), p.skin),
    ]


def _car(p: _Parts) -> Layers:
    u, v, shift = p.u, p.v, 0.15 * p.pose
    return [
        (_rect(u, v, shift, -0.22, 0.5, 0.2) - 0.04, p.body),
        (_rect(u, v, 0.0, 0.12, 0.92, 0.24) - 0.05, p.body),
        (_rect(u, v, shift, -0.22, 0.42, 0.13), p.glass),
        (_rect(u, v, shift, -0.22, 0.04, 0.14), p.body),
        (_ellipse(u, v, -0.55, 0.38, 0.21, 0.21), p.dark),
        (_ellipse(u, v, 0.55, 0.38, 0.21, 0.21), p.dark),
        (_ellipse(u, v, -0.55, 0.38, 0.08, 0.08), p.glass),
        (_ellipse(u, v, 0.55, 0.38, 0.08, 0.08), p.glass),
    ]


def _truck(p: _Parts) -> Layers:
    u, v, length = p.u, p.v, 0.62 + 0.08 * p.pose
    return [
        (_rect(u, v, 0.3 - length - 0.02, -0.12, length, 0.5), p.body),
        (_rect(u, v, 0.64, 0.04, 0.27, 0.36) - 0.04, p.secondary),
        (_rect(u, v, 0.72, -0.1, 0.15, 0.13), p.glass),
        (_rect(u, v, -0.1, 0.4, 0.92, 0.04), p.dark),
        (_ellipse(u, v, -0.66, 0.46, 0.17, 0.17), p.dark),
        (_ellipse(u, v, -0.24, 0.46, 0.17, 0.17), p.dark),
        (_ellipse(u, v, 0.64, 0.46, 0.17, 0.17), p.dark),
    ]


def _bus(p: _Parts) -> Layers:
    u, v = p.u, p.v
    window_count = 5.0 + np.round(p.pose)  # 4..6 windows
    period = 1.5 / window_count
    phase = np.mod((u + 0.9) / period, 1.0)
    row = np.maximum(_rect(u, v, -0.15, -0.24, 0.75, 0.15), (np.abs(phase - 0.5) - 0.36) * period)
    return [
        (_rect(u, v, 0.0, -0.05, 0.95, 0.52) - 0.05, p.body),
        (row, p.glass),
        (_rect(u, v, 0.78, 0.02, 0.09, 0.3), p.glass),
        (_rect(u, v, -0.1, 0.18, 0.85, 0.035), p.secondary),
        (_ellipse(u, v, -0.6, 0.47, 0.15, 0.15), p.dark),
        (_ellipse(u, v, 0.55, 0.47, 0.15, 0.15), p.dark),
    ]


def _bicycle(p: _Parts) -> Layers:
    u, v = p.u, p.v
    radius = 0.33 + 0.04 * p.pose
    rear, front, crank = (-0.52, 0.38), (0.52, 0.38), (-0.02, 0.38)
    seat, head = (-0.2, -0.18), (0.34, -0.16)
    frame = np.minimum.reduce([
        _segment(u, v, rear, seat, 0.09),
        _segment(u, v, rear, crank, 0.09),
        _segment(u, v, crank, seat, 0.09),
        _segment(u, v, seat, head, 0.09),
        _segment(u, v, crank, head, 0.09),
        _segment(u, v, head, front, 0.09),
    ])
    return [
        (_ring(u, v, rear[0], rear[1], radius, 0.08), p.dark),
        (_ring(u, v, front[0], front[1], radius, 0.08), p.dark),
        (frame, p.body),
        (_segment(u, v, head, (0.44, -0.4), 0.08), p.dark),
        (_rect(u, v, -0.24, -0.24, 0.12, 0.04), p.dark),
    ]


def _motorcycle(p: _Parts) -> Layers:
    u, v, lean = p.u, p.v, 0.1 * p.pose
    return [
        (_ring(u, v, -0.58, 0.5, 0.26, 0.17), p.dark),
        (_ring(u, v, 0.58, 0.5, 0.26, 0.17), p.dark),
        (_ellipse(u, v, 0.0, 0.17, 0.55, 0.2), p.body),
        (_rect(u, v, -0.02, 0.42, 0.18, 0.1), p.glass),
        (_segment(u, v, (-0.12, 0.05), (0.02 + lean, -0.48), 0.26), p.secondary),
        (_segment(u, v, (0.04 + lean, -0.4), (0.42, -0.12), 0.1), p.secondary),
        (_ellipse(u, v, 0.08 + lean, -0.7, 0.16, 0.17), p.secondary * 0.6 + 0.3),
    ]


_DRAWERS: tuple[Callable[[_Parts], Layers], ...] = (_person, _car, _truck, _bus, _bicycle, _motorcycle)

_SKIN_TONES = np.array([[0.96, 0.8, 0.69], [0.87, 0.67, 0.5], [0.68, 0.46, 0.33], [0.45, 0.3, 0.22]])
_NIGHT_TINT = np.array([0.75, 0.85, 1.15])
_DUSK_TINT = np.array([1.12, 0.88, 0.72])


# --------------------------------------------------------------------------- the renderer


def _box_blur(images: np.ndarray, passes: int) -> np.ndarray:
    """Separable 3x3 box blur over the last two axes, ``passes`` times (edge padding)."""
    for _ in range(passes):
        padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
        rows = (padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]) / 3.0
        images = (rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]) / 3.0
    return images


@dataclass
class _CropDraws:
    """Random variables of each crop, shape (N, ...): geometry, pose and colours before lighting (0..1)."""

    scale: np.ndarray  # object size, fraction of the crop
    aspect: np.ndarray  # horizontal stretch (viewpoint)
    tilt: np.ndarray  # rotation, radians
    facing: np.ndarray  # +1 right, -1 left
    centre: np.ndarray  # (N, 2) offset of the object centre, crop units [-1, 1]
    pose: np.ndarray  # uniform in [-1, 1]: stride, cabin shift, lean ...
    body: np.ndarray  # (N, 3) palette colour
    secondary: np.ndarray  # (N, 3)
    dark: np.ndarray  # (N, 3)
    glass: np.ndarray  # (N, 3)
    skin: np.ndarray  # (N, 3)
    background: np.ndarray  # (N, 3)
    texture_phase: np.ndarray
    background_phase: np.ndarray  # (N, 2)

    @classmethod
    def sample(cls, scene: Scene, labels: np.ndarray, rng: np.random.Generator) -> "_CropDraws":
        n = len(labels)
        on_palette = rng.random(n) >= 0.15  # some objects wear an off-palette colour
        hues = np.where(on_palette, scene.palette_hues[labels] + rng.normal(0.0, 10.0, n), rng.uniform(0, 360, n))
        saturation = np.clip(scene.palette_saturation + rng.normal(0.0, 0.08, n), 0.05, 1.0)
        draws = cls(
            scale=scene.object_scale * rng.uniform(0.85, 1.15, n),
            aspect=scene.aspect * rng.uniform(0.9, 1.1, n),
            tilt=np.radians(scene.tilt_degrees + rng.normal(0.0, 5.0, n)),
            facing=np.where(rng.random(n) < scene.flip_probability, -1.0, 1.0),
            centre=rng.normal(0.0, 0.06, (n, 2)),
            pose=rng.uniform(-1.0, 1.0, n),
            body=_hsv_to_rgb(hues % 360, saturation, rng.uniform(0.45, 0.95, n)),
            secondary=_hsv_to_rgb(rng.uniform(0, 360, n), rng.uniform(0.0, 0.4, n), rng.uniform(0.15, 0.55, n)),
            dark=np.repeat(rng.uniform(0.04, 0.14, (n, 1)), 3, axis=1),
            glass=np.array([0.55, 0.65, 0.78]) * rng.uniform(0.5, 1.0, (n, 1)),
            skin=_SKIN_TONES[rng.integers(0, len(_SKIN_TONES), n)],
            background=np.clip(scene.background_rgb + rng.normal(0.0, 0.06, (n, 3)), 0.0, 1.0),
            texture_phase=rng.uniform(0.0, 2 * math.pi, n),
            background_phase=rng.uniform(0.0, 2 * math.pi, (n, 2)),
        )
        for name, value in vars(draws).items():
            setattr(draws, name, value.astype(np.float32))
        return draws


def render_crops(scene: Scene, labels: np.ndarray, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one crop per label under ``scene``; returns uint8 (N, 3, resolution, resolution)."""
    grid = ((np.arange(resolution) + 0.5) / resolution * 2.0 - 1.0).astype(np.float32)
    x, y = grid[None, None, :], grid[None, :, None]
    draws = _CropDraws.sample(scene, labels, rng)
    images = _background(draws, x, y)
    for class_index in range(_NUM_CLASSES):
        members = np.flatnonzero(labels == class_index)
        if members.size:
            images[members] = _paint_objects(images[members], class_index, draws, members, scene, x, y)
    images = _occlude(images, scene, rng, x, y)
    images = _light(images, scene, rng)
    images = _weather(images, scene, rng, x, y)
    images = images + rng.normal(0.0, scene.noise_sigma, images.shape).astype(np.float32)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def _background(draws: _CropDraws, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Base colour with a vertical gradient and a soft low-frequency pattern, (N, 3, H, W)."""
    phase = draws.background_phase[:, :, None, None]
    pattern = 0.06 * np.sin(3.0 * x + phase[:, 0]) * np.cos(2.5 * y + phase[:, 1])
    shade = 1.0 + 0.15 * y + pattern
    return draws.background[:, :, None, None] * shade[:, None, :, :]


def _paint_objects(
    canvas: np.ndarray, class_index: int, draws: _CropDraws, members: np.ndarray, scene: Scene, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Paint the objects of one class onto their crops ``canvas`` (n, 3, H, W), layer by layer."""

    def per_crop(values: np.ndarray) -> np.ndarray:
        """(N,) -> (n, 1, 1) and (N, 3) -> (n, 3, 1, 1): broadcastable over the pixels of the members."""
        selected = values[members]
        return selected[:, None, None] if selected.ndim == 1 else selected[:, :, None, None]

    scale, aspect, facing = per_crop(draws.scale), per_crop(draws.aspect), per_crop(draws.facing)
    cos_t, sin_t = np.cos(per_crop(draws.tilt)), np.sin(per_crop(draws.tilt))
    dx, dy = x - per_crop(draws.centre[:, 0]), y - per_crop(draws.centre[:, 1])
    u = facing * (cos_t * dx + sin_t * dy) / (scale * aspect)
    v = (-sin_t * dx + cos_t * dy) / scale
    pixel = (2.0 / x.shape[-1]) / (scale * np.minimum(aspect, 1.0))  # one pixel in canonical units
    angle = _stripe_angle(class_index)
    stripes = 1.0 + scene.texture_amplitude * np.sin(
        math.pi * scene.texture_frequency * (u * math.cos(angle) + v * math.sin(angle)) + per_crop(draws.texture_phase)
    )
    parts = _Parts(
        u=u,
        v=v,
        pose=per_crop(draws.pose),
        body=per_crop(draws.body) * stripes[:, None, :, :],
        secondary=per_crop(draws.secondary),
        dark=per_crop(draws.dark),
        glass=per_crop(draws.glass),
        skin=per_crop(draws.skin),
    )
    for distance, colour in _DRAWERS[class_index](parts):
        alpha = _coverage(distance, pixel)[:, None, :, :]
        canvas = canvas + alpha * (colour - canvas)
    return canvas


def _stripe_angle(class_index: int) -> float:
    """Stripe orientation of a class's body texture, radians (fixed per class)."""
    return (0.3 + 0.9 * class_index) % math.pi


def _occlude(images: np.ndarray, scene: Scene, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hide a band from one side of some crops behind a grey/coloured occluder (pole, other object)."""
    n = images.shape[0]
    hidden = rng.random(n) < scene.occlusion_probability
    side = rng.integers(0, 4, n)
    depth = rng.uniform(0.25, 0.5, n) * 2.0  # fraction of the crop, in [-1, 1] units
    colour = _hsv_to_rgb(rng.uniform(0, 360, n), rng.uniform(0.0, 0.3, n), rng.uniform(0.2, 0.7, n)).astype(np.float32)
    edge = (1.0 - depth)[:, None, None]
    coords = np.stack(np.broadcast_arrays(x[0], -x[0], y[0], -y[0]))  # (4, H, W)
    mask = (coords[side] > edge) & hidden[:, None, None]
    return np.where(mask[:, None, :, :], colour[:, :, None, None], images)


def _light(images: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Time of day: brightness, contrast and tint; darker and flatter at night."""
    daylight = scene.daylight
    twilight = 4.0 * daylight * (1.0 - daylight)
    tint = _NIGHT_TINT * (1.0 - daylight) + daylight
    tint = tint * (1.0 - 0.6 * twilight) + _DUSK_TINT * 0.6 * twilight
    gain = (0.45 + 0.55 * daylight) * rng.uniform(0.92, 1.08, (images.shape[0], 1, 1, 1))
    contrast = 0.7 + 0.3 * daylight
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    lit = (mean + contrast * (images - mean)) * gain * tint[None, :, None, None]
    return lit.astype(np.float32)


def _weather(images: np.ndarray, scene: Scene, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fog (blend to grey), rain (bright streaks + slight blur) or blur (defocus, motion)."""
    strength = scene.weather_strength
    n = images.shape[0]
    if scene.weather == "fog":
        alpha = np.clip(strength * 0.6 + rng.normal(0.0, 0.05, (n, 1, 1, 1)), 0.0, 0.9)
        fog = 0.35 + 0.4 * scene.daylight
        return (images * (1 - alpha) + fog * alpha).astype(np.float32)
    if scene.weather == "rain":
        angle = rng.normal(0.3, 0.1, (n, 1, 1))
        phase = rng.uniform(0.0, 1.0, (n, 1, 1))
        streak = np.mod((x * np.cos(angle) + y * np.sin(angle)) * 6.0 + phase, 1.0) < 0.12
        images = images * (1 - 0.15 * strength) + 0.15 * strength * (0.3 + 0.5 * scene.daylight)
        images = images + (0.15 * strength * (0.4 + 0.6 * scene.daylight) * streak)[:, None, :, :]
        return _box_blur(images, 1).astype(np.float32)
    if scene.weather == "blur":
        return _box_blur(images, 1 + int(strength > 0.7)).astype(np.float32)
    return images


# --------------------------------------------------------------------------- the dataset


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise EkyaError(f"synthetic dataset: {name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise EkyaError(f"synthetic dataset: {name} must be {bound}, got {value!r}")
    return int(value)


class SyntheticSource(StreamSource):
    """Seeded multi-camera streams of procedurally drawn object crops that drift over windows.

    Args:
        num_streams: number of cameras used for continuous learning ("cam0", "cam1", ...).
        num_windows: retraining windows per camera.
        window_seconds: retraining window length T, seconds.
        crops_per_window: object crops per window (all classes together).
        frames_per_window: frames per window that hold (labeled) crops; crops are spread over them (several per frame).
        camera_fps: the cameras' frame rate, Hz: inference runs on every frame, of which the windows
            hold ``frames_per_window`` (None: only those frames exist).
        resolution: crop side, pixels (crops are square, RGB uint8).
        holdout_streams: hold-out cameras ("holdout0", ...) for training the base model.
        holdout_windows: windows per hold-out camera.
        seed: master seed; the same seed gives bit-identical windows.
        cache_dir: folder to cache generated windows in (None: generate every time).
    """

    def __init__(
        self,
        *,
        num_streams: int = 3,
        num_windows: int = 4,
        window_seconds: float = 20.0,
        crops_per_window: int = 400,
        frames_per_window: int = 120,
        camera_fps: float | None = 30.0,
        resolution: int = 32,
        holdout_streams: int = 2,
        holdout_windows: int = 2,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, numbers.Real) or not (
            math.isfinite(window_seconds) and window_seconds > 0
        ):
            raise EkyaError(f"synthetic dataset: window_seconds must be a finite number > 0, got {window_seconds!r}")
        super().__init__(float(window_seconds), check_camera_fps(camera_fps, "synthetic dataset: camera_fps"))
        self.parameters: dict[str, Any] = {
            "num_streams": _check_int("num_streams", num_streams, 1),
            "num_windows": _check_int("num_windows", num_windows, 1),
            "window_seconds": float(window_seconds),
            "crops_per_window": _check_int("crops_per_window", crops_per_window, 1),
            "frames_per_window": _check_int("frames_per_window", frames_per_window, 1),
            "resolution": _check_int("resolution", resolution, 8, 512),
            "holdout_streams": _check_int("holdout_streams", holdout_streams, 0),
            "holdout_windows": _check_int("holdout_windows", holdout_windows, 1),
            "seed": _check_int("seed", seed, 0, 2**63 - 1),
        }
        self.crop_resolution = self.parameters["resolution"]
        self.frames_per_window = self.parameters["frames_per_window"]
        self.crops_per_window = self.parameters["crops_per_window"]
        self.cache = ArrayCache(cache_dir) if cache_dir is not None else None
        self._camera_names = [f"cam{i}" for i in range(num_streams)]
        self._holdout_names = [f"holdout{i}" for i in range(holdout_streams)]
        self._identity: dict[str, tuple[int, int]] = {name: (_CAMERA_KIND, i) for i, name in enumerate(self._camera_names)}
        self._identity.update({name: (_HOLDOUT_KIND, i) for i, name in enumerate(self._holdout_names)})

    # ---- StreamSource
    @property
    def streams(self) -> list[str]:
        return list(self._camera_names)

    @property
    def holdout_names(self) -> list[str]:
        """Names of the hold-out cameras ("holdout0", ...)."""
        return list(self._holdout_names)

    def num_windows(self, stream: str) -> int:
        kind, _ = self._lookup(stream)
        return self.parameters["num_windows"] if kind == _CAMERA_KIND else self.parameters["holdout_windows"]

    def window(self, stream: str, index: int) -> Window:
        self._check_index(stream, index)
        if self.cache is None:
            arrays = self._generate(stream, index)
        else:
            key = self.cache_key(stream, index)
            arrays = self.cache.load(key)
            if arrays is None or any(name not in arrays for name in _ARRAY_NAMES):
                arrays = self._generate(stream, index)
                self.cache.save(key, arrays)
        start = index * self.window_seconds
        return Window(
            stream=stream,
            index=index,
            start_seconds=start,
            end_seconds=start + self.window_seconds,
            images=arrays["images"],
            labels=arrays["labels"],
            frame_ids=arrays["frame_ids"],
            timestamps=arrays["timestamps"],
        )

    def holdout(self) -> list[Window]:
        return [self.window(name, k) for name in self._holdout_names for k in range(self.parameters["holdout_windows"])]

    @property
    def has_holdout(self) -> bool:
        return bool(self._holdout_names)

    def holdout_hint(self) -> str:
        return "set dataset.holdout_streams=N (N >= 1 hold-out cameras)"

    def more_windows_hint(self) -> str:
        return "set dataset.num_windows=N (N >= 2)"

    # ---- drift description
    def scene(self, stream: str, index: int) -> dict[str, Any]:
        """JSON-able scene of window ``index`` of ``stream``: class mix, lighting, weather, palette ..."""
        self._check_index(stream, index)
        return self._scene(stream, index).to_dict()

    def cache_key(self, stream: str, index: int) -> str:
        """The cache key of a window: every generator parameter plus stream and index."""
        return cache_key({"dataset": "synthetic", "version": GENERATOR_VERSION, **self.parameters, "stream": stream, "index": index})

    # ---- internals
    def _lookup(self, stream: str) -> tuple[int, int]:
        if stream not in self._identity:
            raise EkyaError(f"synthetic dataset: unknown stream {stream!r}; valid: {sorted(self._identity)}")
        return self._identity[stream]

    def _check_index(self, stream: str, index: int) -> None:
        count = self.num_windows(stream)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < count:
            raise EkyaError(f"synthetic dataset: window index {index!r} of {stream} out of range [0, {count})")

    def _seed_sequence(self, stream: str, purpose: int, index: int) -> np.random.SeedSequence:
        kind, number = self._lookup(stream)
        return np.random.SeedSequence([self.parameters["seed"], kind, number, purpose, index])

    def _scene(self, stream: str, index: int) -> Scene:
        # Replayed from window 0 on every call (microseconds): no mutable state, so the
        # source is thread-safe and picklable.
        kind, _ = self._lookup(stream)
        rng = np.random.default_rng(self._seed_sequence(stream, _SCENE_PURPOSE, 0))
        track = _SceneTrack(rng, holdout=kind == _HOLDOUT_KIND)
        track.extend_to(index + 1)
        return track.scenes[index]

    def _generate(self, stream: str, index: int) -> dict[str, np.ndarray]:
        scene = self._scene(stream, index)
        rng = np.random.default_rng(self._seed_sequence(stream, _CROPS_PURPOSE, index))
        crops = self.parameters["crops_per_window"]
        frames = self.parameters["frames_per_window"]
        frame_in_window = np.sort(rng.integers(0, frames, crops))
        labels = rng.choice(_NUM_CLASSES, size=crops, p=scene.class_mix).astype(np.int64)
        frame_seconds = self.window_seconds / frames
        frame_times = index * self.window_seconds + (np.arange(frames) + 0.5) * frame_seconds
        images = render_crops(scene, labels, self.parameters["resolution"], rng)
        return {
            "images": images,
            "labels": labels,
            "frame_ids": (index * frames + frame_in_window).astype(np.int64),
            "timestamps": frame_times[frame_in_window].astype(np.float64),
        }
