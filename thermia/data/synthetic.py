"""Synthetic far-infrared face video: thermia's embedded default data.

Every frame is a temperature map in degrees Celsius (float32, radiometric scale
``"celsius"``) of one subject's face in front of a room-temperature background,
recorded in sessions of a single affective state: ``baseline`` or ``stress``
(``n_classes=2``), or ``baseline``, ``mild_stress`` and ``high_stress``
(``n_classes=3``). The data exist for membership-inference studies, so the
subjects differ from one another by about as much as the states differ within a
subject: a classifier that generalises from a few hundred subjects to unseen ones
stays well short of perfect, and one that memorises the subjects it saw gains a
measurable edge on them.

Physical model, with the observations each effect rests on:

- Background: ambient air at 20-26 degC with a gentle linear gradient (a wall
  warmed by lamps or a window), a small per-session offset and a slow drift.
- Face skin at about 33.5-35.5 degC, warmest at the inner eye corners and
  forehead, cooler on the cheeks, cooler still at the nose tip, and falling off
  towards the silhouette where the skin is seen at a grazing angle (the usual
  facial thermogram; Ioannou, Gallese and Merla, Psychophysiology 2014).
- Per-subject anatomy: face size, aspect, jaw, position and roll; eye, nose and
  mouth positions; nose size; hairline (hair insulates, so it reads several
  degrees cooler than skin); optional glasses, which are opaque in the long-wave
  infrared and show as cool lenses hiding the eyes; a few random warm and cool
  patches standing for individual vasculature.
- Stress (per session): sympathetic vasoconstriction cools the nose tip by about
  0.5-1 degC (Engert et al., PLoS ONE 2014), blood flow to the periorbital
  region warms it by a few tenths of a degree (Pavlidis, Eberhardt and Levine,
  Nature 2002), and breathing quickens from about 12-16 to 18-24 breaths per
  minute, which shows as a faster periodic cooling of the nostrils on each
  inhalation (Murthy and Pavlidis 2006). ``mild_stress`` scales the temperature
  effects by ``mild_stress_scale`` and moves the breathing rate the same
  fraction of the way.
- Per session: day-to-day jitter of the skin, nose and periorbital temperatures,
  ambient offset and gradient, camera offset and a fixed-pattern noise (pixel
  and column non-uniformity of an uncooled microbolometer).
- Per frame: smooth head motion (a mean-reverting random walk of translation,
  roll and scale), slight optical blur and temporal sensor noise (NETD of a
  typical uncooled camera, 0.05-0.1 degC).

Randomness: a subject's anatomy and every one of its sessions are drawn from
generators seeded by ``(seed, subject index, ...)`` alone, so the first ``k``
subjects of a larger set are exactly the subjects of a ``k``-subject set with
otherwise equal settings. The global RNG is never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Landmarks reported for every frame, in this order; "left" and "right" are as
#: seen in the image.
LANDMARK_NAMES = (
    "face_center",
    "forehead",
    "periorbital_left",
    "periorbital_right",
    "nose_tip",
    "nostril_left",
    "nostril_right",
    "cheek_left",
    "cheek_right",
    "mouth",
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Size, seed and physical knobs of a synthetic data set.

    Temperatures are in degC; ranges are ``(low, high)`` of a uniform draw.

    Parameters
    ----------
    n_subjects : int
        Number of subjects, named ``S0000``, ``S0001``, ...
    sessions_per_label : int
        Sessions of each state recorded per subject.
    frames_per_session : int
        Frames per session.
    height, width : int
        Frame size in pixels (at least 16 each). Geometry scales with ``height``,
        so a subject looks the same at every resolution.
    n_classes : int
        2 (``baseline``, ``stress``) or 3 (``baseline``, ``mild_stress``,
        ``high_stress``).
    seed : int
        Non-negative base seed.
    nose_cooling_c : tuple of float
        Range of the nose-tip cooling of a full-stress session.
    periorbital_warming_c : tuple of float
        Range of the periorbital warming of a full-stress session.
    breathing_rate_baseline_bpm, breathing_rate_stress_bpm : tuple of float
        Ranges of the breathing rate (breaths per minute) at baseline and full
        stress.
    breathing_cooling_c : tuple of float
        Range of the per-subject peak cooling of the nostrils on inhalation.
    mild_stress_scale : float
        Fraction of the full stress effect shown by ``mild_stress`` sessions
        (3-class mode only).
    subject_nose_sd_c : float
        Between-subject SD of the baseline nose-tip temperature relative to the
        subject's skin; comparable to the stress effect by design.
    subject_periorbital_sd_c : float
        Between-subject SD of the periorbital warmth relative to the skin.
    session_sd_c : float
        Within-subject, session-to-session SD of skin, nose and periorbital
        temperatures.
    ambient_c : tuple of float
        Range of the per-subject room temperature.
    noise_sd_c : float
        Temporal sensor noise SD per pixel and frame (NETD).
    fixed_pattern_sd_c : float
        SD of the per-session fixed-pattern noise (half per pixel, half per
        column, in variance).
    camera_offset_sd_c : float
        SD of the per-session offset of the whole frame (calibration drift).
    motion_translation : float
        SD of the per-frame translation step, as a fraction of ``height``.
    motion_rotation_deg : float
        SD of the per-frame roll step, in degrees.
    motion_scale : float
        SD of the per-frame relative scale step.
    motion_persistence : float
        Autoregressive coefficient of the head-motion walk, in ``[0, 1)``; the
        pose stays within about ``step / sqrt(1 - persistence**2)`` of rest.
    blur_sigma : float
        SD of the Gaussian optical blur as a fraction of ``height``; 0 disables.
    frame_interval_s : float
        Seconds between frames.
    glasses_fraction : float
        Probability that a subject wears glasses.
    """

    n_subjects: int = 400
    sessions_per_label: int = 1
    frames_per_session: int = 4
    height: int = 60
    width: int = 80
    n_classes: int = 2
    seed: int = 0
    nose_cooling_c: tuple[float, float] = (0.5, 1.0)
    periorbital_warming_c: tuple[float, float] = (0.2, 0.5)
    breathing_rate_baseline_bpm: tuple[float, float] = (12.0, 16.0)
    breathing_rate_stress_bpm: tuple[float, float] = (18.0, 24.0)
    breathing_cooling_c: tuple[float, float] = (0.4, 1.0)
    mild_stress_scale: float = 0.5
    subject_nose_sd_c: float = 0.8
    subject_periorbital_sd_c: float = 0.35
    session_sd_c: float = 0.2
    ambient_c: tuple[float, float] = (20.0, 26.0)
    noise_sd_c: float = 0.07
    fixed_pattern_sd_c: float = 0.04
    camera_offset_sd_c: float = 0.15
    motion_translation: float = 0.006
    motion_rotation_deg: float = 0.5
    motion_scale: float = 0.005
    motion_persistence: float = 0.9
    blur_sigma: float = 0.008
    frame_interval_s: float = 1.0
    glasses_fraction: float = 0.15

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range."""
        for name in ("n_subjects", "sessions_per_label", "frames_per_session"):
            _check_int(self, name, 1)
        for name in ("height", "width"):
            _check_int(self, name, 16)
        _check_int(self, "seed", 0)
        if self.n_classes not in (2, 3) or isinstance(self.n_classes, bool):
            raise ValueError(f"n_classes must be 2 or 3, got {self.n_classes!r}")
        for name in (
            "nose_cooling_c",
            "periorbital_warming_c",
            "breathing_rate_baseline_bpm",
            "breathing_rate_stress_bpm",
            "breathing_cooling_c",
            "ambient_c",
        ):
            _check_range(name, getattr(self, name))
        for name in (
            "subject_nose_sd_c",
            "subject_periorbital_sd_c",
            "session_sd_c",
            "noise_sd_c",
            "fixed_pattern_sd_c",
            "camera_offset_sd_c",
            "motion_translation",
            "motion_rotation_deg",
            "motion_scale",
            "blur_sigma",
        ):
            _check_float(self, name, 0.0, math.inf)
        _check_float(self, "mild_stress_scale", 0.0, 1.0)
        _check_float(self, "glasses_fraction", 0.0, 1.0)
        _check_float(self, "motion_persistence", 0.0, 1.0, open_high=True)
        _check_float(self, "frame_interval_s", 0.0, math.inf, open_low=True)


def _check_int(spec: SyntheticSpec, name: str, minimum: int) -> None:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_float(
    spec: SyntheticSpec,
    name: str,
    low: float,
    high: float,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    value = getattr(spec, name)
    ok = isinstance(value, int | float | np.number) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
    if not ok:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}, got {value!r}")


def _check_range(name: str, value: tuple[float, float]) -> None:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
        or value[0] > value[1]
        or value[0] < 0
    ):
        raise ValueError(f"{name} must be a (low, high) pair with 0 <= low <= high")


def label_names(n_classes: int) -> tuple[str, ...]:
    """Names of the states, indexed by label.

    Parameters
    ----------
    n_classes : int
        2 or 3.

    Returns
    -------
    tuple of str
        ``("baseline", "stress")`` or ``("baseline", "mild_stress",
        "high_stress")``.
    """
    if n_classes == 2:
        return ("baseline", "stress")
    if n_classes == 3:
        return ("baseline", "mild_stress", "high_stress")
    raise ValueError(f"n_classes must be 2 or 3, got {n_classes!r}")


@dataclass(frozen=True)
class SessionBlock:
    """All frames of one session of one subject.

    Attributes
    ----------
    subject : str
        Subject id, e.g. ``"S0007"``.
    session : str
        Session id, e.g. ``"S0007_baseline_1"``.
    label : int
        State label (index into :func:`label_names`).
    frames : ndarray of float32, shape (n_frames, height, width)
        Temperatures in degC.
    frame : ndarray of int64, shape (n_frames,)
        Frame index within the session.
    time_s : ndarray of float64, shape (n_frames,)
        Time of each frame since the session start, in seconds.
    landmarks : ndarray of float64, shape (n_frames, n_landmarks, 2)
        ``(row, col)`` pixel coordinates of each landmark in each frame, in the
        order of ``landmark_names``.
    landmark_names : tuple of str
        Names of the landmarks.
    glasses : bool
        Whether the subject wears glasses (which hide the periorbital region).
    nose_cooling_c, periorbital_warming_c : float
        Stress effects applied to this session (0 for baseline), before the
        session's own jitter.
    breathing_rate_bpm : float
        Breathing rate of this session, breaths per minute.
    """

    subject: str
    session: str
    label: int
    frames: np.ndarray
    frame: np.ndarray
    time_s: np.ndarray
    landmarks: np.ndarray
    landmark_names: tuple[str, ...]
    glasses: bool = False
    nose_cooling_c: float = 0.0
    periorbital_warming_c: float = 0.0
    breathing_rate_bpm: float = 0.0

    def landmark(self, name: str) -> np.ndarray:
        """``(row, col)`` of landmark ``name`` per frame, shape (n_frames, 2)."""
        return self.landmarks[:, self.landmark_names.index(name), :]


@dataclass(frozen=True)
class SyntheticData:
    """A whole synthetic data set, frame by frame.

    Attributes
    ----------
    frames : ndarray of float32, shape (n_frames, height, width)
        Temperatures in degC.
    subject, session : ndarray of str, shape (n_frames,)
        Subject and session id of each frame.
    label : ndarray of int64, shape (n_frames,)
        State label of each frame.
    frame : ndarray of int64, shape (n_frames,)
        Frame index within its session.
    time_s : ndarray of float64, shape (n_frames,)
        Time since the session start, in seconds.
    label_names : tuple of str
        Names of the labels.
    radiometric_scale : str
        Always ``"celsius"``.
    """

    frames: np.ndarray
    subject: np.ndarray
    session: np.ndarray
    label: np.ndarray
    frame: np.ndarray
    time_s: np.ndarray
    label_names: tuple[str, ...]
    radiometric_scale: str = "celsius"


@dataclass(frozen=True)
class _Anatomy:
    """Per-subject constants; lengths in face units, centre and size in heights."""

    cx: float  # face centre, in image heights from the left edge
    cy: float  # face centre, in image heights from the top edge
    a: float  # horizontal semi-axis, in image heights
    b: float  # vertical semi-axis, in image heights
    roll: float  # rest roll of the head, radians
    jaw: float  # narrowing of the lower face
    ambient: float
    skin: float
    forehead_warm: float
    cheek_cool: float
    edge_cool: float
    eye_x: float
    eye_y: float
    eye_cool: float
    periorbital: float
    nose_x: float
    nose_y: float
    nose_size: float
    nose: float  # nose tip relative to skin
    breath_cool: float
    mouth_y: float
    mouth: float
    hairline: float
    hair_curve: float
    hair: float  # hair temperature above ambient
    neck_width: float
    neck: float  # neck temperature relative to skin
    glasses: bool
    lens: float  # lens temperature below skin
    patches: np.ndarray  # (n_patches, 4): u, v, sigma, amplitude


def _draw_anatomy(rng: np.random.Generator, spec: SyntheticSpec) -> _Anatomy:
    """Draw one subject; the draws are in a fixed order whatever the knobs."""
    u = rng.random(25).tolist()
    z = rng.standard_normal(4).tolist()
    patch_u = rng.random((6, 3))
    patch_z = rng.standard_normal(6)
    a = 0.28 + 0.06 * u[0]
    skin = float(np.clip(34.3 + 0.35 * z[0], 33.5, 35.2))
    nose_floor = 31.8 - skin  # keeps the coldest noses physiological
    nose = float(np.clip(-1.1 + spec.subject_nose_sd_c * z[1], nose_floor, 0.3))
    periorbital = float(np.clip(0.9 + spec.subject_periorbital_sd_c * z[2], 0.1, 1.7))
    patches = np.column_stack(
        [
            -0.7 + 1.4 * patch_u[:, 0],
            -0.5 + 1.25 * patch_u[:, 1],
            0.08 + 0.14 * patch_u[:, 2],
            np.clip(0.25 * patch_z, -0.6, 0.6),
        ]
    )
    lo, hi = spec.ambient_c
    bc_lo, bc_hi = spec.breathing_cooling_c
    return _Anatomy(
        cx=0.5 * spec.width / spec.height + 0.12 * (u[1] - 0.5),
        cy=0.52 + 0.06 * (u[2] - 0.5),
        a=a,
        b=a * (1.2 + 0.2 * u[3]),
        roll=math.radians(3.0) * float(np.clip(z[3], -2.5, 2.5)),
        jaw=0.10 + 0.15 * u[4],
        ambient=lo + (hi - lo) * u[5],
        skin=skin,
        forehead_warm=0.2 + 0.5 * u[6],
        cheek_cool=0.3 + 0.6 * u[7],
        edge_cool=1.0 + 0.8 * u[8],
        eye_x=0.34 + 0.10 * u[9],
        eye_y=-0.12 + 0.12 * u[10],
        eye_cool=0.3 + 0.5 * u[11],
        periorbital=periorbital,
        nose_x=0.06 * (u[12] - 0.5),
        nose_y=0.18 + 0.14 * u[13],
        nose_size=0.8 + 0.45 * u[14],
        nose=nose,
        breath_cool=bc_lo + (bc_hi - bc_lo) * u[15],
        mouth_y=0.55 + 0.10 * u[16],
        mouth=-0.4 + 0.8 * u[17],
        hairline=-0.95 + 0.33 * u[18],
        hair_curve=0.15 + 0.25 * u[19],
        hair=3.0 + 4.0 * u[20],
        neck_width=0.45 + 0.15 * u[21],
        neck=-(0.3 + 0.9 * u[22]),
        glasses=bool(u[23] < spec.glasses_fraction),
        lens=4.0 + 3.0 * u[24],
        patches=patches,
    )


def _face_points(anat: _Anatomy) -> dict[str, tuple[float, float]]:
    """Landmarks in face units ``(u, v)``: u to the image right, v downwards."""
    inner = anat.eye_x - 0.17
    ns = anat.nose_size
    return {
        "face_center": (0.0, 0.0),
        "forehead": (0.0, -0.42),
        "periorbital_left": (-inner, anat.eye_y + 0.03),
        "periorbital_right": (inner, anat.eye_y + 0.03),
        "nose_tip": (anat.nose_x, anat.nose_y),
        "nostril_left": (anat.nose_x - 0.1 * ns, anat.nose_y + 0.12 * ns),
        "nostril_right": (anat.nose_x + 0.1 * ns, anat.nose_y + 0.12 * ns),
        "cheek_left": (-0.55, 0.28),
        "cheek_right": (0.55, 0.28),
        "mouth": (0.0, anat.mouth_y),
    }


def _blob(
    u: np.ndarray, v: np.ndarray, u0: float, v0: float, su: float, sv: float
) -> np.ndarray:
    return np.exp(-0.5 * (((u - u0) / su) ** 2 + ((v - v0) / sv) ** 2))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _render_template(
    anat: _Anatomy, height: int, width: int, supersample: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Render the head at rest on a grid ``supersample`` times finer than a frame.

    Returns
    -------
    channels : ndarray of float32, shape (5, height * s, width * s)
        Alpha of the head (face, hair, neck); alpha-weighted temperature; and
        alpha-weighted unit maps of the nose tip, periorbital region and nostrils,
        which the session state scales.
    points : ndarray of float64, shape (n_landmarks, 2)
        ``(row, col)`` of each landmark at rest, in frame pixels.
    names : tuple of str
        Landmark names, in the order of ``points``.
    """
    s = supersample
    rows = ((np.arange(height * s, dtype=np.float32) + 0.5) / s) / height
    cols = ((np.arange(width * s, dtype=np.float32) + 0.5) / s) / height
    dx = cols[None, :] - anat.cx
    dy = rows[:, None] - anat.cy
    cos, sin = math.cos(anat.roll), math.sin(anat.roll)
    u = (cos * dx + sin * dy) / anat.a
    v = (-sin * dx + cos * dy) / anat.b
    neck = _sigmoid((anat.neck_width - np.abs(u)) * 30.0) * _sigmoid((v - 0.5) * 30.0)
    channels = np.zeros((5, *u.shape), dtype=np.float32)
    channels[0] = neck
    channels[1] = neck * (anat.skin + anat.neck)

    # The face and everything on it is rendered only inside its bounding box
    # (with room for the soft silhouette), which is most of the work.
    half_x = 1.3 * math.hypot(anat.a * cos, anat.b * sin) * height * s
    half_y = 1.3 * math.hypot(anat.a * sin, anat.b * cos) * height * s
    r0 = max(0, math.floor(anat.cy * height * s - half_y))
    r1 = min(u.shape[0], math.ceil(anat.cy * height * s + half_y) + 1)
    c0 = max(0, math.floor(anat.cx * height * s - half_x))
    c1 = min(u.shape[1], math.ceil(anat.cx * height * s + half_x) + 1)
    box = (slice(r0, r1), slice(c0, c1))
    u, v, neck = u[box], v[box], neck[box]

    width_at_v = 1.0 - anat.jaw * np.clip(v, 0.0, 1.0) ** 2
    r = np.sqrt((u / width_at_v) ** 2 + v**2)
    # silhouette about a frame pixel wide; hairline and neck soft in face units
    face = _sigmoid((1.0 - r) * (3.0 * height * anat.a))
    hair = _sigmoid((anat.hairline + anat.hair_curve * u**2 - v) * 25.0)

    pts = _face_points(anat)
    ns = anat.nose_size
    skin = anat.skin + anat.forehead_warm * _blob(u, v, 0.0, -0.45, 0.45, 0.2)
    for side in (-1.0, 1.0):
        skin -= anat.cheek_cool * _blob(u, v, 0.55 * side, 0.28, 0.18, 0.18)
        skin -= anat.eye_cool * _blob(u, v, anat.eye_x * side, anat.eye_y, 0.12, 0.06)
    skin -= anat.edge_cool * np.minimum(r, 1.5) ** 6
    skin += anat.mouth * _blob(u, v, 0.0, anat.mouth_y, 0.22, 0.035)
    for pu, pv, sigma, amp in anat.patches.tolist():
        skin += amp * _blob(u, v, pu, pv, sigma, sigma)
    peri = _blob(u, v, *pts["periorbital_left"], 0.16, 0.12)
    peri += _blob(u, v, *pts["periorbital_right"], 0.16, 0.12)
    nose = _blob(u, v, anat.nose_x, anat.nose_y - 0.02 * ns, 0.13 * ns, 0.15 * ns)
    nostril = _blob(u, v, *pts["nostril_left"], 0.06 * ns, 0.05 * ns)
    nostril += _blob(u, v, *pts["nostril_right"], 0.06 * ns, 0.05 * ns)
    skin += anat.periorbital * peri + anat.nose * nose

    uncovered = 1.0 - hair
    temp = skin * uncovered + (anat.ambient + anat.hair) * hair
    if anat.glasses:
        lens = np.zeros_like(u)
        for side in (-1.0, 1.0):
            r_lens = np.hypot((u - anat.eye_x * side) / 0.25, (v - anat.eye_y) / 0.16)
            lens += _sigmoid((1.0 - r_lens) * 12.0)
        temp = temp * (1.0 - lens) + (anat.skin - anat.lens) * lens
        uncovered = uncovered * (1.0 - lens)

    neck_only = neck * (1.0 - face)
    channels[(0, *box)] = face + neck_only
    channels[(1, *box)] = face * temp + neck_only * (anat.skin + anat.neck)
    channels[(2, *box)] = face * uncovered * nose
    channels[(3, *box)] = face * uncovered * peri
    channels[(4, *box)] = face * uncovered * nostril

    uv = np.array(list(pts.values()))
    px = anat.a * uv[:, 0]
    py = anat.b * uv[:, 1]
    col = (anat.cx + cos * px - sin * py) * height - 0.5
    row = (anat.cy + sin * px + cos * py) * height - 0.5
    return channels, np.column_stack([row, col]), tuple(pts)


def _head_pose(
    rng: np.random.Generator, n_frames: int, spec: SyntheticSpec
) -> np.ndarray:
    """Mean-reverting walk of (dy, dx, roll, log scale), shape (n_frames, 4).

    Translation is in pixels; the walk starts from its stationary distribution so
    that each session also has its own rest position.
    """
    steps = np.array(
        [
            spec.motion_translation * spec.height,
            spec.motion_translation * spec.height,
            math.radians(spec.motion_rotation_deg),
            spec.motion_scale,
        ]
    )
    rho = spec.motion_persistence
    z = rng.standard_normal((n_frames, 4)) * steps
    pose = np.empty((n_frames, 4))
    pose[0] = z[0] / math.sqrt(1.0 - rho**2)
    for k in range(1, n_frames):
        pose[k] = rho * pose[k - 1] + z[k]
    return pose


def _warp(
    channels: np.ndarray,
    which: np.ndarray,
    pose: np.ndarray,
    centre: tuple[float, float],
    height: int,
    width: int,
    supersample: int,
) -> np.ndarray:
    """Sample rest-pose templates under each frame's pose.

    Parameters
    ----------
    channels : ndarray of float32, shape (c, m, height * s, width * s)
        ``m`` templates of ``c`` channels each.
    which : ndarray of int, shape (n,)
        Template used by each frame.
    pose : ndarray, shape (n, 4)
        Pose of each frame, see :func:`_head_pose`.

    Returns
    -------
    ndarray of float32, shape (c, n, height, width)

    Notes
    -----
    Frame pixel ``q`` shows the rest-pose point ``centre + R(-roll) (q - centre -
    shift) / scale``. Sampling is bilinear and clamps at the template border, so
    the neck continues below the frame.
    """
    n_ch, m, hs, ws = channels.shape
    cy, cx = centre
    p = pose.astype(np.float32)
    k = supersample * np.exp(-p[:, 3])
    cos = (np.cos(p[:, 2]) * k)[:, None, None]
    sin = (np.sin(p[:, 2]) * k)[:, None, None]
    dy = np.arange(height, dtype=np.float32)[None, :, None] - (cy + p[:, 0, None, None])
    dx = np.arange(width, dtype=np.float32)[None, None, :] - (cx + p[:, 1, None, None])
    jx = cos * dx + sin * dy
    jx += np.float32((cx + 0.5) * supersample - 0.5)
    jy = cos * dy - sin * dx
    jy += np.float32((cy + 0.5) * supersample - 0.5)
    np.clip(jx, 0.0, ws - 1.001, out=jx)
    np.clip(jy, 0.0, hs - 1.001, out=jy)
    x0 = jx.astype(np.intp)
    y0 = jy.astype(np.intp)
    jx -= x0  # now the fractional parts
    jy -= y0
    i = y0 * ws + x0 + (np.asarray(which, dtype=np.intp) * (hs * ws))[:, None, None]
    flat = channels.reshape(n_ch, m * hs * ws)
    top = np.take(flat, i, axis=1)
    right = np.take(flat, i + 1, axis=1)
    right -= top
    right *= jx
    top += right
    bottom = np.take(flat, i + ws, axis=1)
    right = np.take(flat, i + ws + 1, axis=1)
    right -= bottom
    right *= jx
    bottom += right
    bottom -= top
    bottom *= jy
    top += bottom
    return top


def _gaussian_blur(frames: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur of (n, H, W) frames with edge padding."""
    if sigma_px < 0.2:
        return frames
    radius = max(1, math.ceil(3.0 * sigma_px))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    _, h, w = frames.shape
    padded = np.pad(frames, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    out = sum(t * padded[:, i : i + h, :] for i, t in enumerate(taps))
    padded = np.pad(out, ((0, 0), (0, 0), (radius, radius)), mode="edge")
    return sum(t * padded[:, :, i : i + w] for i, t in enumerate(taps))


def _stress_scale(label: int, n_classes: int, mild: float) -> float:
    if label == 0:
        return 0.0
    if n_classes == 3 and label == 1:
        return mild
    return 1.0


@dataclass(frozen=True)
class _SessionPlan:
    """One session's draws, made before any of its pixels are rendered."""

    label: int
    rng: np.random.Generator  # left to draw the temporal sensor noise
    time_s: np.ndarray  # (n_frames,) float64
    pose: np.ndarray  # (n_frames, 4), see _head_pose
    shifts: np.ndarray  # (3,): skin, nose tip, periorbital; constant per session
    breathing: np.ndarray  # (n_frames,) float32, nostril temperature change
    drift: np.ndarray  # (n_frames,) float32, whole-scene drift
    background: np.ndarray  # (height, width) float32, scene behind the head
    sensor: np.ndarray  # (height, width) float32, fixed pattern + camera offset
    state: dict[str, float]


def _plan_session(
    rng: np.random.Generator, spec: SyntheticSpec, anat: _Anatomy, label: int
) -> _SessionPlan:
    """Draw a session's state, motion and fixed-pattern noise (fixed draw order)."""
    n, h, w = spec.frames_per_session, spec.height, spec.width
    state_u = rng.random(5).tolist()
    state_z = rng.standard_normal(8).tolist()
    pose = _head_pose(rng, n, spec)
    fixed_pixel = rng.standard_normal((h, w), dtype=np.float32)
    fixed_column = rng.standard_normal(w, dtype=np.float32)

    k = _stress_scale(label, spec.n_classes, spec.mild_stress_scale)
    lo, hi = spec.nose_cooling_c
    nose_cooling = k * (lo + (hi - lo) * state_u[0])
    lo, hi = spec.periorbital_warming_c
    peri_warming = k * (lo + (hi - lo) * state_u[1])
    lo, hi = spec.breathing_rate_baseline_bpm
    rate_rest = lo + (hi - lo) * state_u[2]
    lo, hi = spec.breathing_rate_stress_bpm
    rate_stress = lo + (hi - lo) * state_u[3]
    rate = rate_rest + k * (rate_stress - rate_rest)
    phase = 2.0 * math.pi * state_u[4]

    time_s = np.arange(n, dtype=np.float64) * spec.frame_interval_s
    # inhalation draws room air over the nostrils and cools them
    inhale = 0.5 * (1.0 + np.sin(2.0 * math.pi * rate / 60.0 * time_s + phase))
    sd = spec.session_sd_c
    shifts = np.array(
        [
            sd * state_z[0],
            -nose_cooling + sd * state_z[1],
            peri_warming + sd * state_z[2],
        ]
    )
    rows = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    cols = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    ambient = anat.ambient + 0.3 * state_z[3]
    background = ambient + 0.4 * state_z[4] * rows + 0.4 * state_z[5] * cols
    fixed = spec.fixed_pattern_sd_c * math.sqrt(0.5) * (fixed_pixel + fixed_column)
    return _SessionPlan(
        label=label,
        rng=rng,
        time_s=time_s,
        pose=pose,
        shifts=shifts,
        breathing=(-anat.breath_cool * inhale).astype(np.float32),
        drift=(0.005 * state_z[6] * time_s).astype(np.float32),
        background=background,
        sensor=fixed + np.float32(spec.camera_offset_sd_c * state_z[7]),
        state={
            "nose_cooling_c": float(nose_cooling),
            "periorbital_warming_c": float(peri_warming),
            "breathing_rate_bpm": float(rate),
        },
    )


def _render_group(
    spec: SyntheticSpec,
    channels: np.ndarray,
    centre: tuple[float, float],
    plans: list[_SessionPlan],
    supersample: int,
    max_pixels: int,
) -> np.ndarray:
    """Frames of consecutive sessions of one subject, (len(plans) * n, H, W).

    Frames are rendered in chunks of at most ``max_pixels`` pixels (at least one
    frame) so that the intermediates stay small at any resolution.
    """
    h, w = spec.height, spec.width
    pose = np.concatenate([p.pose for p in plans])
    breathing = np.concatenate([p.breathing for p in plans])
    drift = np.concatenate([p.drift for p in plans])
    background = np.stack([p.background for p in plans])
    sensor = np.stack([p.sensor for p in plans])
    owner = np.repeat(np.arange(len(plans)), spec.frames_per_session)
    # the session's constant shifts combine before warping; breathing varies
    alpha, premult, nose, peri, nostril = channels
    templates = np.empty((3, len(plans), *alpha.shape), dtype=np.float32)
    for k, plan in enumerate(plans):
        skin_shift, nose_shift, peri_shift = plan.shifts.tolist()
        templates[0, k] = alpha
        templates[1, k] = premult + skin_shift * alpha
        templates[1, k] += nose_shift * nose + peri_shift * peri
        templates[2, k] = nostril
    out = np.empty((len(owner), h, w), dtype=np.float32)
    step = max(1, max_pixels // (h * w))
    for f0 in range(0, len(owner), step):
        chunk = slice(f0, min(f0 + step, len(owner)))
        alpha_w, premult_w, nostril_w = _warp(
            templates, owner[chunk], pose[chunk], centre, h, w, supersample
        )
        frames = background[owner[chunk]] * (1.0 - alpha_w) + premult_w
        frames += breathing[chunk, None, None] * nostril_w
        frames += drift[chunk, None, None]
        frames = _gaussian_blur(frames, spec.blur_sigma * h)
        frames += sensor[owner[chunk]]
        for k in np.unique(owner[chunk]).tolist():
            rows = np.flatnonzero(owner[chunk] == k)
            noise = plans[k].rng.standard_normal((len(rows), h, w), dtype=np.float32)
            frames[rows] += spec.noise_sd_c * noise
        out[chunk] = frames
    return out


def _landmarks(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Move rest landmarks (n_landmarks, 2) by each pose; (n_frames, n_landmarks, 2).

    The forward map of :func:`_warp`: rotate and scale about the first landmark
    (the face centre), then shift.
    """
    rel = points - points[0]
    cos = np.cos(pose[:, 2, None])
    sin = np.sin(pose[:, 2, None])
    scale = np.exp(pose[:, 3, None])
    row = points[0, 0] + pose[:, 0, None] + scale * (sin * rel[:, 1] + cos * rel[:, 0])
    col = points[0, 1] + pose[:, 1, None] + scale * (cos * rel[:, 1] - sin * rel[:, 0])
    return np.stack([row, col], axis=-1)


def iter_sessions(
    spec: SyntheticSpec, max_pixels: int = 1 << 19
) -> Iterator[SessionBlock]:
    """Yield the data set one session at a time.

    Subjects come in order; within a subject, sessions come repetition by
    repetition and label by label (``S0000_baseline_1``, ``S0000_stress_1``,
    ``S0000_baseline_2``, ...). Memory stays flat: a few sessions of one subject
    are rendered together, up to about ``max_pixels`` pixels, and a session
    larger than that is rendered in chunks of frames.

    Parameters
    ----------
    spec : SyntheticSpec
        Size, seed and physics of the data set.
    max_pixels : int
        Working-set size, in pixels, of one rendering step; it trades memory
        for speed and leaves the values unchanged (up to float rounding).

    Yields
    ------
    SessionBlock
        Frames of shape (frames_per_session, height, width), float32, degC.
    """
    spec.validate()
    names = label_names(spec.n_classes)
    n, h, w = spec.frames_per_session, spec.height, spec.width
    log.debug(
        "synthetic: %d subjects x %d sessions x %d frames at %dx%d, seed %d",
        spec.n_subjects,
        spec.sessions_per_label * spec.n_classes,
        n,
        h,
        w,
        spec.seed,
    )
    keys = [
        (rep, label)
        for rep in range(spec.sessions_per_label)
        for label in range(spec.n_classes)
    ]
    per_group = max(1, max_pixels // (n * h * w))
    # small frames are rendered from a finer template so features stay crisp
    supersample = 2 if h < 128 else 1
    for i in range(spec.n_subjects):
        subject = f"S{i:04d}"
        anat_rng = np.random.default_rng(
            np.random.SeedSequence(spec.seed, spawn_key=(i,))
        )
        anat = _draw_anatomy(anat_rng, spec)
        channels, points, landmark_names = _render_template(anat, h, w, supersample)
        centre = (float(points[0, 0]), float(points[0, 1]))
        for g0 in range(0, len(keys), per_group):
            group = keys[g0 : g0 + per_group]
            plans = [
                _plan_session(
                    np.random.default_rng(
                        np.random.SeedSequence(spec.seed, spawn_key=(i, 1 + lab, rep))
                    ),
                    spec,
                    anat,
                    lab,
                )
                for rep, lab in group
            ]
            frames = _render_group(
                spec, channels, centre, plans, supersample, max_pixels
            )
            for j, ((rep, label), plan) in enumerate(zip(group, plans, strict=True)):
                yield SessionBlock(
                    subject=subject,
                    session=f"{subject}_{names[label]}_{rep + 1}",
                    label=label,
                    frames=frames[j * n : (j + 1) * n],
                    frame=np.arange(n, dtype=np.int64),
                    time_s=plan.time_s,
                    landmarks=_landmarks(points, plan.pose),
                    landmark_names=landmark_names,
                    glasses=anat.glasses,
                    **plan.state,
                )


def generate(spec: SyntheticSpec) -> SyntheticData:
    """Generate the whole data set at once (the concatenation of ``iter_sessions``).

    Parameters
    ----------
    spec : SyntheticSpec
        Size, seed and physics of the data set.

    Returns
    -------
    SyntheticData
        ``n = n_subjects * n_classes * sessions_per_label * frames_per_session``
        frames of shape (n, height, width), float32, degC, with per-frame ids.
    """
    blocks = list(iter_sessions(spec))
    n_per = spec.frames_per_session
    return SyntheticData(
        frames=np.concatenate([b.frames for b in blocks]),
        subject=np.repeat(np.array([b.subject for b in blocks], dtype=str), n_per),
        session=np.repeat(np.array([b.session for b in blocks], dtype=str), n_per),
        label=np.repeat(np.array([b.label for b in blocks], dtype=np.int64), n_per),
        frame=np.concatenate([b.frame for b in blocks]),
        time_s=np.concatenate([b.time_s for b in blocks]),
        label_names=label_names(spec.n_classes),
    )


def region_temperature(block: SessionBlock, name: str, radius: int = 1) -> np.ndarray:
    """Mean temperature around a landmark in each frame of a session.

    Parameters
    ----------
    block : SessionBlock
        One session.
    name : str
        A landmark name, e.g. ``"nose_tip"`` or ``"periorbital_left"``.
    radius : int
        Half-width of the square window, in pixels (1 gives 3 x 3).

    Returns
    -------
    ndarray of float64, shape (n_frames,)
        Mean degC in the window centred on the landmark's nearest pixel (clipped
        to the frame).
    """
    _, h, w = block.frames.shape
    centre = np.rint(block.landmark(name)).astype(np.int64)
    out = np.empty(len(block.frames))
    for k, (r, c) in enumerate(centre):
        r0, r1 = max(r - radius, 0), min(r + radius + 1, h)
        c0, c1 = max(c - radius, 0), min(c + radius + 1, w)
        out[k] = block.frames[k, r0:r1, c0:c1].mean(dtype=np.float64)
    return out
