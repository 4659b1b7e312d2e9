"""The station's domain: records, state machines, units, errors and the neutral fuelling point.

Every other package (``edge``, ``drivers``, ``sync``, ``simulator``) may import this one; it
imports none of them.
"""
