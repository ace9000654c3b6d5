"""Geohash arithmetic for the GEO commands, computed exactly as Redis 7.0 computes it.

A position is stored as the score of a sorted set member: longitude and latitude are each
scaled to 26 bits over Redis' ranges (longitude -180..180, latitude -85.05112878..85.05112878,
the Web Mercator limits, so poles cannot be stored) and interleaved, latitude on the even
bits, into a 52-bit integer, which a double holds exactly.

A search (``search_areas``) picks a geohash precision (a *step*: bits per coordinate) from
the radius, then takes the box holding the centre and its eight neighbours at that step; each
box is one contiguous score range of the sorted set, so a search costs nine range lookups
plus the members inside the boxes, whatever the size of the set.  The members found are then
filtered by their exact distance (haversine on a sphere of radius 6372797.560856 m).

Every step below (truncations to 32 and 64 bits, the order of floating-point operations,
the boxes dropped at the edges) follows Redis' geohash.c / geohash_helper.c, because the
replies show it: which members a search finds near a box edge, the order of an unsorted
reply, the last digits of a distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEP_MAX = 26  # bits per coordinate: 52 bits in all
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
EARTH_RADIUS = 6372797.560856  # metres
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_MASK64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA

CIRCLE, BOX = 1, 2

Hash = tuple[int, int]  # (bits, step); (0, 0) is "no box"
Area = tuple[float, float, float, float]  # longitude min, max, latitude min, max


def _spread(value: int) -> int:
    """The low 32 bits of ``value`` moved to the even bit positions of a 64-bit word."""
    value &= 0xFFFFFFFF
    value = (value | (value << 16)) & 0x0000FFFF0000FFFF
    value = (value | (value << 8)) & 0x00FF00FF00FF00FF
    value = (value | (value << 4)) & 0x0F0F0F0F0F0F0F0F
    value = (value | (value << 2)) & 0x3333333333333333
    return (value | (value << 1)) & _EVEN


def _squash(value: int) -> int:
    """The inverse of :func:`_spread`: the even bits of ``value`` packed into 32 bits."""
    value &= _EVEN
    value = (value | (value >> 1)) & 0x3333333333333333
    value = (value | (value >> 2)) & 0x0F0F0F0F0F0F0F0F
    value = (value | (value >> 4)) & 0x00FF00FF00FF00FF
    value = (value | (value >> 8)) & 0x0000FFFF0000FFFF
    return (value | (value >> 16)) & 0xFFFFFFFF


def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX),
           long_range: tuple[float, float] = (LONG_MIN, LONG_MAX)) -> int:
    """The interleaved hash bits of a (valid) position at ``step`` bits per coordinate."""
    lat_offset = (latitude - lat_range[0]) / (lat_range[1] - lat_range[0])
    long_offset = (longitude - long_range[0]) / (long_range[1] - long_range[0])
    lat_offset *= float(1 << step)
    long_offset *= float(1 << step)
    # C converts each offset to uint32_t (truncation) before interleaving.
    return _spread(int(lat_offset)) | (_spread(int(long_offset)) << 1) & _MASK64


def align52(bits: int, step: int) -> int:
    """A hash of ``step`` bits per coordinate as a 52-bit score prefix."""
    return (bits << (52 - step * 2)) & _MASK64


def score_of(longitude: float, latitude: float) -> int:
    """The sorted set score GEOADD stores for a position."""
    return align52(encode(longitude, latitude), STEP_MAX)


def score_bits(score: float) -> int:
    """``(uint64_t)score`` as x86-64 code compiled by gcc computes it (scores set by ZADD
    need not be geohashes: negative, huge, infinite)."""
    if score != score or score <= -9.223372036854775808e18:
        return 1 << 63  # cvttsd2si's "integer indefinite"
    if score < 9.223372036854775808e18:
        return int(score) & _MASK64
    shifted = score - 9.223372036854775808e18
    if shifted >= 9.223372036854775808e18:
        return 0  # indefinite, xored with the top bit
    return int(shifted) ^ (1 << 63)


def decode_area(bits: int, step: int) -> Area:
    """The box a hash names: longitude min, max, latitude min, max."""
    lat_index = _squash(bits)
    long_index = _squash(bits >> 1)
    cells = float(1 << step)
    lat_scale = LAT_MAX - LAT_MIN
    long_scale = LONG_MAX - LONG_MIN
    return (
        LONG_MIN + (long_index * 1.0 / cells) * long_scale,
        LONG_MIN + ((long_index + 1) * 1.0 / cells) * long_scale,
        LAT_MIN + (lat_index * 1.0 / cells) * lat_scale,
        LAT_MIN + ((lat_index + 1) * 1.0 / cells) * lat_scale,
    )


def decode_score(score: float) -> tuple[float, float]:
    """The (longitude, latitude) a score stands for: the centre of its box, clamped."""
    long_min, long_max, lat_min, lat_max = decode_area(score_bits(score), STEP_MAX)
    longitude = min(max((long_min + long_max) / 2, LONG_MIN), LONG_MAX)
    latitude = min(max((lat_min + lat_max) / 2, LAT_MIN), LAT_MAX)
    return longitude, latitude


_GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def standard_geohash(score: float) -> bytes:
    """The 11-character geohash string of a score (GEOHASH): re-encoded over the standard
    latitude range -90..90; the 11th character stands for bits a score does not have."""
    longitude, latitude = decode_score(score)
    bits = encode(longitude, latitude, STEP_MAX, (-90.0, 90.0), (-180.0, 180.0))
    chars = [_GEOALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
    return bytes(chars) + b"0"


# --- distances -------------------------------------------------------------------------


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(lat2 * _D_R - lat1 * _D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    lon1r = lon1 * _D_R
    lon2r = lon2 * _D_R
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = lat1 * _D_R
    lat2r = lat2 * _D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


@dataclass(slots=True)
class Shape:
    """A search area: a circle (``radius``) or a box (``width`` x ``height``) around a
    centre; sizes in the request's unit, ``conversion`` metres per unit."""

    kind: int
    longitude: float
    latitude: float
    conversion: float
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0

    def distance_if_inside(self, longitude: float, latitude: float) -> float | None:
        """Metres from the centre to a point, or None when the point is outside."""
        if self.kind == CIRCLE:
            meters = distance(self.longitude, self.latitude, longitude, latitude)
            return None if meters > self.radius * self.conversion else meters
        if lat_distance(latitude, self.latitude) > self.height * self.conversion / 2:
            return None
        if distance(longitude, latitude, self.longitude, latitude) > self.width * self.conversion / 2:
            return None
        return distance(self.longitude, self.latitude, longitude, latitude)

    def bounds(self) -> tuple[float, float, float, float]:
        """The area's bounding box: min longitude, min latitude, max longitude, max latitude."""
        circle = self.kind == CIRCLE
        height = self.conversion * (self.radius if circle else self.height / 2)
        width = self.conversion * (self.radius if circle else self.width / 2)
        lat_delta = (height / EARTH_RADIUS) / _D_R
        long_top = (width / EARTH_RADIUS / math.cos((self.latitude + lat_delta) * _D_R)) / _D_R
        long_bottom = (width / EARTH_RADIUS / math.cos((self.latitude - lat_delta) * _D_R)) / _D_R
        long_delta = long_bottom if self.latitude < 0 else long_top
        return (self.longitude - long_delta, self.latitude - lat_delta,
                self.longitude + long_delta, self.latitude + lat_delta)

    def radius_meters(self) -> float:
        if self.kind == CIRCLE:
            return self.radius * self.conversion
        half_w, half_h = self.width / 2, self.height / 2
        return math.sqrt(half_w * half_w + half_h * half_h) * self.conversion


def estimate_step(range_meters: float, latitude: float) -> int:
    """The precision whose boxes are about as large as the search radius."""
    if range_meters == 0:
        return STEP_MAX
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2  # so that the radius fits in most cases
    if latitude > 66 or latitude < -66:  # meridians converge: wider boxes near the poles
        step -= 1
        if latitude > 80 or latitude < -80:
            step -= 1
    return min(max(step, 1), STEP_MAX)


def _move_x(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _EVEN >> (64 - step * 2)
    if d > 0:
        x = (x + zz + 1) & _MASK64
    else:
        x = ((x | zz) - (zz + 1)) & _MASK64
    x &= _ODD >> (64 - step * 2)
    return x | y


def _move_y(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _ODD >> (64 - step * 2)
    if d > 0:
        y = (y + zz + 1) & _MASK64
    else:
        y = ((y | zz) - (zz + 1)) & _MASK64
    y &= _EVEN >> (64 - step * 2)
    return x | y


def _neighbours(bits: int, step: int) -> dict[str, int]:
    """The eight boxes around a box at the same step (x: longitude, y: latitude)."""
    moves = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0),
             "north_east": (1, 1), "north_west": (-1, 1), "south_east": (1, -1),
             "south_west": (-1, -1)}
    out = {}
    for name, (dx, dy) in moves.items():
        moved = bits
        if dx:
            moved = _move_x(moved, step, dx)
        if dy:
            moved = _move_y(moved, step, dy)
        out[name] = moved
    return out


_SEARCH_ORDER = ("north", "south", "east", "west", "north_east", "north_west", "south_east",
                 "south_west")


def search_areas(shape: Shape) -> list[Hash]:
    """The centre box and its eight neighbours that cover ``shape``, in the order Redis
    searches them; a neighbour that cannot hold a match is ``(0, 0)``."""
    min_lon, min_lat, max_lon, max_lat = shape.bounds()
    step = estimate_step(shape.radius_meters(), shape.latitude)
    bits = encode(shape.longitude, shape.latitude, step)
    around = _neighbours(bits, step)
    # Near a box edge the estimate can be one step too fine to reach the whole area.
    too_fine = (
        decode_area(around["north"], step)[3] < max_lat
        or decode_area(around["south"], step)[2] > min_lat
        or decode_area(around["east"], step)[1] < max_lon
        or decode_area(around["west"], step)[0] > min_lon
    )
    if step > 1 and too_fine:
        step -= 1
        bits = encode(shape.longitude, shape.latitude, step)
        around = _neighbours(bits, step)
    hashes: dict[str, Hash] = {name: (value, step) for name, value in around.items()}
    if step >= 2:
        long_lo, long_hi, lat_lo, lat_hi = decode_area(bits, step)
        dropped: set[str] = set()
        if lat_lo < min_lat:
            dropped |= {"south", "south_west", "south_east"}
        if lat_hi > max_lat:
            dropped |= {"north", "north_east", "north_west"}
        if long_lo < min_lon:
            dropped |= {"west", "south_west", "north_west"}
        if long_hi > max_lon:
            dropped |= {"east", "south_east", "north_east"}
        for name in dropped:
            hashes[name] = (0, 0)
    return [(bits, step)] + [hashes[name] for name in _SEARCH_ORDER]


def score_range(area: Hash) -> tuple[float, float]:
    """The scores ``[min, max)`` of the members inside a box."""
    bits, step = area
    return float(align52(bits, step)), float(align52(bits + 1, step))
