"""The detox linkage: 陕西省宝鸡强制隔离戒毒所 "新航驿站" team, principal ``detox``.

Co-building and co-governing (共建共治): the bureau refers drug-related people
to the detox centre's team (drug education, counselling, legal education,
employment guidance, clinics); the centre sees each person only as its own
pseudonym — unrelated to the NGO's — unit, age band and needs
(``policy.toml`` here says exactly what), and sends back the records of its
individual sessions and group events imported from its spreadsheets
(``silian detox import``).
"""

#: Principal id of the detox centre (新航驿站 team) in the policy.
AGENCY = "detox"
