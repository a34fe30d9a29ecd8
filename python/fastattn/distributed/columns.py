"""Batches in, Arrow columns out: what the map_batches callables share.

Ray hands a batch as a pyarrow Table, a pandas DataFrame or a dict of NumPy arrays
(``batch_format``); each is turned into a pyarrow Table here, its columns passed through to
the output. Vectors go out as ``fixed_size_list<float32>[d]`` columns: plain Arrow, written to
Parquet by ``write_parquet`` / ``pyarrow.parquet`` and read back by any Parquet reader, null
where the row failed.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def as_table(batch) -> pa.Table:
    """A map_batches batch (pyarrow Table, pandas DataFrame, dict of arrays or lists) as a
    pyarrow Table. A NumPy column of more than one axis (Ray's tensor columns) becomes a
    fixed-size list of its flattened rows."""
    if isinstance(batch, pa.Table):
        return batch
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):      # pandas, not imported
        return pa.Table.from_pandas(batch, preserve_index=False)
    if isinstance(batch, dict):
        columns = {}
        for name, values in batch.items():
            if isinstance(values, np.ndarray) and values.ndim > 1:
                columns[name] = fixed_size_vectors(values.reshape(len(values), -1))
            else:
                columns[name] = pa.array(values.tolist() if isinstance(values, np.ndarray)
                                         and values.dtype == object else values)
        return pa.table(columns)
    raise TypeError(f"expected a batch as a pyarrow.Table, a pandas.DataFrame or a dict of "
                    f"arrays, got {type(batch).__name__}")


def column(table: pa.Table, name: str, op: str) -> list:
    """The values of column ``name`` as Python objects; KeyError naming the columns there."""
    if name not in table.column_names:
        raise KeyError(f"{op}: the batch has no column {name!r} (columns: "
                       f"{table.column_names}); pass the column's name")
    return table.column(name).to_pylist()


def fixed_size_vectors(rows: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """(n, d) float32 -> fixed_size_list<float32>[d] (n rows, no copy of the values); rows
    where ``valid`` is False are null (their values are kept in the buffer, unread)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n, d = rows.shape
    values = pa.array(rows.reshape(-1))
    validity, nulls = None, 0
    if valid is not None and not valid.all():
        # Arrow's validity bitmap: bit i (least significant first) set when row i is valid
        validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
        nulls = int((~valid).sum())
    return pa.Array.from_buffers(pa.list_(pa.float32(), d), n, [validity], null_count=nulls,
                                 children=[values])


def vectors_of(array) -> np.ndarray:
    """fixed_size_list<float32>[d] (Array or ChunkedArray, no nulls) -> (n, d) float32: the
    inverse of fixed_size_vectors, for reading outputs back."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise ValueError(f"vectors_of: {array.null_count} rows are null (failed rows: see "
                         "their error column)")
    d = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False) \
        .reshape(len(array), d)


def decode_text(value, op: str) -> tuple[str | None, str | None]:
    """(text, error) of one cell of a text column: a str as is; bytes decoded as UTF-8 (when
    that fails: the bytes with the bad ones escaped, for the report, and the error); None or
    another type: (None, error)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError as e:
            return raw.decode("utf-8", "backslashreplace"), f"{op}: not UTF-8 text ({e})"
    if value is None:
        return None, f"{op}: the text is missing (null)"
    return None, f"{op}: the text is a {type(value).__name__}, not a str or bytes"


def with_columns(table: pa.Table, columns: dict) -> pa.Table:
    """``table`` with ``columns`` (name -> Arrow array or list) set: replaced where the name
    exists (the text column, decoded), appended otherwise."""
    for name, values in columns.items():
        values = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table
