"""Hypothesis strategies for hostile input, shared by the API and admin fuzz tests."""

from __future__ import annotations

from hypothesis import strategies as st

# Any code point but lone surrogates (they cannot be sent as UTF-8): every script's
# digits, superscripts, controls, NUL, right-to-left marks, private use, emoji.
UNICODE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
# Text a number parser is likely to mistake for a number: numerals of any script
# (superscripts pass str.isdigit() yet int() refuses them; Arabic-Indic and full-width
# digits pass int()), and the forms int() and float() take beyond ASCII digits.
NUMBER_TRAPS = st.sampled_from(
    ["\u00b2", "\u2460", "\u0661\u0662", "\uff15", "\u216b", "1_0", " 5", "5\n", "1e2",
     "inf", "nan", "-0", "+3", "0x10", "9" * 5000, "0.5", ".5", "5.", "1.5.2"]
)  # fmt: skip
NUMBER_LIKE = st.one_of(
    NUMBER_TRAPS,
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=3),
    UNICODE_TEXT,
)
