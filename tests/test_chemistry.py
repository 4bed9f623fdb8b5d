import pytest

from ramanid.chemistry import DEFAULT_ELEMENTS, clean_formula, has_element, parse_elements
from ramanid.errors import ChemistryError

# Checked by hand against the formula (and, for the named minerals, against mindat/RRUFF).
HAND_VERIFIED = {
    "Pb_5_(PO_4_)_3_Cl": {"Pb", "P", "O", "Cl"},  # pyromorphite: P, not just Pb
    "Ca_3_Si(CO_3_)(SO_4_)(OH)_6_&#183;12H_2_O": {"Ca", "Si", "C", "O", "S", "H"},  # thaumasite
    "Ca_6_Si(OH)_6_(SO_4_)(CO_3_)&#183;12H_2_O": {"Ca", "Si", "O", "H", "S", "C"},  # thaumasite, Si before S
    "Mg_2_SiO_4_": {"Mg", "Si", "O"},  # forsterite: no S in Si
    "SnO_2_": {"Sn", "O"},  # cassiterite: no S in Sn
    "FeS_2_": {"Fe", "S"},  # pyrite
    "CuFeS_2_": {"Cu", "Fe", "S"},  # chalcopyrite
    "Cu^2+^_2_(CO_3_)(OH)_2_": {"Cu", "C", "O", "H"},  # malachite
    "Ni^2+^C_31_H_32_N_4_": {"Ni", "C", "H", "N"},  # abelsonite
    "Al_2_SiO_5_": {"Al", "Si", "O"},
    "CaCO_3_": {"Ca", "C", "O"},  # calcite: Co is not here
    "Co^2+^CO_3_": {"Co", "C", "O"},  # spherocobaltite: Co and C both
    "Ba(S^6+^O_4_)": {"Ba", "S", "O"},  # baryte
    "Sc_2_Si_2_O_7_": {"Sc", "Si", "O"},  # thortveitite: S is not in Sc
    "Pb^2+^S^6+^O_4_": {"Pb", "S", "O"},  # anglesite
    "(Mg,Fe^2+^)_2_SiO_4_": {"Mg", "Fe", "Si", "O"},  # olivine alternatives
    "(Ce,La,Nd)PO_4_": {"Ce", "La", "Nd", "P", "O"},  # monazite
    "(Ca,REE)_4_Ce_2_Al[box]_2_(B_4_Si_4_O_22_)(OH)_2_": {"Ca", "REE", "Ce", "Al", "B", "Si", "O", "H"},
    "[box]Mg_2_(Mg_3_Al_2_)(Si_6_Al_2_)O_22_(OH)_2_": {"Mg", "Al", "Si", "O", "H"},  # vacancy
    "□Fe^2+^_2_Fe^3+^_3_Si_8_O_22_(OH)_2_": {"Fe", "Si", "O", "H"},  # vacancy as the box glyph
    "Fe^3+^As^5+^O_4_&#183;2H_2_O": {"Fe", "As", "O", "H"},  # scorodite, HTML middle dot
    "CaSO_4_·2H_2_O": {"Ca", "S", "O", "H"},  # gypsum, literal middle dot
    "K(Mg,Ti^4+^,Fe^3+^,Fe^2+^)_3_[(Si,Al)_4_O_10_](O,F)_2_": {"K", "Mg", "Ti", "Fe", "Si", "Al", "O", "F"},
    "Zn^2+^_1-x_Al_x_(S^6+^O_4_)_x/2_(OH)_2_&#183;nH_2_O  (x<0.5, n>3x/2)": {"Zn", "Al", "S", "O", "H"},
    "Ca_4_Be_2+x_Al_2-x_Si_9_O_26-x_(OH)_2+x_ (x = 0 to 1)": {"Ca", "Be", "Al", "Si", "O", "H"},
    "SiO_2_&#183;<i>n</i>H_2_O": {"Si", "O", "H"},  # opal, italic n
    "[(N^3-^Hg^2+^_2_)_2_](S^6+^O_4_)(H_2_O)_<i>x</i>_": {"N", "Hg", "S", "O", "H"},
    "Ni^2+^_1-x_Co^3+^_x_(OH)_2-x_(S^6+^O_4_)_x_&#183;nH_2_O [x &#8804; 1/3; n &#8804; (1-x)]": {
        "Ni",
        "Co",
        "O",
        "H",
        "S",
    },
    "Tl^1+^_5-x_Pb^2+^_2x_(Sb^3+^,As^3+^)_21-x_S^2-^_34_ (x~1.2-1.5)": {"Tl", "Pb", "Sb", "As", "S"},
    "Mg_0.5_Zn^2+^Fe^3+^(Te^4+^O_3_)_3_&#183;<i>n</i>H_2_O (3&#8804;<i>n</i>&#8804;4.5)": {
        "Mg",
        "Zn",
        "Fe",
        "Te",
        "O",
        "H",
    },
    "Ca_9_Mg(PO_4_)_6_(PO_3_F)": {"Ca", "Mg", "P", "O", "F"},
    "Cu^1+^_3_Bi^3+^S^2-^_3_": {"Cu", "Bi", "S"},
    "NaAl(S^6+^O_4_)_2_&#183;6H_2_O": {"Na", "Al", "S", "O", "H"},
    "AuSb_2_": {"Au", "Sb"},
    "HBO_2_": {"H", "B", "O"},
}


@pytest.mark.parametrize("formula, expected", HAND_VERIFIED.items())
def test_hand_verified_formulas(formula, expected):
    assert parse_elements(formula) == expected


def test_sample_is_large_enough():
    assert len(HAND_VERIFIED) >= 30


def test_substring_traps():
    assert not has_element("Mg_2_SiO_4_", "S")
    assert not has_element("SnO_2_", "S")
    assert has_element("Ca_3_Si(CO_3_)(SO_4_)(OH)_6_&#183;12H_2_O", "S")
    assert has_element("Pb_5_(PO_4_)_3_Cl", "P")
    assert not has_element("Pb_5_(AsO_4_)_3_Cl", "P")  # mimetite: Pb but no P


def test_markup_is_removed():
    assert clean_formula("Fe^2+^_2_SiO_4_") == "FeSiO"


@pytest.mark.parametrize("bad", ["", "   ", "Xx_2_O", "Qz", "12345", "Fe@O"])
def test_bad_formulas_raise_clearly(bad):
    with pytest.raises(ChemistryError, match="formula|empty|no chemical"):
        parse_elements(bad)


@pytest.mark.slow
def test_every_formula_in_the_real_zip_parses(rruff_all):
    spectra, _ = rruff_all
    formulas = {s.meta["chemistry"] for s in spectra if "chemistry" in s.meta}
    failures = {}
    for formula in formulas:
        try:
            parse_elements(formula)
        except ChemistryError as exc:
            failures[formula] = str(exc)
    print(f"{len(formulas) - len(failures)} of {len(formulas)} distinct formulas parse; failures: {failures}")
    assert len(formulas) > 1500
    assert failures == {}


def test_default_elements_are_the_references():
    assert DEFAULT_ELEMENTS == ("Mg", "Al", "P", "S", "Fe", "Cu")
