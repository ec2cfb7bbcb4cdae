import mmap
import os
import time

from livetranslate.launcher.shm import PREFIX, remove_stale_regions


def region(directory, name, age_s):
    path = directory / f"{PREFIX}{name}"
    path.write_bytes(b"\0" * mmap.PAGESIZE)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def test_only_old_regions_that_no_process_maps_are_removed(tmp_path):
    stale = region(tmp_path, "stale", 3600)
    young = region(tmp_path, "young", 1)
    in_use = region(tmp_path, "in-use", 3600)
    other = tmp_path / "not-a-region"
    other.write_bytes(b"x")
    os.utime(other, (0, 0))
    with open(in_use, "r+b") as f, mmap.mmap(f.fileno(), 0):
        removed = remove_stale_regions(tmp_path)
    assert removed == [stale]
    assert not stale.exists() and young.exists() and in_use.exists() and other.exists()


def test_a_missing_directory_is_nothing_to_do(tmp_path):
    assert remove_stale_regions(tmp_path / "absent") == []
