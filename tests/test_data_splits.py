"""Split parsing on small split files written to tmp_path (CRLF, as distributed)."""

import pytest

from rrn.data.splits import SplitError, load_split, split_problems

CLASSES = ["Archery", "Biking"]


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def write(path, lines, eol="\r\n"):
    path.write_bytes("".join(line + eol for line in lines).encode())
    return path


@pytest.fixture
def ucf(tmp_path):
    root, sd = tmp_path / "UCF-101", tmp_path / "lists"
    sd.mkdir()
    write(sd / "classInd.txt", ["1 Archery", "2 Biking"])
    train = [
        "Archery/v_Archery_g08_c01.avi 1",
        "Biking/v_Biking_g08_c01.avi 2",
        "Biking/v_Biking_g09_c02.avi 2",
    ]
    test = ["Archery/v_Archery_g01_c01.avi", "Biking/v_Biking_g01_c01.avi"]
    write(sd / "trainlist01.txt", train)
    write(sd / "testlist01.txt", test)
    for line in train + test:
        touch(root / line.split()[0])
    return root, sd


def test_ucf101_crlf_labels_ids(ucf):
    root, sd = ucf
    s = load_split("ucf101", root, sd, 1)
    assert s.classes == CLASSES
    assert [(r.video_id, r.label) for r in s.train] == [
        ("Archery/v_Archery_g08_c01", 0),
        ("Biking/v_Biking_g08_c01", 1),
        ("Biking/v_Biking_g09_c02", 1),
    ]
    assert [(r.video_id, r.label) for r in s.test] == [
        ("Archery/v_Archery_g01_c01", 0),
        ("Biking/v_Biking_g01_c01", 1),
    ]
    assert s.train[0].path == root / "Archery/v_Archery_g08_c01.avi"
    assert s.missing == []


def test_missing_extension_resolved_by_stem(ucf):
    root, sd = ucf
    (root / "Biking/v_Biking_g01_c01.avi").rename(root / "Biking/v_Biking_g01_c01.mp4")
    s = load_split("ucf101", root, sd, 1)
    assert s.test[1].path == root / "Biking/v_Biking_g01_c01.mp4"
    assert s.test[1].video_id == "Biking/v_Biking_g01_c01"  # the id stays the listed one


def test_missing_video_error_names_file_and_line(ucf, logs_warning):
    root, sd = ucf
    (root / "Biking/v_Biking_g09_c02.avi").unlink()
    with pytest.raises(
        SplitError, match=r"trainlist01\.txt:3: video 'Biking/v_Biking_g09_c02' not found"
    ) as e:
        load_split("ucf101", root, sd, 1)
    assert "--missing skip" in str(e.value) and "1 of 5" in str(e.value)
    with logs_warning("1 of 5 listed videos are missing"):
        s = load_split("ucf101", root, sd, 1, missing="skip")
    assert len(s.train) == 2 and [(m.video_id, m.line) for m in s.missing] == [
        ("Biking/v_Biking_g09_c02", 3)
    ]


def test_label_not_in_class_index(ucf):
    root, sd = ucf
    write(
        sd / "trainlist01.txt", ["Archery/v_Archery_g08_c01.avi 1", "Biking/v_Biking_g08_c01.avi 3"]
    )
    with pytest.raises(
        SplitError, match=r"trainlist01\.txt:2: label 3 is not in classInd\.txt \(1\.\.2\)"
    ):
        load_split("ucf101", root, sd, 1)


def test_label_contradicting_folder(ucf):
    root, sd = ucf
    write(sd / "trainlist01.txt", ["Archery/v_Archery_g08_c01.avi 2"])
    with pytest.raises(
        SplitError, match=r":1: label 2 \(Biking\) contradicts the class folder 'Archery'"
    ):
        load_split("ucf101", root, sd, 1)


def test_test_list_unknown_class(ucf):
    root, sd = ucf
    write(sd / "testlist01.txt", ["Archery/v_Archery_g01_c01.avi", "Yoga/v_Yoga_g01_c01.avi"])
    with pytest.raises(SplitError, match=r"testlist01\.txt:2: class folder 'Yoga' is not in"):
        load_split("ucf101", root, sd, 1)


@pytest.mark.parametrize("bad", ["../outside/v.avi 1", "/etc/passwd 1", "Archery/../../x.avi 1"])
def test_path_escaping_root_rejected(ucf, bad):
    root, sd = ucf
    write(sd / "trainlist01.txt", ["Archery/v_Archery_g08_c01.avi 1", bad])
    with pytest.raises(SplitError, match=r"trainlist01\.txt:2: path .* leaves the data root"):
        load_split("ucf101", root, sd, 1)


def test_empty_split_and_missing_files(ucf):
    root, sd = ucf
    write(sd / "testlist01.txt", [])
    with pytest.raises(SplitError, match="test side of split 1 .* is empty"):
        load_split("ucf101", root, sd, 1)
    with pytest.raises(SplitError, match=r"trainlist02\.txt not found"):
        load_split("ucf101", root, sd, 2)
    with pytest.raises(SplitError, match="--split must be 1, 2 or 3"):
        load_split("ucf101", root, sd, 4)
    with pytest.raises(SplitError, match="not a folder"):
        load_split("ucf101", root / "nope", sd, 1)


def test_malformed_class_index(ucf):
    root, sd = ucf
    write(sd / "classInd.txt", ["1 Archery", "3 Biking"])
    with pytest.raises(SplitError, match=r"classInd\.txt:2: .*expected 2, got 3"):
        load_split("ucf101", root, sd, 1)


def test_lf_and_blank_lines_ok(ucf):
    root, sd = ucf
    write(sd / "testlist01.txt", ["", "Archery/v_Archery_g01_c01.avi  ", ""], eol="\n")
    assert len(load_split("ucf101", root, sd, 1).test) == 1


def test_hmdb51(tmp_path):
    root, sd = tmp_path / "hmdb", tmp_path / "splits"
    sd.mkdir()
    write(sd / "wave_test_split1.txt", ["a.avi 1", "b.avi 2", "c.avi 0"], eol="\n")
    write(sd / "clap_test_split1.txt", ["d.avi 2 ", "e.avi 1"], eol="\n")
    write(sd / "clap_test_split2.txt", ["d.avi 1"], eol="\n")
    for rel in [
        "wave/a.avi",
        "wave/b.avi",
        "clap/d.avi",
        "clap/e.avi",
    ]:  # c.avi unused: absent is fine
        touch(root / rel)
    s = load_split("hmdb51", root, sd, 1)
    assert s.classes == ["clap", "wave"]
    assert sorted((r.video_id, r.label) for r in s.train) == [("clap/e", 0), ("wave/a", 1)]
    assert sorted((r.video_id, r.label) for r in s.test) == [("clap/d", 0), ("wave/b", 1)]
    write(sd / "wave_test_split1.txt", ["a.avi 3"])
    with pytest.raises(SplitError, match=r"wave_test_split1\.txt:1: expected '<video> <0\|1\|2>'"):
        load_split("hmdb51", root, sd, 1)
    with pytest.raises(SplitError, match="no HMDB-51 split files"):
        load_split("hmdb51", root, sd, 3)


def test_custom_list_files(tmp_path):
    root = tmp_path / "data"
    for rel in ["x/1.mp4", "y/2.mp4", "y/3.mp4"]:
        touch(root / rel)
    tr = write(tmp_path / "train.txt", ["x/1.mp4 0", "y/2.mp4 1"], eol="\n")
    te = write(tmp_path / "test.txt", ["y/3.mp4 1"], eol="\n")
    s = load_split("list", root, train_list=tr, test_list=te)
    assert (
        s.classes == ["0", "1"]
        and [r.label for r in s.train] == [0, 1]
        and s.test[0].video_id == "y/3"
    )
    write(root / "classInd.txt", ["1 cat", "2 dog"])
    assert load_split("list", root, root, train_list=tr, test_list=te).classes == ["cat", "dog"]
    write(te, ["y/3.mp4 2"])
    with pytest.raises(SplitError, match=r"test\.txt:1: label 2 is not a valid class \(0\.\.1"):
        load_split("list", root, root, train_list=tr, test_list=te)
    with pytest.raises(SplitError, match="both --train-list and --test-list"):
        load_split("list", root, train_list=tr)
    with pytest.raises(SplitError, match="--split-dir .*nowhere is not a folder"):  # a typo
        load_split("list", root, tmp_path / "nowhere", train_list=tr, test_list=te)


def test_class_folders_three_fold_by_group(tmp_path):
    root = tmp_path / "data"
    for c in ("A", "B"):
        for g in (1, 2, 3, 4):
            touch(root / c / f"v_{c}_g{g:02d}_c01.avi")
    folds = [load_split("list", root, split=k) for k in (1, 2, 3)]
    assert folds[0].classes == ["A", "B"]
    assert [r.video_id for r in folds[0].test] == [
        "A/v_A_g01_c01",
        "A/v_A_g04_c01",
        "B/v_B_g01_c01",
        "B/v_B_g04_c01",
    ]
    assert [r.video_id for r in folds[1].test] == ["A/v_A_g02_c01", "B/v_B_g02_c01"]
    for f in folds:  # groups never on both sides
        assert not {r.video_id for r in f.train} & {r.video_id for r in f.test}
        assert len(f.train) + len(f.test) == 8


def test_symlinks_leaving_the_data_root_rejected(ucf, tmp_path):
    root, sd = ucf
    elsewhere = tmp_path / "elsewhere"
    touch(elsewhere / "secret.avi")
    for name in ("v_Biking_g08_c01.avi", "v_Biking_g09_c02.avi", "v_Biking_g01_c01.avi"):
        touch(elsewhere / "Biking" / name)
    link = root / "Archery/v_Archery_g08_c01.avi"
    link.unlink()
    link.symlink_to(elsewhere / "secret.avi")  # a video linked out
    with pytest.raises(
        SplitError,
        match=r"trainlist01\.txt:1: Archery/v_Archery_g08_c01\.avi is a "
        r"symbolic link .* outside the data root .*--data-root",
    ):
        load_split("ucf101", root, sd, 1)
    link.unlink()
    link.symlink_to(touch(root / "Archery/take2.avi"))  # a link inside the root is fine
    assert load_split("ucf101", root, sd, 1).train[0].path == link
    for video in (root / "Biking").iterdir():  # a class folder linked out
        video.unlink()
    (root / "Biking").rmdir()
    (root / "Biking").symlink_to(elsewhere / "Biking")
    split, problems = split_problems("ucf101", root, sd, 1)
    assert [p.split(": ")[0] for p in problems] == [
        f"{sd / 'trainlist01.txt'}:2",
        f"{sd / 'trainlist01.txt'}:3",
        f"{sd / 'testlist01.txt'}:2",
    ]
    assert [r.video_id for r in split.train + split.test] == [
        "Archery/v_Archery_g08_c01",
        "Archery/v_Archery_g01_c01",
    ]
    assert split.missing == []
    linked_root = tmp_path / "linked-root"  # the data root itself may be a link
    linked_root.symlink_to(root)
    assert len(split_problems("ucf101", linked_root, sd, 1)[1]) == 3


def test_train_entry_outside_the_class_index(ucf):
    root, sd = ucf
    touch(root / "Yoga/v_Yoga_g08_c01.avi")
    touch(root / "v_Loose_g08_c01.avi")
    write(
        sd / "trainlist01.txt",
        ["Archery/v_Archery_g08_c01.avi 1", "Yoga/v_Yoga_g08_c01.avi 2", "v_Loose_g08_c01.avi 1"],
    )
    with pytest.raises(
        SplitError,
        match=r"trainlist01\.txt:2: Yoga/v_Yoga_g08_c01\.avi: class folder "
        r"'Yoga' is not in .*classInd\.txt; .*add the class there",
    ):
        load_split("ucf101", root, sd, 1)
    split, problems = split_problems("ucf101", root, sd, 1)
    assert (
        len(problems) == 2
        and "trainlist01.txt:3: v_Loose_g08_c01.avi: no class folder" in problems[1]
    )
    assert [r.video_id for r in split.train] == ["Archery/v_Archery_g08_c01"]


def test_list_labels_with_a_gap_need_a_class_index(tmp_path):
    root = tmp_path / "data"
    for rel in ["x/1.mp4", "y/2.mp4", "y/3.mp4", "z/4.mp4"]:
        touch(root / rel)
    tr = write(tmp_path / "train.txt", ["x/1.mp4 0", "y/2.mp4 1", "z/4.mp4 999"], eol="\n")
    te = write(tmp_path / "test.txt", ["y/3.mp4 1", "x/1.mp4 0"], eol="\n")
    with pytest.raises(
        SplitError,
        match=r"train\.txt:3: label 999, but no line has label 2: without a "
        r"class index the classes are 0\.\.999 .*, 997 of them without any video\. Fix the "
        r"label, or name the classes in .*classInd\.txt",
    ):
        load_split("list", root, train_list=tr, test_list=te)
    split, problems = split_problems("list", root, train_list=tr, test_list=te)
    assert len(problems) == 1 and split.classes == ["0", "1"] and len(split.train) == 2
    write(tr, ["x/1.mp4 1", "y/2.mp4 2"])  # 1-based by mistake
    write(te, ["y/3.mp4 2"])
    split, problems = split_problems("list", root, train_list=tr, test_list=te)
    assert "train.txt:1: label 1, but no line has label 0 (labels are 0-based)" in problems[0]
    assert len(problems) == 4 and split is None and "train side" in problems[3]  # no line left
    write(
        root / "classInd.txt", ["1 none", "2 cat", "3 dog"]
    )  # naming the classes allows any labels
    assert load_split("list", root, root, train_list=tr, test_list=te).classes == [
        "none",
        "cat",
        "dog",
    ]


def test_split_entries_are_typed_and_bad_lines_go_to_an_explicit_collector(tmp_path):
    """Every parser returns Entry records; malformed lines are raised at once by default and
    collected, from two files in one pass, when a collector asks for it."""
    from rrn.data.formats.lists import _lists
    from rrn.data.formats.text import Entry, LineErrors

    (tmp_path / "a" / "x.mp4").parent.mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "train.txt").write_text("a/x.mp4 0\n../escape.mp4 0\n")
    (tmp_path / "test.txt").write_text("a/x.mp4\n")
    with pytest.raises(SplitError, match="train.txt:2: path '../escape.mp4' leaves the data root"):
        _lists(tmp_path, tmp_path / "train.txt", tmp_path / "test.txt", LineErrors())
    errors = LineErrors(collect=True)
    entries, classes = _lists(tmp_path, tmp_path / "train.txt", tmp_path / "test.txt", errors)
    assert entries == [Entry("train", "a/x.mp4", 0, tmp_path / "train.txt", 1)]
    assert entries[0].label == 0 and entries[0].frames is None and classes == ["0"]
    assert len(errors.messages) == 2  # the escaping path, and the test line without a label
    assert "train.txt:2" in errors.messages[0] and "test.txt:1" in errors.messages[1]
