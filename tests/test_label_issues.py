"""What training does with the audit's flags: keep, drop or relabel, in the train part only."""

import numpy as np
import pytest

from facecls.data.label_issues import apply_label_issues, read_issues, write_issues
from facecls.data.split import LEFT_OUT, PARTS, TEST, TRAIN, TUNE
from facecls.errors import FaceclsError
from tests.toy_faces import toy_set


def flagged_file(path, data, rows):
    write_issues(path, [{"rank": k + 1, "file": data.files[r], "row": r, "part": PARTS[data.part[r]],
                         "label": int(data.labels[r]), "score": 0.5} for k, r in enumerate(rows)])
    return path


def with_files(n=60):
    data = toy_set(n=n)
    data.files = [f"{i + 1:06d}.jpg" for i in range(n)]
    return data


def one_of_each_part(data):
    return [int(np.flatnonzero(data.part == code)[0]) for code in (TRAIN, TUNE, TEST)]


def test_keep_reads_nothing(tmp_path):
    data = with_files()
    assert apply_label_issues(data, "keep", tmp_path / "absent.csv") == (data, 0)


def test_drop_leaves_flagged_train_faces_out_and_touches_no_other_part(tmp_path):
    data = with_files()
    train, tune, test = one_of_each_part(data)
    dropped, touched = apply_label_issues(data, "drop", flagged_file(tmp_path / "i.csv", data, [train, tune, test]))
    assert touched == 1 and dropped.part[train] == LEFT_OUT and train not in dropped.train_rows
    assert np.array_equal(dropped.tune_rows, data.tune_rows) and np.array_equal(dropped.test_rows, data.test_rows)
    assert np.array_equal(dropped.labels, data.labels)


def test_relabel_flips_flagged_train_labels_only(tmp_path):
    data = with_files()
    train, tune, test = one_of_each_part(data)
    relabelled, touched = apply_label_issues(data, "relabel", flagged_file(tmp_path / "i.csv", data,
                                                                          [train, tune, test]))
    assert touched == 1 and relabelled.labels[train] == 1 - data.labels[train]
    changed = np.flatnonzero(relabelled.labels != data.labels)
    assert changed.tolist() == [train] and np.array_equal(relabelled.part, data.part)


def test_flags_from_other_data_are_refused(tmp_path):
    data = with_files()
    path = flagged_file(tmp_path / "i.csv", data, [3])
    data.labels[3] = 1 - data.labels[3]
    with pytest.raises(FaceclsError, match=r"i.csv: row 3 \(000004.jpg, label .\) is not that face"):
        read_issues(path, data)
    with pytest.raises(FaceclsError, match=r"absent.csv: not found \(run `dvc repro audit`\)"):
        apply_label_issues(data, "drop", tmp_path / "absent.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FaceclsError, match="other.csv: not a label-issues file"):
        read_issues(tmp_path / "other.csv", data)
