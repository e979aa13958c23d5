"""The "shapes" world: a procedural, seeded video generator for laptop-scale training runs.

Every clip shows one coloured shape (circle, square, triangle, diamond) on a plain background. The shape takes part in
two events, one after the other, in a random order:

* a **motion** (left, right, up or down, across a good part of the frame), and
* a **change**: it grows, shrinks, turns another colour, or nothing happens (then it only moves).

Each clip comes with a caption ("a red circle moves left then grows", "a blue square turns green then moves up") and
question–answer pairs ("Which way does it move?" -> "left").

**Motion can only be read from time.** The distribution of clips is invariant under time reversal: playing a clip
backwards gives exactly (bit for bit) another clip of the world, with the opposite direction, the reversed change
(grows <-> shrinks, start and end colours swapped) and the events in the other order, and both are equally likely
([`ShapesClipSpec.reversed`], checked by the tests). A model that ignores frame order — frame averaging, a bag of
frames, a per-frame-shuffled clip — sees a clip and its reversal identically, so on the 4-way direction question the
best it can do is tell the axis (horizontal/vertical) from where the frames spread: **50 %**, against 25 % chance and
100 % for a model that uses order. The same holds for "grows" vs "shrinks" and the start colour.

**Sound** ([`render_audio`]): every clip also has an audio track in which something only audible matters. The shape
is made of a **material** (rubber, wooden, metal, glass) that the frames never show; it hums at the material's pitch
(200, 450, 1000 or 2200 Hz, jittered by up to 4 %, with two weaker harmonics), so the material can only be heard.
A **click** (a 20 ms Hann-windowed noise burst) sounds when the shape starts moving and when it stops — the visible
events, heard: the clicks fall at the start and in the middle, in the middle and at the end, or at the start and at
the end of the clip, depending on whether the motion comes first, second or alone. Three captions per clip:
[`ShapesClipSpec.caption`] (what is seen, unchanged), [`ShapesClipSpec.audio_caption`] (what is heard: "a metal hum,
clicks at the start and in the middle") and [`ShapesClipSpec.av_caption`] (what is seen, with the material that is
only heard: "a red metal circle moves left then grows"). The sound attributes are drawn from their own random stream
(`default_rng([seed, AUDIO_STREAM])`), so a seed gives the same frames, captions and questions as before sound
existed, and the frames never depend on the sound. The audio's distribution is also invariant under time reversal
(stationary tone with a uniform phase, white noise, symmetric click windows at the motion's start and end), though
not bit for bit.

Rendering is pure numpy (anti-aliased with a one-pixel soft edge from a signed distance), `uint8 (T, H, W, 3)`.
Clip `i` of a split is drawn from `numpy.random.default_rng(SPLIT_SEED_OFFSETS[split] + i)`, so train and held-out
clips never share a seed and every clip can be regenerated from its seed alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import torch


__all__ = [
    "AUDIO_SAMPLING_RATE",
    "AUDIO_STREAM",
    "CHANGES",
    "COLOURS",
    "DIRECTIONS",
    "MATERIALS",
    "MATERIAL_PITCH_HZ",
    "SHAPES",
    "SPLIT_SEED_OFFSETS",
    "ShapesClipSpec",
    "ShapesWorldDataset",
    "build_shapes_world_dataset",
    "click_times",
    "render_audio",
    "render_clip",
    "sample_clip_spec",
    "video_to_pixel_values",
    "write_mp4",
    "AUDIO_CODECS",
]

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "white": (240, 240, 240),
}
DIRECTIONS = ("left", "right", "up", "down")
CHANGES = ("none", "grows", "shrinks", "changes colour")
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
_UNIT = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}  # (dx, dy), y downwards
_BACKGROUNDS = ((20, 20, 20), (45, 45, 45), (70, 70, 70), (30, 35, 50))
SPLIT_SEED_OFFSETS = {"train": 0, "validation": 10_000_000, "test": 20_000_000}
# Sound: the material is only audible, as the pitch of the shape's hum (fundamentals 2.2x apart, so that no material's
# harmonics land on another's fundamental; a pitch jitter of at most 4 % keeps the classes apart).
MATERIAL_PITCH_HZ: dict[str, float] = {"rubber": 200.0, "wooden": 450.0, "metal": 1000.0, "glass": 2200.0}
MATERIALS = tuple(MATERIAL_PITCH_HZ)
AUDIO_SAMPLING_RATE = 16000  # what BEATs reads
AUDIO_STREAM = 0x5EED_A0D1  # the second entropy word of the sound attributes' random stream
_PITCH_JITTER = 0.04
_HARMONICS = ((1, 1.0), (2, 0.35), (3, 0.15))  # (multiple of the fundamental, relative amplitude)
_CLICK_SECONDS = 0.02
_CLICK_AMPLITUDE = 0.45
_NOISE_STD = 0.003
_FADE_SECONDS = 0.01
_CLICK_PLACES = ("at the start", "in the middle", "at the end")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ShapesClipSpec:
    """Everything needed to render one clip. Positions are pixel coordinates of the shape centre; `size` is the
    radius of the circle (half-side of the square, circumradius-like extent of triangle and diamond)."""

    shape: str
    direction: str
    change: str  # one of CHANGES
    motion_first: bool
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    start_size: float
    end_size: float
    start_colour: str
    end_colour: str
    background: tuple[int, int, int]
    num_frames: int
    height: int
    width: int
    # sound (only audible): see render_audio; None for a spec built without sound
    material: str | None = None
    pitch_hz: float | None = None
    tone_phase: float = 0.0
    loudness: float = 0.25
    noise_seed: int = 0

    # -- language ------------------------------------------------------------------------------------------------
    @property
    def change_phrase(self) -> str | None:
        if self.change == "none":
            return None
        if self.change == "changes colour":
            return f"turns {self.end_colour}"
        return self.change

    @property
    def caption(self) -> str:
        subject = f"a {self.start_colour} {self.shape}"
        motion = f"moves {self.direction}"
        change = self.change_phrase
        if change is None:
            return f"{subject} {motion}"
        first, second = (motion, change) if self.motion_first else (change, motion)
        return f"{subject} {first} then {second}"

    @property
    def av_caption(self) -> str:
        """The caption with the material, which only the sound tells: "a red metal circle moves left then grows"."""
        material = self._require_sound()
        subject = f"a {self.start_colour} {self.shape} "
        return f"a {self.start_colour} {material} {self.shape} " + self.caption[len(subject):]

    @property
    def audio_caption(self) -> str:
        """What is heard: the material's hum and where the two clicks fall, "a metal hum, clicks at the start and in
        the middle"."""
        material = self._require_sound()
        first, second = (_CLICK_PLACES[place] for place in self.click_places)
        return f"a {material} hum, clicks {first} and {second}"

    @property
    def click_places(self) -> tuple[int, int]:
        """Where the start and stop clicks fall: 0 start, 1 middle, 2 end (by thirds of the clip)."""
        return tuple(min(2, int(3 * fraction)) for fraction in _click_fractions(self))  # type: ignore[return-value]

    def _require_sound(self) -> str:
        if self.material is None:
            raise ValueError("This clip spec has no sound attributes (material is None); use sample_clip_spec.")
        return self.material

    @property
    def questions_and_answers(self) -> list[tuple[str, str]]:
        size_answer = {"grows": "it grows", "shrinks": "it shrinks"}.get(self.change, "no")
        pairs = [
            ("What shape is it?", self.shape),
            ("What colour is the shape at the start?", self.start_colour),
            ("What colour is the shape at the end?", self.end_colour),
            ("Which way does it move?", self.direction),
            ("Does it change size?", size_answer),
        ]
        if self.change != "none":
            pairs.append(("What happens first?", "it moves" if self.motion_first else f"it {self.change_phrase}"))
        return pairs

    # -- time reversal -------------------------------------------------------------------------------------------
    def reversed(self) -> ShapesClipSpec:
        """The clip played backwards, as a clip of the same world: opposite direction, reversed change, swapped order.
        `render_clip(spec.reversed()) == render_clip(spec)[::-1]` exactly."""
        change = {"grows": "shrinks", "shrinks": "grows"}.get(self.change, self.change)
        return dataclasses.replace(
            self,
            direction=_OPPOSITE[self.direction],
            change=change,
            motion_first=not self.motion_first if self.change != "none" else self.motion_first,
            start_xy=self.end_xy,
            end_xy=self.start_xy,
            start_size=self.end_size,
            end_size=self.start_size,
            start_colour=self.end_colour,
            end_colour=self.start_colour,
        )

    def labels(self) -> dict[str, int]:
        labels = {
            "direction": DIRECTIONS.index(self.direction),
            "shape": SHAPES.index(self.shape),
            "colour": list(COLOURS).index(self.start_colour),
            "change": CHANGES.index(self.change),
        }
        if self.material is not None:
            labels["material"] = MATERIALS.index(self.material)
        return labels


def sample_clip_spec(seed: int, num_frames: int = 8, height: int = 32, width: int = 32) -> ShapesClipSpec:
    """Draw a clip from the world with `numpy.random.default_rng(seed)`. The distribution is invariant under
    [`ShapesClipSpec.reversed`]: direction, change, order, colours and positions are drawn symmetrically."""
    if num_frames < 3:
        raise ValueError(f"num_frames must be at least 3 to show two events; got {num_frames}.")
    if min(height, width) < 16:
        raise ValueError(f"height and width must be at least 16 pixels; got {height}x{width}.")
    rng = np.random.default_rng(seed)
    shape = SHAPES[rng.integers(len(SHAPES))]
    direction = DIRECTIONS[rng.integers(len(DIRECTIONS))]
    change = CHANGES[rng.integers(len(CHANGES))]
    motion_first = bool(rng.integers(2))
    colour_names = list(COLOURS)
    start_colour = colour_names[rng.integers(len(colour_names))]
    end_colour = start_colour
    if change == "changes colour":
        others = [c for c in colour_names if c != start_colour]
        end_colour = others[rng.integers(len(others))]

    short = min(height, width)
    small, large = short * rng.uniform(0.08, 0.11), short * rng.uniform(0.17, 0.21)
    if change == "grows":
        start_size, end_size = small, large
    elif change == "shrinks":
        start_size, end_size = large, small
    else:
        start_size = end_size = short * rng.uniform(0.11, 0.17)

    # The path is a segment of the motion axis, placed symmetrically: its centre is uniform over the positions that
    # keep the whole shape inside the frame, so start and end are exchangeable between opposite directions.
    margin = max(start_size, end_size) + 1.0
    dx, dy = _UNIT[direction]
    along, across = (width, height) if dx else (height, width)
    distance = rng.uniform(0.35, 0.5) * along
    centre = rng.uniform(margin + distance / 2, along - margin - distance / 2)
    cross = rng.uniform(margin, across - margin)
    sign = dx + dy
    start_along, end_along = centre - sign * distance / 2, centre + sign * distance / 2
    if dx:
        start_xy, end_xy = (start_along, cross), (end_along, cross)
    else:
        start_xy, end_xy = (cross, start_along), (cross, end_along)
    background = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    # the sound from its own stream: the visual draws above are exactly those of the world before it had sound
    sound = np.random.default_rng([seed, AUDIO_STREAM])
    material = MATERIALS[sound.integers(len(MATERIALS))]
    jitter = sound.uniform(np.log1p(-_PITCH_JITTER), np.log1p(_PITCH_JITTER))  # log-uniform within +-4 %
    pitch_hz = MATERIAL_PITCH_HZ[material] * float(np.exp(jitter))
    return ShapesClipSpec(
        shape, direction, change, motion_first, start_xy, end_xy, float(start_size), float(end_size),
        start_colour, end_colour, background, num_frames, height, width,
        material=material, pitch_hz=pitch_hz, tone_phase=float(sound.uniform(0.0, 2 * np.pi)),
        loudness=float(sound.uniform(0.15, 0.25)), noise_seed=int(sound.integers(2**32)),
    )  # fmt: skip


def _progress(num_frames: int, change: str, motion_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer progress numerators (over `num_frames - 1`) of the motion and of the change at every frame.

    With a change, the first event runs over the first half of the clip and the second over the second half. Using
    integers (`min(k, 2t)`, `max(0, 2t - k)`) makes a reversed clip's progress exactly `k - progress`."""
    k = num_frames - 1
    t = np.arange(num_frames)
    if change == "none":
        return t, np.zeros_like(t)
    first, second = np.minimum(k, 2 * t), np.maximum(0, 2 * t - k)
    return (first, second) if motion_first else (second, first)


def _click_fractions(spec: ShapesClipSpec) -> tuple[float, float]:
    """Start and stop of the motion as fractions of the clip's duration: the shape is first seen displaced in frame
    `a + 1` (`a` the last frame before it moves) and first seen at rest in frame `b`; frame `i` is shown from
    `i / num_frames` of the duration. Under time reversal the two fractions map to `1 - stop` and `1 - start`."""
    motion, _ = _progress(spec.num_frames, spec.change, spec.motion_first)
    k = spec.num_frames - 1
    last_at_rest = int(np.flatnonzero(motion == 0).max())
    first_arrived = int(np.flatnonzero(motion == k).min())
    return (last_at_rest + 1) / spec.num_frames, first_arrived / spec.num_frames


def click_times(spec: ShapesClipSpec, fps: float = 8) -> tuple[float, float]:
    """Seconds at which the start and stop clicks of [`render_audio`] are centred, for frames shown at `fps`."""
    duration = spec.num_frames / fps
    return tuple(fraction * duration for fraction in _click_fractions(spec))  # type: ignore[return-value]


def render_audio(spec: ShapesClipSpec, fps: float = 8, sampling_rate: int = AUDIO_SAMPLING_RATE) -> np.ndarray:
    """The clip's sound track: float32 mono samples in [-1, 1], `round(num_frames / fps * sampling_rate)` of them
    (as long as the video shown at `fps`).

    A hum at `spec.pitch_hz` (the material's pitch) with harmonics 2 and 3 at 0.35 and 0.15 of its amplitude
    `spec.loudness`, faded in and out over 10 ms; a 20 ms Hann-windowed white-noise click (peak amplitude 0.45)
    centred at each of [`click_times`]; white noise of standard deviation 0.003 throughout. Deterministic in the spec
    (the noise comes from `spec.noise_seed`)."""
    if spec.pitch_hz is None:
        raise ValueError("This clip spec has no sound attributes (pitch_hz is None); use sample_clip_spec.")
    if not fps > 0:
        raise ValueError(f"fps must be positive; got {fps}.")
    if sampling_rate < 8000 or int(sampling_rate) != sampling_rate:
        raise ValueError(f"sampling_rate must be an integer number of Hz >= 8000; got {sampling_rate}.")
    top_harmonic = _HARMONICS[-1][0] * spec.pitch_hz
    if top_harmonic >= sampling_rate / 2:
        raise ValueError(f"sampling_rate {sampling_rate} cannot carry the {top_harmonic:.0f} Hz harmonic of the hum.")
    num_samples = int(round(spec.num_frames / fps * sampling_rate))
    t = np.arange(num_samples, dtype=np.float64) / sampling_rate
    hum = sum(weight * np.sin(2 * np.pi * multiple * spec.pitch_hz * t + multiple * spec.tone_phase)
              for multiple, weight in _HARMONICS)  # fmt: skip
    fade = min(num_samples // 2, int(round(_FADE_SECONDS * sampling_rate)))
    envelope = np.ones(num_samples)
    if fade:
        ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade) ** 2
        envelope[:fade], envelope[num_samples - fade :] = ramp, ramp[::-1]
    rng = np.random.default_rng(spec.noise_seed)
    audio = spec.loudness * hum * envelope + _NOISE_STD * rng.standard_normal(num_samples)
    click_length = int(round(_CLICK_SECONDS * sampling_rate)) | 1  # odd: a centre sample, a symmetric window
    window = np.hanning(click_length + 2)[1:-1]
    for centre in click_times(spec, fps):
        first = int(round(centre * sampling_rate)) - click_length // 2
        burst = _CLICK_AMPLITUDE * window * rng.uniform(-1.0, 1.0, click_length)
        lo, hi = max(0, first), min(num_samples, first + click_length)
        if lo < hi:
            audio[lo:hi] += burst[lo - first : hi - first]
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _lerp(start, end, numerator: np.ndarray, k: int) -> np.ndarray:
    # (start * (k - a) + end * a) / k: symmetric in (start, a) <-> (end, k - a), so reversal is bit-exact
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    a = numerator.astype(np.float64).reshape((-1,) + (1,) * start.ndim)
    return (start * (k - a) + end * a) / k


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) of each pixel to the shape outline."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - size
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - size * 0.85
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - size * 1.2) / np.sqrt(2.0)
    if shape == "triangle":  # upward equilateral triangle, intersection of three half-planes
        bottom = dy - size * 0.6
        s = np.sqrt(3.0) / 2
        left = -s * dx - 0.5 * dy - size * 0.6
        right = s * dx - 0.5 * dy - size * 0.6
        return np.maximum(bottom, np.maximum(left, right))
    raise ValueError(f"Unknown shape {shape!r}; expected one of {SHAPES}.")


def render_clip(spec: ShapesClipSpec) -> np.ndarray:
    """Render a clip as `uint8 (num_frames, height, width, 3)` RGB."""
    k = spec.num_frames - 1
    motion, change = _progress(spec.num_frames, spec.change, spec.motion_first)
    centres = _lerp(spec.start_xy, spec.end_xy, motion, k)  # (T, 2)
    sizes = _lerp(spec.start_size, spec.end_size, change, k)  # (T,)
    colours = _lerp(COLOURS[spec.start_colour], COLOURS[spec.end_colour], change, k)  # (T, 3)
    ys, xs = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float64) + 0.5  # pixel centres
    dx = xs[None] - centres[:, 0, None, None]
    dy = ys[None] - centres[:, 1, None, None]
    distance = _signed_distance(spec.shape, dx, dy, sizes[:, None, None])
    alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # one-pixel anti-aliased edge
    background = np.asarray(spec.background, dtype=np.float64)
    frames = background * (1.0 - alpha) + colours[:, None, None, :] * alpha
    return np.rint(frames).astype(np.uint8)


def video_to_pixel_values(
    video: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """`uint8 (T, H, W, 3)` -> float32 `(T, 3, H, W)`, scaled to [0, 1] and normalised (ImageNet mean/std, as the
    InternVideo2 video processor). Shapes clips are rendered at model resolution, so no resize is needed."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 video (T, H, W, 3); got {video.dtype} {video.shape}.")
    pixels = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float() / 255.0
    mean_t = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (pixels - mean_t) / std_t


AUDIO_CODECS = ("aac", "pcm_s16le")


def write_mp4(
    video: np.ndarray,
    path: str | os.PathLike,
    fps: int = 8,
    audio: np.ndarray | None = None,
    sampling_rate: int = AUDIO_SAMPLING_RATE,
    audio_codec: str = "aac",
) -> str:
    """Write `uint8 (T, H, W, 3)` to an H.264 mp4 with PyAV (lossy: pixels change by a few levels). Returns the path.
    Sides are padded to even sizes by the encoder's requirements only if needed (shapes clips are even already).

    With `audio` (float mono samples in [-1, 1], e.g. [`render_audio`]) the file also gets an audio track at
    `sampling_rate`, encoded with `audio_codec`:

    * `"aac"` (default; what real mp4 files carry, 64 kbit/s): lossy (about 28 dB SNR on shapes-world sound; the
      clicks' noise is what costs). The track starts at pts 0, so the encoder's priming delay is signalled and FFmpeg's
      decoder skips it: [`~media.audio_decoding.decode_audio`] returns the sound sample-aligned (checked with PyAV
      18.1), followed by silence up to the next 1024-sample AAC frame (16384 samples for one second at 16 kHz).
      AAC files from other writers may carry the priming samples instead (the original loader keeps them).
    * `"pcm_s16le"`: 16-bit PCM, sample-aligned and exact up to 16-bit rounding (`int16 / 32768` decodes back to
      `round(x * 32768) / 32768`). Works in mp4 (FFmpeg's ISOBMFF PCM), mov and mkv.

    The container follows the file extension (`.mp4`, `.mkv`, `.mov`, ...)."""
    import av

    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 video (T, H, W, 3); got {video.dtype} {video.shape}.")
    height, width = video.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs even frame sides; got {height}x{width}.")
    samples = None
    if audio is not None:
        samples = np.asarray(audio)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating) or samples.size == 0:
            raise ValueError(f"Expected mono float audio (samples,); got {samples.dtype} {samples.shape}.")
        if not np.isfinite(samples).all():
            raise ValueError("The audio holds NaN or infinite samples.")
        if np.abs(samples).max() > 1.0:
            raise ValueError(f"Audio samples must lie in [-1, 1]; the largest magnitude is {np.abs(samples).max()}.")
        if audio_codec not in AUDIO_CODECS:
            raise ValueError(f"audio_codec must be one of {AUDIO_CODECS}; got {audio_codec!r}.")
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive integer; got {sampling_rate!r}.")
    path = os.fspath(path)
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"} if stream.codec_context.name == "libx264" else {}
        audio_stream = None
        if samples is not None:
            audio_stream = container.add_stream(audio_codec, rate=int(sampling_rate))
            audio_stream.layout = "mono"
            if audio_codec == "aac":
                audio_stream.bit_rate = 64_000
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            if audio_codec == "pcm_s16le":
                pcm = np.clip(np.rint(samples.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = int(sampling_rate), 0
            for packet in audio_stream.encode(frame):
                container.mux(packet)
            for packet in audio_stream.encode(None):
                container.mux(packet)
    return path


def _split_seed(split: str, index: int) -> int:
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"Unknown split {split!r}; expected one of {tuple(SPLIT_SEED_OFFSETS)}.")
    if not 0 <= index < 10_000_000:
        raise ValueError(f"Clip index must be in [0, 10_000_000); got {index}.")
    return SPLIT_SEED_OFFSETS[split] + index


class ShapesWorldDataset(torch.utils.data.Dataset):
    """A map-style torch dataset of `num_clips` shapes clips of one split, rendered on the fly (about a millisecond
    per clip at 32x32x8, so no caching is needed).

    Each item is a dict: `pixel_values` float32 `(T, 3, H, W)` (normalised) — or `video` uint8 `(T, H, W, 3)` with
    `return_pixel_values=False` — `labels` (the index of the `label` attribute: `"direction"`, `"shape"`, `"colour"`,
    `"change"` or `"material"`), `caption`, `seed`, and the QA pairs as `questions` / `answers`.

    With `return_audio=True` an item also holds the sound ([`render_audio`] for frames shown at `fps`): `audio`
    float32 `(num_samples,)` at `sampling_rate` (16 kHz), `sampling_rate`, `material`, `audio_caption` and
    `av_caption` (see the module docstring).
    """

    def __init__(
        self,
        split: str = "train",
        num_clips: int = 1000,
        num_frames: int = 8,
        image_size: int = 32,
        label: str = "direction",
        return_pixel_values: bool = True,
        start_index: int = 0,
        return_audio: bool = False,
        fps: int = 8,
        sampling_rate: int = AUDIO_SAMPLING_RATE,
    ):
        if label not in ("direction", "shape", "colour", "change", "material"):
            raise ValueError(f"label must be 'direction', 'shape', 'colour', 'change' or 'material'; got {label!r}.")
        self.seeds = [_split_seed(split, start_index + i) for i in range(num_clips)]
        self.num_frames, self.image_size, self.label = num_frames, image_size, label
        self.return_pixel_values = return_pixel_values
        self.return_audio, self.fps, self.sampling_rate = return_audio, fps, sampling_rate

    @property
    def label_names(self) -> tuple[str, ...]:
        return {"direction": DIRECTIONS, "shape": SHAPES, "colour": tuple(COLOURS), "change": CHANGES,
                "material": MATERIALS}[self.label]  # fmt: skip

    def __len__(self) -> int:
        return len(self.seeds)

    def spec(self, index: int) -> ShapesClipSpec:
        return sample_clip_spec(self.seeds[index], self.num_frames, self.image_size, self.image_size)

    def __getitem__(self, index: int) -> dict:
        spec = self.spec(index)
        video = render_clip(spec)
        item = {
            "labels": spec.labels()[self.label],
            "caption": spec.caption,
            "seed": self.seeds[index],
            "questions": [q for q, _ in spec.questions_and_answers],
            "answers": [a for _, a in spec.questions_and_answers],
        }
        if self.return_pixel_values:
            item["pixel_values"] = video_to_pixel_values(video)
        else:
            item["video"] = video
        if self.return_audio:
            item["audio"] = torch.from_numpy(render_audio(spec, self.fps, self.sampling_rate))
            item["sampling_rate"] = self.sampling_rate
            item["material"] = spec.material
            item["audio_caption"] = spec.audio_caption
            item["av_caption"] = spec.av_caption
        return item


def build_shapes_world_dataset(
    split: str = "train",
    num_clips: int = 100,
    num_frames: int = 8,
    image_size: int = 32,
    video_dir: str | os.PathLike | None = None,
    fps: int = 8,
    with_audio: bool = False,
    audio_codec: str = "aac",
):
    """A `datasets.Dataset` describing `num_clips` clips of a split: `seed`, `caption`, `shape`, `colour`,
    `end_colour`, `direction`, `change`, `motion_first`, `questions`, `answers` and `label` (a `ClassLabel` over
    the directions). With `video_dir`, every clip is also written to `<video_dir>/<split>_<seed>.mp4` and a `video`
    column holds the paths (`datasets.Video(decode=False)`; decode them with [`~data.VideoTableDataset`] or
    [`~video_decoding.decode_video_frames`]). Without it, render the pixels from `seed` with
    [`sample_clip_spec`] + [`render_clip`].

    `with_audio=True` adds the sound: columns `material`, `audio_caption` and `av_caption`, and with `video_dir` the
    mp4 files carry the audio track ([`render_audio`] at 16 kHz, encoded with `audio_codec`; read it back with
    [`~media.audio_decoding.decode_audio`])."""
    import datasets

    rows: dict[str, list] = {
        k: []
        for k in (
            "seed", "caption", "shape", "colour", "end_colour", "direction", "change", "motion_first",
            "questions", "answers", "label",
        )
    }  # fmt: skip
    if with_audio:
        rows.update(material=[], audio_caption=[], av_caption=[])
    if video_dir is not None:
        os.makedirs(video_dir, exist_ok=True)
        rows["video"] = []
    for i in range(num_clips):
        seed = _split_seed(split, i)
        spec = sample_clip_spec(seed, num_frames, image_size, image_size)
        qa = spec.questions_and_answers
        for key, value in (
            ("seed", seed), ("caption", spec.caption), ("shape", spec.shape), ("colour", spec.start_colour),
            ("end_colour", spec.end_colour), ("direction", spec.direction), ("change", spec.change),
            ("motion_first", spec.motion_first), ("questions", [q for q, _ in qa]), ("answers", [a for _, a in qa]),
            ("label", DIRECTIONS.index(spec.direction)),
        ):  # fmt: skip
            rows[key].append(value)
        if with_audio:
            rows["material"].append(spec.material)
            rows["audio_caption"].append(spec.audio_caption)
            rows["av_caption"].append(spec.av_caption)
        if video_dir is not None:
            audio = render_audio(spec, fps) if with_audio else None
            path = os.path.join(video_dir, f"{split}_{seed}.mp4")
            rows["video"].append(write_mp4(render_clip(spec), path, fps, audio=audio, audio_codec=audio_codec))
    features = datasets.Features(
        {
            "seed": datasets.Value("int64"),
            "caption": datasets.Value("string"),
            "shape": datasets.Value("string"),
            "colour": datasets.Value("string"),
            "end_colour": datasets.Value("string"),
            "direction": datasets.Value("string"),
            "change": datasets.Value("string"),
            "motion_first": datasets.Value("bool"),
            "questions": datasets.Sequence(datasets.Value("string")),
            "answers": datasets.Sequence(datasets.Value("string")),
            "label": datasets.ClassLabel(names=list(DIRECTIONS)),
            **({key: datasets.Value("string") for key in ("material", "audio_caption", "av_caption")}
               if with_audio else {}),  # fmt: skip
            **({"video": datasets.Video(decode=False)} if video_dir is not None else {}),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)
