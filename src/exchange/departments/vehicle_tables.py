"""Vehicle registration in bulk: each adult's vehicles (plates, VINs with their check
character) derived as columns, the bulk twin of ``records.public_security``'s generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from exchange.departments import json_columns as jc
from exchange.departments import jsonbytes, prng_arrays
from exchange.departments.city import City
from exchange.departments.columns import (
    REF_ORD,
    draws,
    from_age,
)
from exchange.departments.ndjson import Table
from exchange.departments.people_columns import People
from exchange.departments.people_tables import row_span
from exchange.departments.prng import T_VEH
from exchange.departments.prng_arrays import I64, U64, feistel_forward, mix
from exchange.departments.records import public_security
from exchange.departments.vehicles import PLATE_CHARS

__all__ = ["vehicle_registration"]


# Each character's VIN value as a float: the check sum (at most 33 x 10 x 17) is exact in
# a float64 and one BLAS product, where NumPy's integer sum along each row of 17 cost
# three times the product (~100 ns a VIN).
_VIN_LUT = np.zeros(128, dtype=np.float64)
for _c, _v in public_security.VIN_VALUES.items():
    _VIN_LUT[ord(_c)] = _v
_VIN_WEIGHTS = np.array(public_security.VIN_WEIGHTS, dtype=np.float64)
_VIN_BYTES = np.frombuffer(public_security.VIN_CHARS.encode(), dtype=np.uint8)
_WMI = ("LVG", "LHG", "LGX", "LNB", "LGB", "L1N", "LFV", "LB3")
_WMI_BYTES = np.array([list(w.encode()) for w in _WMI], dtype=np.uint8)
_PLATE_BYTES = np.frombuffer(PLATE_CHARS.encode(), dtype=np.uint8)


def _vins(brand: I64, body_draws: U64) -> npt.NDArray[np.uint8]:
    """``vin_with_check(wmi + 14 drawn characters)`` of each vehicle."""
    n = len(brand)
    chars = np.empty((n, 17), dtype=np.uint8)
    chars[:, :3] = _WMI_BYTES[brand]
    chars[:, 3:] = _VIN_BYTES[(body_draws % np.uint64(len(_VIN_BYTES))).astype(np.int64).T]
    check = (_VIN_LUT[chars] @ _VIN_WEIGHTS).astype(np.int64) % 11
    chars[:, 8] = np.where(check == 10, ord("X"), ord("0") + check)
    return chars


def _plates(city: City, slot: I64) -> npt.NDArray[np.uint8]:
    """``City.plate_of`` of each slot (``index * 2 + k``), without its 粤A."""
    v = feistel_forward(city._plates, slot.astype(np.uint64)).astype(np.int64)
    chars = np.empty((len(slot), 5), dtype=np.uint8)
    base = len(PLATE_CHARS)
    for i in range(4, -1, -1):
        v, d = np.divmod(v, base)
        chars[:, i] = _PLATE_BYTES[d]
    return chars


def vehicle_registration(city: City, start: int, stop: int) -> Table:
    index = row_span(start, stop, city.population)
    z = mix(len(index), city.seed, T_VEH, index.astype(np.uint64)) % np.uint64(100)
    # The draw alone rules out two people in three: only the others are derived as persons.
    drew = z >= 66
    p = People(city, index[drew])
    count = np.where(z[drew] < 92, 1, 2)
    count = np.where(p.alive & (p.age >= 18), count, 0)
    # One record per vehicle, a person's vehicles in order.
    owners = np.repeat(np.arange(p.n), count)
    k = np.arange(len(owners)) - np.repeat(np.cumsum(count) - count, count)
    o = p.take(owners)
    r = draws(city, "vehicle", 18, o.index, k)
    brand = (r[0] % np.uint64(len(public_security.BRANDS))).astype(np.int64)
    first = from_age(o.day, 18, dt.date(1995, 1, 1).toordinal())
    registered = prng_arrays.between(r[16], first, np.full(o.n, REF_ORD))
    n = o.n
    return Table(
        o.index.tolist(),
        {
            "plate_number": jsonbytes.text(n, "粤A".encode(), _plates(city, o.index * 2 + k)),
            "plate_type": jsonbytes.repeat("小型汽车", n),
            "vehicle_type": _VEHICLE_TYPE.take(prng_arrays.chance(r[15], 0.85).astype(np.int64)),
            "brand": _BRANDS.take(brand),
            "vin": jsonbytes.ascii_text(_vins(brand, r[1:15])),
            "owner_name": jc.name(o),
            "owner_id_number": jc.id_number(o),
            "registered_on": jsonbytes.iso_dates(registered),
            "status": _VEHICLE_STATUS.take(prng_arrays.chance(r[17], 0.9).astype(np.int64)),
        },
    )


_VEHICLE_TYPE = jsonbytes.Vocab(["小型越野客车", "小型普通客车"])
_VEHICLE_STATUS = jsonbytes.Vocab(["抵押", "正常"])
_BRANDS = jsonbytes.Vocab(list(public_security.BRANDS))
