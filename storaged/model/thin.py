"""A pool's <thin_pool>: the size of its LVM thin pool and when to extend it."""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from ..errors import InvalidArgument
from .sizes import parse_size

DEFAULT_THRESHOLD = 80  # % of the thin pool in use at which it is extended
DEFAULT_PERCENT = 20  # % of its size it grows by each time


@dataclass(frozen=True)
class ThinPoolDef:
    """<thin_pool size='50%' autoextend_threshold='80' autoextend_percent='20'/>:
    size in bytes, or percent_vg of the volume group's size."""

    size: int = 0
    percent_vg: int = 0
    threshold: int = DEFAULT_THRESHOLD
    percent: int = DEFAULT_PERCENT


def check_autoextend(threshold: int, percent: int, where: str = "thin_pool") -> None:
    if not 50 <= threshold <= 100:
        raise InvalidArgument(f"{where} autoextend_threshold: {threshold} is not a percentage "
                              f"from 50 to 100 (100 turns autoextend off)")
    if not 1 <= percent <= 100:
        raise InvalidArgument(f"{where} autoextend_percent: {percent} is not a percentage from 1 to 100")


def _int(el: etree._Element, attr: str, default: int) -> int:
    text = el.get(attr)
    if text is None:
        return default
    if not re.fullmatch(r"\d{1,3}", text.strip()):
        raise InvalidArgument(f"thin_pool {attr}: {text!r} is not a whole percentage")
    return int(text)


def parse_thin_pool(el: etree._Element | None) -> ThinPoolDef | None:
    if el is None:
        return None
    text = (el.get("size") or "").strip()
    if not text:
        raise InvalidArgument("thin_pool: the size attribute is missing (bytes, 10G, or 50%)")
    size = percent_vg = 0
    m = re.fullmatch(r"(\d{1,3})\s*%", text)
    if m:
        percent_vg = int(m.group(1))
        if not 1 <= percent_vg <= 100:
            raise InvalidArgument(f"thin_pool size: {text!r} is not from 1% to 100% of the volume group")
    else:
        size = parse_size(text, None, field="thin_pool size")
    tp = ThinPoolDef(size=size, percent_vg=percent_vg,
                     threshold=_int(el, "autoextend_threshold", DEFAULT_THRESHOLD),
                     percent=_int(el, "autoextend_percent", DEFAULT_PERCENT))
    check_autoextend(tp.threshold, tp.percent)
    return tp


def thin_pool_element(tp: ThinPoolDef) -> etree._Element:
    return etree.Element("thin_pool", size=f"{tp.percent_vg}%" if tp.percent_vg else str(tp.size),
                         autoextend_threshold=str(tp.threshold), autoextend_percent=str(tp.percent))
