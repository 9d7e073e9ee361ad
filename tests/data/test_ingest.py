"""Ingesting manifests: formats end to end, every validation case, flat memory."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from thermia.data import ingest
from thermia.data.ingest import BATCH, ingest_manifest
from thermia.data.manifest import ManifestError
from thermia.data.readers import FrameReadError

FILES = Path(__file__).resolve().parent / "files"
HEADER = "path,subject,session,label,frame"


def shared() -> Path:
    env = os.environ.get("THERMIA_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def frame(seed: int, shape=(24, 32), dtype=np.uint8) -> np.ndarray:
    """A distinct small frame; different seeds give different pixels."""
    values = np.random.default_rng(seed).integers(0, 200, size=shape)
    return values.astype(dtype)


def write_manifest(folder: Path, lines: list[str], header: str = HEADER) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def good_inputs(folder: Path) -> list[str]:
    """Four 8-bit PNG frames: two subjects, two labels."""
    lines = []
    for i, (subject, label) in enumerate([("s1", "a"), ("s1", "b"), ("s2", "a")]):
        Image.fromarray(frame(i)).save(folder / f"f{i}.png")
        lines.append(f"f{i}.png,{subject},{subject}_{label},{label},{i}")
    Image.fromarray(frame(3)).save(folder / "f3.png")
    lines.append("f3.png,s2,s2_b,b,3")
    return lines


def assert_fails_cleanly(tmp_path, lines, message, error=FrameReadError, **options):
    out = tmp_path / "out"
    out.mkdir()
    manifest = write_manifest(tmp_path, lines)
    with pytest.raises(error, match=message):
        ingest_manifest(out / "frames.h5", manifest, **options)
    assert list(out.iterdir()) == []  # neither frames.h5 nor a temporary file


def test_ingest_writes_frames_and_metadata(tmp_path):
    lines = good_inputs(tmp_path)
    stack = np.stack([frame(10 + i) for i in range(3)])
    np.save(tmp_path / "clip.npy", stack)
    lines += ["clip.npy,s3,s3_a,a,", "clip.npy,s1,s1_b2,b,"]  # second is invalid
    lines = lines[:-1]
    header = f"{HEADER},time,format,note"
    rows = [f"{line},t{i},,n{i}" for i, line in enumerate(lines)]
    manifest = write_manifest(tmp_path, rows, header)
    out = tmp_path / "out" / "frames.h5"
    digest = ingest_manifest(out, manifest, compression="lzf")
    with h5py.File(out) as f:
        assert f["frames"].shape == (7, 24, 32) and f["frames"].dtype == np.uint8
        np.testing.assert_array_equal(f["frames"][4:], stack)
        np.testing.assert_array_equal(f["frames"][0], frame(0))
        assert list(f["frame"][:]) == [0, 1, 2, 3, 0, 1, 2]
        assert list(f["subject"].asstr()[:]) == ["s1", "s1", "s2", "s2", *["s3"] * 3]
        assert list(f["label"][:]) == [0, 1, 0, 1, 0, 0, 0]
        assert f.attrs["radiometric_scale"] == "intensity8"
        assert f.attrs["compression"] == "lzf"
        assert json.loads(f.attrs["label_names"]) == ["a", "b"]
        assert list(f["metadata/format"].asstr()[:]) == ["image"] * 4 + ["npy"] * 3
        assert list(f["metadata/note"].asstr()[:]) == [
            "n0",
            "n1",
            "n2",
            "n3",
            *["n4"] * 3,
        ]
        assert f.attrs["content_hash"] == digest


def test_stack_row_with_frame_picks_one(tmp_path):
    lines = good_inputs(tmp_path)
    np.savez_compressed(tmp_path / "clip.npz", frames=np.stack([frame(20), frame(21)]))
    manifest = write_manifest(tmp_path, [*lines, "clip.npz,s3,s3_a,a,1"])
    out = tmp_path / "frames.h5"
    ingest_manifest(out, manifest)
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["frames"][-1], frame(21))
        assert f["frame"][-1] == 1 and len(f["frames"]) == 5


def test_resize_policy(tmp_path):
    lines = good_inputs(tmp_path)
    Image.fromarray(frame(9, shape=(48, 64))).save(tmp_path / "big.png")
    manifest = write_manifest(tmp_path, [*lines, "big.png,s3,s3_a,a,0"])
    out = tmp_path / "frames.h5"
    ingest_manifest(out, manifest, resize_to=(24, 32))
    with h5py.File(out) as f:
        assert f["frames"].shape == (5, 24, 32)
        big = Image.fromarray(frame(9, shape=(48, 64)).astype(np.float32), mode="F")
        expected = np.rint(np.asarray(big.resize((32, 24), Image.Resampling.BILINEAR)))
        np.testing.assert_array_equal(f["frames"][4], expected.astype(np.uint8))


def test_mixed_sizes_refused(tmp_path):
    lines = good_inputs(tmp_path)
    Image.fromarray(frame(9, shape=(48, 64))).save(tmp_path / "big.png")
    assert_fails_cleanly(
        tmp_path,
        [*lines, "big.png,s3,s3_a,a,0"],
        r"line 6: big.png is 48x64, the first",
    )


def test_missing_file(tmp_path):
    lines = good_inputs(tmp_path)
    assert_fails_cleanly(
        tmp_path, [*lines, "gone.png,s3,x,a,0"], r"line 6\b.*not found"
    )


def test_unreadable_file(tmp_path):
    lines = good_inputs(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert_fails_cleanly(
        tmp_path, [*lines, "bad.png,s3,x,a,0"], r"line 6\b.*cannot decode image"
    )


def test_wrong_shape(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 24, 32), dtype=np.uint8))
    assert_fails_cleanly(
        tmp_path,
        [*lines, "cube.npy,s3,x,a,"],
        r"line 6\b.*found shape \(2, 2, 24, 32\)",
    )


def test_wrong_dtype(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "z.npy", frame(5).astype(np.complex64))
    assert_fails_cleanly(
        tmp_path, [*lines, "z.npy,s3,x,a,"], r"line 6\b.*dtype complex64"
    )


def test_dtype_that_loses_values(tmp_path):
    np.save(tmp_path / "first.npy", frame(6, dtype=np.uint16))
    np.save(tmp_path / "fits.npy", frame(7, dtype=np.int32))  # values fit uint16
    np.save(tmp_path / "wide.npy", np.full((24, 32), 70000, dtype=np.int32))
    lines = ["first.npy,s0,x,b,", "fits.npy,s1,y,a,", "wide.npy,s3,z,a,"]
    assert_fails_cleanly(tmp_path, lines, r"line 4\b.*dtype int32, which the dataset")
    ingest_manifest(tmp_path / "ok.h5", write_manifest(tmp_path, lines[:2]))
    with h5py.File(tmp_path / "ok.h5") as f:
        assert f["frames"].dtype == np.uint16
        np.testing.assert_array_equal(f["frames"][1], frame(7))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(tmp_path, bad):
    celsius = np.full((24, 32), 30.0, dtype=np.float32)
    rows = []
    for i in range(3):
        np.save(tmp_path / f"c{i}.npy", celsius + i)
        rows.append(f"c{i}.npy,s{i},x{i},{'ab'[i % 2]},")
    celsius[3, 4] = bad
    np.save(tmp_path / "bad.npy", celsius)
    assert_fails_cleanly(tmp_path, [*rows, "bad.npy,s9,y,a,"], r"line 5\b.*NaN or inf")


def test_mixed_scales(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "temp.npy", np.full((24, 32), 30.0, dtype=np.float32))
    assert_fails_cleanly(
        tmp_path, [*lines, "temp.npy,s3,x,a,"], r"line 6\b.*in celsius, the dataset in"
    )


def test_unknown_and_missing_labels(tmp_path):
    lines = good_inputs(tmp_path)
    assert_fails_cleanly(
        tmp_path,
        [*lines, "f0.png,s1,z,c,7"],
        "line 6: unknown label 'c'",
        error=ManifestError,
        labels=["a", "b"],
    )
    lines[1] = "f1.png,s1,s1_b,,1"
    (tmp_path / "out").rmdir()
    assert_fails_cleanly(tmp_path, lines, "line 3: empty 'label'", error=ManifestError)


def test_class_without_frames(tmp_path):
    lines = good_inputs(tmp_path)
    assert_fails_cleanly(
        tmp_path,
        lines,
        "no frames of class.*c",
        error=ManifestError,
        labels=["a", "b", "c"],
    )


def test_same_frame_under_two_subjects(tmp_path):
    lines = good_inputs(tmp_path)
    Image.fromarray(frame(0)).save(tmp_path / "copy.png")
    assert_fails_cleanly(
        tmp_path, [*lines, "copy.png,s3,x,a,0"], "line 6: same pixels as line 2"
    )


def test_empty_manifest(tmp_path):
    assert_fails_cleanly(tmp_path, [], "no rows", error=ManifestError)


def test_duplicate_rows(tmp_path):
    lines = good_inputs(tmp_path)
    assert_fails_cleanly(
        tmp_path, [*lines, lines[2]], "line 6: duplicate of line 4", error=ManifestError
    )


def test_stack_named_twice(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "clip.npy", np.stack([frame(30), frame(31)]))
    assert_fails_cleanly(
        tmp_path,
        [*lines, "clip.npy,s3,x,a,", "clip.npy,s3,x,a,1"],
        "line 7: frame 1 of clip.npy is already named on line 6",
        error=ManifestError,
    )


def test_stack_index_out_of_range(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "clip.npy", np.stack([frame(30), frame(31)]))
    assert_fails_cleanly(
        tmp_path, [*lines, "clip.npy,s3,x,a,2"], "line 6: frame 2 out of range"
    )


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("obj.npy", "object", r"obj\.npy: cannot read NumPy file"),
        ("cut.npy", "truncate", r"cut\.npy: cannot read NumPy file"),
        ("cut.npz", "truncate", r"cut\.npz: cannot read NumPy archive"),
    ],
)
def test_damaged_numpy_files(tmp_path, name, damage, message):
    lines = good_inputs(tmp_path)
    path = tmp_path / name
    stack = np.stack([frame(40), frame(41)])
    if damage == "object":
        np.save(path, np.array([stack[0], "x"], dtype=object), allow_pickle=True)
    elif name.endswith(".npz"):
        np.savez(path, frames=stack)
        path.write_bytes(path.read_bytes()[:300])
    else:
        np.save(path, stack)
        path.write_bytes(path.read_bytes()[:300])
    assert_fails_cleanly(tmp_path, [*lines, f"{name},s3,x,a,"], rf"line 6: .*{message}")


def test_empty_stack(tmp_path):
    lines = good_inputs(tmp_path)
    np.save(tmp_path / "none.npy", np.zeros((0, 24, 32), dtype=np.uint8))
    assert_fails_cleanly(
        tmp_path, [*lines, "none.npy,s3,x,b,"], r"line 6: none\.npy holds no frames"
    )


def test_single_frame_file_named_twice(tmp_path):
    lines = good_inputs(tmp_path)
    assert_fails_cleanly(
        tmp_path,
        [*lines, "f0.png,s1,s1_a,a,7"],
        r"line 6: f0\.png is already named on line 2$",
        error=ManifestError,
    )


def test_unknown_scale_is_refused_before_reading(tmp_path):
    manifest = write_manifest(tmp_path, good_inputs(tmp_path))
    with pytest.raises(ValueError, match=r"^unknown radiometric scale 'kelvin'"):
        ingest_manifest(tmp_path / "frames.h5", manifest, scale="kelvin")
    assert not (tmp_path / "frames.h5").exists()


@pytest.mark.parametrize("seek_first", [True, False])
def test_raw_counts_of_two_cameras(tmp_path, seek_first):
    """Seek counts less the shutter frame and FLIR counts are not one scale."""
    for name in ("seek_face.mat", "IR_moving_car_RAW_uint16.tiff"):
        (tmp_path / name).write_bytes((FILES / name).read_bytes())
    rows = ["seek_face.mat,s1,x,a,", "IR_moving_car_RAW_uint16.tiff,s2,y,b,"]
    first, second = rows if seek_first else rows[::-1]
    other = "seek_mat" if not seek_first else "image"
    assert_fails_cleanly(
        tmp_path,
        [first, second],
        rf"line 3: raw counts of .* \({other}\) are on another camera's scale",
        resize_to=(156, 208),
    )


def test_labels_differing_in_case_are_flagged(tmp_path, caplog):
    lines = good_inputs(tmp_path)
    lines[3] = lines[3].replace(",b,", ",B,")
    ingest_manifest(tmp_path / "frames.h5", write_manifest(tmp_path, lines))
    assert "labels 'B', 'b' differ only in case" in caplog.text


def many_frames(folder: Path, n: int = 300) -> list[str]:
    """``n`` distinct frames over several batches: PNG files and a NumPy stack."""
    lines = good_inputs(folder)
    stack = np.stack([frame(100 + i) for i in range(n - len(lines))])
    np.save(folder / "clip.npy", stack)
    return [*lines, "clip.npy,s3,s3_a,a,"]


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_decoding_threads_change_nothing(tmp_path, monkeypatch, threads):
    """Batches decoded ahead, into reused buffers, land in order and intact.

    The writer is slowed down and checks that no batch changes while it holds
    it, which is when a decoding thread running ahead could overwrite it.
    """
    manifest = write_manifest(tmp_path, many_frames(tmp_path))
    expected = ingest_manifest(tmp_path / "serial.h5", manifest, threads=0)

    def slow(blocks):
        for block in blocks:
            held = block.frames.copy()
            time.sleep(0.05)  # time enough for every thread to run ahead
            np.testing.assert_array_equal(block.frames, held)
            yield block

    def write_slowly(path, blocks, **options):
        return real(path, slow(blocks), **options)

    real = ingest.write_frames
    monkeypatch.setattr(ingest, "write_frames", write_slowly)
    digest = ingest_manifest(tmp_path / "t.h5", manifest, threads=threads)
    assert digest == expected
    with h5py.File(tmp_path / "t.h5") as f, h5py.File(tmp_path / "serial.h5") as g:
        assert f["frames"].shape[0] == 300 > 4 * BATCH
        np.testing.assert_array_equal(f["frames"][:], g["frames"][:])
        np.testing.assert_array_equal(f["frames"][-1], frame(100 + 295))


def test_late_bad_frame_with_threads(tmp_path):
    """A bad frame several batches in still names its line and leaves nothing."""
    lines = many_frames(tmp_path)
    Image.fromarray(frame(7, shape=(48, 64))).save(tmp_path / "big.png")
    assert_fails_cleanly(
        tmp_path, [*lines, "big.png,s4,y,a,0"], r"line 7: big.png is 48x64", threads=3
    )


def test_compression_none_by_name(tmp_path):
    """``none`` as written in a configuration is the same as no compression."""
    manifest = write_manifest(tmp_path, good_inputs(tmp_path))
    digest = ingest_manifest(tmp_path / "a.h5", manifest, compression="none")
    assert digest == ingest_manifest(tmp_path / "b.h5", manifest)
    with h5py.File(tmp_path / "a.h5") as f:
        assert f.attrs["compression"] == "none" and f["frames"].chunks is None


def test_in_car_frames(tmp_path):
    root = shared() / "data" / "thermal-incar"
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"shared in-car data not found at {root}")
    with (root / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = tmp_path / "frames.h5"
    ingest_manifest(out, root / "manifest.csv")
    with h5py.File(out) as f:
        assert f["frames"].shape == (len(rows), 240, 320)
        assert f.attrs["radiometric_scale"] == "intensity8"
        assert json.loads(f.attrs["label_names"]) == ["normal", "yawning"]
        assert list(f["subject"].asstr()[:5]) == [r["subject"] for r in rows[:5]]
        assert list(f["frame"][:3]) == [int(r["frame"]) for r in rows[:3]]
        yawning = [r["yawning"] for r in rows]
        assert list(f["metadata/yawning"].asstr()[:]) == yawning
        last = np.asarray(Image.open(root / rows[-1]["path"]))
        np.testing.assert_array_equal(f["frames"][-1], last)


STREAM = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    import numpy as np
    from thermia.data.ingest import ingest_manifest

    folder, n = Path(sys.argv[1]), int(sys.argv[2])
    per_file = 500
    lines = ["path,subject,session,label"]
    for k in range(n // per_file):
        # a sparse file: only the frame counters in each frame's first row
        # reach the disk, so 20,000 frames cost a few MB of real disk space
        stack = np.lib.format.open_memmap(
            folder / f"s{k}.npy", "w+", np.uint8, (per_file, 240, 320)
        )
        index = np.arange(k * per_file, (k + 1) * per_file)
        stack[:, 0, :4] = index.astype("<u4").view(np.uint8).reshape(-1, 4)
        stack.flush()
        del stack
        lines.append(f"s{k}.npy,p{k % 2},p{k % 2}_{k},{'ab'[k // 2 % 2]}")
    (folder / "m.csv").write_text("\\n".join(lines) + "\\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ingest_manifest(folder / "frames.h5", folder / "m.csv")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)
    """
)


@pytest.mark.slow
def test_memory_stays_flat(tmp_path):
    """Peak RSS growth of ingest does not grow with the number of frames."""
    growth = {}
    for n in (2_000, 20_000):
        folder = tmp_path / str(n)
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", STREAM, str(folder), str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        growth[n] = int(done.stdout.split()[-1])
        with h5py.File(folder / "frames.h5") as f:
            assert f["frames"].shape == (n, 240, 320)
            assert int(f["frames"][n - 1, 0, :4].view("<u4")[0]) == n - 1
        for path in folder.iterdir():
            path.unlink()
    print(growth)  # noqa: T201 (shown with pytest -s)
    # 20,000 frames are 1.5 GB. Ingest holds a few batches of 64 frames (5 MB
    # each) and, per frame, its manifest row and hash: about 0.5 kB, so ten
    # times the frames may cost a few MB more, never the frames themselves.
    assert growth[20_000] < 64 * 2**20
    assert growth[20_000] - growth[2_000] < 16 * 2**20


INTERRUPTED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from thermia.data import ingest

    folder = Path(sys.argv[1])
    read = ingest._read_items

    def slow_read(*args):
        (folder / "started").touch()
        time.sleep(0.05)
        return read(*args)

    ingest._read_items = slow_read
    ingest.ingest_manifest(folder / "out" / "frames.h5", folder / "manifest.csv")
    """
)


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [
        (signal.SIGINT, -signal.SIGINT, "KeyboardInterrupt"),
        (signal.SIGTERM, 143, "SIGTERM"),
    ],
)
def test_interrupted_ingest_stops_and_leaves_nothing(tmp_path, signum, status, message):
    """A Ctrl-C or a kill request stops ingest at the next batch, cleaned up."""
    write_manifest(tmp_path, many_frames(tmp_path, n=40 * BATCH))
    (tmp_path / "out").mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # a few batches in
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == status, stderr
    assert message in stderr
    assert list((tmp_path / "out").iterdir()) == []
