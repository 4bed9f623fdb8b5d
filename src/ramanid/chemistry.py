"""RRUFF chemistry markup -> the set of chemical elements a mineral contains.

RRUFF writes formulas with a light markup: ``_x_`` for subscripts, ``^2+^`` for
charges, ``&#183;`` (HTML entity) for the hydrate dot, ``[box]`` or ``□`` for a
vacancy, ``<i>n</i>`` for italic variables and a trailing condition such as
``(x = 0 to 1)``. A substring search goes wrong on this (S in Si, P in Pb); here
the markup is removed first and the symbols are then read one by one and checked
against the periodic table.

``REE`` (rare-earth elements, unspecified) is kept as the pseudo-symbol ``"REE"``.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from ramanid.errors import ChemistryError

PERIODIC_TABLE = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn
    Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce
    Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn
    Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr""".split()
)
PSEUDO_SYMBOLS = frozenset({"REE"})
DEFAULT_ELEMENTS = ("Mg", "Al", "P", "S", "Fe", "Cu")

_TAG = re.compile(r"</?[a-zA-Z]+>")
_CONDITION = re.compile(r"\s+[(\[][^=<>~≤≥≈]*[=<>~≤≥≈].*$")
_CHARGE = re.compile(r"\^[^^]*\^")
_SUBSCRIPT = re.compile(r"_[^_]*_")
_VACANCY = re.compile(r"\[box\]|□")
_SYMBOL = re.compile(r"REE|[A-Z][a-z]?")
_ALLOWED_REST = re.compile(r"[\s()\[\]{},.·•*+\-/0-9nxyz]*")


def clean_formula(formula: str) -> str:
    """Strip RRUFF markup (entities, tags, charges, subscripts, vacancies, conditions)."""
    text = html.unescape(formula).strip()
    text = _TAG.sub("", text)
    text = _CONDITION.sub("", text)
    text = _CHARGE.sub("", text)
    text = _SUBSCRIPT.sub("", text)
    return _VACANCY.sub("", text)


@lru_cache(maxsize=8192)
def parse_elements(formula: str) -> frozenset[str]:
    """Return the set of element symbols in a RRUFF ``IDEAL CHEMISTRY`` formula.

    Parameters
    ----------
    formula : str
        The formula as RRUFF writes it, e.g. ``"Pb_5_(PO_4_)_3_Cl"``.

    Returns
    -------
    frozenset of str
        Element symbols, e.g. ``{"Pb", "P", "O", "Cl"}``; ``"REE"`` for unspecified rare earths.

    Raises
    ------
    ChemistryError
        If the formula is empty, or holds a symbol that is not an element, or markup
        that cannot be read.
    """
    if formula is None or not str(formula).strip():
        raise ChemistryError("empty chemistry formula: expected e.g. 'Pb_5_(PO_4_)_3_Cl'")
    text = clean_formula(str(formula))
    symbols = _SYMBOL.findall(text)
    unknown = [s for s in symbols if s not in PERIODIC_TABLE and s not in PSEUDO_SYMBOLS]
    if unknown:
        raise ChemistryError(f"formula {formula!r}: {', '.join(unknown)} is not a chemical element")
    rest = _SYMBOL.sub("", text)
    if not _ALLOWED_REST.fullmatch(rest):
        bad = "".join(sorted(set(_ALLOWED_REST.sub("", rest))))
        raise ChemistryError(f"formula {formula!r}: cannot read the characters {bad!r}")
    if not symbols:
        raise ChemistryError(f"formula {formula!r}: no chemical element found")
    return frozenset(symbols)


def readable_elements(formula) -> frozenset[str] | None:
    """The elements of ``formula`` (:func:`parse_elements`), or None where it is missing or cannot be read."""
    if not isinstance(formula, str):
        return None
    try:
        return parse_elements(formula)
    except ChemistryError:
        return None


def has_element(formula: str, element: str) -> bool:
    """True if ``element`` is one of the elements of ``formula`` (never a substring test)."""
    return element in parse_elements(formula)
