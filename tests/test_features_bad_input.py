"""Bad feature rows are refused before the engine, naming the column and the row (ONNX Runtime's own errors name neither)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import embedrt
from embedrt.errors import InputError
from embedrt.export.features.exporter import export_module
from feature_models import BagModel, bag_rows

from two_tower.data import make_interactions  # noqa: E402 (feature_models puts it on sys.path)
from two_tower.model import UserTower


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    torch.manual_seed(0)
    data = make_interactions()
    return embedrt.load(export_module(UserTower(), tmp_path_factory.mktemp("bad") / "user", data.user_rows(np.arange(16))))


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return embedrt.load(export_module(BagModel(), tmp_path_factory.mktemp("bad") / "bag", bag_rows()))


def good_rows(n: int = 4) -> dict:
    return {
        "user_id": np.arange(n, dtype=np.int64),
        "history": [[1, 2], [], [3], [4, 5, 6]][:n],
        "age": np.zeros(n, dtype=np.float32),
        "activity": np.ones(n, dtype=np.float32),
    }


def with_column(name, value):
    rows = good_rows()
    rows[name] = value
    return rows


def test_good_rows_embed(user):
    assert user.embed(good_rows()).shape == (4, 32)


def test_a_missing_column_is_named_with_the_columns_the_model_takes(user):
    rows = good_rows()
    del rows["age"]
    with pytest.raises(InputError, match="column 'age' is missing; this model takes the columns user_id, history, age, activity"):
        user.embed(rows)


def test_an_unknown_column_is_named(user):
    with pytest.raises(InputError, match="column 'country' is not an input of this model"):
        user.embed({**good_rows(), "country": ["fr"] * 4})


def test_columns_of_different_lengths_are_refused(user):
    with pytest.raises(InputError, match="column 'age' has 3 rows but column 'user_id' has 4"):
        user.embed(with_column("age", np.zeros(3, dtype=np.float32)))


def test_an_id_outside_its_table_names_column_row_and_value(user):
    with pytest.raises(InputError, match=r"column 'user_id' row 2: id 1000 is outside 0 \.\. 999 \(1 rows in all\)"):
        user.embed(with_column("user_id", [0, 1, 1000, 3]))
    with pytest.raises(InputError, match=r"column 'user_id' row 1: id -1 is outside 0 \.\. 999"):
        user.embed(with_column("user_id", [0, -1, 2, 3]))


def test_an_id_outside_its_table_inside_a_list_names_the_row(user):
    with pytest.raises(InputError, match=r"column 'history' row 3: id 500 is outside 0 \.\. 499"):
        user.embed(with_column("history", [[1], [], [2, 3], [4, 500]]))


def test_floats_in_an_id_column_are_a_wrong_dtype(user):
    with pytest.raises(InputError, match="column 'user_id' row 1: floats in an id column"):
        user.embed(with_column("user_id", [0.0, 1.5, 2.0, 3.0]))
    with pytest.raises(InputError, match="column 'history' row 2: floats in an id list"):
        user.embed(with_column("history", [[1], [], [2.5], [4]]))


def test_strings_in_a_float_column_are_a_wrong_dtype(user):
    with pytest.raises(InputError, match="column 'age' row 0: <U2 values in a float feature"):
        user.embed(with_column("age", ["40", "41", "42", "43"]))


def test_a_nan_in_a_float_feature_names_the_row(user):
    with pytest.raises(InputError, match=r"column 'activity' row 2: NaN or Inf in a float feature \(2 rows in all\)"):
        user.embed(with_column("activity", [1.0, 1.0, np.nan, np.inf]))


def test_a_pandas_int_column_with_a_missing_value_names_the_row(user):
    import pandas as pd

    frame = pd.DataFrame({k: list(v) for k, v in good_rows().items()})
    frame.loc[1, "user_id"] = None  # pandas turns the column into floats with a NaN
    with pytest.raises(InputError, match="column 'user_id' row 1: floats in an id column"):
        user.embed(frame)


def test_a_non_list_in_an_id_list_column_names_the_row(user):
    with pytest.raises(InputError, match="column 'history' row 1: int where a list of ids is expected"):
        user.embed(with_column("history", [[1], 7, [], []]))


def test_a_ragged_row_where_the_spec_says_fixed_names_the_row(bag):
    rows = bag_rows(4)
    rows["context"] = [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.1, 0.2], [0.1, 0.2, 0.3]]
    with pytest.raises(InputError, match="column 'context' row 2: 2 values, but this model takes 3 values a row"):
        bag.embed(rows)


def test_a_row_dict_missing_a_column_names_the_row(user):
    rows = [{k: v[i] for k, v in good_rows().items()} for i in range(4)]
    del rows[3]["age"]
    with pytest.raises(InputError, match=r"rows\[3\] has no column 'age'"):
        user.embed(rows)


def test_a_single_string_is_not_rows(user):
    with pytest.raises(InputError, match="rows must be a dict of columns, a list of row dicts, a pandas DataFrame or a pyarrow Table"):
        user.embed("user 1")
