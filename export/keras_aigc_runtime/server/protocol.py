"""Open Inference Protocol (KServe v2) tensors: JSON data and Triton's binary extension.

Binary tensor data extension (Triton): the request body is a JSON header of
`Inference-Header-Content-Length` bytes followed by the raw little-endian bytes of
every input whose `parameters.binary_data_size` is set, in input order. Outputs are
returned the same way when `parameters.binary_data_output` is true (tritonclient's
default) or an output asks for `parameters.binary_data`.
"""

import json
import math
import zlib

import numpy as np

DATATYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
             "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
             "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
FROM_NUMPY = {np.dtype(v).name: k for k, v in DATATYPES.items()}
HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_JSON_DEPTH = 32  # a request nests at most ~10 levels (object, inputs, tensor, 4-D data)
MAX_NDIM = 32
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class ProtocolError(Exception):
    """A request the protocol rejects; `status` is the HTTP code to answer with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status

    def __reduce__(self):  # keeps `status` across a process pool
        return (type(self), (str(self), self.status))


def datatype_of(dtype):
    return FROM_NUMPY[np.dtype(dtype).name]


def decode_body(body, content_encoding, max_bytes):
    """Undoes `Content-Encoding: gzip|deflate`, refusing to inflate past `max_bytes`."""
    if not content_encoding or content_encoding == "identity":
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(content_encoding)
    if wbits is None:
        raise ProtocolError(f"Unsupported Content-Encoding {content_encoding!r}; supported: "
                            f"gzip, deflate, identity.", 415)
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise ProtocolError(f"Body is not valid {content_encoding} data: {e}") from e
    if len(out) > max_bytes:
        raise ProtocolError(f"Decompressed request body is over the limit of {max_bytes} "
                            f"bytes.", 413)
    return out


def check_json_bounds(text, max_depth=MAX_JSON_DEPTH, max_values=None):
    """Refuses JSON nested deeper than `max_depth` or holding more than `max_values`
    values, before `json.loads` allocates anything.

    Both counts run in C over the raw bytes and ignore string quoting, so they can only
    over-count (a bracket or comma inside a string counts too): a valid request is never
    let through above the bounds, and one with plain names and ids is never refused
    below them.
    """
    if max_values is not None:
        values = text.count(b",") + text.count(b"[") + text.count(b"{") + 1
        if values > max_values:
            raise ProtocolError(f"The JSON request holds about {values} values, over the limit "
                                f"of {max_values} for this model (max_request_batch x the "
                                f"values in one row); send fewer rows or binary tensor data.",
                                413)
    depth, chunk = 0, 1 << 20
    for start in range(0, len(text), chunk):
        deltas = _OPEN[np.frombuffer(text, np.uint8, min(chunk, len(text) - start), start)]
        if not deltas.any():
            continue
        running = np.cumsum(deltas, dtype=np.int64) + depth
        if running.max() > max_depth:
            raise ProtocolError(f"The JSON request is nested deeper than {max_depth} levels.")
        depth = int(running[-1])


def _shape(value, where, max_elements=None):
    if (not isinstance(value, list) or len(value) > MAX_NDIM
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in value)):
        raise ProtocolError(f"{where}: 'shape' must be a list of non-negative ints "
                            f"(at most {MAX_NDIM}), got {str(value)[:200]}.")
    count = math.prod(value)  # a Python int: never wraps
    limit = max_elements if max_elements is not None else np.iinfo(np.int32).max
    if count > limit or any(d > limit for d in value):
        raise ProtocolError(f"{where}: shape {str(value)[:200]} holds {count} values, over the "
                            f"limit of {limit} per request.", 413)
    return value, count


def parse_infer_request(body, header_length=None, max_elements=None):
    """Returns `(request JSON, {input name: numpy array}, binary output names or None)`.

    The third item is the set of outputs to send as binary (`None`: all outputs,
    from `binary_data_output`), or an empty set for JSON-only responses.

    `max_elements` bounds the values of one input tensor and, with some room for the
    request's own fields, the JSON values of the header (checked before parsing).
    Every failure is a `ProtocolError` (HTTP 4xx).
    """
    if header_length is not None:
        try:
            hl = int(header_length)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} must be an int, got {header_length!r}.") \
                from None
        if not 0 < hl <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH}={hl} does not fit the body of {len(body)} "
                                f"bytes.")
    else:
        hl = len(body)
    text = body if hl == len(body) and isinstance(body, bytes) else bytes(body[:hl])
    check_json_bounds(text, max_values=None if max_elements is None else max_elements + 4096)
    try:
        req = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, digits
        raise ProtocolError(f"Malformed JSON in the inference request header: "
                            f"{str(e)[:200]}") from None
    if not isinstance(req, dict):
        raise ProtocolError(f"The inference request must be a JSON object, got "
                            f"{type(req).__name__}.")
    raw_inputs = req.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("The inference request needs a non-empty 'inputs' list.")
    binary = memoryview(body)[hl:]
    offset, arrays = 0, {}
    for i, t in enumerate(raw_inputs):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise ProtocolError(f"inputs[{i}] must be an object with a string 'name'.")
        name = t["name"]
        if name in arrays:
            raise ProtocolError(f"Input {name!r} is given twice.")
        where = f"Input {name!r}"
        datatype = t.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:  # a list: unhashable
            raise ProtocolError(f"{where}: unsupported datatype {repr(datatype)[:100]}; supported: "
                                f"{sorted(DATATYPES)}.")
        shape, count = _shape(t.get("shape"), where, max_elements)
        dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
        params = t.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(f"{where}: 'parameters' must be an object.")
        size = params.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ProtocolError(f"{where}: binary_data_size must be a non-negative int, "
                                    f"got {size!r}.")
            if "data" in t:
                raise ProtocolError(f"{where} has both 'data' and binary_data_size.")
            if size != count * dtype.itemsize:
                raise ProtocolError(f"{where}: binary_data_size={size} does not match shape "
                                    f"{shape} of {datatype} ({count * dtype.itemsize} bytes).")
            if offset + size > len(binary):
                raise ProtocolError(f"{where}: binary_data_size={size} runs past the end of "
                                    f"the body ({len(binary) - offset} binary bytes left).")
            arr = np.frombuffer(binary[offset:offset + size], dtype).astype(dtype.newbyteorder("="))
            offset += size
        else:
            if "data" not in t:
                raise ProtocolError(f"{where} has neither 'data' nor binary_data_size.")
            try:
                arr = np.asarray(t["data"], dtype=dtype.newbyteorder("="))
            except (TypeError, ValueError, OverflowError, RecursionError) as e:
                raise ProtocolError(f"{where}: 'data' is not a (nested) list of {datatype} "
                                    f"values: {str(e)[:200]}") from None
            if arr.size != count:
                raise ProtocolError(f"{where}: 'data' holds {arr.size} values, shape {shape} "
                                    f"needs {count}.")
        arrays[name] = arr.reshape(shape)
    if offset != len(binary):
        raise ProtocolError(f"The body has {len(binary)} bytes of binary tensor data but the "
                            f"inputs' binary_data_size add up to {offset}.")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError("'parameters' must be an object.")
    outputs = req.get("outputs")
    if outputs is None:
        binary_outputs = None if params.get("binary_data_output") else set()
        requested = None
    else:
        if not isinstance(outputs, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str)
                and isinstance(o.get("parameters") or {}, dict) for o in outputs):
            raise ProtocolError("'outputs' must be a list of objects with a string 'name' and "
                                "an optional object 'parameters'.")
        requested = [o["name"] for o in outputs]
        default = bool(params.get("binary_data_output", False))
        binary_outputs = {o["name"] for o in outputs
                          if (o.get("parameters") or {}).get("binary_data", default)}
    return req, arrays, (requested, binary_outputs)


def encode_infer_response(model_name, request_id, outputs, requested, binary_outputs):
    """Returns `(body bytes, headers)` for `outputs` `{name: array}`."""
    names = list(outputs) if requested is None else requested
    header = {"model_name": model_name, "model_version": "1", "outputs": []}
    if request_id is not None:
        header["id"] = request_id
    blobs = []
    for name in names:
        arr = np.ascontiguousarray(outputs[name])
        entry = {"name": name, "datatype": datatype_of(arr.dtype), "shape": list(arr.shape)}
        if binary_outputs is None or name in binary_outputs:
            data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        header["outputs"].append(entry)
    text = json.dumps(header).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    return text + b"".join(blobs), {"content-type": "application/octet-stream",
                                    HEADER_LENGTH: str(len(text))}


def parse_for_server(body, header_length=None, max_elements=None):
    """`parse_infer_request` returning only what the server needs, small to pickle
    (it may run in a worker process): `(request id, arrays, (requested, binary))`."""
    req, arrays, outputs = parse_infer_request(body, header_length, max_elements)
    return req.get("id"), arrays, outputs
