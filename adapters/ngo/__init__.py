"""The NGO linkage: 民盟宝鸡市委 黄丝带 (Yellow Ribbon), principal ``ngo``.

The bureau refers people without a drug history to the NGO's partner
services (counselling, free clinics, vocational training, help for children
in hardship, expert education); the NGO sees each person only as its own
pseudonym, unit, age band and needs (``policy.toml`` here says exactly what),
and sends back service records imported from its spreadsheets
(``silian ngo import``).
"""

#: Principal id of the NGO (民盟 黄丝带) in the policy.
AGENCY = "ngo"
