"""Local ``.jsonl`` and ``.parquet`` corpora: the text field of each record is a document."""

import json

import pytest
from dummies import tiny_english

from augdiff.data import make_dataset
from augdiff.errors import AugdiffError


def _docs():
    return [p.strip() for p in tiny_english(120, seed=4).split("\n\n") if p.strip()]


def test_jsonl_and_parquet_give_the_rows_a_text_file_gives(tmp_path):
    docs = _docs()
    plain = tmp_path / "c.txt"
    plain.write_text("\n\n".join(docs))
    lines = tmp_path / "c.jsonl"
    lines.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)))
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": docs, "id": list(range(len(docs)))}), table)
    rows = [make_dataset(f"text:{p}", seq_len=32) for p in (plain, lines, table)]
    assert rows[0].vocab_size == rows[1].vocab_size == rows[2].vocab_size
    first = [next(d.valid_batches(8)) for d in rows]
    assert (first[0] == first[1]).all() and (first[0] == first[2]).all()


@pytest.mark.parametrize(
    "content, match",
    [('{"text": "a"}\nnot json\n', "line 2 is not JSON"), ('{"body": "a"}\n', "no string field 'text'")],
)
def test_bad_records_are_one_line(tmp_path, content, match):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(AugdiffError, match=match):
        make_dataset(f"text:{bad}", seq_len=8)
