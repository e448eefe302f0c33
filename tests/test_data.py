"""Data loading, indexing, reciprocals, labels, noise, filters and bad input."""

import pytest
import torch

from kdkge.data import (
    DataError,
    add_noise,
    k_vs_all,
    known_tails,
    load_dataset,
    one_vs_all,
    read_triples,
    with_reciprocals,
)


def write_dataset(folder, train, valid, test):
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "name, entities, relations, sizes, train_with_reciprocals",
    [
        ("umls", 135, 46, (5216, 652, 661), 10432),  # Table 1: 10,432
        ("kinship", 104, 25, (8544, 1068, 1074), 17088),  # Table 1: 17,088
        ("nations", 14, 55, (1592, 199, 201), 3184),
    ],
)
def test_builtin_datasets(name, entities, relations, sizes, train_with_reciprocals):
    kg = load_dataset(name)
    assert kg.num_entities == entities
    assert len(kg.relations) == relations and kg.num_relations == 2 * relations
    assert (len(kg.train), len(kg.valid), len(kg.test)) == sizes
    assert len(with_reciprocals(kg.train, len(kg.relations))) == train_with_reciprocals
    assert list(kg.entities) == sorted(kg.entities)
    assert list(kg.relations) == sorted(kg.relations)


def test_indexing_is_sorted_and_deterministic(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["b\tr2\ta", "c\tr1\tb"], ["a\tr1\tc"], ["c\tr2\ta"])
    kg = load_dataset(folder)
    assert kg.entities == ("a", "b", "c") and kg.relations == ("r1", "r2")
    assert kg.train.tolist() == [[1, 1, 0], [2, 0, 1]]
    assert kg.relation_name(3) == "r2^-1" and kg.relation_id("r2^-1") == 3
    assert load_dataset(folder).train.equal(kg.train)


def test_reciprocals():
    triples = torch.tensor([[0, 1, 2], [3, 0, 4]])
    out = with_reciprocals(triples, num_original_relations=5)
    assert out.tolist() == [[0, 1, 2], [3, 0, 4], [2, 6, 0], [4, 5, 3]]


def test_one_vs_all_labels_one_point_per_triple():
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 1, 0]])
    labels = one_vs_all(triples)
    assert len(labels) == 3
    rows, cols = labels.batch_targets(torch.tensor([2, 0]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]


def test_k_vs_all_labels_group_tails():
    triples = torch.tensor([[0, 0, 1], [1, 1, 0], [0, 0, 2], [0, 0, 3]])
    labels = k_vs_all(triples)
    assert labels.queries.tolist() == [[0, 0], [1, 1]]
    rows, cols = labels.batch_targets(torch.tensor([1, 0]))
    dense = torch.zeros(2, 4)
    dense[rows, cols] = 1
    assert dense.tolist() == [[1, 0, 0, 0], [0, 1, 1, 1]]


def test_known_tails_filter_covers_all_splits_and_reciprocals(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "a\tr\tc"], ["b\tr\tc"], ["c\tr\ta"])
    kg = load_dataset(folder)
    known = known_tails(kg)
    a, b, c = 0, 1, 2
    assert known[(a, 0)] == {b, c}
    assert known[(b, 0)] == {c}
    assert known[(c, 1)] == {a, b}  # reciprocals: (c, r^-1, a) from train, (c, r^-1, b) from valid
    assert known[(a, 1)] == {c}  # from test (c, r, a)


def test_noise_is_reproducible_false_and_train_only():
    kg = load_dataset("umls")
    noisy = add_noise(kg, 0.1, seed=1)
    assert noisy.num_noisy == round(0.1 * len(kg.train)) == 522
    assert len(noisy.train) == len(kg.train) + 522
    assert noisy.valid.equal(kg.valid) and noisy.test.equal(kg.test)
    assert noisy.clean_train.equal(kg.train)
    facts = {tuple(t) for s in (kg.train, kg.valid, kg.test) for t in s.tolist()}
    added = [tuple(t) for t in noisy.train[len(kg.train):].tolist()]
    assert not facts & set(added) and len(set(added)) == len(added)
    assert add_noise(kg, 0.1, seed=1).train.equal(noisy.train)
    assert not add_noise(kg, 0.1, seed=2).train.equal(noisy.train)
    assert add_noise(kg, 0.0, seed=1) is kg
    with pytest.raises(DataError, match=r"noise_ratio=1.0 must lie in \[0, 1\)"):
        add_noise(kg, 1.0, seed=1)


def test_noise_is_not_a_filtered_fact():
    kg = add_noise(load_dataset("nations"), 0.1, seed=3)
    known = known_tails(kg)
    for h, r, t in kg.train[len(kg.clean_train):].tolist():
        assert t not in known.get((h, r), set())


@pytest.mark.parametrize(
    "content, message",
    [
        ("a\tr\tb\na\tr\n", r"train.txt:2: expected 3 tab-separated fields .* found 2"),
        ("a\tr\tb\tc\n", r"train.txt:1: expected 3 tab-separated fields .* found 4"),
        ("a\t\tb\n", r"train.txt:1: empty field"),
        ("", r"train.txt: no triples \(file is empty\)"),
        ("\n\n  \n", r"train.txt: no triples"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    folder = write_dataset(tmp_path / "kg", [], ["a\tr\tb"], ["a\tr\tb"])
    (folder / "train.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(folder)


def test_blank_lines_and_whitespace_are_tolerated(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["", "a\tr\tb  ", "  ", "b\tr\ta"], ["a\tr\tb"], ["b\tr\ta"])
    assert len(load_dataset(folder).train) == 2


def test_non_utf8_is_reported(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb"], ["a\tr\tb"], ["a\tr\tb"])
    (folder / "valid.txt").write_bytes(b"a\tr\t\xff\xfe\n")
    with pytest.raises(DataError, match=r"valid.txt: not valid UTF-8"):
        load_dataset(folder)


def test_missing_folder_and_split(tmp_path):
    with pytest.raises(DataError, match=r"does not exist"):
        load_dataset(tmp_path / "nope")
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb"], ["a\tr\tb"], ["a\tr\tb"])
    (folder / "test.txt").unlink()
    with pytest.raises(DataError, match=r"missing split file .*test.txt"):
        load_dataset(folder)


def test_duplicates_are_dropped_and_counted(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "a\tr\tb", "b\tr\ta"], ["a\tr\tb"], ["b\tr\ta"])
    kg = load_dataset(folder)
    assert len(kg.train) == 2 and kg.report["duplicates_train"] == 1


def test_unseen_entities_policy(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "b\tr\ta"], ["a\tr\tz", "a\tr\tb"], ["a\tq\tb", "b\tr\ta"])
    with pytest.warns(UserWarning, match=r"valid.txt: 1 of 2 triples use an entity or relation that never occurs"):
        kg = load_dataset(folder, unseen="skip")
    assert len(kg.valid) == 1 and kg.report["unseen_valid"] == 1 and kg.report["unseen_test"] == 1
    assert len(kg.test) == 1  # (a split whose triples are *all* unseen is an error: see below)
    with pytest.raises(DataError, match=r"valid.txt: 1 of 2 triples .*never occurs.*set dataset.unseen=skip"):
        load_dataset(folder, unseen="error")
    with pytest.raises(DataError, match=r"unseen='maybe' is not a policy"):
        load_dataset(folder, unseen="maybe")


def test_read_triples_streams_large_files(tmp_path):
    path = tmp_path / "big.txt"
    with path.open("w") as handle:
        for i in range(200_000):
            handle.write(f"e{i % 1000}\tr{i % 7}\te{(i * 7) % 1000}\n")
    assert len(read_triples(path)) == 200_000


# --------------------------------------------------------------------------- #
# silent corruption: byte-order mark, header line, NUL bytes, reciprocal-like names, unseen splits
# --------------------------------------------------------------------------- #


def test_a_utf8_byte_order_mark_is_stripped(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "b\tr\ta"], ["a\tr\tb"], ["b\tr\ta"])
    (folder / "train.txt").write_bytes(b"\xef\xbb\xbf" + (folder / "train.txt").read_bytes())
    kg = load_dataset(folder)
    assert kg.entities == ("a", "b")  # not "\ufeffa"
    assert read_triples(folder / "train.txt")[0] == ("a", "r", "b")


@pytest.mark.parametrize(
    "first_line, message",
    [
        ("head\trelation\ttail", r"train.txt:1: header line 'head\\trelation\\ttail': split files hold triples only; delete the line"),
        ("subject\tpredicate\tobject", r"train.txt:1: header line 'subject\\tpredicate\\tobject'"),
        ("head relation tail", r"train.txt:1: header line 'head relation tail': split files hold triples only"),
        ("# Head\tRelation\tTail", r"train.txt:1: header line"),
    ],
)
def test_a_header_line_fails_with_file_line_and_fix(tmp_path, first_line, message):
    folder = write_dataset(tmp_path / "kg", [first_line, "a\tr\tb"], ["a\tr\tb"], ["a\tr\tb"])
    with pytest.raises(DataError, match=message) as info:
        load_dataset(folder)
    assert "\n" not in str(info.value)


def test_single_letter_names_are_not_a_header(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["h\tr\tt", "t\tr\th"], ["h\tr\tt"], ["t\tr\th"])
    assert load_dataset(folder).entities == ("h", "t")


def test_nul_bytes_fail_with_file_and_line(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "b\tr\ta"], ["a\tr\tb"], ["b\tr\ta"])
    (folder / "test.txt").write_bytes(b"b\tr\ta\na\tr\x00\x00\tb\n")
    with pytest.raises(DataError, match=r"test.txt:2: NUL byte in the line: .*re-encode it as UTF-8") as info:
        load_dataset(folder)
    assert "\n" not in str(info.value)
    (folder / "test.txt").write_text("b\tr\ta\n", encoding="utf-16-le")  # UTF-16 without a byte-order mark
    with pytest.raises(DataError, match=r"test.txt:1: NUL byte in the line: the file is binary, truncated or UTF-16"):
        load_dataset(folder)


def test_a_relation_named_like_a_reciprocal_fails(tmp_path):
    folder = write_dataset(tmp_path / "kg", ["a\tembassy\tb", "b\tembassy^-1\ta"], ["a\tembassy\tb"], ["b\tembassy\ta"])
    with pytest.raises(DataError, match=r"train.txt:2: relation 'embassy\^-1' ends in '\^-1', the name kdkge gives the "
                                        r"reciprocal of 'embassy': the two would collide; rename the relation") as info:
        load_dataset(folder)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"train.txt:2: relation 'embassy\^-1'"):
        from kdkge.data_2022 import load_dataset_2022

        load_dataset_2022(folder)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_a_split_with_only_unseen_triples_fails_naming_it(tmp_path, split):
    other = ["x\tq\ty", "y\tq\tx"]
    folder = write_dataset(tmp_path / "kg", ["a\tr\tb", "b\tr\ta"],
                           other if split == "valid" else ["a\tr\tb"], other if split == "test" else ["b\tr\ta"])
    message = rf"{split}.txt: all 2 triples of the {split} split use an entity or relation that never occurs in train.txt"
    for unseen in ("skip", "error"):
        with pytest.raises(DataError, match=message) as info:
            load_dataset(folder, unseen=unseen)
        assert "\n" not in str(info.value) and "belong to the same graph" in str(info.value)
    from kdkge.data_2022 import load_dataset_2022

    with pytest.raises(DataError, match=message):  # protocol=paper_code's loader too
        load_dataset_2022(folder)
