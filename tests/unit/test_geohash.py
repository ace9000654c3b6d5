"""Geohash arithmetic against values a real redis-server 7.0.15 gave for the same input."""

from __future__ import annotations

from shard import geohash
from shard.numbers import fixedpoint_d2string, format_human_double


def test_scores_of_known_places() -> None:
    assert geohash.score_of(13.361389, 38.115556) == 3479099956230698  # Palermo
    assert geohash.score_of(15.087269, 37.502669) == 3479447370796909  # Catania
    # The top edges overflow the 26 bits of a coordinate, as in Redis.
    assert geohash.score_of(180, 85.05112878) == 13510798882111488
    assert geohash.score_of(-180, -85.05112878) == 0
    assert geohash.score_of(0, 0) == 3377699720527872


def test_decoding_clamps_and_reads_any_score() -> None:
    lon, lat = geohash.decode_score(3479099956230698)
    assert format_human_double(lon) == b"13.36138933897018433"
    assert format_human_double(lat) == b"38.11555639549629859"
    # Scores ZADD put there: -1 is all bits set, 1e300 converts to 0 on x86-64.
    assert [format_human_double(v) for v in geohash.decode_score(-1.0)] == [
        b"180", b"85.0511287799999991"]
    assert [format_human_double(v) for v in geohash.decode_score(1e300)] == [
        b"-179.99999731779098511", b"-85.05112751263942528"]


def test_standard_geohash_strings() -> None:
    assert geohash.standard_geohash(3479099956230698) == b"sqc8b49rny0"
    assert geohash.standard_geohash(13510798882111488) == b"bp05b5048p0"
    assert geohash.standard_geohash(0) == b"00bh0hbj200"
    assert geohash.standard_geohash(3377699720527872) == b"s0000000000"


def test_distance_palermo_catania() -> None:
    palermo = geohash.decode_score(3479099956230698)
    catania = geohash.decode_score(3479447370796909)
    assert fixedpoint_d2string(geohash.distance(*palermo, *catania), 4) == b"166274.1516"


def test_search_areas_cover_the_centre_and_drop_useless_neighbours() -> None:
    shape = geohash.Shape(geohash.CIRCLE, 15.0, 37.0, 1000.0, radius=200.0)
    areas = geohash.search_areas(shape)
    assert len(areas) == 9
    bits, step = areas[0]
    low, high = geohash.score_range((bits, step))
    assert low <= geohash.score_of(15.0, 37.0) < high
    # A radius of 0 searches the centre's own cell at full precision.
    exact = geohash.search_areas(geohash.Shape(geohash.CIRCLE, 15.0, 37.0, 1.0))
    assert exact[0] == (geohash.encode(15.0, 37.0), geohash.STEP_MAX)
