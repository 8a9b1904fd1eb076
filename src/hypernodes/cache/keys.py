"""Deterministic, type-tagged hashing of input values: the ``inputs_hash`` part of a signature.

``value_token(obj)`` returns a short byte string that identifies ``obj`` by content, the same in
every process and on every run: ``1``, ``1.0``, ``True`` and ``"1"`` all differ; no ``id()`` and no
repr with an address ever enters it.  Small atoms are spelled out literally (no hashing cost); any
other value becomes ``b"h"`` plus a 128-bit xxh3 digest of its tagged encoding.

Supported: ``None``, bools, numbers, strings, bytes, tuples/lists/dicts/sets (and their
subclasses, tagged with the class), named tuples, enums, dataclasses, ``datetime``/``Decimal``/
``Fraction``/``UUID``/paths, functions and classes (by code or qualified name), numpy arrays and
scalars, pandas objects, pydantic models, any object with ``__cache_key__()``, types taught with
:func:`register_hasher`, and plain objects whose state is in ``__dict__``/``__slots__``.  Dicts
hash independently of insertion order (entries are sorted by the encoding of their keys, which
works for any mix of key types), like ``==`` on dicts; an ``OrderedDict`` keeps its order.
Anything else raises :class:`Unhashable`: a value is never guessed at, so it cannot cause a wrong
hit.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import sys
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, TypeVar

import xxhash

from ..exceptions import InvalidSettingError

_new_hasher = xxhash.xxh3_128
_digest_of = xxhash.xxh3_128_digest

#: atoms up to this many bytes are spelled out in tokens instead of hashed
_LITERAL_MAX = 48


class Unhashable(TypeError):
    """A value has no deterministic content hash; ``type_name`` says which type got in the way."""

    def __init__(self, type_name: str, reason: str = "") -> None:
        super().__init__(f"cannot hash a value of type {type_name} deterministically{reason}")
        self.type_name = type_name


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a class or function (stable across processes)."""
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', obj.__name__)}"


# ---------------------------------------------------------------------------------------------
# The hashing registry: users teach the cache types they do not own.

_T = TypeVar("_T")
_HASHERS: dict[type, Callable[[Any], Any]] = {}
_resolved: weakref.WeakKeyDictionary[type, Callable[[Any], Any] | None] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()


def register_hasher(cls: type[_T], fn: Callable[[_T], Any] | None = None) -> Any:
    """Teach the cache to hash values of ``cls`` (and its subclasses) with ``fn``.

    ``fn(value)`` returns something the cache can already hash (bytes, a string, a tuple of
    numbers, a numpy array, ...) that identifies ``value`` by content; raising makes the value
    unhashable (its node runs uncached with a warning).  A value's closest registered class in
    its MRO wins (then registered abstract base classes), like ``functools.singledispatch``; a
    registered hasher takes precedence over ``__cache_key__`` and the built-in library
    handlers.  Builtin atoms and containers (``int``, ``str``, ``list``, ``dict``, ...) cannot be
    overridden.  Usable as a decorator: ``@register_hasher(MyType)``.  Returns ``fn``.
    """
    if not isinstance(cls, type):
        raise InvalidSettingError(f"register_hasher takes a class, got {cls!r}")
    if cls is object or cls in _ATOMS or cls in _BY_TYPE or cls in FAST_TOKENS:
        raise InvalidSettingError(
            f"register_hasher({cls.__name__}, ...): the cache encodes {cls.__name__} itself "
            "(exactly, and the same in every process), so that cannot be overridden; register a "
            "hasher for a class of your own (a subclass or a wrapper of the value)"
        )
    if fn is None:
        return functools.partial(register_hasher, cls)
    if not callable(fn):
        raise InvalidSettingError(f"register_hasher needs a callable, got {fn!r}")
    with _registry_lock:
        _HASHERS[cls] = fn
        _resolved.clear()
    return fn


def hasher_for(kind: type) -> Callable[[Any], Any] | None:
    """The registered hasher that applies to ``kind`` (memoized per class), or ``None``."""
    if not _HASHERS:
        return None
    try:
        return _resolved[kind]
    except KeyError:
        pass
    except TypeError:  # a class that cannot be weakly referenced: resolve every time
        return _resolve(kind)
    found = _resolve(kind)
    with _registry_lock:
        _resolved[kind] = found
    return found


def _resolve(kind: type) -> Callable[[Any], Any] | None:
    hashers = dict(_HASHERS)
    for klass in kind.__mro__:
        if klass in hashers:
            return hashers[klass]
    for klass, fn in hashers.items():  # abstract base classes a type is registered with
        if issubclass(kind, klass):
            return fn
    return None


# ---------------------------------------------------------------------------------------------
# Tokens: what a signature concatenates.  Every token is self-delimiting.


def _int_token(v: int) -> bytes:
    text = b"i%d;" % v
    return text if len(text) <= _LITERAL_MAX else b"h" + _digest_of(text)


def _str_token(v: str) -> bytes:
    raw = v.encode("utf-8", "surrogatepass")
    if len(raw) <= _LITERAL_MAX:
        return b"s%d:" % len(raw) + raw
    return b"h" + _digest_of(b"s%d:" % len(raw) + raw)


def _bytes_token(v: bytes) -> bytes:
    if len(v) <= _LITERAL_MAX:
        return b"b%d:" % len(v) + v
    return b"h" + _digest_of(b"b%d:" % len(v) + v)


def _float_token(v: float) -> bytes:
    return b"f" + v.hex().encode() + b";"


_TRUE, _FALSE, _NONE = b"T", b"F", b"N"

#: how a function, method or class becomes a token: its code digest, which follows what it
#: reaches in the user's code; set by :mod:`hypernodes.cache.code` when it is imported (the
#: package imports it), so that keys need not import the module that imports them
CALLABLE_DIGEST: list[Callable[[Any], bytes]] = []


#: ``CLASS_DIGEST[0](cls)``: the code digest of a user-defined class (its methods and class
#: attributes), ``b""`` for a class of the standard library or an installed package; part of the
#: token of every instance, so that editing ``Model.predict`` changes the key of a ``Model`` input
CLASS_DIGEST: list[Callable[[type], bytes]] = [lambda cls: b""]


def register_callable_digest(
    digest: Callable[[Any], bytes], class_digest: Callable[[type], bytes] | None = None
) -> None:
    """Make ``digest`` the token of functions, methods and classes (see :data:`CALLABLE_DIGEST`),
    and ``class_digest`` the code part of instances' tokens (see :data:`CLASS_DIGEST`)."""
    CALLABLE_DIGEST[:] = [digest]
    if class_digest is not None:
        CLASS_DIGEST[:] = [class_digest]


FAST_TOKENS: dict[type, Callable[[Any], bytes]] = {
    int: _int_token,
    str: _str_token,
    float: _float_token,
    bytes: _bytes_token,
    bool: lambda v: _TRUE if v else _FALSE,
    type(None): lambda v: _NONE,
}


def value_token(obj: Any) -> bytes:
    """A short, self-delimiting byte string identifying ``obj`` by type and content.

    Raises :class:`Unhashable` for values without a deterministic encoding.
    """
    fast = FAST_TOKENS.get(type(obj))
    if fast is not None:
        return fast(obj)
    return b"h" + value_digest(obj)


def value_digest(obj: Any) -> bytes:
    """The 16-byte xxh3-128 digest of ``obj``'s tagged encoding."""
    hasher = _new_hasher()
    try:
        _Encoder(hasher.update).encode(obj)
    except Unhashable as exc:
        outer = type(obj).__name__
        if exc.type_name == outer or exc.type_name.startswith(outer + " "):
            raise
        raise Unhashable(f"{outer} holding a {exc.type_name}", f": {exc}") from exc
    except Exception as exc:  # a __cache_key__ or a library hasher that failed, deep nesting
        raise Unhashable(type(obj).__name__, f" ({type(exc).__name__}: {exc})") from exc
    return hasher.digest()


# ---------------------------------------------------------------------------------------------
# The encoder: writes a tagged, self-delimiting byte stream for a value into ``write``.


class _Encoder:
    __slots__ = ("write", "active")

    def __init__(self, write: Callable[[Any], None]) -> None:
        self.write = write
        self.active: set[int] = set()  # ids of the containers being encoded (cycle guard)

    def to_bytes(self, obj: Any) -> bytes:
        """The full encoding of ``obj`` as bytes (used to sort dict keys and set elements)."""
        chunks: list[Any] = []
        sub = _Encoder(chunks.append)
        sub.active = self.active
        sub.encode(obj)
        return b"".join(bytes(c) if not isinstance(c, bytes) else c for c in chunks)

    def encode(self, obj: Any) -> None:
        kind = type(obj)
        fast = _ATOMS.get(kind)
        if fast is not None:
            self.write(fast(obj))
            return
        handler = _BY_TYPE.get(kind)
        if handler is not None:
            self._guarded(handler, obj)
            return
        self._guarded(_generic, obj)

    def _guarded(self, handler: Callable[[_Encoder, Any], None], obj: Any) -> None:
        key = id(obj)
        if key in self.active:
            raise Unhashable(type(obj).__name__, " (it contains itself)")
        self.active.add(key)
        try:
            handler(self, obj)
        finally:
            self.active.discard(key)

    # helpers for handlers
    def tag(self, tag: bytes, obj: Any = None) -> None:
        """Write ``tag`` (and, when ``obj`` is given, its class: the qualified name, and for a
        user-defined class its code digest, see :data:`CLASS_DIGEST`)."""
        if obj is None:
            self.write(tag)
        else:
            kind = type(obj)
            name = qualified_name(kind).encode()
            self.write(tag + b"%d:" % len(name) + name + CLASS_DIGEST[0](kind))

    def sequence(self, items: Any, count: int) -> None:
        self.write(b"%d(" % count)
        for item in items:
            self.encode(item)
        self.write(b")")

    def mapping(self, items: Any, ordered: bool) -> None:
        pairs = [(self.to_bytes(k), v) for k, v in items]
        if not ordered:
            pairs.sort(key=lambda pair: pair[0])
        self.write(b"%d{" % len(pairs))
        for kbytes, value in pairs:
            self.write(kbytes)
            self.encode(value)
        self.write(b"}")

    def unordered(self, items: Any) -> None:
        encoded = sorted(self.to_bytes(item) for item in items)
        self.write(b"%d<" % len(encoded))
        for e in encoded:
            self.write(e)
        self.write(b">")


# Atoms inside containers use the literal form, never the hashed one: containers are hashed whole.
_ATOMS: dict[type, Callable[[Any], bytes]] = {
    int: lambda v: b"i%d;" % v,
    float: _float_token,
    bool: lambda v: _TRUE if v else _FALSE,
    type(None): lambda v: _NONE,
    complex: lambda v: b"c" + v.real.hex().encode() + b"," + v.imag.hex().encode() + b";",
}


def _enc_str(enc: _Encoder, v: str) -> None:
    raw = v.encode("utf-8", "surrogatepass")
    enc.write(b"s%d:" % len(raw))
    enc.write(raw)


def _enc_bytes(enc: _Encoder, v: bytes) -> None:
    enc.write(b"b%d:" % len(v))
    enc.write(v)


def _enc_bytearray(enc: _Encoder, v: bytearray) -> None:
    enc.write(b"y%d:" % len(v))
    enc.write(bytes(v))


_BY_TYPE: dict[type, Callable[[_Encoder, Any], None]] = {
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    tuple: lambda enc, v: (enc.write(b"t"), enc.sequence(v, len(v))),
    list: lambda enc, v: (enc.write(b"l"), enc.sequence(v, len(v))),
    dict: lambda enc, v: (enc.write(b"d"), enc.mapping(v.items(), ordered=False)),
    OrderedDict: lambda enc, v: (enc.write(b"o"), enc.mapping(v.items(), ordered=True)),
    set: lambda enc, v: (enc.write(b"S"), enc.unordered(v)),
    frozenset: lambda enc, v: (enc.write(b"Z"), enc.unordered(v)),
    range: lambda enc, v: enc.write(b"r%d,%d,%d;" % (v.start, v.stop, v.step)),
    slice: lambda enc, v: (enc.write(b"_"), enc.sequence((v.start, v.stop, v.step), 3)),
    type(Ellipsis): lambda enc, v: enc.write(b"E"),
    deque: lambda enc, v: (enc.write(b"Q"), enc.encode(v.maxlen), enc.sequence(v, len(v))),
}


def _generic(enc: _Encoder, obj: Any) -> None:
    """Everything without an exact-type handler, most specific rule first."""
    kind = type(obj)
    hasher = hasher_for(kind)
    if hasher is not None:
        enc.tag(b"U", obj)
        enc.encode(hasher(obj))
        return
    custom = getattr(kind, "__cache_key__", None)
    if custom is not None and not isinstance(obj, type):
        enc.tag(b"K", obj)
        enc.encode(obj.__cache_key__())
        return
    root = (kind.__module__ or "").partition(".")[0]
    special = _LIBRARIES.get(root)
    if special is not None and special(enc, obj):
        return
    if isinstance(obj, enum.Enum):
        enc.tag(b"e", obj)
        _enc_str(enc, obj.name)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _enc_dataclass(enc, obj)
        return
    if isinstance(obj, tuple) and hasattr(kind, "_fields"):  # named tuple
        enc.tag(b"n", obj)
        enc.sequence(obj, len(obj))
        _enc_extra_state(enc, obj)
        return
    for base, handler in _SUBCLASSABLE:
        if isinstance(obj, base):
            enc.tag(b"x", obj)
            handler(enc, base(obj) if base is not dict else obj)
            _enc_extra_state(enc, obj)  # attributes a subclass instance carries
            return
    if isinstance(obj, (FunctionType, MethodType, BuiltinFunctionType, type, functools.partial)):
        _enc_callable(enc, obj)
        return
    if isinstance(obj, type(sys)):
        raise Unhashable("module")
    _enc_object_state(enc, obj)


def _enc_dataclass(enc: _Encoder, obj: Any) -> None:
    """A dataclass instance by its fields, in declaration order."""
    enc.tag(b"D", obj)
    fields = dataclasses.fields(obj)
    enc.write(b"%d(" % len(fields))
    for field in fields:
        _enc_str(enc, field.name)
        enc.encode(getattr(obj, field.name))
    enc.write(b")")
    # attributes set after construction (outside the fields) change behaviour too
    attrs = getattr(obj, "__dict__", None)
    if attrs is not None and len(attrs) <= len(fields) and not hasattr(type(obj), "__slots__"):
        return  # the common case: no room for anything but fields
    state, _ = _instance_state(obj)
    names = {field.name for field in fields}
    extra = [(k, v) for k, v in state.items() if k not in names]
    if extra:
        enc.write(b"+")
        enc.mapping(extra, ordered=False)


def _enc_callable(enc: _Encoder, obj: Any) -> None:
    """A function, method, class or partial passed as a value: its code digest, and for a
    function the data it carries (see :func:`_enc_function_data`)."""
    enc.write(b"C")
    enc.write(CALLABLE_DIGEST[0](obj))
    func = obj.__func__ if isinstance(obj, MethodType) else obj
    if isinstance(func, FunctionType):
        _enc_function_data(enc, func)


def _enc_function_data(enc: _Encoder, func: FunctionType) -> None:
    """What a function value carries besides its code: closure cells and default arguments,
    all by value (a function passed as an input is data: two closures over different arrays
    must not share a key).  Anything without a deterministic hash makes the input unhashable."""
    cells = func.__closure__ or ()
    enc.write(b"%d(" % len(cells))
    for cell in cells:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            enc.write(b"-")
            continue
        if id(contents) in enc.active:  # a closure that refers to itself (recursion)
            enc.write(b"R")
            continue
        enc.encode(contents)
    enc.write(b")")
    enc.encode(func.__defaults__)
    enc.encode(func.__kwdefaults__)


def _enc_dict_subclass(enc: _Encoder, obj: dict[Any, Any]) -> None:
    enc.write(b"d")
    enc.mapping(obj.items(), ordered=False)
    factory = getattr(obj, "default_factory", _NO_FACTORY)  # defaultdict(int) vs (list)
    if factory is not _NO_FACTORY:
        enc.write(b"f")
        enc.encode(factory)


_NO_FACTORY = object()


_SUBCLASSABLE: tuple[tuple[type, Callable[[_Encoder, Any], None]], ...] = (
    (bool, lambda enc, v: enc.write(_TRUE if v else _FALSE)),
    (int, lambda enc, v: enc.write(b"i%d;" % v)),
    (float, lambda enc, v: enc.write(_float_token(v))),
    (str, _enc_str),
    (bytes, _enc_bytes),
    (tuple, _BY_TYPE[tuple]),
    (list, _BY_TYPE[list]),
    (dict, _enc_dict_subclass),
    (set, _BY_TYPE[set]),
    (frozenset, _BY_TYPE[frozenset]),
)


def _instance_state(obj: Any) -> tuple[dict[str, Any], bool]:
    """The state in ``obj``'s ``__dict__`` and ``__slots__``, and whether it has either."""
    state: dict[str, Any] = {}
    has_state = False
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        state.update(attrs)
        has_state = True
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            has_state = True
            try:
                state[slot] = getattr(obj, slot)
            except AttributeError:
                continue
    return state, has_state


def _enc_extra_state(enc: _Encoder, obj: Any) -> None:
    """The ``__dict__``/``__slots__`` state of an instance of a subclass of a builtin type."""
    state, _ = _instance_state(obj)
    enc.mapping(state.items(), ordered=False)


def _enc_object_state(enc: _Encoder, obj: Any) -> None:
    """A plain object: its class plus the state in ``__dict__`` and ``__slots__``."""
    state, has_state = _instance_state(obj)
    if not has_state:
        raise Unhashable(
            type(obj).__name__,
            " (define __cache_key__() on it or register_hasher() for it to make it cacheable)",
        )
    enc.tag(b"O", obj)
    enc.mapping(state.items(), ordered=False)


# ---------------------------------------------------------------------------------------------
# Optional libraries: used only when a value's type comes from them (so they are imported).


def _numpy(enc: _Encoder, obj: Any) -> bool:
    np = sys.modules["numpy"]
    if isinstance(obj, np.ndarray):
        enc.tag(b"A", obj)
        enc.write(b"%s;%s;" % (obj.dtype.str.encode(), repr(obj.shape).encode()))
        if obj.dtype.hasobject:
            enc.encode(obj.tolist())
        elif obj.dtype.fields is not None or obj.dtype.kind in "biufcmMSUV":
            enc.write(memoryview(np.ascontiguousarray(obj)).cast("B"))
        else:  # pragma: no cover - exotic dtypes
            raise Unhashable(f"numpy array of dtype {obj.dtype}")
        if type(obj) is not np.ndarray:  # a subclass: its attributes (a mask, a unit) count
            _enc_extra_state(enc, obj)
        return True
    if isinstance(obj, np.generic):
        enc.tag(b"g", obj)
        if obj.dtype.hasobject:
            enc.encode(obj.item())
        else:
            enc.write(obj.dtype.str.encode() + b";" + obj.tobytes())
        return True
    if isinstance(obj, np.dtype):
        enc.write(b"q")
        _enc_str(enc, obj.str if obj.fields is None else repr(obj.descr))
        return True
    return False


def _pandas(enc: _Encoder, obj: Any) -> bool:
    pd = sys.modules["pandas"]
    if obj is pd.NA or obj is pd.NaT:  # missing markers differ from None and NaN
        enc.write(b"PNA" if obj is pd.NA else b"PNaT")
        return True
    try:
        if isinstance(obj, pd.DataFrame):
            enc.tag(b"P", obj)
            _pandas_index(enc, pd, obj.columns, labels=True)
            _pandas_index(enc, pd, obj.index)
            enc.write(b"%d[" % obj.shape[1])
            for _, column in obj.items():  # by position: duplicate labels are fine
                enc.encode(_pandas_dtype(pd, column.dtype))
                _pandas_values(enc, pd, column.array)
            enc.write(b"]")
            _pandas_meta(enc, obj)
            return True
        if isinstance(obj, pd.Series):
            enc.tag(b"P", obj)
            enc.encode(_pandas_dtype(pd, obj.dtype))
            enc.encode(obj.name)
            _pandas_index(enc, pd, obj.index)
            _pandas_values(enc, pd, obj.array)
            _pandas_meta(enc, obj)
            return True
        if isinstance(obj, pd.Index):
            enc.tag(b"P", obj)
            _pandas_index(enc, pd, obj)
            return True
        if isinstance(obj, pd.api.extensions.ExtensionArray):
            enc.tag(b"P", obj)
            enc.encode(_pandas_dtype(pd, obj.dtype))
            _pandas_values(enc, pd, obj)
            return True
    except TypeError as exc:  # values pandas cannot convert
        raise Unhashable(type(obj).__name__, f" ({exc})") from exc
    return _pandas_scalar(enc, pd, obj)


def _pandas_scalar(enc: _Encoder, pd: Any, obj: Any) -> bool:
    if isinstance(obj, pd.Timestamp | pd.Timedelta):
        enc.tag(b"P", obj)
        _enc_str(enc, obj.isoformat())
        if isinstance(obj, pd.Timestamp):
            enc.write(b"z%d" % obj.fold)
            _enc_tz(enc, obj.tzinfo)
        return True
    if isinstance(obj, pd.Period):
        enc.tag(b"P", obj)
        _enc_str(enc, f"{obj}/{obj.freqstr}")
        return True
    if isinstance(obj, pd.Interval):
        enc.tag(b"P", obj)
        enc.encode((obj.left, obj.right, obj.closed))
        return True
    if isinstance(obj, pd.api.extensions.ExtensionDtype):
        enc.tag(b"P", obj)
        enc.encode(_pandas_dtype(pd, obj))
        return True
    return False


def _pandas_meta(enc: _Encoder, obj: Any) -> None:
    """What a frame or series carries besides its data: ``attrs`` and its flags."""
    enc.encode(obj.attrs)
    enc.encode(obj.flags.allows_duplicate_labels)


def _pandas_values(enc: _Encoder, pd: Any, values: Any) -> None:
    """A column's values exactly: numpy-backed ones by their bytes (signed zeros and NaN kinds
    differ), object ones element by element (by type and value: ``None``, ``NaN`` and ``pd.NA``
    differ, so do ``True`` and ``"True"``), masked ones by data and mask, others as objects."""
    np = sys.modules["numpy"]
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        enc.encode(values.to_numpy())
    elif isinstance(values, pd.Categorical):
        enc.encode(values.codes)
    elif isinstance(values, pd.arrays.DatetimeArray | pd.arrays.TimedeltaArray):
        enc.encode(np.asarray(values.asi8))
    elif isinstance(
        values, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray
    ):
        numpy_dtype = values.dtype.numpy_dtype
        enc.encode(values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0)))
        enc.encode(np.asarray(values.isna()))
    else:  # strings, Arrow-backed, intervals, periods, sparse: element by element
        enc.encode(np.asarray(values, dtype=object).tolist())


def _pandas_dtype(pd: Any, dtype: Any) -> Any:
    """A dtype by content: a categorical one by its categories, in order, and ``ordered``."""
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        return ("category", bool(dtype.ordered), categories if categories is not None else None)
    return str(dtype)


def _pandas_index(enc: _Encoder, pd: Any, index: Any, labels: bool = False) -> None:
    """An index's class, dtype, level names and values (exactly, like a column's; ``labels``:
    as a list of labels, for column labels)."""
    enc.tag(b"I", index)
    enc.encode(_pandas_dtype(pd, index.dtype))
    enc.encode(list(index.names))
    if isinstance(index, pd.RangeIndex):
        enc.write(b"r%d,%d,%d;" % (index.start, index.stop, index.step))
    elif labels:
        enc.encode(list(index))
    elif isinstance(index, pd.MultiIndex):
        enc.encode([_pandas_dtype(pd, t) for t in index.dtypes])
        for level in range(index.nlevels):
            _pandas_values(enc, pd, index.get_level_values(level).array)
    else:
        _pandas_values(enc, pd, index.array)


def _pydantic(enc: _Encoder, obj: Any) -> bool:
    pydantic = sys.modules["pydantic"]
    if isinstance(obj, pydantic.BaseModel):
        enc.tag(b"M", obj)
        enc.encode(obj.model_dump(mode="python"))
        return True
    return False


def _stdlib_by_str(enc: _Encoder, obj: Any) -> bool:
    """datetime/decimal/fractions/uuid/pathlib values: their ``str`` is exact and address-free;
    a date-time also by its ``fold`` and its time zone's identity (see :func:`_enc_tz`)."""
    name = type(obj).__module__
    if isinstance(obj, datetime.tzinfo):
        enc.tag(b"z", obj)
        _enc_tz(enc, obj)
        return True
    if name == "datetime" and hasattr(obj, "isoformat"):
        text = obj.isoformat()
    elif name in ("decimal", "fractions", "uuid", "pathlib", "ipaddress") and not isinstance(
        obj, type
    ):
        text = str(obj)
    else:
        return False
    enc.tag(b"v", obj)
    _enc_str(enc, text)
    tz = getattr(obj, "tzinfo", None)
    if tz is not None or getattr(obj, "fold", False):
        enc.write(b"z%d" % obj.fold)
        _enc_tz(enc, tz)
    return True


def _enc_tz(enc: _Encoder, tz: Any) -> None:
    """A time zone by identity: a named zone (``ZoneInfo("Europe/Paris")``, pytz, dateutil) by
    its name, a fixed offset by its offset and name: the two format alike but differ in
    daylight saving time, so they must not share a key."""
    if tz is None:
        enc.write(_NONE)
        return
    if isinstance(tz, datetime.timezone):
        enc.write(b"zf")
        _enc_str(enc, repr(tz))
        return
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(key, str):
        enc.tag(b"zn", tz)
        _enc_str(enc, key)
        return
    if type(tz).__module__.partition(".")[0] == "zoneinfo":  # a ZoneInfo read from a file
        raise Unhashable(type(tz).__name__, " (a time zone without a name)")
    state, _ = _instance_state(tz)
    enc.tag(b"zo", tz)
    enc.mapping(state.items(), ordered=False)


_LIBRARIES: dict[str, Callable[[_Encoder, Any], bool]] = {
    "numpy": _numpy,
    "pandas": _pandas,
    "pydantic": _pydantic,
    "datetime": _stdlib_by_str,
    "decimal": _stdlib_by_str,
    "_decimal": _stdlib_by_str,
    "_pydecimal": _stdlib_by_str,
    "fractions": _stdlib_by_str,
    "uuid": _stdlib_by_str,
    "pathlib": _stdlib_by_str,
    "ipaddress": _stdlib_by_str,
    "zoneinfo": _stdlib_by_str,
}
