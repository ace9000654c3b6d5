"""GEO commands: positions kept in sorted sets, as ``geo.c`` in Redis 7.0 answers them.

A position is a member whose score is its 52-bit geohash (:mod:`shard.geohash`), so a geo
index *is* a sorted set: TYPE says ``zset`` and every Z command works on it.  GEOADD turns
coordinates into scores and runs ZADD, as Redis does.  Searches look up nine score ranges
(the geohash box of the centre and its neighbours) and keep the members within the exact
distance, then sort them only when asked (ASC/DESC, or COUNT without ANY).  No I/O.

Redis reads every argument in a fixed order and answers the first problem it meets; the
parsers below keep that order, since the error a client gets depends on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shard import errors, geohash
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.geohash import BOX, CIRCLE, Shape
from shard.notify import GENERIC, KEY_MISS, ZSET
from shard.numbers import fixedpoint_d2string, format_human_double, string2d
from shard.reply import NULL_ARRAY, Raw
from shard.table import command
from shard.zset_value import ZSet, stored_result
from shard.zsets import zadd

UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}  # metres per unit

# Which variant of the search runs (georadiusGeneric's flags).
BY_COORDS, BY_MEMBER, NO_STORE, SEARCH, SEARCH_STORE = 1, 2, 4, 8, 16
SORT_NONE, SORT_ASC, SORT_DESC = 0, 1, 2

Point = tuple[float, float, bytes, float, float]  # distance (m), score, member, lon, lat


def _geo_set(ctx: Ctx, key: bytes) -> ZSet | None:
    """``lookupKeyRead`` + type check: a miss is a keymiss event even for the write forms
    (GEORADIUS, GEOSEARCHSTORE), as Redis' read lookup raises it whatever the command."""
    value = ctx.ks.get(ctx.db, key)
    if value is None:
        if ctx.events:
            ctx.notify(KEY_MISS, b"keymiss", key)
        return None
    if type(value) is not ZSet:
        raise RedisError(errors.WRONGTYPE)
    return value


def _double(raw: bytes, error: str = errors.NOT_FLOAT) -> float:
    value = string2d(raw)
    if value is None:
        raise RedisError(error)
    return value


def parse_lonlat(longitude: bytes, latitude: bytes) -> tuple[float, float]:
    lon, lat = _double(longitude), _double(latitude)
    if not (geohash.LONG_MIN <= lon <= geohash.LONG_MAX
            and geohash.LAT_MIN <= lat <= geohash.LAT_MAX):
        raise RedisError(errors.GEO_INVALID_PAIR.format(longitude=lon, latitude=lat))
    return lon, lat


def parse_unit(raw: bytes) -> float:
    conversion = UNITS.get(raw.lower())
    if conversion is None:
        raise RedisError(errors.GEO_UNIT)
    return conversion


def _human(value: float, resp3: bool) -> Any:
    """A coordinate as Redis replies it (``addReplyHumanLongDouble``): a RESP3 double whose
    text is the long double's, which a Python float would print differently."""
    text = format_human_double(value)
    return Raw(b",%s\r\n" % text) if resp3 else text


def _member_position(zs: ZSet, member: bytes) -> tuple[float, float]:
    score = zs.scores.get(member)
    if score is None:
        raise RedisError(errors.GEO_NO_MEMBER)
    return geohash.decode_score(score)


# --- GEOADD / GEOPOS / GEODIST / GEOHASH ----------------------------------------------------

_GEOADD_OPTIONS = (b"NX", b"XX", b"CH")


@command(
    "GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]",
    -5, "write denyoom", (1, 1, 1), acl="@write @geo @slow", group="geo", since="3.2.0",
    summary="Add one or more geospatial items in the geospatial index represented using a "
            "sorted set",
)
def geoadd(ctx: Ctx, args: list[bytes]) -> Any:
    first = 1
    while first < len(args) and args[first].upper() in _GEOADD_OPTIONS:
        first += 1
    options = [option.upper() for option in args[1:first]]
    if (len(args) - first) % 3 or (b"NX" in options and b"XX" in options):
        raise RedisError(errors.SYNTAX)
    zadd_args = [args[0], *options]
    for i in range(first, len(args), 3):
        lon, lat = parse_lonlat(args[i], args[i + 1])
        zadd_args += [b"%d" % geohash.score_of(lon, lat), args[i + 2]]
    return zadd(ctx, zadd_args)  # fires ZADD's own "zadd" event, as in Redis


@command(
    "GEOPOS key [member [member ...]]", -2, "readonly", (1, 1, 1), acl="@read @geo @slow",
    group="geo", since="3.2.0",
    summary="Returns longitude and latitude of members of a geospatial index",
)
def geopos(ctx: Ctx, args: list[bytes]) -> Any:
    zs = _geo_set(ctx, args[0])
    out: list[Any] = []
    for member in args[1:]:
        score = None if zs is None else zs.scores.get(member)
        if score is None:
            out.append(NULL_ARRAY)
            continue
        lon, lat = geohash.decode_score(score)
        out.append([_human(lon, ctx.resp3), _human(lat, ctx.resp3)])
    return out


@command(
    "GEODIST key member1 member2 [M | KM | FT | MI]", -4, "readonly", (1, 1, 1),
    acl="@read @geo @slow", group="geo", since="3.2.0",
    summary="Returns the distance between two members of a geospatial index",
)
def geodist(ctx: Ctx, args: list[bytes]) -> Any:
    to_meters = 1.0
    if len(args) == 4:
        to_meters = parse_unit(args[3])
    elif len(args) > 4:
        raise RedisError(errors.SYNTAX)
    zs = _geo_set(ctx, args[0])
    if zs is None:
        return None
    first, second = zs.scores.get(args[1]), zs.scores.get(args[2])
    if first is None or second is None:
        return None
    lon1, lat1 = geohash.decode_score(first)
    lon2, lat2 = geohash.decode_score(second)
    return fixedpoint_d2string(geohash.distance(lon1, lat1, lon2, lat2) / to_meters, 4)


@command(
    "GEOHASH key [member [member ...]]", -2, "readonly", (1, 1, 1), acl="@read @geo @slow",
    group="geo", since="3.2.0",
    summary="Returns members of a geospatial index as standard geohash strings",
)
def geohash_command(ctx: Ctx, args: list[bytes]) -> Any:
    zs = _geo_set(ctx, args[0])
    out: list[bytes | None] = []
    for member in args[1:]:
        score = None if zs is None else zs.scores.get(member)
        out.append(None if score is None else geohash.standard_geohash(score))
    return out


# --- searches ---------------------------------------------------------------------------


@dataclass(slots=True)
class SearchRequest:
    """What a GEORADIUS / GEOSEARCH command line asks for."""

    shape: Shape = field(default_factory=lambda: Shape(CIRCLE, 0.0, 0.0, 1.0))
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False
    sort: int = SORT_NONE
    any: bool = False
    count: int = 0
    store: bytes | None = None
    storedist: bool = False
    from_member: bool = False
    from_lonlat: bool = False
    by_radius: bool = False
    by_box: bool = False


def _parse_radius(req: SearchRequest, radius: bytes, unit: bytes) -> None:
    value = _double(radius, errors.GEO_NEED_RADIUS)
    if value < 0:
        raise RedisError(errors.GEO_RADIUS_NEGATIVE)
    req.shape.radius = value
    req.shape.conversion = parse_unit(unit)


def _parse_box(req: SearchRequest, width: bytes, height: bytes, unit: bytes) -> None:
    w = _double(width, errors.GEO_NEED_WIDTH)
    h = _double(height, errors.GEO_NEED_HEIGHT)
    if h < 0 or w < 0:
        raise RedisError(errors.GEO_BOX_NEGATIVE)
    req.shape.width, req.shape.height = w, h
    req.shape.conversion = parse_unit(unit)


def _set_center(req: SearchRequest, position: tuple[float, float]) -> None:
    req.shape.longitude, req.shape.latitude = position


def _parse_option(req: SearchRequest, argv: list[bytes], i: int, flags: int,
                  zs: ZSet | None) -> int:
    """Read the option at ``argv[i]``; returns how many arguments it took."""
    arg = argv[i].lower()
    left = len(argv) - i - 1  # arguments after this one
    if arg in (b"withdist", b"withhash", b"withcoord"):
        setattr(req, arg.decode(), True)
    elif arg == b"any":
        req.any = True
    elif arg in (b"asc", b"desc"):
        req.sort = SORT_ASC if arg == b"asc" else SORT_DESC
    elif arg == b"count" and left >= 1:
        req.count = int_arg(argv[i + 1])
        if req.count <= 0:
            raise RedisError(errors.GEO_COUNT)
        return 2
    elif arg in (b"store", b"storedist") and left >= 1 and not flags & (NO_STORE | SEARCH):
        req.store, req.storedist = argv[i + 1], arg == b"storedist"
        return 2
    elif arg == b"storedist" and flags & SEARCH_STORE:
        req.storedist = True
    elif flags & SEARCH:
        return _parse_search_option(req, argv, i, arg, left, zs)
    else:
        raise RedisError(errors.SYNTAX)
    return 1


def _parse_search_option(req: SearchRequest, argv: list[bytes], i: int, arg: bytes, left: int,
                         zs: ZSet | None) -> int:
    """GEOSEARCH's FROMMEMBER, FROMLONLAT, BYRADIUS and BYBOX; anything else is a syntax
    error.  FROMMEMBER of a missing key is accepted so that the reply can say so."""
    if arg == b"frommember" and left >= 1 and not req.from_lonlat:
        if zs is not None:
            _set_center(req, _member_position(zs, argv[i + 1]))
        req.from_member = True
        return 2
    if arg == b"fromlonlat" and left >= 2 and not req.from_member:
        _set_center(req, parse_lonlat(argv[i + 1], argv[i + 2]))
        req.from_lonlat = True
        return 3
    if arg == b"byradius" and left >= 2 and not req.by_box:
        _parse_radius(req, argv[i + 1], argv[i + 2])
        req.shape.kind = CIRCLE
        req.by_radius = True
        return 3
    if arg == b"bybox" and left >= 3 and not req.by_radius:
        _parse_box(req, argv[i + 1], argv[i + 2], argv[i + 3])
        req.shape.kind = BOX
        req.by_box = True
        return 4
    raise RedisError(errors.SYNTAX)


def _parse_request(ctx: Ctx, argv: list[bytes], flags: int, zs: ZSet | None) -> SearchRequest:
    """Everything after the source key, in Redis' order of checks (``argv[0]`` is the name)."""
    req = SearchRequest()
    if flags & BY_COORDS:
        base = 6
        _set_center(req, parse_lonlat(argv[2], argv[3]))
        _parse_radius(req, argv[4], argv[5])
    elif flags & BY_MEMBER:
        base = 5
        if zs is not None:  # without a key the arguments are still read, for the reply's sake
            _set_center(req, _member_position(zs, argv[2]))
            _parse_radius(req, argv[3], argv[4])
    else:
        base = 3 if flags & SEARCH_STORE else 2
        if flags & SEARCH_STORE:
            req.store = argv[1]
    i = base
    while i < len(argv):
        i += _parse_option(req, argv, i, flags, zs)
    if req.store is not None and (req.withdist or req.withhash or req.withcoord):
        what = "GEOSEARCHSTORE" if flags & SEARCH_STORE else "STORE option in GEORADIUS"
        raise RedisError(errors.GEO_STORE_WITH.format(what=what))
    # Redis names the command as the client typed it; the shard only knows its table name.
    if flags & SEARCH and not (req.from_member or req.from_lonlat):
        raise RedisError(errors.GEO_FROM.format(cmd=ctx.name))
    if flags & SEARCH and not (req.by_radius or req.by_box):
        raise RedisError(errors.GEO_BY.format(cmd=ctx.name))
    if req.any and not req.count:
        raise RedisError(errors.GEO_ANY)
    return req


def _points_in_box(zs: ZSet, area: geohash.Hash, shape: Shape, found: list[Point],
                   limit: int) -> None:
    """Append the members of one geohash box that lie inside ``shape``, lowest score first;
    with a ``limit`` (COUNT ... ANY) stop as soon as ``found`` holds that many."""
    low, high = geohash.score_range(area)
    start, stop = zs.first_at_least(low), zs.first_at_least(high)
    chunk = 64 if limit else stop - start  # ANY may stop early: do not copy a huge box
    decode, inside = geohash.decode_score, shape.distance_if_inside
    while start < stop:
        for score, member in zs.items_between(start, min(start + chunk, stop)):
            lon, lat = decode(score)
            meters = inside(lon, lat)
            if meters is not None:
                found.append((meters, score, member, lon, lat))
            if limit and len(found) >= limit:
                return
        start += chunk


def search(zs: ZSet, shape: Shape, limit: int) -> list[Point]:
    """The members inside ``shape``, in the order Redis finds them (box by box)."""
    areas = geohash.search_areas(shape)
    found: list[Point] = []
    last = 0
    for i, area in enumerate(areas):
        if area == (0, 0):
            continue
        # A huge radius can make neighbours coincide: skip a box equal to the last searched
        # (Redis compares with the last one only, and never with the centre box).
        if last and area == areas[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        _points_in_box(zs, area, shape, found, limit)
        last = i
    return found


def _hash_integer(score: float) -> int:
    """``(long long)score`` for WITHHASH."""
    if -9.223372036854775808e18 <= score < 9.223372036854775808e18:
        return int(score)
    return -(1 << 63)


def _reply_points(ctx: Ctx, req: SearchRequest, points: list[Point]) -> list[Any]:
    conversion = req.shape.conversion
    if not (req.withdist or req.withhash or req.withcoord):
        return [point[2] for point in points]
    out: list[Any] = []
    for meters, score, member, lon, lat in points:
        entry: list[Any] = [member]
        if req.withdist:
            entry.append(fixedpoint_d2string(meters / conversion, 4))
        if req.withhash:
            entry.append(_hash_integer(score))
        if req.withcoord:
            entry.append([_human(lon, ctx.resp3), _human(lat, ctx.resp3)])
        out.append(entry)
    return out


def _store_points(ctx: Ctx, req: SearchRequest, points: list[Point], flags: int) -> int:
    dest = req.store
    assert dest is not None
    if not points:
        if ctx.ks.delete(ctx.db, dest):
            ctx.notify(GENERIC, b"del", dest)
        return 0
    conversion = req.shape.conversion
    scores = {member: (meters / conversion if req.storedist else score)
              for meters, score, member, _, _ in points}
    ctx.ks.set(ctx.db, dest, stored_result(scores, ctx.config))
    ctx.notify(ZSET, b"geosearchstore" if flags & SEARCH else b"georadiusstore", dest)
    return len(points)


def georadius_generic(ctx: Ctx, args: list[bytes], src: int, flags: int) -> Any:
    """GEORADIUS, GEORADIUSBYMEMBER (and their _RO forms), GEOSEARCH and GEOSEARCHSTORE
    (``georadiusGeneric``); ``src`` is the source key's index in the full command line."""
    argv = [ctx.name.encode(), *args]
    zs = _geo_set(ctx, argv[src])
    req = _parse_request(ctx, argv, flags, zs)
    if zs is None:
        if req.store is not None:
            return _store_points(ctx, req, [], flags)
        return []
    sort = req.sort
    if req.count and sort == SORT_NONE and not req.any:
        sort = SORT_ASC  # the closest N need sorting
    points = search(zs, req.shape, req.count if req.any else 0)
    if sort != SORT_NONE:
        # Stable, like glibc's qsort (a merge sort) that Redis calls.
        points.sort(key=lambda point: point[0], reverse=sort == SORT_DESC)
    if req.count:
        del points[req.count:]
    if req.store is not None:
        return _store_points(ctx, req, points, flags)
    return _reply_points(ctx, req, points)


_RADIUS_SYNTAX = ("[WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC | DESC] "
                  "[STORE key | STOREDIST key]")
_SEARCH_SYNTAX = ("<FROMMEMBER member | FROMLONLAT longitude latitude> "
                  "<BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>> "
                  "[ASC | DESC] [COUNT count [ANY]]")


def radius_keys(options_from: int) -> Callable[[list[bytes]], list[int]]:
    """GEORADIUS[BYMEMBER]'s key positions: the source, then what the key specs find (the
    first STORE and the first STOREDIST destination after the fixed arguments, as COMMAND
    GETKEYS reports them), then the destination the command really writes (the last one:
    ``georadiusGetKeys``, which looks from argument 5 on), so routing holds that one too."""

    def positions(argv: list[bytes]) -> list[int]:
        words = [arg.lower() for arg in argv]
        found = [1]
        for keyword in (b"store", b"storedist"):
            for i in range(options_from, len(argv) - 1):
                if words[i] == keyword:
                    found.append(i + 1)
                    break
        written = -1
        i = 5
        while i < len(argv):
            if words[i] in (b"store", b"storedist") and i + 1 < len(argv):
                written = i + 1
                i += 1
            i += 1
        if written > 0 and written not in found:
            found.append(written)
        return found

    return positions


@command(
    "GEORADIUS key longitude latitude radius <M | KM | FT | MI> " + _RADIUS_SYNTAX,
    -6, "write denyoom", (1, 1, 1), acl="@write @geo @slow", group="geo", since="3.2.0",
    summary="Query a sorted set representing a geospatial index to fetch members matching a "
            "given maximum distance from a point",
    keys_fn=radius_keys(6),
)
def georadius(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 1, BY_COORDS)


@command(
    "GEORADIUSBYMEMBER key member radius <M | KM | FT | MI> " + _RADIUS_SYNTAX,
    -5, "write denyoom", (1, 1, 1), acl="@write @geo @slow", group="geo", since="3.2.0",
    summary="Query a sorted set representing a geospatial index to fetch members matching a "
            "given maximum distance from a member",
    keys_fn=radius_keys(5),
)
def georadiusbymember(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 1, BY_MEMBER)


@command(
    "GEORADIUS_RO key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] "
    "[WITHHASH] [COUNT count [ANY]] [ASC | DESC]",
    -6, "readonly", (1, 1, 1), acl="@read @geo @slow", group="geo", since="3.2.10",
    summary="A read-only variant for GEORADIUS",
)
def georadius_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 1, BY_COORDS | NO_STORE)


@command(
    "GEORADIUSBYMEMBER_RO key member radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] "
    "[WITHHASH] [COUNT count [ANY]] [ASC | DESC]",
    -5, "readonly", (1, 1, 1), acl="@read @geo @slow", group="geo", since="3.2.10",
    summary="A read-only variant for GEORADIUSBYMEMBER",
)
def georadiusbymember_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 1, BY_MEMBER | NO_STORE)


@command(
    "GEOSEARCH key " + _SEARCH_SYNTAX + " [WITHCOORD] [WITHDIST] [WITHHASH]",
    -7, "readonly", (1, 1, 1), acl="@read @geo @slow", group="geo", since="6.2.0",
    summary="Query a sorted set representing a geospatial index to fetch members inside an "
            "area of a box or a circle.",
)
def geosearch(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 1, SEARCH)


@command(
    "GEOSEARCHSTORE destination source " + _SEARCH_SYNTAX + " [STOREDIST]",
    -8, "write denyoom", (1, 2, 1), acl="@write @geo @slow", group="geo", since="6.2.0",
    summary="Query a sorted set representing a geospatial index to fetch members inside an "
            "area of a box or a circle, and store the result in another key.",
)
def geosearchstore(ctx: Ctx, args: list[bytes]) -> Any:
    return georadius_generic(ctx, args, 2, SEARCH | SEARCH_STORE)
